"""The FastAPI application: routers under /api/v1, problem+json errors, body size limits."""

from __future__ import annotations

from fastapi import FastAPI

from .context import ApiContext
from .limits import BodySizeLimit
from .problems import install_problem_handlers
from .routes_auth import router as auth_router
from .routes_operator import router as operator_router
from .routes_property import router as property_router
from .routes_resident import router as resident_router

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"
DESCRIPTION = """
Local API of the apartment smart-home gateway, for the resident app and the property manager console.

This is home automation: lights, door locks and thermostats of the resident's own unit. It is **not** a
security or alarm system.

Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`, such as
`unauthenticated`, `session_expired`, `session_revoked`, `account_disabled`, `login_failed`,
`login_throttled`, `account_locked`, `role_forbidden`, `unit_not_found`, `device_not_found`,
`entity_not_found`, `command_not_found`, `property_not_found`, `account_not_found`,
`validation_failed` (422, `field` names the field), `body_too_large`, `device_offline`,
`device_jammed`, `command_timeout`, `broker_unavailable`, `out_of_range`, `unsupported_feature`,
`command_invalid`, `username_taken`, `device_already_bound`, `activation_invalid`,
`password_too_weak`, `own_account` (an operator disabling or ending their own account).

A resident only ever sees their own unit: ids of anything else answer 404, exactly as ids that do not exist.
"""


def create_app(ctx: ApiContext, max_body_bytes: int) -> FastAPI:
    """Build the application around the gateway's services."""
    app = FastAPI(
        title="aptgateway local API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    for router in (auth_router, resident_router, property_router, operator_router):
        app.include_router(router, prefix=API_PREFIX)
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    return app
