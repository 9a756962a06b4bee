"""Bounds on what one input may cost: its size per format, and when a mostly unreadable
multi-record input becomes one rejection instead of one per part (see docs/normalise.md)."""

from __future__ import annotations

from gateway.formats import INPUT_FORMATS

__all__ = ["GARBAGE_MIN_PARTS", "GARBAGE_RATIO", "MAX_BYTES", "MAX_INPUT_BYTES", "MAX_PROBLEMS"]

MAX_INPUT_BYTES = 16 * 1024 * 1024  # the largest input of any format (the raw topics' max.message.bytes)
MAX_BYTES: dict[str, int] = {f.name: f.max_bytes for f in INPUT_FORMATS}  # from the one registry
# A multi-record input with at least GARBAGE_MIN_PARTS rejected parts, which are more than
# GARBAGE_RATIO of its parts, is one rejection (with the count) instead of one per part.
GARBAGE_MIN_PARTS = 50
GARBAGE_RATIO = 0.5
# Problems listed per rejected part (the rest counted): they travel in dead-letter headers.
MAX_PROBLEMS = 100
