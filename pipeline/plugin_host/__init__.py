"""The plugin host: hook specifications, the plugin manager, provider presets, hints, core fallbacks."""
