"""The one plugin manager: built-ins from plugins/, then entry points, then drop-ins."""

from __future__ import annotations

import functools
import importlib

import pluggy

from . import hookspecs
from .providers import ProviderPreset

BUILTIN_PLUGINS = ("plugins.smtp", "pipeline.fallbacks")


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    pm.load_setuptools_entrypoints(hookspecs.PROJECT + ".plugins")
    pm.check_pending()
    return pm


def presets(pm: pluggy.PluginManager | None = None) -> dict[str, ProviderPreset]:
    pm = pm or get_plugin_manager()
    merged: dict[str, ProviderPreset] = {}
    for batch in reversed(pm.hook.mailpipe_provider_presets()):
        for preset in batch:
            merged[preset.name] = preset
    return merged
