"""Credentials at rest: envelope encryption, no plaintext in a dump, rows bound to their ciphertext, rotation."""

from __future__ import annotations

import logging
import subprocess

import pytest
from control_kit import MASTER, Api, account_body
from sqlalchemy import text

from pipeline.control import accounts, tenants
from pipeline.control.context import ControlContext
from pipeline.control.crypto import DecryptionError, Keyring, MasterKey
from pipeline.control.rotation import rotate_data_keys
from pipeline.control.schemas import AccountIn
from pipeline.control.scope import Principal, resolve_scope
from pipeline.db.localpg import find_binary

SECRET = "SG.very-secret-password-do-not-leak-7f3a9c"
IMAP_SECRET = "imap-secret-password-also-hidden-19d2"
ADMIN = Principal(actor="admin:test", admin=True)


def _secret_blob(control: ControlContext, tenant: str, name: str) -> bytes:
    with control.engine.connect() as connection:
        return bytes(
            connection.execute(
                text("SELECT secret FROM smtp_accounts a JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = :t AND a.name = :n"),
                {"t": tenant, "n": name},
            ).scalar_one()
        )


def test_pg_dump_of_the_whole_database_holds_no_plaintext_secret(api: Api, control: ControlContext, pg_url: str) -> None:
    api.tenant("acme")
    imap = {"host": "imap.gmail.com", "username": "sales@acme.example", "password": IMAP_SECRET}
    created = api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("sg", password=SECRET, imap=imap))
    assert created.status_code == 201, created.text
    key = api.key("acme")
    dump = subprocess.run([find_binary("pg_dump"), "--data-only", "--inserts", pg_url], capture_output=True, check=True).stdout
    assert b"smtp_accounts" in dump and b"sg@acme.example" in dump  # the dump has the rows ...
    for secret in (SECRET, IMAP_SECRET, key, MASTER.material.hex()):
        assert secret.encode() not in dump  # ... and none of the secrets
    assert SECRET.encode().hex().encode() not in dump


def test_a_ciphertext_copied_to_another_row_does_not_decrypt(api: Api, control: ControlContext) -> None:
    api.tenant("acme")
    api.tenant("evil")
    api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("victim", password=SECRET))
    api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("other", password="other-pw-123"))
    api.call("POST", "/v1/tenants/evil/accounts?verify=false", json=account_body("thief", password="thief-pw-123"))
    stolen = _secret_blob(control, "acme", "victim")
    with control.engine.begin() as connection:
        for name in ("other", "thief"):
            connection.execute(text("UPDATE smtp_accounts SET secret = :s WHERE name = :n"), {"s": stolen, "n": name})
    for tenant, name in (("acme", "other"), ("evil", "thief")):
        with control.transaction() as session:
            scope = resolve_scope(session, ADMIN, tenant)
            key = tenants.data_key(control, session, scope)
        with pytest.raises(DecryptionError):
            key.open_secrets(name, stolen)


def test_rotation_rewraps_every_data_key_under_the_new_master_key(api: Api, make_control, control: ControlContext) -> None:  # type: ignore[no-untyped-def]
    api.tenant("acme")
    api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("sg", password=SECRET))
    new = MasterKey.from_bytes(b"n" * 32)
    rotated = make_control(keys=[new, MASTER])
    assert rotate_data_keys(rotated) == 1
    with control.engine.connect() as connection:
        assert connection.execute(text("SELECT master_key_id FROM tenant_data_keys")).scalar_one() == new.key_id
    only_new = make_control(keys=[new])  # the old master key can now be retired
    with only_new.transaction() as session:
        scope = resolve_scope(session, ADMIN, "acme")
        assert (
            tenants.data_key(only_new, session, scope).open_secrets("sg", _secret_blob(control, "acme", "sg"))["password"]
            == SECRET
        )
    assert rotate_data_keys(rotated) == 0


def test_deleting_a_tenant_destroys_its_data_key(api: Api, control: ControlContext) -> None:
    api.tenant("acme")
    api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("sg", password=SECRET))
    assert api.call("DELETE", "/v1/tenants/acme").status_code == 204
    with control.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM tenant_data_keys")).scalar_one() == 0
        assert connection.execute(text("SELECT count(*) FROM smtp_accounts")).scalar_one() == 0


def test_secrets_never_appear_in_repr_errors_logs_or_audit(
    api: Api, control: ControlContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.tenant("acme")
    data = AccountIn.model_validate(account_body("sg", password=SECRET))
    assert SECRET not in repr(data) and SECRET not in str(data.model_dump())
    with control.transaction() as session:
        scope = resolve_scope(session, ADMIN, "acme")
    out, _ = accounts.create_account(control, scope, data, verify=False)
    assert SECRET not in repr(out) and SECRET not in out.model_dump_json()
    bad = api.call(
        "POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("sg2", password=SECRET, from_email="not an address")
    )
    assert bad.status_code == 422 and SECRET not in bad.text
    dup = api.call("POST", "/v1/tenants/acme/accounts?verify=false", json=account_body("sg", password=SECRET))
    assert dup.status_code == 409 and SECRET not in dup.text
    api.call("PATCH", "/v1/tenants/acme/accounts/sg?verify=false", json={"password": SECRET + "-2"})
    assert SECRET not in api.call("GET", "/v1/tenants/acme/audit").text
    assert SECRET not in caplog.text
    assert SECRET not in repr(control) and "material" not in repr(Keyring([MASTER]))
