"""The scopes a tenant API key can carry: plain names, importable without the control plane's database layer."""

from __future__ import annotations

EVENTS_WRITE = "events:write"
EVENTS_READ = "events:read"
ACCOUNTS_MANAGE = "accounts:manage"
ALL_SCOPES = (EVENTS_WRITE, EVENTS_READ, ACCOUNTS_MANAGE)
