"""Metrics of a gateway process, in Prometheus form. Flows update them; the web page renders them.

Names: gp_records_in_total{flow,source}, gp_records_out_total{flow,source,topic},
gp_records_dead_lettered_total{flow,source}, gp_processing_seconds{flow} (histogram),
gp_sink_erasures_total{source,outcome}, and the consumer
lag per partition named like kafka_exporter: kafka_consumergroup_lag{consumergroup,topic,partition}.
Label values never hold personal data: the route flow labels actor topics by role
(`<prefix>.actor.[<role>]`), as an actor id may identify a person (a demandeur's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "LagSource", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (topic, partition) -> lag in records
LagSource = Callable[[], Mapping[tuple[str, int], int]]


class _LagCollector(Collector):
    def __init__(self, group: str, source: LagSource | None) -> None:
        self.group = group
        self.source = source
        self.others: list[tuple[str, LagSource]] = []  # other consumer groups of the process

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "kafka_consumergroup_lag",
            "Consumer lag per partition (records not yet committed), as kafka_exporter names it.",
            labels=["consumergroup", "topic", "partition"],
        )
        sources = [(self.group, self.source)] if self.source is not None else []
        for group, source in [*sources, *self.others]:
            try:
                lags = dict(source())
            except Exception:  # noqa: BLE001 - a scrape must not fail because the consumer is rebalancing
                lags = {}
            for (topic, partition), lag in sorted(lags.items()):
                family.add_metric([group, topic, str(partition)], float(max(lag, 0)))
        yield family


class Metrics:
    """One registry per process (not the global one), so tests and several apps do not collide."""

    def __init__(self, consumer_group: str = "gp-gateway") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.records_in = Counter(
            "gp_records_in", "Records read by a flow.", ["flow", "source"], registry=self.registry
        )
        self.records_out = Counter(
            "gp_records_out",
            "Records published by a flow.",
            ["flow", "source", "topic"],
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "gp_records_dead_lettered",
            "Inputs (or parts of inputs) sent to a dead-letter topic.",
            ["flow", "source"],
            registry=self.registry,
        )
        self.unknown_codes = Counter(
            "gp_unknown_codes",
            "SNE codes of a known list's shape that this version does not know, carried as INCONNU "
            "(label: the code list's name, never the code).",
            ["liste"],
            registry=self.registry,
        )
        self.processing = Histogram(
            "gp_processing_seconds",
            "Time to process one input record, publish calls included.",
            ["flow"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.sink_erasures = Counter(
            "gp_sink_erasures",
            "Erasures (fr.gp.Effacement records) a sink handled, by outcome: erased, dead_lettered "
            "(the sink rejected it), not_erased (a sink that cannot erase, allowed by the operator). "
            "Labels never hold a numéro unique.",
            ["source", "outcome"],
            registry=self.registry,
        )
        self._lag = _LagCollector(consumer_group, None)
        self.registry.register(self._lag)

    def set_lag_source(self, source: LagSource, consumer_group: str | None = None) -> None:
        self._lag.source = source
        if consumer_group:
            self._lag.group = consumer_group

    def add_lag_source(self, source: LagSource, consumer_group: str) -> None:
        """The lag of another consumer group of this process (e.g. the ingest runner's)."""
        self._lag.others.append((consumer_group, source))

    def render(self) -> bytes:
        return generate_latest(self.registry)
