"""Console accounts: a YAML file of operators with argon2id password hashes and one role each.

```yaml
accounts:
  - {name: alice, role: operateur, password_hash: "$argon2id$v=19$..."}
  - {name: bob, role: auditeur, password_hash: "$argon2id$v=19$..."}
```
`operateur` sees the flows, consumer groups and dead letters and may replay dead letters;
`auditeur` may also look up the audit log (access-rules §5: who received what about an application).
The file is written 0600; `gateway console add-user` creates or updates an account.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import ConfigError, Problem

__all__ = ["ROLES", "Account", "Accounts", "AccountsFile", "hash_password", "write_account"]

Role = Literal["operateur", "auditeur"]
ROLES: tuple[str, ...] = ("operateur", "auditeur")
_HASHER = PasswordHasher()
# Verified when the name is unknown, so that an unknown name costs the same time as a wrong password.
_DUMMY = _HASHER.hash("not-a-password")


class Account(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9._@-]{1,64}$")
    role: Role
    password_hash: str = Field(pattern=r"^\$argon2(id|i|d)\$")
    replay: list[str] = Field(
        default_factory=list, description="Dead-letter topics (shell patterns) this account may replay."
    )


class AccountsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accounts: list[Account] = Field(default_factory=list)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def _load(path: Path) -> AccountsFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"console accounts {path} unreadable: {type(exc).__name__}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"console accounts {path} is not valid YAML") from exc
    try:
        return AccountsFile.model_validate(raw)
    except ValidationError as exc:
        problems = [Problem(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise ConfigError(f"console accounts {path} refused", problems) from exc


class Accounts:
    """The accounts of a running console (read once at start; `reload()` re-reads the file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_name: dict[str, Account] = {}
        self.reload()

    def reload(self) -> None:
        accounts = _load(self.path).accounts if self.path.exists() else []
        names = [a.name for a in accounts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(
                f"console accounts {self.path} refused", [Problem("accounts", f"duplicate names: {dupes}")]
            )
        self._by_name = {a.name: a for a in accounts}

    def get(self, name: str) -> Account | None:
        return self._by_name.get(name)

    def __len__(self) -> int:
        return len(self._by_name)

    def verify(self, name: str, password: str) -> Account | None:
        """The account when the password matches, else None (same cost for an unknown name)."""
        account = self._by_name.get(name)
        try:
            _HASHER.verify(account.password_hash if account else _DUMMY, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return account


def write_account(path: Path, name: str, role: str, password: str, replay: list[str] | None = None) -> None:
    """Create or replace one account; the file is (re)written 0600 through a temporary file."""
    current = _load(path).accounts if path.exists() else []
    account = Account.model_validate(
        {"name": name, "role": role, "password_hash": hash_password(password), "replay": replay or []}
    )
    kept = [a for a in current if a.name != name] + [account]
    text = yaml.safe_dump(
        {"accounts": [a.model_dump() for a in kept]}, sort_keys=False, allow_unicode=True, width=200
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    tmp.replace(path)
