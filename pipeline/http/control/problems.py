"""RFC 9457 problem details for every control-plane error, naming the field; bodies read with a cap.

``ProblemRoute`` is the routers' route class: it bounds the body before FastAPI parses it and turns
every refusal (service errors, validation, HTTP errors) into ``application/problem+json``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from pipeline.control.errors import ControlError, TooManyRequests
from pipeline.errors import ConfigError
from pipeline.http.bodies import read_body

MAX_BODY_BYTES = 256 * 1024
PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    422: "Invalid input",
    429: "Too many requests",
    503: "Not configured",
}


class FieldError(BaseModel):
    field: str
    message: str


class ProblemDetails(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = Field(default=None, description="the first field at fault, dotted (routes[2].accounts)")
    errors: list[FieldError] | None = Field(default=None, description="every field at fault")
    verification: dict[str, Any] | None = Field(default=None, description="the failed connection check, step by step")


def problem(
    status: int, detail: str, *, field: str | None = None, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = ProblemDetails(title=TITLES.get(status, "Error"), status=status, detail=detail, field=field, **extra)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM, headers=headers)


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validation(exc: RequestValidationError) -> JSONResponse:
    errors = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        where = _dotted(loc[1:] if loc and loc[0] in ("body", "query", "path") else loc) or "body"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        errors.append(FieldError(field=where, message=message))
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return problem(422, detail, field=errors[0].field if errors else None, errors=errors)


class ProblemRoute(APIRoute):
    max_body_bytes = MAX_BODY_BYTES  # a subclass raises it for uploads (suppression CSV import)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            try:
                if request.method in ("POST", "PUT", "PATCH"):
                    request._body = await read_body(request, self.max_body_bytes)
                return await handler(request)
            except ControlError as exc:
                headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
                if exc.status == 401:
                    headers = {"WWW-Authenticate": "Bearer"}
                return problem(exc.status, exc.detail, field=exc.field, headers=headers, **exc.extra)
            except RequestValidationError as exc:
                return _validation(exc)
            except HTTPException as exc:
                return problem(exc.status_code, str(exc.detail), headers=dict(exc.headers) if exc.headers else None)
            except ConfigError as exc:
                return problem(503, "; ".join(exc.problems))

        return bounded


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses an endpoint can give."""
    return {code: {"model": ProblemDetails, "description": TITLES.get(code, "error"), "content": {PROBLEM: {}}} for code in codes}
