"""``/v1/tenants/{tenant}/accounts``: a tenant's SMTP accounts; secrets are write-only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from pipeline.control import accounts
from pipeline.control.schemas import AccountIn, AccountList, AccountOut, AccountPatch, VerifyIn, VerifyReport
from pipeline.http.control.auth import AccountName, Control, Scope
from pipeline.http.control.problems import ProblemRoute, responses

router = APIRouter(prefix="/v1/tenants/{tenant}/accounts", tags=["accounts"], route_class=ProblemRoute)
VerifyFlag = Annotated[bool, Query(description="check the connection before saving (a failure saves nothing: 422)")]


class AccountSaved(AccountOut):
    verification: VerifyReport | None = None


@router.post(
    "",
    summary="Add an account (verified before saving unless ?verify=false)",
    status_code=201,
    response_model=AccountSaved,
    responses=responses(401, 403, 404, 409, 413, 422, 429),
)
def create_account(ctx: Control, scope: Scope, body: AccountIn, verify: VerifyFlag = True) -> AccountSaved:
    out, report = accounts.create_account(ctx, scope, body, verify=verify)
    return AccountSaved(**out.model_dump(), verification=report)


@router.get("", summary="The tenant's accounts", response_model=AccountList, responses=responses(401, 403, 404))
def list_accounts(ctx: Control, scope: Scope) -> AccountList:
    return accounts.list_accounts(ctx, scope)


@router.get(
    "/{name}",
    summary="One account (password_set, never the password)",
    response_model=AccountOut,
    responses=responses(401, 403, 404),
)
def get_account(ctx: Control, scope: Scope, name: AccountName) -> AccountOut:
    return accounts.get_account(ctx, scope, name)


@router.patch(
    "/{name}",
    summary="Change some fields (a connection change is verified again)",
    response_model=AccountSaved,
    responses=responses(401, 403, 404, 409, 413, 422, 429),
)
def update_account(ctx: Control, scope: Scope, name: AccountName, body: AccountPatch, verify: VerifyFlag = True) -> AccountSaved:
    out, report = accounts.update_account(ctx, scope, name, body, verify=verify)
    return AccountSaved(**out.model_dump(), verification=report)


@router.delete("/{name}", summary="Remove an account", status_code=204, responses=responses(401, 403, 404, 409))
def delete_account(ctx: Control, scope: Scope, name: AccountName) -> Response:
    accounts.delete_account(ctx, scope, name)
    return Response(status_code=204)


@router.post(
    "/{name}/verify",
    summary="Check the connection step by step (optionally send a test message)",
    response_model=VerifyReport,
    responses=responses(401, 403, 404, 422, 429),
)
def verify_account(
    ctx: Control, scope: Scope, name: AccountName, body: Annotated[VerifyIn | None, Body()] = None
) -> VerifyReport:
    return accounts.verify_stored(ctx, scope, name, body.send_test_to if body else None)


@router.post(
    "/{name}/activate",
    summary='"Set as active": the tenant\'s default account, switched atomically',
    response_model=AccountOut,
    responses=responses(401, 403, 404),
)
def activate(ctx: Control, scope: Scope, name: AccountName) -> AccountOut:
    return accounts.activate(ctx, scope, name)


@router.post(
    "/{name}/pause", summary="Stop sending through this account", response_model=AccountOut, responses=responses(401, 403, 404)
)
def pause(ctx: Control, scope: Scope, name: AccountName) -> AccountOut:
    return accounts.set_status(ctx, scope, name, "paused", "paused through the API")


@router.post(
    "/{name}/resume",
    summary="Send through this account again (also after auth_failed)",
    response_model=AccountOut,
    responses=responses(401, 403, 404),
)
def resume(ctx: Control, scope: Scope, name: AccountName) -> AccountOut:
    return accounts.set_status(ctx, scope, name, "active")
