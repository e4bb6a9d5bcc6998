"""A local stand-in for Google's or Microsoft's OAuth server (the real ones cannot be reached from tests).

Authorization endpoint (consents at once and redirects with a code, PKCE S256 recorded), token endpoint
(authorization_code with the PKCE check, refresh_token, ``invalid_grant`` for revoked grants, 503 while
"down", a delay while "slow"; with ``rotate`` every refresh hands out a new refresh token and refuses the old one
from then on, as Microsoft does), and an RFC 7662 introspection endpoint the SMTP and IMAP servers ask.
Access tokens live ``lifetime`` seconds. Every refresh is counted: the tests assert on that count.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from pipeline.smtp.netutil import free_port

CLIENT_ID = "mailpipe-test-client"
CLIENT_SECRET = "client-secret-for-tests"


@dataclass
class _Code:
    user: str
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str


class FakeProvider:
    def __init__(self, lifetime: float = 3600.0) -> None:
        self.lifetime = lifetime
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.refresh_tokens: dict[str, str] = {}  # refresh token → user
        self.access_tokens: dict[str, tuple[str, float]] = {}  # access token → (user, expires at)
        self.codes: dict[str, _Code] = {}
        self.revoked: set[str] = set()
        self.refreshes = 0
        self.exchanges = 0
        self.down = False
        self.rotate = False
        self.rotations = 0
        self.refused_refresh_tokens: list[str] = []  # refresh tokens answered with invalid_grant
        self.delay = 0.0
        self.consent_user = "owner@mailbox.example"
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        # shutdown() waits for the loop's next poll: 0.05 s, not the default 0.5 s, at the end of every test
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/authorize"

    @property
    def introspect_url(self) -> str:
        return f"{self.url}/introspect"

    def start(self) -> FakeProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def grant(self, user: str) -> str:
        """A refresh token for ``user``, as if they had consented earlier."""
        token = "rt-" + secrets.token_urlsafe(24)
        self.refresh_tokens[token] = user
        return token

    def revoke(self, refresh_token: str) -> None:
        self.revoked.add(refresh_token)

    def expire_all(self) -> None:
        with self._lock:
            self.access_tokens = {t: (u, 0.0) for t, (u, _) in self.access_tokens.items()}

    def user_of(self, access_token: str) -> str | None:
        with self._lock:
            user, expires = self.access_tokens.get(access_token, ("", 0.0))
        return user if user and expires > time.time() else None

    def _issue(self, user: str) -> dict[str, object]:
        token = "at-" + secrets.token_urlsafe(24)
        with self._lock:
            self.access_tokens[token] = (user, time.time() + self.lifetime)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if self.delay:
            time.sleep(self.delay)
        if self.down:
            return 503, {}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") == "refresh_token":
            with self._lock:
                self.refreshes += 1
            refresh = form.get("refresh_token", "")
            user = self.refresh_tokens.get(refresh)
            if user is None or refresh in self.revoked:
                self.refused_refresh_tokens.append(refresh)
                return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            body = self._issue(user)
            if self.rotate:
                with self._lock:
                    if self.refresh_tokens.pop(refresh, None) is None:  # a concurrent refresh rotated it first
                        return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                    self.rotations += 1
                body["refresh_token"] = self.grant(user)
            return 200, body
        if form.get("grant_type") == "authorization_code":
            self.exchanges += 1
            code = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if code is None or code.redirect_uri != form.get("redirect_uri") or code.challenge != digest:
                return 400, {"error": "invalid_grant", "error_description": "bad code, redirect_uri or code_verifier"}
            body = self._issue(code.user)
            body["refresh_token"] = self.grant(code.user)
            body["scope"] = code.scope
            return 200, body
        return 400, {"error": "unsupported_grant_type"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _json(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode() if body else b"<html>Service Unavailable</html>"
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if body else "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError):  # the client gave up waiting ("slow endpoint")
                    self.wfile.write(data)

            def _form(self) -> dict[str, str]:
                length = int(self.headers.get("Content-Length") or 0)
                return {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/authorize":
                    self._json(404, {"error": "not_found"})
                    return
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
                    self._json(400, {"error": "invalid_request", "error_description": "PKCE S256 required"})
                    return
                code = secrets.token_urlsafe(16)
                provider.codes[code] = _Code(
                    provider.consent_user,
                    query["client_id"],
                    query["redirect_uri"],
                    query["code_challenge"],
                    query.get("scope", ""),
                )
                self.send_response(302)
                self.send_header("Location", f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                form = self._form()
                if self.path == "/token":
                    self._json(*provider._token(form))
                elif self.path == "/introspect":
                    user = provider.user_of(form.get("token", ""))
                    body: dict[str, object] = {"active": True, "username": user} if user else {"active": False}
                    self._json(200, body)
                else:
                    self._json(404, {"error": "not_found"})

        return Handler
