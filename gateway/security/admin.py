"""The broker side of the trust boundary (edge): read and change ACLs and SCRAM credentials with
the admin principal. The plans come from gateway/security/acl.py (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.errors import ConfigError, RetriableError
from gateway.security.acl import Acl, AclDiff

__all__ = ["AdminSession"]

SCRAM_MECHANISM = "SCRAM-SHA-512"


class AdminSession:
    """A kafka-python admin client used as a context manager."""

    def __init__(self, client: Mapping[str, Any]) -> None:
        self._kwargs = dict(client)
        self.client: Any = None

    def __enter__(self) -> AdminSession:
        from kafka import KafkaAdminClient  # noqa: PLC0415 - heavy import, only at the edge

        from gateway.security.preflight import preflight  # noqa: PLC0415

        preflight(self._kwargs)
        self.client = KafkaAdminClient(**self._kwargs, client_id="gp-gateway-security")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()

    # -- ACLs ----------------------------------------------------------------------------------
    def acls(self) -> list[Acl]:
        """Every ALLOW/DENY ACL the broker holds (callers keep only their resources)."""
        from kafka.admin import (  # noqa: PLC0415
            ACLFilter,
            ACLOperation,
            ACLPermissionType,
            ACLResourcePatternType,
            ResourcePatternFilter,
            ResourceType,
        )
        from kafka.errors import KafkaError, NoError  # noqa: PLC0415

        flt = ACLFilter(
            principal=None,
            host=None,
            operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
        )
        try:
            found, error = self.client.describe_acls(flt)
        except KafkaError as exc:
            raise _admin_error("describe ACLs", exc) from exc
        if error not in (None, NoError):
            raise ConfigError(f"the broker refused to describe ACLs: {getattr(error, '__name__', error)}")
        return [
            Acl(
                resource_type=a.resource_pattern.resource_type.name,
                pattern=a.resource_pattern.pattern_type.name,
                name=a.resource_pattern.resource_name,
                principal=a.principal,
                operation=a.operation.name,
                permission=a.permission_type.name,
                host=a.host,
            )
            for a in found
        ]

    def apply(self, change: AclDiff) -> None:
        """Create the missing ACLs, delete the extra ones (exact filters: nothing else is touched)."""
        from kafka.errors import KafkaError  # noqa: PLC0415

        try:
            if change.missing:
                result = self.client.create_acls([_to_kafka(a) for a in change.missing])
                if result["failed"]:
                    names = sorted(
                        {
                            type(e).__name__ if not isinstance(e, type) else e.__name__
                            for e in result["failed"]
                        }
                    )
                    raise ConfigError(
                        f"the broker refused {len(result['failed'])} ACL(s): {', '.join(names)}"
                    )
            if change.extra:
                self.client.delete_acls([_to_kafka(a) for a in change.extra])
        except KafkaError as exc:
            raise _admin_error("change ACLs", exc) from exc

    # -- SCRAM credentials -----------------------------------------------------------------------
    def scram_users(self, users: Iterable[str] | None = None) -> set[str]:
        """Users that hold a SCRAM-SHA-512 credential (among `users`, or all)."""
        from kafka.errors import KafkaError  # noqa: PLC0415

        try:
            found = self.client.describe_user_scram_credentials(list(users) if users is not None else None)
        except KafkaError as exc:
            if type(exc).__name__ == "ResourceNotFoundError":
                return set()
            raise _admin_error("describe SCRAM credentials", exc) from exc
        return {
            user
            for user, info in found.items()
            if not info["error"]
            and any(c["mechanism"].name == "SCRAM_SHA_512" for c in info["credential_infos"])
        }

    def set_password(self, user: str, password: str) -> None:
        """Create or replace `user`'s SCRAM-SHA-512 credential (the old password stops working)."""
        from kafka.admin import UserScramCredentialUpsertion  # noqa: PLC0415
        from kafka.errors import KafkaError  # noqa: PLC0415

        try:
            result = self.client.alter_user_scram_credentials(
                [UserScramCredentialUpsertion(user, SCRAM_MECHANISM, password)]
            )
        except KafkaError as exc:
            raise _admin_error(f"set the credential of principal {user!r}", exc) from exc
        if result.get(user):
            raise ConfigError(f"the broker refused the credential of principal {user!r}: {result[user]}")

    def revoke(self, user: str) -> None:
        """Delete `user`'s SCRAM-SHA-512 credential: it can no longer authenticate."""
        from kafka.admin import UserScramCredentialDeletion  # noqa: PLC0415
        from kafka.errors import KafkaError  # noqa: PLC0415

        try:
            result = self.client.alter_user_scram_credentials(
                [UserScramCredentialDeletion(user, SCRAM_MECHANISM)]
            )
        except KafkaError as exc:
            raise _admin_error(f"revoke the credential of principal {user!r}", exc) from exc
        err = result.get(user)
        if err and "not found" not in err.lower() and "does not exist" not in err.lower():
            raise ConfigError(f"the broker refused to revoke principal {user!r}: {err}")


def _to_kafka(a: Acl) -> Any:
    from kafka.admin import (  # noqa: PLC0415
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    return ACL(
        principal=a.principal,
        host=a.host,
        operation=ACLOperation[a.operation],
        permission_type=ACLPermissionType[a.permission],
        resource_pattern=ResourcePattern(
            ResourceType[a.resource_type], a.name, ACLResourcePatternType[a.pattern]
        ),
    )


def _admin_error(what: str, exc: Exception) -> Exception:
    name = type(exc).__name__
    if "Authorization" in name or "SecurityDisabled" in name:
        return ConfigError(
            f"cannot {what}: the principal of these settings is not allowed ({name}); the admin"
            " principal must be a super user of the broker"
        )
    return RetriableError(f"cannot {what}: {name}")
