"""The webhook sink's pipelined HTTP/1.1 lanes: answers read in order whatever their framing, a
receiver closing its connection, a failure in a window, and never two events of one key in flight."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from connectors.webhook import WebhookConfig, WebhookSink
from connectors.webhook.pipeline import Answer, Connection, request
from gateway.connectors import SinkRecord
from gateway.errors import RejectedMessage, RetriableError
from gateway.testing.actor_stream import sink_records
from gateway.testing.http_receiver import Receiver
from gateway.testing.sink_run import write_and_flush

SECRET = "whsec_" + base64.b64encode(b"unit-test-key-0123456789abcdefgh").decode()

Answerer = Callable[[int], bytes]  # request number (0, 1, ...) on the connection -> raw answer bytes


@contextmanager
def raw_receiver(answer: Answerer, *, close_after: int | None = None) -> Iterator[tuple[int, list[int]]]:
    """A socket server reading pipelined requests (Content-Length bodies) and writing `answer(n)`
    for each; closes a connection after `close_after` answers. Yields (port, requests per connection)."""
    server = socket.create_server(("127.0.0.1", 0))
    counts: list[int] = []

    def serve(conn: socket.socket) -> None:
        buf, n = b"", 0
        counts.append(0)
        slot = len(counts) - 1
        with conn:
            while close_after is None or n < close_after:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = int(
                    next(
                        v
                        for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
                        if k.lower() == b"content-length"
                    )
                )
                while len(buf) < length:
                    buf += conn.recv(65536)
                buf = buf[length:]
                data = answer(n)
                n += 1
                counts[slot] = n  # counted before answering: the client may look right after
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1], counts
    finally:
        server.close()


def _posts(n: int) -> list[bytes]:
    body = b'{"n":1}'
    return [
        request("/hook", "127.0.0.1", body, [("webhook-id", f"m{i}")], "application/json") for i in range(n)
    ]


def test_answers_of_every_framing_are_read_in_order() -> None:
    framings = [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nT: 1\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n",
    ]
    with raw_receiver(lambda n: framings[n % 4]) as (port, counts):
        conn = Connection("127.0.0.1", port, timeout=5)
        answers = conn.exchange(_posts(8))
        conn.close()
    assert answers == [Answer(200), Answer(202), Answer(204), Answer(503, "7")] * 2
    assert counts == [8]  # one connection, eight requests


def test_a_receiver_closing_after_each_answer_gets_every_request_on_new_connections() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    with raw_receiver(lambda n: ok, close_after=1) as (port, counts):
        sink = WebhookSink(
            WebhookConfig.model_validate({"url": f"http://127.0.0.1:{port}/", "secret": SECRET})
        )
        answers = sink._exchange(0, _posts(5))
        sink._reset()
    assert [a.status for a in answers] == [200] * 5
    assert counts == [1] * 5
    assert sink._serial == [True, False, False, False]  # that lane no longer pipelines


def test_a_receiver_that_drops_the_connection_unanswered_is_retriable() -> None:
    with raw_receiver(lambda n: b"", close_after=0) as (port, _):
        sink = WebhookSink(
            WebhookConfig.model_validate({"url": f"http://127.0.0.1:{port}/", "secret": SECRET})
        )
        with pytest.raises(RetriableError, match="closed the connection"):
            sink._exchange(0, _posts(3))


def _same_key(records: list[SinkRecord], n: int) -> list[SinkRecord]:
    """n records of one key, in order (the stream's first n, re-keyed)."""
    return [replace(r, key="one-key") for r in records[:n]]


def test_a_failure_in_a_window_stops_the_lane_and_a_keys_later_events_wait() -> None:
    records = list(sink_records())[:6]
    keyed = _same_key(records, 3)  # one key: never two of them in flight
    with Receiver() as rx:
        rx.refuse(503, when=str(keyed[0].header("ce_id")))
        sink = WebhookSink(
            WebhookConfig.model_validate({"url": rx.url, "secret": SECRET, "connections": 1, "pipeline": 8})
        )
        with pytest.raises(RetriableError, match="HTTP 503"):
            write_and_flush(sink, keyed)
    sent = [r.webhook_id for r in rx.requests]
    assert sent == [keyed[0].header("ce_id")]  # its later events were not sent past the failure


def test_a_window_with_one_refused_event_delivers_the_others_once() -> None:
    records = list(sink_records())[:5]
    with Receiver() as rx:
        rx.refuse(422, when=str(records[1].header("ce_id")))
        sink = WebhookSink(
            WebhookConfig.model_validate({"url": rx.url, "secret": SECRET, "connections": 1, "pipeline": 8})
        )
        with pytest.raises(RejectedMessage, match="HTTP 422"):
            write_and_flush(sink, records)
        for r in records:  # the runtime's record-by-record retry
            try:
                write_and_flush(sink, [r])
            except RejectedMessage:
                assert r is records[1]
    delivered = rx.delivered_ids()
    assert sorted(delivered) == sorted(str(r.header("ce_id")) for r in records if r is not records[1])


def test_pipelined_windows_keep_each_keys_order_and_deliver_everything_once() -> None:
    records = list(sink_records())
    keyed = [replace(r, key=f"k{i % 3}") for i, r in enumerate(records)]  # few keys, many events each
    with Receiver() as rx:
        write_and_flush(
            WebhookSink(WebhookConfig.model_validate({"url": rx.url, "secret": SECRET, "pipeline": 16})),
            keyed,
        )
    delivered = rx.delivered_ids()
    assert sorted(delivered) == sorted(str(r.header("ce_id")) for r in keyed)
    for key in ("k0", "k1", "k2"):
        expected = [r.header("ce_id") for r in keyed if r.key == key]
        assert [i for i in delivered if i in expected] == expected


def test_a_control_character_in_an_event_id_is_rejected_not_sent() -> None:
    record = next(iter(sink_records()))
    bad = replace(
        record, headers=tuple((k, b"x\r\nInjected: 1" if k == "ce_id" else v) for k, v in record.headers)
    )
    with Receiver() as rx:
        sink = WebhookSink(WebhookConfig.model_validate({"url": rx.url, "secret": SECRET}))
        with pytest.raises(RejectedMessage, match="webhook-id"):
            write_and_flush(sink, [bad])
    assert rx.requests == []
