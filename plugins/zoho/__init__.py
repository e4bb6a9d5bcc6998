"""Zoho Mail: SMTP host per data centre (region), From is the mailbox or an alias."""

from pipeline.plugin_host.provider import provider_plugin

from . import bounces, hints, presets, quirks

plugin = provider_plugin(presets, bounces=bounces, hints=hints, quirks=quirks)
