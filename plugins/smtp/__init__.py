"""The generic SMTP provider: any server, nothing assumed but the submission port."""

from pipeline.plugin_host.provider import provider_plugin

from . import hints, presets, quirks

plugin = provider_plugin(presets, hints=hints, quirks=quirks)
