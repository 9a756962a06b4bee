"""Configuration of the SNE connector (typed, frozen, every error reported at once).

Every field can also be given as GATEWAY_SNE_<FIELD> (upper case) to `gateway sne run|send|poll`;
the CLI is the only place that reads them (opt-in, see connectors/sne/README.md).
"""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Literal

from gateway.connectors import ConnectorConfig
from pydantic import Field, field_validator

__all__ = ["SneConfig"]


class SneConfig(ConnectorConfig):
    """Where the SNE is, who the gateway is for it, and how hard to push."""

    url: str = Field(
        "https://nuu-ws.ecole.application.developpement-durable.gouv.fr:443/services/DemandeLogementImplService/",
        description="HTTPS URL of the SNE web service (the simulator: https://127.0.0.1:PORT/services/...).",
    )
    client_cert: Path = Field(description="PEM client certificate (mutual TLS).")
    client_key: Path = Field(description="PEM private key of the client certificate.")
    ca_cert: Path | None = Field(
        None, description="PEM CA bundle that signs the server; system CAs when unset."
    )
    certificate_part: Path | None = Field(
        None, description="PEM sent in the `certificat` MTOM part; empty part when unset (as libsne does)."
    )
    guichet: str = Field(
        pattern=r"^G[0-9A-Z]{4}$", description="Guichet code (G + 4 characters), used in file names."
    )
    rate_limit_per_second: float = Field(5.0, gt=0, description="Maximum SNE calls per second.")
    mode: Literal["immediate", "daily"] = Field(
        "immediate",
        description="immediate: one call per record; daily: accumulate, send at daily_at or on trigger.",
    )
    daily_at: time = Field(time(21, 0), description="UTC time of the daily batch (mode daily).")
    retry_attempts: int = Field(5, ge=1, le=100, description="Attempts per record before dead-lettering.")
    retry_base_delay: float = Field(
        0.5, ge=0, description="First backoff delay, seconds (doubles each attempt)."
    )
    retry_max_delay: float = Field(30.0, ge=0, description="Bound of one backoff delay, seconds.")
    ledger_path: Path | None = Field(
        None, description="sqlite ledger; <state_dir>/sne/ledger.sqlite when unset."
    )
    connect_timeout: float = Field(10.0, gt=0, description="TCP+TLS connect timeout, seconds.")
    read_timeout: float = Field(
        60.0, gt=0, description="Answer timeout, seconds (after it, the outcome is unknown)."
    )
    topic_prefix: str = Field("gp", min_length=1, description="Prefix of the feedback and decision topics.")
    poll_interval: float = Field(
        300.0, gt=0, description="Seconds between two polls of the *DepuisLe services."
    )
    poll_since: datetime | None = Field(
        None, description="First watermark of the polls (default: 30 days ago)."
    )
    poll_origine: str = Field(
        "SNE", min_length=1, description="provenance.origine of decisions read from the SNE."
    )

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("the SNE is only reached over HTTPS (mutual TLS)")
        return value
