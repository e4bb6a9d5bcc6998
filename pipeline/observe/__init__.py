"""Observability: Prometheus metrics, structured logs, journey lines, redaction, the status snapshot."""
