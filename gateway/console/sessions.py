"""Console sessions (server side, random tokens), CSRF tokens and the login rate limit. Pure: the
clock is passed in, so tests need no sleeping."""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field

__all__ = ["LoginLimiter", "Session", "Sessions"]


@dataclass(slots=True)
class Session:
    token: str
    name: str
    role: str
    csrf: str
    expires: float


@dataclass
class Sessions:
    """Sessions expire `ttl_s` after their last use (idle timeout) and at most `max_age_s` after login."""

    ttl_s: float = 1800.0
    max_age_s: float = 12 * 3600.0
    _by_token: dict[str, tuple[Session, float]] = field(default_factory=dict)

    def create(self, name: str, role: str, now: float) -> Session:
        session = Session(secrets.token_urlsafe(32), name, role, secrets.token_urlsafe(32), now + self.ttl_s)
        self._by_token[session.token] = (session, now)
        self._prune(now)
        return session

    def get(self, token: str | None, now: float) -> Session | None:
        if not token:
            return None
        found = self._by_token.get(token)
        if found is None:
            return None
        session, created = found
        if now >= session.expires or now - created >= self.max_age_s:
            self._by_token.pop(token, None)
            return None
        session.expires = now + self.ttl_s
        return session

    def drop(self, token: str | None) -> None:
        if token:
            self._by_token.pop(token, None)

    @staticmethod
    def csrf_ok(session: Session, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(session.csrf, presented or "")

    def _prune(self, now: float) -> None:
        for token in [t for t, (s, _) in self._by_token.items() if now >= s.expires]:
            self._by_token.pop(token, None)


@dataclass
class LoginLimiter:
    """At most `attempts` failed logins per client address (and per account name) in `window_s`."""

    attempts: int = 5
    window_s: float = 300.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def blocked(self, keys: tuple[str, ...], now: float) -> bool:
        return any(len(self._recent(k, now)) >= self.attempts for k in keys)

    def failed(self, keys: tuple[str, ...], now: float) -> None:
        for k in keys:
            self._recent(k, now).append(now)

    def succeeded(self, keys: tuple[str, ...]) -> None:
        for k in keys:
            self._failures.pop(k, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and now - q[0] >= self.window_s:
            q.popleft()
        if len(self._failures) > 10_000:  # bounded memory under a spray of names
            self._failures = {k: v for k, v in self._failures.items() if v}
        return q
