"""Postmark: server token as username and password, message stream and Metadata headers."""

from pipeline.plugin_host.provider import provider_plugin

from . import bounces, hints, presets, quirks, webhooks

plugin = provider_plugin(presets, bounces=bounces, hints=hints, quirks=quirks, webhooks=webhooks)
