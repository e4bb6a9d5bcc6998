"""mailpipe: sends lead and campaign email through the customer's own SMTP accounts.

`from pipeline import Client` is the Python client for upstream code (see `pipeline.client`). It is
imported on first use, so `import pipeline` alone stays cheap and has no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.client import Client

__all__ = ["Client"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from pipeline.client import Client

        return Client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
