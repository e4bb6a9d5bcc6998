"""Signing certificates for SNS: fetched over https once and cached in memory, or read from a directory.

The SES plugin checks the URL (https, ``sns.<region>.amazonaws.com``, ``.pem``) before it asks;
``CertificateCache`` checks it again, follows no redirects and reads at most ``MAX_CERT_BYTES``.
A host without outbound internet sets ``[webhooks.ses] certificates_dir``: the certificate named
by the URL's last path segment (``SimpleNotificationService-<id>.pem``) is read from there.
Tests give the cache a ``fetch`` that returns a locally made certificate (no network).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from pipeline.feedback.webhooks import WebhookRejected

MAX_CERT_BYTES = 64_000
MAX_CACHED = 64
CERT_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.pem$")


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


class CertificateDirectory:
    """Certificates an operator downloaded beforehand: ``<directory>/<last segment of the URL>``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def __call__(self, url: str) -> bytes:
        name = urlsplit(url).path.rsplit("/", 1)[-1]
        if not CERT_FILE.match(name):
            raise WebhookRejected("certificate URL names no certificate file")
        path = self.directory / name
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_CERT_BYTES + 1)
        except FileNotFoundError:
            raise WebhookRejected(f"certificate {name} is not in [webhooks.ses] certificates_dir {self.directory}") from None
        except OSError as exc:
            raise WebhookRejected(f"certificate {name} unreadable in certificates_dir: {exc.strerror}") from None
        if len(data) > MAX_CERT_BYTES:
            raise WebhookRejected(f"certificate {name} too large")
        return data
