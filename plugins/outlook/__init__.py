"""Microsoft 365: smtp.office365.com with SMTP AUTH enabled per mailbox, 30 messages a minute."""

from pipeline.plugin_host.provider import provider_plugin

from . import bounces, hints, presets, quirks

plugin = provider_plugin(presets, bounces=bounces, hints=hints, quirks=quirks)
