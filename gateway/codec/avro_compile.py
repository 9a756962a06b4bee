"""What the compiled Avro reader (avro_read) and writer (avro_write) share: the primitive type
names and the compiler's bookkeeping (fresh identifiers, constants passed to the generated code,
named types resolved by full name)."""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["PRIMITIVES", "CompilerBase"]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


class CompilerBase:
    """Identifiers, constants and generated functions of one schema's compilation."""

    # raised for a named type the schema does not define (each compiler's own Unsupported)
    unsupported: ClassVar[type[Exception]] = Exception

    def __init__(self, named: dict[str, Any], consts: dict[str, Any] | None = None) -> None:
        self.named = named
        self.consts: dict[str, Any] = dict(consts or {})
        self.record_fns: dict[str, str] = {}
        self.sources: list[str] = []
        self.serial = 0

    def fresh(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def const(self, value: Any) -> str:
        name = self.fresh("_k")
        self.consts[name] = value
        return name

    def resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            if schema not in self.named:
                raise self.unsupported(f"unknown named type {schema}")
            return self.named[schema]
        return schema
