"""The generic SMTP provider: any server, nothing assumed but the submission port."""

from __future__ import annotations

from pipeline.hookspecs import hookimpl
from pipeline.providers import ProviderPreset

from .presets import PRESETS


@hookimpl
def mailpipe_provider_presets() -> list[ProviderPreset]:
    return list(PRESETS)
