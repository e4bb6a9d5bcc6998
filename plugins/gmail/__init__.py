"""Gmail: smtp.gmail.com with an App Password; From is the login or a verified alias."""

from pipeline.plugin_host.provider import provider_plugin

from . import bounces, hints, presets, quirks

plugin = provider_plugin(presets, bounces=bounces, hints=hints, quirks=quirks)
