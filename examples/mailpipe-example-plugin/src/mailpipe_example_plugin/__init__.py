"""An example third-party mailpipe plugin: a provider described by its tables.

It adds one provider preset ("acme-relay", a made-up relay), one rule for that provider's replies
(``452 4.5.3 ACME quota exhausted`` means the *account* ran out of its daily quota, not that the
recipient has a problem) and one troubleshooting hint. Each lives in the module named for it;
``provider_plugin`` turns them into hooks that answer only for ``acme-relay`` accounts.

Installed, it is found through its entry point (group ``mailpipe.plugins``); nothing in mailpipe
names it.
"""

from pipeline.plugin_host.provider import provider_plugin

from . import bounces, hints, presets

plugin = provider_plugin(presets, bounces=bounces, hints=hints)
