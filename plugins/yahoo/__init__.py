"""Yahoo Mail: smtp.mail.yahoo.com on 465 (implicit TLS) with an app password."""

from pipeline.plugin_host.provider import provider_plugin

from . import bounces, hints, presets, quirks

plugin = provider_plugin(presets, bounces=bounces, hints=hints, quirks=quirks)
