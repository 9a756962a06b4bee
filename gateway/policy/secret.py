"""The pseudonymisation key of the running policy: a demo key is tolerated with a warning in the
bundled demo policy only.

A `statistique` pseudonym is an HMAC of the numéro unique. Numéros uniques are structured
(département, year, guichet, sequence): one département-year is a few hundred thousand values, so
whoever knows the key reverses a pseudonym by enumeration in seconds. The key must therefore be
secret and long (at least MIN_KEY_LENGTH random characters), set through
GATEWAY_PSEUDONYMISATION_SECRET (not in a policy file kept in version control).
"""

from __future__ import annotations

import logging
from pathlib import Path

from gateway.errors import ConfigError, Problem

__all__ = ["DEMO_KEYS", "MIN_KEY_LENGTH", "check_pseudonymisation_key"]

_log = logging.getLogger(__name__)
DEMO_KEYS = frozenset({b"demo-only-pseudonymisation-key", b"change-me"})  # bundled file, field default
MIN_KEY_LENGTH = 32
_warned: set[str] = set()


def weak(secret: bytes) -> bool:
    return secret in DEMO_KEYS or len(secret) < MIN_KEY_LENGTH


def check_pseudonymisation_key(source: str, secret: bytes, bundled: Path) -> None:
    """For a policy about to run: a demo or short key is refused unless the policy file is the
    bundled demo one (`bundled`), where it is used with a warning, logged once per process."""
    if not weak(secret):
        return
    if source and Path(source).resolve() == bundled.resolve():
        if source not in _warned:
            _warned.add(source)
            _log.warning(
                "pseudonymisation: the demo key is in use (GATEWAY_PSEUDONYMISATION_SECRET unset or "
                "shorter than %d characters): statistique pseudonyms can be reversed; demo only",
                MIN_KEY_LENGTH,
            )
        return
    raise ConfigError(
        "pseudonymisation key refused",
        [
            Problem(
                "pseudonymisation_secret",
                f"a demo key or a key under {MIN_KEY_LENGTH} characters is refused outside the bundled "
                "demo policy: set GATEWAY_PSEUDONYMISATION_SECRET to a long random secret",
            )
        ],
    )
