"""`mailpipe serve`: one ASGI app for ingest, provider webhooks, unsubscribe, clicks, health and metrics.

Import the app factory from ``pipeline.http.app``; this package's ``settings`` module is light
(pydantic only) so the config loader can import it without pulling in the web stack.
"""
