"""Mailgun: US and EU hosts by region, X-Mailgun-Variables for webhook correlation."""

from pipeline.plugin_host.provider import provider_plugin

from . import bounces, hints, presets, quirks, webhooks

plugin = provider_plugin(presets, bounces=bounces, hints=hints, quirks=quirks, webhooks=webhooks)
