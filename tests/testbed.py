"""Shared test data: the SMTP fixture's users and account TOML for them."""

from __future__ import annotations

SMTP_USERS = {"alpha": "alpha-secret-pw-1", "beta": "beta-secret-pw-2", "gamma": "gamma-secret-pw-3"}


def account_toml(
    name: str,
    port: int,
    ca_file: str,
    *,
    security: str = "starttls",
    from_email: str | None = None,
    extra: str = "",
    per_second: float = 500,
) -> str:
    return f"""
[[accounts]]
name = "{name}"
host = "127.0.0.1"
port = {port}
security = "{security}"
username = "{name}"
password = "env:TEST_PW_{name.upper()}"
from_email = "{from_email or f"{name}@sender.example"}"
from_name = "{name.title()} Sender"
reply_to = "replies-{name}@sender.example"
ca_file = "{ca_file}"
local_hostname = "test.localhost"
timeout = 5
limits = {{ per_second = {per_second} }}
{extra}
"""


def database_deployment_toml(
    redis_url: str, pg_url: str, ca_file: str, smtp_ports: list[int], master_env: str, admin_env: str, extra: str = ""
) -> str:
    """A deployment with a database: tenants' accounts live in PostgreSQL, the local SMTP servers allowed."""
    return f"""
[broker]
url = "{redis_url}"
heartbeat_timeout_ms = 5000

[database]
url = "{pg_url}"

[secrets]
master_keys = ["env:{master_env}"]

[serve]
admin_tokens = ["env:{admin_env}"]
allow_hosts = ["127.0.0.1/32"]
allow_ports = {sorted(smtp_ports)}
trusted_ca_file = "{ca_file}"

[retry]
base_delay = 0.3
max_delay = 2
max_attempts = 4

[tenants]
no_account_wait = 2
{extra}
"""
