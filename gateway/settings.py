"""GatewaySettings: the one place the environment is read (prefix GATEWAY_)."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["GatewaySettings", "default_state_dir"]


_HOST = re.compile(
    r"^([A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?|\[[0-9A-Fa-f:.]+\])$"
)


def default_state_dir() -> Path:
    return Path.home() / ".cache" / "gp-gateway"


class GatewaySettings(BaseSettings):
    """Settings of a gateway process. Every field can be set as GATEWAY_<FIELD> in the environment."""

    # populate_by_name: GatewaySettings(bootstrap_servers=...) is honoured (the field has env aliases)
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", frozen=True, extra="ignore", populate_by_name=True
    )

    bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("GATEWAY_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers (also read from KAFKA_BOOTSTRAP_SERVERS).",
    )
    topic_prefix: str = Field("gp", description="Prefix of every topic the gateway owns.")
    app_id: str = Field("gp-gateway", description="faust application id (consumer group prefix).")
    processing_guarantee: Literal["exactly_once", "at_least_once"] = Field(
        "exactly_once", description="Kafka transactions (exactly_once) or at-least-once with idempotent keys."
    )
    schema_registry_url: str | None = Field(
        None, description="Confluent-compatible registry: switches framing to the Confluent wire format."
    )
    policy_file: Path | None = Field(None, description="Access policy file; the bundled default when unset.")
    state_dir: Path = Field(default_factory=default_state_dir, description="Broker data, tables, ledgers.")
    kafka_version: str = Field("3.9.1", description="Apache Kafka version fetched from Maven Central.")
    web_port: int = Field(
        6066, description="Port of /health, /metrics and /status (settings, secrets masked)."
    )
    web_host: str = Field("127.0.0.1", description="Bind address of the web server.")
    instance_id: str = Field(
        default_factory=socket.gethostname,
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="This worker among the running workers of one app_id: stable across restarts, unique"
        " among running workers (e.g. the pod name). Names its transactional id. Default: host name.",
    )
    ingest_processes: int = Field(
        0, ge=0, le=64, description="Processes normalising ingest batches (0: the worker's own thread)."
    )
    sink_processes: int = Field(
        0,
        ge=0,
        le=16,
        description="Processes reading, decoding and rendering a sink's partitions while it writes (sinks"
        " that declare a renderer: file, postgres, webhook); 0: in the sink's own process. Set it to the"
        " spare cores the sink has, up to its topic's partitions (docs/sinks.md, Measured).",
    )
    session_timeout_s: float = Field(
        15.0,
        ge=6,
        le=300,
        description="How long a consumer that died (killed, host lost) keeps its partitions before its"
        " group gives them to the other members (the broker's group.min.session.timeout.ms: 6 s).",
    )
    broker_timeout_s: float = Field(
        60.0,
        gt=0,
        le=600,
        description="How long one Kafka request, flush or topic creation of a sink (SNE connector"
        " included) may take before the broker counts as lost (then: backoff, and again).",
    )
    partitions: int = Field(6, ge=1, description="Partitions of the topics the gateway creates.")
    replication_factor: int = Field(1, ge=1, description="Replication factor of the topics it creates.")
    log_level: str = Field("INFO", description="Log level.")
    pseudonymisation_secret: SecretStr | None = Field(
        None,
        description="HMAC key pseudonymising numéros uniques for statistique; overrides the policy file's.",
    )
    console_host: str = Field("127.0.0.1", description="Bind address of the operators' console.")
    console_port: int = Field(6067, ge=1, le=65535, description="Port of the operators' console.")
    console_accounts_file: Path | None = Field(
        None,
        description="Console accounts (argon2 hashes, 0600). Default: <state dir>/console/accounts.yaml.",
    )
    console_metrics_urls: str | None = Field(
        None,
        description="Comma-separated /metrics URLs the console samples each minute. Default: this host's"
        " worker (http://<web host>:<web port>/metrics).",
    )
    console_interval_s: float = Field(60.0, gt=0, le=3600, description="Console sampling period (seconds).")
    signals_rules_file: Path | None = Field(
        None, description="Rules file of the follow-up signals (docs/signals.md); the shipped one if unset."
    )
    signals_clock: str | None = Field(
        None,
        pattern=r"^(\d{4}-\d{2}-\d{2}|file:.+)$",
        description="Clock of the signals flow: unset = the system date; YYYY-MM-DD = that day;"
        " file:PATH = the YYYY-MM-DD date written in PATH, read at every tick (tests, rehearsals).",
    )
    signals_tick_interval: float = Field(
        60.0, gt=0, description="Seconds between two looks at the clock of the signals flow (tick: new day)."
    )
    retention_clock: str | None = Field(
        None,
        pattern=r"^(\d{4}-\d{2}-\d{2}|file:.+)$",
        description="Clock of the retention flow (erasure one year after radiation): unset = the system"
        " date; YYYY-MM-DD = that day; file:PATH = the YYYY-MM-DD date written in PATH, read at each look"
        " (tests, rehearsals). `retention run --now` may not be later than it.",
    )
    retention_clock_interval: float = Field(
        3600.0,
        gt=0,
        description="Seconds between two looks at the retention clock: at start and when the day changed,"
        " one erasure command per partition (request `horloge`).",
    )
    retention_stores: str | None = Field(
        None,
        pattern=r"^[a-z]+(,[a-z]+)*$",
        description="Comma-separated stores whose receipts complete an erasure (gateway.retention.protocol"
        ".STORES). Unset: canonical,raw,route,signals,cotation, and sne when GATEWAY_SNE_URL is set.",
    )
    sne_url: str | None = Field(
        None,
        description="URL of the SNE web service (the SNE connector reads it too): when set, the retention"
        " flow also waits for the SNE ledger's receipt.",
    )
    cotation_grid: Path | None = Field(None, description="Cotation grid of the `cotation` flow (YAML).")
    adequacy_rules: Path | None = Field(
        None, description="Adequacy and solvency rules of the `cotation` flow (YAML); none: no assessment."
    )
    report_territories: Path | None = Field(
        None,
        description="Territories and first-quartile thresholds (YAML): the `cotation` flow keeps the"
        " 25 % report on <prefix>.report.attributions; none: no report.",
    )
    report_qpv: Path | None = Field(
        None, description="Dwellings in QPV (CSV `rpls;qpv`), with report_territories."
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _bootstrap_shape(cls, value: str) -> str:
        """host:port[,host:port…], checked before any connection (the value is not echoed back)."""
        entries = [e.strip() for e in value.split(",")]
        if not value.strip() or any(not e for e in entries):
            raise ValueError("expected host:port[,host:port...], got an empty entry")
        for n, entry in enumerate(entries, 1):
            host, sep, port = entry.rpartition(":")
            if not sep or not _HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"entry {n} is not host:port (host name or IP address, port 1-65535)")
        return ",".join(entries)

    def console_accounts_path(self) -> Path:
        return self.console_accounts_file or self.state_dir / "console" / "accounts.yaml"

    def console_scrape_urls(self) -> list[str]:
        if self.console_metrics_urls:
            return [u.strip() for u in self.console_metrics_urls.split(",") if u.strip()]
        return [f"http://{self.web_host}:{self.web_port}/metrics"]

    # Kafka client security (gateway/kafka_config.py resolves them; docs/security.md). With none set,
    # a command aimed at loopback uses the local broker's admin client file in the state dir.
    kafka_security_protocol: Literal["SASL_SSL", "SSL", "SASL_PLAINTEXT", "PLAINTEXT"] | None = Field(
        None, description="Kafka security protocol; PLAINTEXT / SASL_PLAINTEXT need kafka_allow_plaintext."
    )
    kafka_allow_plaintext: bool = Field(
        False, description="Development only: allow an unencrypted, unauthenticated Kafka connection."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] | None = Field(
        None, description="SASL mechanism (default SCRAM-SHA-512 when a SASL user is set)."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name (the Kafka principal).")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password.")
    kafka_ssl_cafile: Path | None = Field(
        None, description="CA certificate(s) the broker's certificate must chain to."
    )
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client private key (mutual TLS).")
    kafka_client_file: Path | None = Field(
        None,
        description="A 0600 JSON client file (an admin client file or a connection kit) holding the"
        " security settings; the GATEWAY_KAFKA_* fields above take precedence.",
    )

    def masked_dump(self) -> dict[str, Any]:
        """Settings as a dict with secrets masked, for logs and /status."""
        out: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                out[name] = "**********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        return out
