"""``/v1/tenants/{tenant}/keys``: admins issue (shown once), list and revoke a tenant's API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from pipeline.control import keys
from pipeline.control.schemas import KeyCreated, KeyIn, KeyList, KeyOut
from pipeline.http.control.auth import Control, Scope
from pipeline.http.control.problems import ProblemRoute, responses

router = APIRouter(prefix="/v1/tenants/{tenant}/keys", tags=["keys"], route_class=ProblemRoute)


@router.post(
    "",
    summary="Issue a key (the secret is in this response only)",
    status_code=201,
    response_model=KeyCreated,
    responses=responses(401, 403, 404, 422),
)
def create_key(ctx: Control, scope: Scope, body: KeyIn) -> KeyCreated:
    return keys.create_key(ctx, scope, body)


@router.get(
    "",
    summary="The tenant's keys (prefixes and scopes, never secrets)",
    response_model=KeyList,
    responses=responses(401, 403, 404),
)
def list_keys(ctx: Control, scope: Scope) -> KeyList:
    return keys.list_keys(ctx, scope)


@router.delete("/{key_id}", summary="Revoke a key", response_model=KeyOut, responses=responses(401, 403, 404))
def revoke_key(ctx: Control, scope: Scope, key_id: Annotated[str, Path(pattern=r"^[a-z0-9]{12}$")]) -> KeyOut:
    return keys.revoke_key(ctx, scope, key_id)
