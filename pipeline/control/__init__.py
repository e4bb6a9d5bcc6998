"""The control plane's service layer: one set of functions behind the HTTP API and the CLI (ARCHITECTURE §10)."""
