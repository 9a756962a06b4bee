"""The local Apache Kafka broker: fetched from Maven Central, run single-node KRaft on loopback."""

from __future__ import annotations

from gateway.broker.install import install_kafka, kafka_home, kafka_libs, libs_present
from gateway.broker.local import LocalBroker, broker_answers, free_port, pid_alive

__all__ = [
    "LocalBroker",
    "broker_answers",
    "free_port",
    "install_kafka",
    "kafka_home",
    "kafka_libs",
    "libs_present",
    "pid_alive",
]
