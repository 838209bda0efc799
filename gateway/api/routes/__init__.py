"""The API's routes, one module per URL prefix; no route module imports another."""

from fastapi import APIRouter

from . import (
    agreement,
    auth,
    broker_credentials,
    checks,
    console,
    firmware,
    me,
    operator,
    privacy,
    properties,
    rules,
    storage,
    wiring,
)

__all__ = ["API_ROUTERS", "PAGE_ROUTERS"]

API_ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    me.router,
    privacy.resident_router,
    agreement.router,
    properties.router,
    wiring.router,
    broker_credentials.router,
    operator.router,
    rules.router,
    rules.public_router,
    checks.resident_router,
    checks.property_router,
    checks.operator_router,
    storage.router,
    privacy.staff_router,
    firmware.router,
    console.router,
)
"""The routers served under the API prefix, in the order the OpenAPI document lists them."""

PAGE_ROUTERS: tuple[APIRouter, ...] = (console.page_router,)
"""The routers served at the root (the console's web page, at /console)."""
