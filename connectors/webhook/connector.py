"""Webhook sink: POSTs each record as a CloudEvent in structured JSON mode, signed as the Standard
Webhooks specification says. Delivery: at-least-once (`webhook-id` is the record's `ce_id`, stable
across retries and restarts: the receiver de-duplicates on it).

- one event per request (`application/cloudevents+json`), or `batch: true`
  (`application/cloudevents-batch+json`, up to batch_max events; its `webhook-id` is a hash of the
  events' ids, receivers de-duplicate on each event's `id`);
- `data` = the actor's view record as JSON (dates ISO 8601, decimals as strings), `dataschema` = the
  view schema's name;
- TLS verified (system CAs or ca_file); one kept-alive connection; timeouts;
- an erasure (an `fr.gp.Effacement` record of the stream, docs/retention.md) is POSTed the same way,
  signed and retried alike, as a CloudEvent of type `fr.gp.effacement` (`subject` = the numéro unique,
  `data` = the Effacement: numUnique, dateRadiation, dateEffacement, time, par, stores; `webhook-id`
  = its `ce_id`, or its topic/partition/offset when it has none), after every event of the
  application sent before it: the receiver erases its copy;
- 2xx: delivered; 5xx, 408, 429, timeouts, refused connections, TLS failures: RetriableError (the
  runtime backs off; Retry-After honoured); other 4xx and 3xx: RejectedMessage naming the status
  (dead-lettered); messages never hold the payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import ssl
import threading
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from cloudevents.core.v1.event import CloudEvent
from gateway.connectors import (
    ERASURE_SCHEMA,
    CheckResult,
    ConnectorConfig,
    Erasure,
    Guarantee,
    Sink,
    SinkOutput,
    SinkRecord,
    to_json,
)
from gateway.errors import Problem, RejectedMessage, RetriableError
from standardwebhooks.webhooks import Webhook

from connectors.webhook.config import WebhookConfig

__all__ = ["ERASURE_TYPE", "WebhookSink", "cloud_event", "event_id"]

CE_JSON = "application/cloudevents+json; charset=utf-8"
CE_BATCH = "application/cloudevents-batch+json; charset=utf-8"
ERASURE_TYPE = "fr.gp.effacement"  # CloudEvents type of an erasure: the receiver erases its copy
_REMEMBERED = 50_000  # ids delivered by this process: a batch retried record by record is not re-sent
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def event_id(rec: SinkRecord) -> str:
    """The record's CloudEvents id (`ce_id`), or its Kafka coordinates when it has none."""
    return rec.header("ce_id") or f"{rec.topic}/{rec.partition}/{rec.offset}"


def cloud_event(rec: SinkRecord, default_source: str, erasure: Erasure | None = None) -> str:
    """The CloudEvent of one record of an actor's stream, in structured JSON (its attributes checked
    by the CloudEvents SDK; `data` = the view record, dates ISO 8601, decimals as strings). An
    erasure's event has the type `fr.gp.effacement` and the numéro unique as subject."""
    heads = {k: v.decode("utf-8", "replace") for k, v in rec.headers}
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": heads.get("ce_id") or f"{rec.topic}/{rec.partition}/{rec.offset}",
        "source": heads.get("ce_source") or default_source,
        "type": ERASURE_TYPE if erasure else heads.get("ce_type") or rec.schema,
        "datacontenttype": "application/json",
        "dataschema": ERASURE_SCHEMA if erasure else heads.get("ce_dataschema") or rec.schema,
    }
    if erasure is not None:
        attributes["subject"] = erasure.key
        heads.setdefault("ce_time", erasure.time.isoformat())
    elif heads.get("ce_subject"):
        attributes["subject"] = heads["ce_subject"]
    when = heads.get("ce_time")
    if when:
        with contextlib.suppress(ValueError):  # not a timestamp: the event goes without `time`
            attributes["time"] = datetime.fromisoformat(when).astimezone(UTC)
    CloudEvent(attributes)  # raises CloudEventValidationError on a missing or malformed attribute
    if "time" in attributes:
        attributes["time"] = attributes["time"].isoformat().replace("+00:00", "Z")
    return to_json({**attributes, "data": rec.record})


class WebhookSink(Sink):
    """POSTs each record as a signed CloudEvent. Delivery: at-least-once (stable `webhook-id`)."""

    name: ClassVar[str] = "webhook"
    Config: ClassVar[type[ConnectorConfig]] = WebhookConfig
    guarantee: ClassVar[Guarantee] = "at-least-once"
    reads: ClassVar[Literal["actor", "canonical"]] = "actor"
    erases: ClassVar[bool] = True  # it keeps nothing: the erasure is POSTed, the receiver erases

    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        parts = urlsplit(config.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._signer = Webhook(config.secret.get_secret_value())
        lanes = config.connections
        self._conns: list[http.client.HTTPConnection | None] = [None] * lanes  # kept alive, one per lane
        self._used = [False] * lanes  # the lane's connection already carried a request
        self._delivered: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.requests = 0  # POSTs sent (bench, tests)

    # ---- connection ---------------------------------------------------------------------------
    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.config.ca_file) if self.config.ca_file else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def _connection(self, lane: int = 0) -> http.client.HTTPConnection:
        conn = self._conns[lane]
        if conn is None:
            timeout = self.config.timeout_s
            if self._https:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=self._ssl()
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
            self._conns[lane] = conn
            self._used[lane] = False
        return conn

    def _reset(self, lane: int | None = None) -> None:
        for i in range(len(self._conns)) if lane is None else (lane,):
            conn = self._conns[i]
            if conn is not None:
                conn.close()
            self._conns[i] = None

    def check(self) -> CheckResult:
        """Opens a connection (TLS handshake included) without sending anything."""
        try:
            conn = self._connection()
            conn.connect()
        except ssl.SSLError as exc:
            return CheckResult(ok=False, detail=f"TLS failure with {self._host}: {exc.reason or 'handshake'}")
        except OSError as exc:
            return CheckResult(
                ok=False, detail=f"{self._host}:{self._port or ''} unreachable: {type(exc).__name__}"
            )
        finally:
            self._reset()
        return CheckResult(ok=True, detail=f"{self._host} reachable")

    # ---- delivery -----------------------------------------------------------------------------
    def _post(self, body: bytes, msg_id: str, content_type: str, lane: int = 0) -> None:
        for attempt in (1, 2):
            now = datetime.now(UTC)
            headers = {
                "Content-Type": content_type,
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": self._signer.sign(msg_id, now, body.decode("utf-8")),
                "User-Agent": "gp-gateway-webhook",
            }
            reused = self._used[lane]
            try:
                conn = self._connection(lane)
                conn.request("POST", self._path, body=body, headers=headers)
                self._used[lane] = True
                with self._lock:
                    self.requests += 1
                resp = conn.getresponse()
                resp.read()
            except ssl.SSLError as exc:
                self._reset(lane)
                raise RetriableError(
                    f"TLS failure with the receiver: {exc.reason or type(exc).__name__}"
                ) from exc
            except _STALE as exc:
                self._reset(lane)
                if reused and attempt == 1:
                    continue  # the receiver closed a kept-alive connection: once more on a new one
                raise RetriableError(f"receiver closed the connection ({type(exc).__name__})") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._reset(lane)
                raise RetriableError(f"receiver unreachable or too slow ({type(exc).__name__})") from exc
            if resp.will_close:
                self._reset(lane)
            self._answer(resp.status, resp.getheader("Retry-After"))
            return

    @staticmethod
    def _answer(status: int, retry_after: str | None) -> None:
        if 200 <= status < 300:
            return
        if status >= 500 or status in (408, 425, 429):
            delay = float(retry_after) if retry_after and retry_after.isdigit() else None
            raise RetriableError(f"receiver answered HTTP {status}", retry_after=delay)
        raise RejectedMessage(
            f"receiver refused the event: HTTP {status}",
            [Problem("http.status", "refused by the receiver", str(status))],
        )

    def _remember(self, ids: Sequence[str]) -> None:
        with self._lock:
            for i in ids:
                self._delivered[i] = None
                self._delivered.move_to_end(i)
            while len(self._delivered) > _REMEMBERED:
                self._delivered.popitem(last=False)

    def _send_lane(
        self, lane: int, records: Sequence[SinkRecord], erasures: Mapping[int, Erasure] | None = None
    ) -> None:
        source = self.config.source
        erasures = erasures or {}
        if not self.config.batch:
            for rec in records:
                body = cloud_event(rec, source, erasures.get(id(rec))).encode("utf-8")
                self._post(body, event_id(rec), CE_JSON, lane)
                self._remember([event_id(rec)])
            return
        size = self.config.batch_max
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            ids = [event_id(r) for r in chunk]
            events = (cloud_event(r, source, erasures.get(id(r))) for r in chunk)
            body = ("[" + ",".join(events) + "]").encode("utf-8")
            batch_id = "batch_" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
            self._post(body, batch_id, CE_BATCH, lane)
            self._remember(ids)

    def _send(self, batch: Sequence[SinkRecord], erasures: Mapping[int, Erasure] | None = None) -> None:
        """Records of one key always go through the same lane, in order (the receiver sees a key's
        events in the stream's order); lanes run side by side, each on its kept-alive connection.
        `erasures`: the records of `batch` that are erasures (by id of the record)."""
        with self._lock:
            todo = [r for r in batch if event_id(r) not in self._delivered]
        lanes: list[list[SinkRecord]] = [[] for _ in self._conns]
        for r in todo:
            lanes[zlib.crc32(r.key.encode()) % len(lanes)].append(r)
        busy = [(i, rs) for i, rs in enumerate(lanes) if rs]
        if len(busy) <= 1:
            for i, rs in busy:
                self._send_lane(i, rs, erasures)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(len(lanes), thread_name_prefix="webhook")
        futures = [self._pool.submit(self._send_lane, i, rs, erasures) for i, rs in busy]
        errors = [f.exception() for f in futures]
        failed: list[BaseException] = [e for e in errors if isinstance(e, RetriableError)]
        failed = failed or [e for e in errors if e is not None]
        if failed:
            raise failed[0]  # the runtime retries record by record; what was delivered is not sent again

    async def write(self, batch: Sequence[SinkRecord]) -> Sequence[SinkOutput]:
        if batch:
            await asyncio.to_thread(self._send, batch)
        return []

    async def erase(self, erasures: Sequence[Erasure]) -> Sequence[SinkOutput]:
        """POST each erasure as a `fr.gp.effacement` CloudEvent (signed, retried as records are)."""
        if erasures:
            records = [e.record for e in erasures]
            await asyncio.to_thread(self._send, records, {id(e.record): e for e in erasures})
        return []

    async def flush(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._reset()
