"""The control plane's service layer: one set of functions behind the HTTP API and the CLI.

See docs/architecture.md, "Tenants and the control plane".
"""
