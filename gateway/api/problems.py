"""RFC 9457 problem details: every error the API returns, with a stable machine-readable ``code``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import (
    AccessDenied,
    AuthError,
    BrokerUnavailable,
    CommandError,
    Conflict,
    GatewayError,
    InvalidRequest,
    NotFound,
    PolicyRefused,
    StorageError,
    TooManyAttempts,
    UnknownEntity,
)

__all__ = [
    "CONFLICT_RESPONSES",
    "PROBLEM_RESPONSES",
    "Problem",
    "ProblemError",
    "StorageGate",
    "install_problem_handlers",
    "problem_response",
]

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:aptgateway:problem:"


class Problem(BaseModel):
    """An RFC 9457 problem: ``code`` is stable and machine-readable; ``detail`` is for people."""

    # Only for the OpenAPI document: responses are built by problem_response. The extension members below are
    # those a client acts on; each appears only with the codes named in its description.
    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable code; the API description lists every code")
    instance: str | None = None
    field: str | None = Field(default=None, description="The request field the problem is about")
    link: str | None = Field(
        default=None,
        description="The rule of the service that refused: account, session, app, device, contract, plan, "
        "agreement or decision",
    )
    reason: str | None = Field(
        default=None,
        description="lessor_contract_inactive: no_contract, not_started, ended, suspended, terminated or "
        "service_withdrawn; account_disabled: the operator's reason (may be null)",
    )
    version: str | None = Field(default=None, description="agreement_not_accepted: the version to accept")
    minimum_version: str | None = Field(default=None, description="app_update_required: the minimum app version")
    your_version: str | None = Field(default=None, description="app_update_required: the version the app sent")
    deadline: str | None = Field(default=None, description="opt_out_window_closed: the last moment (ISO 8601)")
    starts_at: str | None = Field(default=None, description="lessor_contract_inactive: when the contract starts")
    ends_at: str | None = Field(default=None, description="lessor_contract_inactive: when the contract ends")
    kind: str | None = Field(default=None, description="plan_excludes_device_kind, plan_limit_device_kinds")
    allowed: list[str] | None = Field(default=None, description="plan_limit_device_kinds: the kinds the plan covers")
    limit: int | None = Field(default=None, description="plan_limit_*: the plan's limit")
    sessions: list[dict[str, Any]] | None = Field(
        default=None, description="plan_limit_app_devices: the live sessions (id, client, created_at, last_used_at)"
    )
    retry_after: int | None = Field(default=None, description="Seconds to wait before trying again")
    errors: list[dict[str, Any]] | None = Field(default=None, description="validation_failed: every failed field")
    command: dict[str, Any] | None = Field(default=None, description="A command that did not confirm, as recorded")


class ProblemError(GatewayError):
    """Raised by route code to answer with a problem and an exact status (and extension members)."""

    def __init__(self, status: int, code: str, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail, code=code, field=field)
        self.status = status
        self.extra = extra


# Listed in every operation's OpenAPI responses so clients (and schemathesis) know the shape.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": text}
    for status, text in (
        (400, "Malformed request"),
        (401, "Not signed in, or the session expired or was revoked"),
        (403, "The role, or a rule of the service (contract, agreement, app version), does not allow this"),
        (404, "No such resource (or not one the caller may see)"),
        (413, "Request body too large"),
        (422, "Validation failed; `field` names the first bad field"),
        (429, "Too many attempts"),
        (503, "The gateway's storage or MQTT broker is unavailable; try again"),
    )
}
# Added by the operations that can clash with the current state (e.g. an id or username that is taken).
CONFLICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": "Conflicts with the current state"}
}

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    if field is not None:
        body["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _status(exc: GatewayError) -> int:
    if isinstance(exc, PolicyRefused):
        if exc.code.startswith("plan_limit_") or exc.code == "lessor_contract_missing":
            return 409  # the state must change first (fewer devices, a contract), not the caller's rights
        if exc.code == "firmware_update_staff_only":
            return 403  # the device is the resident's own: they may know it exists, not install on it
        return 404 if exc.link == "device" else 403
    if isinstance(exc, TooManyAttempts):
        return 429
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, AccessDenied):
        return 403
    if isinstance(exc, NotFound | UnknownEntity):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, InvalidRequest | CommandError):
        return 422
    if isinstance(exc, BrokerUnavailable | StorageError):
        return 503
    return 500


STORAGE_RETRY_SECONDS = 5  # the database probes for space this often (gateway.storage.db.PROBE_SECONDS)
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class StorageGate:
    """While the database is in storage trouble, answer every request that would write (any method but GET, HEAD
    and OPTIONS) ``503`` with the trouble's code (``storage_full``, ``storage_readonly``, ``storage_io``) before it
    runs: nothing half-done (a command published but not recorded); reads go on from what is stored."""

    def __init__(self, app: ASGIApp, trouble: Callable[[], StorageError | None]) -> None:
        self.app = app
        self.trouble = trouble

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        error = self.trouble() if scope["type"] == "http" and scope["method"] not in _READ_METHODS else None
        if error is None:
            await self.app(scope, receive, send)
            return
        response = problem_response(
            503,
            error.code,
            str(error),
            instance=scope.get("path"),
            headers={"Retry-After": str(STORAGE_RETRY_SECONDS)},
            retry_after=STORAGE_RETRY_SECONDS,
        )
        await response(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    """Turn every error, the framework's included, into problem+json."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(exc.status, exc.code, str(exc), instance=request.url.path, field=exc.field, **exc.extra)

    async def on_gateway_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GatewayError)
        status = _status(exc)
        headers: dict[str, str] = {}
        if isinstance(exc, AuthError) and status == 401:
            headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{exc.code}"'
        extra: dict[str, Any] = {}
        if isinstance(exc, TooManyAttempts):
            headers["Retry-After"] = str(exc.retry_after)
            extra["retry_after"] = exc.retry_after
        if isinstance(exc, AuthError):
            extra.update(exc.extra)
        if isinstance(exc, PolicyRefused):
            extra.update(exc.extra, link=exc.link)
        if status >= 500:
            log.error("request failed: %s", exc, extra={"code": exc.code, "path": request.url.path})
        return problem_response(
            status, exc.code, str(exc), instance=request.url.path, field=exc.field, headers=headers, **extra
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or None,
                "where": str(err.get("loc", ("body",))[0]),
                "message": str(err.get("msg", "invalid")),
                "type": str(err.get("type", "value_error")),
            }
            for err in exc.errors()[:20]
        ]
        first = errors[0] if errors else {"field": None, "message": "invalid request"}
        code = "body_invalid_json" if first.get("type") == "json_invalid" else "validation_failed"
        if code == "body_invalid_json":
            first = {**first, "field": None}  # pydantic puts the character offset where the field would be
        detail = f"{first['field']}: {first['message']}" if first["field"] else str(first["message"])
        return problem_response(422, code, detail, instance=request.url.path, field=first["field"], errors=errors)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}.get(exc.status_code, "http_error")
        return problem_response(
            exc.status_code, code, str(exc.detail), instance=request.url.path, headers=dict(exc.headers or {})
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", extra={"path": request.url.path})
        return problem_response(500, "internal_error", "something went wrong on the gateway", instance=request.url.path)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(GatewayError, on_gateway_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
    _document_problem_media_type(app)


def _document_problem_media_type(app: FastAPI) -> None:
    # FastAPI files a response's ``model`` under application/json and leaves application/problem+json without a
    # schema; move the Problem schema to the media type the API really sends, so clients can validate problems.
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()  # cached by FastAPI as app.openapi_schema, so this runs once
        for operations in schema["paths"].values():
            for operation in operations.values():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if content.get(MEDIA_TYPE) == {} and "application/json" in content:
                        content[MEDIA_TYPE] = content.pop("application/json")
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
