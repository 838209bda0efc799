"""The FastAPI application: routers under /api/v1, problem+json errors, body size limits."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI

from . import docs
from .context import ApiContext
from .hosts import HostAllowList
from .limits import BodySizeLimit
from .problems import StorageGate, install_problem_handlers
from .routes import API_ROUTERS, PAGE_ROUTERS
from .schemas_policy import AGREEMENT_BODY_BYTES

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"
DESCRIPTION = """
Local API of the apartment smart-home gateway, for the resident app and the property manager console.

This is home automation: lights, door locks and thermostats of the resident's own unit. It is **not** a
security or alarm system.

Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`, such as
`unauthenticated`, `token_invalid`, `session_expired`, `session_revoked`, `account_disabled`, `login_failed`,
`login_throttled`, `account_locked`, `role_forbidden`, `unit_not_found`, `device_not_found`,
`entity_not_found`, `command_not_found`, `property_not_found`, `account_not_found`,
`validation_failed` (422, `field` names the field), `body_too_large`, `device_offline`,
`device_jammed`, `command_timeout`, `broker_unavailable`, `out_of_range`, `unsupported_feature`,
`command_invalid`, `username_taken`, `device_already_bound`, `activation_invalid`,
`password_too_weak`, `own_account` (an operator disabling or ending their own account),
`account_terminated`, `account_not_activated` (409, enabling an account never activated),
`session_displaced` (signed in on another app device), `session_not_found`, `account_not_pending` (409, a new
activation code for an account already activated or ended), `csrf_refused` (403, a console-session request
without `X-Console: 1` or from another origin).

A bound device's wiring (its topics, payload and state words, templates, ranges, availability) is pinned when
staff bind it. A later discovery config that changes it holds the device: its commands answer `device_held` (409,
nothing is sent to it), its reports are not applied (`stale_reason` `held`), and staff see what changed in its
`wiring`; they approve the change (`POST .../devices/{device_id}/wiring/approve`) or reject it (it stays held until
the device publishes its pinned wiring again or is unbound); `device_not_held` (409) when nothing awaits them. A
removed config keeps the device's topics reserved until staff unbind it: another device's config naming them is
refused (`topic_reserved`, logged and counted, not an HTTP answer).

Before any device command goes out, every link of the service's chain of permissions is checked by one
decision function, and commands go out only on what a decision allowed; the first link that fails is reported
(with `link` and details) and nothing is sent to the device. In order:

1. account: checked when the token is, so over HTTP these are 401: `account_disabled` (with the operator's
   `reason`), `account_terminated`, `account_not_active`; a staff account gets `role_forbidden` (403);
2. session: 401 as well: `session_revoked`, `session_expired`, `session_displaced` (another app device took
   its place, or the plan now allows fewer app devices at a time);
3. app version: `app_update_required` (403, with `minimum_version`; send `X-App-Version`, an app that sends no
   version counts as older than any minimum);
4. device: over HTTP an entity outside your unit answers `entity_not_found` (404), exactly as one that does not
   exist; a caller inside the gateway (a schedule) gets `device_not_in_unit`;
5. the lessor's contract: `lessor_contract_inactive` (403, with `reason`: `no_contract`, `not_started`, `ended`,
   `suspended`, `terminated`, `service_withdrawn`); devices are left exactly as they are;
6. the plan: `plan_excludes_device_kind` (403, with `kind`);
7. the end-user agreement: `agreement_unavailable`, `agreement_not_accepted` (403, with the `version` to accept).

A decision allows one command, at once: a caller inside the gateway that holds one too long or uses it twice
gets `decision_stale` or `decision_spent` and must decide again.

Other refusals of the service's rules: `plan_limit_app_devices` (409, a sign-in from one app device too many,
with the live `sessions`; `replace_session_id` ends a lost device's session), `plan_limit_devices_per_unit`,
`plan_limit_device_kinds`, `plan_limit_accounts_per_unit` (409, with the `limit`), `lessor_contract_missing`
(409), `opt_out_window_closed` (403, with the `deadline`), `age_confirmation_required`,
`agreement_version_not_current`, `agreement_version_exists`, `agreement_out_of_order`, `effective_at_in_past`,
`app_version_invalid`, `contract_not_found`, `contract_dates_invalid`.

The monthly self-test (rule 5) checks that the home automation works: the building's uplink, the broker round
trip, and each device asked for its state (nothing is switched, locked or unlocked). It is not a security or
alarm system. Its refusals: `storm_not_found`, `storm_already_ended`, `storm_ends_before_start`,
`storm_in_future`; a resident's self-test also needs the service in force (`lessor_contract_inactive`, ...).

Broker credentials (the MQTT logins of a property's devices and bridges; installers and managers of the
property, operators of any): `broker_credential_overlaps` (409: the username, client id, a node id or a topic root
is another live credential's, or the broker already has that login), `broker_credential_invalid` (422),
`broker_credential_not_found` (404, also for another property's credential), `broker_sync_failed` (503: the
broker could not be told; nothing was issued, or the revocation stands and may be sent again).

Firmware updates (devices that announce an update entity): operators, managers and installers see each device's
installed and latest version (`GET /properties/{id}/firmware`); operators and managers start a staged rollout for a
device, a unit or the property, installers for one device (`POST /properties/{id}/firmware/rollouts`). Refusals:
`not_updatable`, `no_update_available`, `rollout_in_progress` (one at a time per property), `command_pending` (409),
`rollout_not_found` (404); a resident's install command answers `firmware_update_staff_only` (403).

Storage trouble: while the gateway's disk is full, the database read-only or failing, every request that would
write (any method but GET, HEAD and OPTIONS) answers 503 with `storage_full`, `storage_readonly` or `storage_io` (and
`Retry-After`) before it runs, nothing half-done; reads answer from what is stored, devices' reports are kept in
memory, and it ends by itself when space returns. Other storage failures answer `storage_error` (503).

Connection limits: a request head over the size or header-count limit answers `header_too_large` (431); a
`Host` the gateway does not answer to (not its listening address, `localhost` or `127.0.0.1`, unless configured
with `--api-allowed-hosts`) answers `host_not_allowed` (400); more live streams (`GET /me/stream`) than one
account or one source address may hold answer `too_many_streams` (429). An incomplete request head and an idle
connection are closed after a few seconds, and each source address may hold only so many connections.

A resident only ever sees their own unit: ids of anything else answer 404, exactly as ids that do not exist.
"""


def create_app(ctx: ApiContext, max_body_bytes: int, allowed_hosts: Iterable[str] = ("*",)) -> FastAPI:
    """Build the application around the gateway's services, answering only to ``allowed_hosts``."""
    app = FastAPI(
        title="aptgateway local API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        # Swagger UI from the gateway's own files (docs.py), not FastAPI's CDN page; no ReDoc.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.ctx = ctx
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.include_router(docs.router)
    install_problem_handlers(app)
    # Agreement texts are long documents; every other body stays under the small general limit.
    per_path = {f"{API_PREFIX}/operator/agreements": max(AGREEMENT_BODY_BYTES, max_body_bytes)}
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes, per_path=per_path)
    # While the disk is full (or read-only) a request that would write is answered 503 before it runs; reads go on.
    app.add_middleware(StorageGate, trouble=lambda: ctx.gateway.db.trouble)
    # Outermost: a page reached by DNS rebinding (a name the gateway does not answer to) gets nothing else.
    app.add_middleware(HostAllowList, allowed_hosts=tuple(allowed_hosts))
    return app
