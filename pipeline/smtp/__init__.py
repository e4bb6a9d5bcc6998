"""Talking SMTP: the connection pool, the MIME builder, connection verification, the demo's local server."""
