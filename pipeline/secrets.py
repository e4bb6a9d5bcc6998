"""Secrets by reference (env:NAME, file:PATH): resolved late, never shown in repr or errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import GetCoreSchemaHandler, SecretStr
from pydantic_core import core_schema

from pipeline.errors import SecretError
from pipeline.observe.redact import remember


class SecretRef:
    """A reference to a secret; a literal value is accepted but kept hidden too."""

    __slots__ = ("_ref",)

    def __init__(self, ref: str) -> None:
        self._ref = ref

    @property
    def kind(self) -> str:
        if self._ref.startswith("env:"):
            return "env"
        if self._ref.startswith("file:"):
            return "file"
        return "literal"

    @property
    def source(self) -> str:
        """Where the secret comes from, safe to show (never the value)."""
        if self.kind == "literal":
            return "literal value (prefer env:NAME or file:PATH)"
        return self._ref

    def check(self) -> str | None:
        try:
            self.resolve()
        except SecretError as exc:
            return str(exc)
        return None

    def resolve(self) -> SecretStr:
        secret = self._lookup()
        remember(secret.get_secret_value())  # from now on no log line of this process shows it
        return secret

    def _lookup(self) -> SecretStr:
        if self.kind == "env":
            name = self._ref[4:]
            value = os.environ.get(name)
            if value is None:
                raise SecretError(f"secret env:{name} is not set in the environment")
            return SecretStr(value)
        if self.kind == "file":
            path = Path(self._ref[5:]).expanduser()
            try:
                return SecretStr(path.read_text(encoding="utf-8").strip())
            except OSError as exc:
                raise SecretError(f"secret file:{path} cannot be read ({exc.strerror})") from None
        return SecretStr(self._ref)

    def __repr__(self) -> str:
        return f"SecretRef({self.source if self.kind != 'literal' else '**********'})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretRef) and other._ref == self._ref

    def __hash__(self) -> int:
        return hash(self._ref)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls._validate,
            core_schema.union_schema([core_schema.is_instance_schema(cls), core_schema.str_schema(min_length=1)]),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda v: v.source),
        )

    @classmethod
    def _validate(cls, value: SecretRef | str) -> SecretRef:
        return value if isinstance(value, SecretRef) else cls(value)
