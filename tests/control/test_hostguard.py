"""No SSRF through tenant input: private targets and non-mail ports refused at save, at verify and at connect."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from control_kit import Api, account_body, app_for
from fastapi.testclient import TestClient

from pipeline.control.context import ControlContext
from pipeline.control.hostguard import HostPolicy, HostRefused

REFUSED_ADDRESSES = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.1",
    "192.168.1.10",
    "169.254.169.254",
    "0.0.0.0",
    "100.64.0.1",
    "224.0.0.1",
    "::1",
    "::",
    "fc00::1",
    "fd00:ec2::254",
    "fe80::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",
    "2002:7f00:1::1",
]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_a_private_or_special_address_is_refused(address: str) -> None:
    with pytest.raises(HostRefused) as refused:
        HostPolicy().check_host(address, 587)
    assert refused.value.field == "host"


@pytest.mark.parametrize("address", ["8.8.8.8", "2607:f8b0:4004:c1b::6c"])
def test_a_public_address_passes(address: str) -> None:
    assert HostPolicy().check_host(address, 587)


def test_a_name_resolving_to_loopback_is_refused_and_so_is_one_with_any_private_address() -> None:
    with pytest.raises(HostRefused):
        HostPolicy().check_host("localhost", 587)
    with pytest.raises(HostRefused):
        HostPolicy().check_host("smtp.evil.example", 587, resolve=lambda host, port: ["8.8.8.8", "10.0.0.7"])


@pytest.mark.parametrize("port", [22, 80, 443, 6379, 5432, 8080, 11211, 1])
def test_ports_outside_the_mail_ports_are_refused(port: int) -> None:
    with pytest.raises(HostRefused) as refused:
        HostPolicy().check_host("8.8.8.8", port)
    assert refused.value.field == "port"
    with pytest.raises(HostRefused):
        HostPolicy().check_host("8.8.8.8", 465, kind="imap", field_name="imap.host")


def test_allow_hosts_relaxes_only_the_address_rule_and_allow_ports_only_the_port_rule() -> None:
    hosts_only = HostPolicy.from_lists(["127.0.0.1/32"], [])
    hosts_only.check_host("127.0.0.1", 587)
    with pytest.raises(HostRefused, match="port"):
        hosts_only.check_host("127.0.0.1", 6379)
    with pytest.raises(HostRefused, match="loopback"):
        hosts_only.check_host("127.0.0.2", 587)
    ports_only = HostPolicy.from_lists([], [2626])
    ports_only.check_host("8.8.8.8", 2626)
    with pytest.raises(HostRefused, match="loopback"):
        ports_only.check_host("127.0.0.1", 2626)


def test_the_api_refuses_a_private_host_at_save_with_a_problem_naming_the_field(api: Api) -> None:
    api.tenant("acme")
    for host, port, field in (
        ("169.254.169.254", 587, "host"),
        ("10.1.2.3", 25, "host"),
        ("localhost", 587, "host"),
        ("[::1]", 587, "host"),
        ("8.8.8.8", 6379, "port"),
    ):
        response = api.call(
            "POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("a", provider="smtp", host=host, port=port)
        )
        assert response.status_code == 422, (host, response.text)
        assert response.json()["field"] == field
    imap = api.call(
        "POST",
        "/v1/tenants/acme/accounts?verify=false",
        json=account_body("a", imap={"host": "127.0.0.1", "username": "u", "password": "p"}),
    )
    assert imap.status_code == 422 and imap.json()["field"] == "imap.host"
    assert api.call("GET", "/v1/tenants/acme/accounts").json()["accounts"] == []


def test_a_name_that_turns_private_after_saving_is_refused_at_connect_time(
    make_control: Callable[..., ControlContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    control = make_control()
    with TestClient(app_for(control)) as client:
        api = Api(client)
        api.tenant("acme")
        saved = api.call(
            "POST",
            "/v1/tenants/acme/accounts?verify=false",
            json=account_body("a", provider="smtp", host="smtp.rebind.example", port=587),
        )
        assert saved.status_code == 201, saved.text  # the name did not resolve when saved
        import socket

        real = socket.getaddrinfo

        def rebound(host: str, *args: object, **kwargs: object) -> object:
            if host == "smtp.rebind.example":
                return real("127.0.0.1", *args, **kwargs)  # type: ignore[arg-type]
            return real(host, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(socket, "getaddrinfo", rebound)
        verify = api.call("POST", "/v1/tenants/acme/accounts/a/verify")
        assert verify.status_code == 422 and verify.json()["field"] == "host"
