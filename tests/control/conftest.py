"""Fixtures for the control-plane tests.

Until tests/conftest.py registers ``pg_fixture`` as a plugin, its fixtures are imported here.
"""

from __future__ import annotations

from pg_fixture import _pg_template, pg_cluster, pg_empty_url, pg_engine, pg_url  # noqa: F401
