"""What a normaliser returns for each part of its input: a canonical record or a rejection."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import Problem
from gateway.model.canonical import CanonicalRecord

__all__ = ["INTERNAL_ERROR", "Outcome", "Rejection"]

INTERNAL_ERROR = "cannot be normalised (internal error)"


@dataclass(frozen=True)
class Rejection:
    """A part of the input that cannot be normalised, with EVERY problem found in it.

    `locator` says which part ("$" the whole input, "line 7" a CSV line, "$[2]" an element of a
    JSON array); `fragment` holds the original bytes of that part when it is a part, None when it
    is the whole input (the caller already has those bytes).
    """

    problems: tuple[Problem, ...]
    locator: str
    fragment: bytes | None = None


Outcome = CanonicalRecord | Rejection
