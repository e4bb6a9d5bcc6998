"""The `mailpipe` command: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from pipeline.cli import accounts, bounce, control_cmds, core, database, inbox, plugins_cmd, serve, webhooks_cmd
from pipeline.cli import archive as archive_cmd
from pipeline.cli import events as events_cmd
from pipeline.cli import status as status_cmd
from pipeline.cli import suppression as suppression_cmd

app = typer.Typer(no_args_is_help=True, add_completion=False, help="mailpipe: lead email through your own SMTP accounts.")
core.register(app)
status_cmd.register(app)
serve.register(app)
app.add_typer(bounce.app, name="bounce", help="Parse and classify bounce mails.")
app.add_typer(
    accounts.app,
    name="accounts",
    help="Sending accounts. Without --tenant: the accounts declared in the config file (list, status, verify, "
    "pause, resume). With --tenant T: tenant T's accounts in the database (add, edit, remove, activate, verify, "
    "pause, resume; needs a database).",
)
plugins_cmd.register(app)
app.add_typer(inbox.app, name="inbox", help="Replies, auto-replies, bounces and complaints from IMAP.")
app.add_typer(database.app, name="db", help="The PostgreSQL schema: upgrade, downgrade, current.")
control_cmds.register(app)
webhooks_cmd.register(app)
archive_cmd.register(app)
events_cmd.register(app)
suppression_cmd.register(app)


def main() -> None:
    app()
