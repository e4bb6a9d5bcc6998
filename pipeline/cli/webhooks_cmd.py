"""`mailpipe webhooks pending`: SNS subscriptions waiting to be confirmed by hand."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated

import typer

from pipeline.cli.core import ConfigOption, load_or_exit

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Provider webhooks: SNS subscriptions to confirm.")


@app.command("pending")
def pending(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """SNS SubscribeURLs received with confirm_subscriptions = false: open one to confirm the subscription."""
    import redis

    from pipeline.http.subscriptions import PendingSubscriptions

    loaded = load_or_exit(config)
    rows = PendingSubscriptions(redis.Redis.from_url(loaded.redis_url)).list(time.time())
    for row in rows:
        at = datetime.fromtimestamp(row.received_at, UTC).isoformat(timespec="seconds")
        if as_json:
            typer.echo(json.dumps({"subscribe_url": row.url, "received_at": at}))
        else:
            typer.echo(f"{at}  {row.url}")  # plain: a URL must come out whole, never wrapped or marked up
    if not rows and not as_json:
        typer.echo("no SNS subscription is waiting for confirmation")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="webhooks", help="Provider webhooks: SNS subscriptions waiting to be confirmed.")
