"""Signing certificates for SNS, fetched over https once and cached in memory.

The SES plugin checks the URL (https, ``sns.<region>.amazonaws.com``, ``.pem``) before it asks;
this source checks it again, follows no redirects and reads at most ``MAX_CERT_BYTES``.
Tests give it a ``fetch`` that returns a locally made certificate (no network).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from pipeline.feedback.webhooks import WebhookRejected

MAX_CERT_BYTES = 64_000
MAX_CACHED = 64


class CertificateCache:
    def __init__(self, timeout: float = 5.0, fetch: Callable[[str], bytes] | None = None) -> None:
        self.timeout = timeout
        self.fetch = fetch or self._fetch
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str) -> bytes:
        with self._lock:
            if url in self._cache:
                return self._cache[url]
        pem = self.fetch(url)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.pop(next(iter(self._cache)))
            self._cache[url] = pem
        return pem

    def _fetch(self, url: str) -> bytes:
        host = urlsplit(url).hostname or ""
        if urlsplit(url).scheme != "https" or not host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
            raise WebhookRejected("certificate URL refused")
        try:
            with httpx.stream("GET", url, timeout=self.timeout, follow_redirects=False) as response:
                if response.status_code != 200:
                    raise WebhookRejected(f"certificate fetch answered {response.status_code}")
                data = b""
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_CERT_BYTES:
                        raise WebhookRejected("certificate too large")
        except httpx.HTTPError as exc:
            raise WebhookRejected(f"certificate fetch failed: {type(exc).__name__}") from None
        return data
