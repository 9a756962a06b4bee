"""How a transactional consume-transform-produce loop reads kafka-python's errors.

kafka-python records the cause of a failed transaction in the producer's transaction manager and
raises a plain KafkaError on later calls: the cause decides whether to re-read the batch (broker
away, rebalance), stop (fenced by another producer with the same transactional id, authorisation),
or recover (a transaction the broker aborted after its timeout).
"""

from __future__ import annotations

from typing import Any

from gateway.retry import broker_lost

__all__ = ["describe", "fenced", "last_error", "retriable", "same_membership"]


def last_error(producer: Any) -> BaseException | None:
    """The transaction manager's recorded error (kafka-python raises a plain KafkaError afterwards)."""
    manager = getattr(producer, "_transaction_manager", None)
    error = getattr(manager, "last_error", None)
    return error if isinstance(error, BaseException) else None


def fenced(exc: BaseException, producer: Any) -> bool:
    from kafka.errors import InvalidProducerEpochError, ProducerFencedError  # noqa: PLC0415

    fence = (ProducerFencedError, InvalidProducerEpochError)
    return isinstance(exc, fence) or isinstance(last_error(producer), fence)


def retriable(exc: BaseException, producer: Any = None) -> bool:
    """Broker away, rebalance during the batch, transaction aborted: re-read the batch. Not:
    authorisation, a record the broker refuses, unknown errors (they would fail again forever)."""
    from kafka.errors import TransactionAbortedError  # noqa: PLC0415

    if broker_lost(exc) or isinstance(exc, TransactionAbortedError):
        return True
    cause = last_error(producer)
    return cause is not None and cause is not exc and broker_lost(cause)


def describe(exc: BaseException) -> str:
    """Class and message of a client error (kafka-python's messages name topics and states, never
    record contents)."""
    return f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__


def same_membership(polled_by: Any, now: Any) -> None:
    """KIP-447 fencing needs the generation that polled the batch: a worker evicted meanwhile (reset
    to generation -1, which the broker does not check) must not commit it."""
    from kafka.errors import CommitFailedError  # noqa: PLC0415

    ours = (polled_by.generation_id, polled_by.member_id)
    if polled_by.generation_id < 0 or not polled_by.member_id or ours != (now.generation_id, now.member_id):
        raise CommitFailedError("the consumer's group membership changed during the batch")
