"""Webhook sink: POSTs each record as a CloudEvent in structured JSON mode, signed as the Standard
Webhooks specification says. Delivery: at-least-once (`webhook-id` is the record's `ce_id`, stable
across retries and restarts: the receiver de-duplicates on it).

- one event per request (`application/cloudevents+json`), or `batch: true`
  (`application/cloudevents-batch+json`, up to batch_max events; its `webhook-id` is a hash of the
  events' ids, receivers de-duplicate on each event's `id`);
- `data` = the actor's view record as JSON (dates ISO 8601, decimals as strings), `dataschema` = the
  view schema's name;
- TLS verified (system CAs or ca_file); `connections` kept-alive connections side by side (a key's
  events always on the same one, in order), each pipelined: up to `pipeline` requests are written
  before their answers are read, never two of one key (a key's next event leaves only once the
  receiver answered the previous one, so a failure never lets a later event of that key pass it);
  timeouts;
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
import functools
import hashlib
import logging
import ssl
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
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
from gateway.errors import GatewayError, Problem, RejectedMessage, RetriableError
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from connectors.webhook.config import WebhookConfig
from connectors.webhook.pipeline import Answer, Connection, ProtocolError, request

__all__ = ["ERASURE_TYPE", "WebhookSink", "cloud_event"]

log = logging.getLogger(__name__)
CE_JSON = "application/cloudevents+json; charset=utf-8"
CE_BATCH = "application/cloudevents-batch+json; charset=utf-8"
ERASURE_TYPE = "fr.gp.effacement"  # CloudEvents type of an erasure: the receiver erases its copy
_REMEMBERED = 50_000  # ids delivered by this process: a batch retried record by record is not re-sent
_CE = frozenset({"ce_id", "ce_source", "ce_type", "ce_dataschema", "ce_subject", "ce_time"})


def _ce_headers(rec: SinkRecord) -> dict[str, str]:
    """The record's ce_* headers that make the event's attributes (the last value of each)."""
    return {k: v.decode("utf-8", "replace") for k, v in rec.headers if k in _CE}


def cloud_event(rec: SinkRecord, default_source: str, erasure: Erasure | None = None) -> str:
    """The CloudEvent of one record of an actor's stream, in structured JSON (its attributes checked
    by the CloudEvents SDK; `data` = the view record, dates ISO 8601, decimals as strings). An
    erasure's event has the type `fr.gp.effacement` and the numéro unique as subject."""
    heads = _ce_headers(rec)
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": rec.event_id(),
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


def signed_request(  # noqa: PLR0917 - the parts of one request
    signer: Webhook, path: str, host: str, body: str, msg_id: str, content_type: str, now: datetime
) -> bytes:
    """The POST of `body` (Standard Webhooks headers, signed at `now`), as bytes."""
    headers = [
        ("webhook-id", msg_id),
        ("webhook-timestamp", str(int(now.timestamp()))),
        ("webhook-signature", signer.sign(msg_id, now, body)),
        ("User-Agent", "gp-gateway-webhook"),
    ]
    try:
        return request(path, host, body.encode("utf-8"), headers, content_type)
    except ValueError:
        raise RejectedMessage(
            "the event's id cannot be a webhook-id header",
            [Problem("webhook-id", "control character in the event id")],
        ) from None


_SIGNERS: dict[str, Webhook] = {}  # in a reading process: one signer per secret
SIGNED_FRESH_S = 60.0  # a request signed ahead is sent as signed within this; else signed again


def render_post(
    rec: SinkRecord, *, source: str, secret: SecretStr, path: str, host: str
) -> tuple[str, bytes, float]:
    """The record's CloudEvent, and its POST (one event a request) signed now, with the time it was
    signed: made in the runtime's reading processes (`WebhookSink.renderer`)."""
    body = cloud_event(rec, source)
    key = secret.get_secret_value()
    signer = _SIGNERS.get(key) or _SIGNERS.setdefault(key, Webhook(key))
    now = datetime.now(UTC)
    return body, signed_request(signer, path, host, body, rec.event_id(), CE_JSON, now), now.timestamp()


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
        port = self._port or (443 if self._https else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host if self._port is None else f"{host}:{self._port}"
        self._context: ssl.SSLContext | None = None
        timeout = config.timeout_s
        # kept alive, one per lane; the TLS context is made on first use (it loads the CA bundle)
        self._conns = [Connection(self._host, port, timeout=timeout) for _ in range(config.connections)]
        self._serial = [config.pipeline == 1] * config.connections  # the lane sends one request at a time
        self._delivered: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.requests = 0  # POSTs sent (bench, tests)

    # ---- connection ---------------------------------------------------------------------------
    def _ssl(self) -> ssl.SSLContext:
        if self._context is None:
            cafile = str(self.config.ca_file) if self.config.ca_file else None
            ctx = ssl.create_default_context(cafile=cafile)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self._context = ctx
        return self._context

    def _connection(self, lane: int = 0) -> Connection:
        conn = self._conns[lane]
        if self._https and conn.context is None:
            conn.context = self._ssl()
        return conn

    def _reset(self, lane: int | None = None) -> None:
        for i in range(len(self._conns)) if lane is None else (lane,):
            self._conns[i].close()

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
    def _request(self, body: str, msg_id: str, content_type: str, now: datetime) -> bytes:
        return signed_request(self._signer, self._path, self._host_header, body, msg_id, content_type, now)

    def _exchange(self, lane: int, requests: Sequence[bytes]) -> list[Answer]:
        """The receiver's answers to `requests` (pipelined on the lane's connection, in order). A
        kept-alive connection the receiver closed is replaced and what it did not answer sent again
        (once when nothing was answered on it, as often as answers keep coming otherwise)."""
        answers: list[Answer] = []
        retried = False
        while len(answers) < len(requests):
            conn = self._connection(lane)
            reused = conn.used
            start = len(answers)
            todo = requests[start : start + 1] if self._serial[lane] else requests[start:]
            try:
                got = conn.exchange(todo)
            except ssl.SSLError as exc:
                raise RetriableError(
                    f"TLS failure with the receiver: {exc.reason or type(exc).__name__}"
                ) from exc
            except (OSError, ProtocolError) as exc:
                raise RetriableError(f"receiver unreachable or too slow ({type(exc).__name__})") from exc
            with self._lock:
                self.requests += len(got)
            answers += got
            switched = len(got) < len(todo) > 1 and not self._serial[lane]
            if switched:  # it closes connections with requests unanswered: one at a time from now on
                self._serial[lane] = True
                log.info("receiver closed a pipelined connection: lane %d sends one request at a time", lane)
            if len(answers) < len(requests) and not got:
                if (reused or switched) and not retried:
                    retried = True  # the receiver closed a kept-alive connection: once more on a new one
                    continue
                raise RetriableError("receiver closed the connection (no answer)")
        return answers

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

    def _posts(
        self, records: Sequence[SinkRecord], erasures: Mapping[int, Erasure]
    ) -> list[tuple[list[str], set[str], bytes]]:
        """(event ids, keys, request) of each POST the records make, in order (`erasures`: the
        records that are erasures, by id of the record)."""
        source = self.config.source
        now = datetime.now(UTC)

        def event(rec: SinkRecord) -> str:  # as rendered ahead (renderer), or here
            erasure = erasures.get(id(rec))
            if erasure is None and rec.rendered is not None:
                return str(rec.rendered[0])
            return cloud_event(rec, source, erasure)

        if not self.config.batch:
            out = []
            fresh = now.timestamp() - SIGNED_FRESH_S
            for rec in records:
                msg_id = rec.event_id()
                ahead = rec.rendered if id(rec) not in erasures else None
                if ahead is not None and ahead[2] >= fresh:  # signed ahead, moments ago
                    req = ahead[1]
                else:
                    req = self._request(event(rec), msg_id, CE_JSON, now)
                out.append(([msg_id], {rec.key}, req))
            return out
        size = self.config.batch_max
        posts = []
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            ids = [r.event_id() for r in chunk]
            body = "[" + ",".join(event(r) for r in chunk) + "]"
            batch_id = "batch_" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
            posts.append((ids, {r.key for r in chunk}, self._request(body, batch_id, CE_BATCH, now)))
        return posts

    def _send_lane(
        self, lane: int, records: Sequence[SinkRecord], erasures: Mapping[int, Erasure] | None = None
    ) -> None:
        """The lane's records, in windows of up to `pipeline` requests holding no key twice: a
        window's answers are all read (and its delivered events remembered) before the next one
        leaves; the first failure stops the lane (the runtime retries record by record)."""
        posts = self._posts(records, erasures or {})
        depth = self.config.pipeline
        i = 0
        while i < len(posts):
            window, keys = [posts[i]], set(posts[i][1])
            i += 1
            while i < len(posts) and len(window) < depth and keys.isdisjoint(posts[i][1]):
                keys |= posts[i][1]
                window.append(posts[i])
                i += 1
            answers = self._exchange(lane, [req for _, _, req in window])
            failures: list[GatewayError] = []
            for (ids, _, _), answer in zip(window, answers, strict=True):
                try:
                    self._answer(answer.status, answer.retry_after)
                except (RetriableError, RejectedMessage) as exc:
                    failures.append(exc)
                else:
                    self._remember(ids)
            if failures:
                retriable = [e for e in failures if isinstance(e, RetriableError)]
                raise (retriable or failures)[0]

    def _send(self, batch: Sequence[SinkRecord], erasures: Mapping[int, Erasure] | None = None) -> None:
        """Records of one key always go through the same lane, in order (the receiver sees a key's
        events in the stream's order); lanes run side by side, each on its kept-alive connection.
        `erasures`: the records of `batch` that are erasures (by id of the record)."""
        with self._lock:
            todo = [r for r in batch if r.event_id() not in self._delivered]
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

    def renderer(self) -> Callable[[SinkRecord], Any]:
        """Each record's CloudEvent and its signed POST (render_post), made in the runtime's rendering
        processes; a POST signed more than SIGNED_FRESH_S ago (a retry after a backoff) is signed
        again when sent, and batch mode signs each batch when it sends it."""
        return functools.partial(
            render_post,
            source=self.config.source,
            secret=self.config.secret,
            path=self._path,
            host=self._host_header,
        )

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
