"""Verify-on-save against the real aiosmtpd server (STARTTLS + AUTH): good accounts save, bad ones save nothing."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from control_kit import Api, app_for
from fastapi.testclient import TestClient

from pipeline.control.context import ControlContext
from pipeline.control.hostguard import HostPolicy
from pipeline.smtp.devsmtp import DevSMTPServer

USER, PASSWORD = "alpha", "alpha-secret-pw-1"


@pytest.fixture
def local_api(make_control: Callable[..., ControlContext], smtp_server: DevSMTPServer) -> Iterator[Api]:
    """The deployment allows the local test server: 127.0.0.1 and its ports, each rule relaxed alone."""
    hosts = HostPolicy.from_lists(["127.0.0.1/32"], smtp_server.ports.values())
    with TestClient(app_for(make_control(hosts=hosts, per_minute=5))) as client:
        api = Api(client)
        api.tenant("acme")
        yield api


def body(server: DevSMTPServer, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "relay",
        "provider": "smtp",
        "host": "127.0.0.1",
        "port": server.ports["starttls"],
        "security": "starttls",
        "username": USER,
        "password": PASSWORD,
        "from_email": "alpha@sender.example",
    }
    out.update(fields)
    return out


def test_a_good_account_is_verified_step_by_step_then_saved(local_api: Api, smtp_server: DevSMTPServer) -> None:
    response = local_api.call("POST", "/v1/tenants/acme/accounts", json=body(smtp_server))
    assert response.status_code == 201, response.text
    steps = [(s["step"], s["ok"]) for s in response.json()["verification"]["steps"]]
    assert steps == [
        ("dns", True),
        ("tcp", True),
        ("banner", True),
        ("ehlo", True),
        ("starttls", True),
        ("ehlo", True),
        ("auth", True),
    ]
    assert response.json()["verified_at"] is not None
    again = local_api.call("POST", "/v1/tenants/acme/accounts/relay/verify", json={"send_test_to": "lead@example.com"})
    assert again.status_code == 200 and again.json()["ok"] is True
    assert smtp_server.wait_for(1)


def test_a_wrong_password_saves_nothing_and_answers_422_with_the_steps(local_api: Api, smtp_server: DevSMTPServer) -> None:
    response = local_api.call("POST", "/v1/tenants/acme/accounts", json=body(smtp_server, password="wrong-password"))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["verification"]["steps"][-1]["step"] == "auth" and problem["verification"]["steps"][-1]["ok"] is False
    assert "wrong-password" not in response.text
    assert local_api.call("GET", "/v1/tenants/acme/accounts").json()["accounts"] == []


def test_a_password_that_looks_like_a_secret_reference_is_sent_as_it_is(local_api: Api, smtp_server: DevSMTPServer) -> None:
    response = local_api.call("POST", "/v1/tenants/acme/accounts", json=body(smtp_server, password="file:/etc/hostname"))
    assert response.status_code == 422  # AUTH failed with the literal text: the file was never read
    with open("/etc/hostname") as hostname:
        assert hostname.read().strip() not in response.text


def test_verify_false_skips_the_check(local_api: Api, smtp_server: DevSMTPServer) -> None:
    response = local_api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=body(smtp_server, password="wrong"))
    assert response.status_code == 201 and response.json()["verification"] is None


def test_verify_is_rate_limited_per_tenant(local_api: Api, smtp_server: DevSMTPServer) -> None:
    local_api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=body(smtp_server))
    codes = [local_api.call("POST", "/v1/tenants/acme/accounts/relay/verify").status_code for _ in range(6)]
    assert codes[:5] == [200] * 5 and codes[5] == 429


def test_an_address_that_changes_to_a_refused_one_is_refused_as_the_check_connects(
    make_control: Callable[..., ControlContext], smtp_server: DevSMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = HostPolicy.from_lists([], smtp_server.ports.values())  # only ports relaxed: loopback stays refused
    with TestClient(app_for(make_control(hosts=hosts))) as client:
        api = Api(client)
        api.tenant("acme")
        real = socket.getaddrinfo
        public = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", 0))]
        answers = iter([public, public])  # checked at save, checked again before verifying

        def rebinding(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host == "smtp.rebind.example":
                first = next(answers, None)  # public when checked, loopback when connected to
                return first if first is not None else real("127.0.0.1", port, *args, **kwargs)
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", rebinding)
        response = api.call("POST", "/v1/tenants/acme/accounts", json=body(smtp_server, host="smtp.rebind.example"))
        assert response.status_code == 422, response.text
        tcp = next(s for s in response.json()["verification"]["steps"] if s["step"] == "tcp")
        assert tcp["ok"] is False and "loopback" in tcp["detail"]
