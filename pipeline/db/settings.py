"""``[database]``: where the system of record lives (``MAILPIPE_DATABASE_URL`` overrides it)."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, SecretStr

DATABASE_URL_ENV = "MAILPIPE_DATABASE_URL"


class DatabaseConfig(BaseModel):
    """The URL may carry a password: it is kept as a secret and never shown."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr | None = None
    pool_size: int = Field(default=5, ge=1, le=100)
    statement_timeout_ms: int = Field(default=15_000, ge=100, le=3_600_000)

    def resolved_url(self) -> str | None:
        from_env = os.environ.get(DATABASE_URL_ENV)
        if from_env:
            return from_env
        return self.url.get_secret_value() if self.url is not None else None
