"""What every control-plane operation needs, built once per process (HTTP app or CLI command)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import pluggy
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pipeline.control.crypto import Keyring
from pipeline.control.hostguard import HostPolicy
from pipeline.control.scope import Principal
from pipeline.control.verify_service import Verifier
from pipeline.db.engine import SessionFactory, session_factory
from pipeline.plugin_host.manager import presets, provider_family
from pipeline.plugin_host.presets import ProviderPreset


@dataclass
class ControlContext:
    engine: Engine
    keyring: Keyring
    verifier: Verifier
    admin_tokens: Sequence[SecretStr] = ()
    sessions: SessionFactory = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = session_factory(self.engine)

    @property
    def hosts(self) -> HostPolicy:
        return self.verifier.hosts

    @property
    def pm(self) -> pluggy.PluginManager:
        return self.verifier.pm

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.sessions() as session, session.begin():
            yield session

    def provider(self, name: str) -> ProviderPreset | None:
        """The preset of a known provider; None for an unknown one."""
        known = presets(self.pm)
        return known.get(name) or known.get(provider_family(name))

    def admin_for(self, presented: str) -> Principal | None:
        """Constant time per configured token; every token is compared."""
        given = presented.encode()
        found: SecretStr | None = None
        for token in self.admin_tokens:
            if hmac.compare_digest(given, token.get_secret_value().encode()):
                found = token
        if found is None:
            return None
        fingerprint = hashlib.sha256(found.get_secret_value().encode()).hexdigest()[:10]
        return Principal(actor=f"admin:{fingerprint}", admin=True)

    def __repr__(self) -> str:
        return f"ControlContext(admin_tokens={len(self.admin_tokens)}, keyring={self.keyring!r})"
