"""/properties/{id}/broker-credentials: installers, managers (their own property) and operators (any) issue, list
and revoke the MQTT logins of the property's devices and bridges."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from ...accounts import Principal, Role
from ...mqtt.acl import CredentialKind
from ...mqtt.credential_service import CredentialRequest
from ..context import ApiContext
from ..deps import Ctx, own_property, require
from ..problems import CONFLICT_RESPONSES, PROBLEM_RESPONSES
from ..schemas_broker import (
    BrokerCredentialOut,
    BrokerLoginOut,
    CreateBrokerCredentialRequest,
    IssuedBrokerCredentialOut,
)

__all__ = ["router"]

router = APIRouter(prefix="/properties", tags=["property"], responses=PROBLEM_RESPONSES)

Id = Annotated[str, Path(min_length=1, max_length=128)]
DeviceStaff = Annotated[Principal, Depends(require(Role.MANAGER, Role.INSTALLER, Role.OPERATOR))]
NOTE = (
    "The password is shown this once and cannot be shown again: the gateway keeps only a hash. Enter it in the "
    "device or bridge now; if it is lost, revoke this credential and create another."
)


def _property(principal: Principal, ctx: ApiContext, property_id: str) -> str:
    """The property the caller may manage: staff their own, the operator any (404 otherwise, as an unknown id)."""
    if principal.role is Role.OPERATOR:
        return ctx.building.property(property_id).id
    return own_property(principal, ctx, property_id)


@router.post(
    "/{property_id}/broker-credentials",
    status_code=201,
    operation_id="createBrokerCredential",
    responses=CONFLICT_RESPONSES,
)
async def create_broker_credential(
    property_id: Id, body: CreateBrokerCredentialRequest, principal: DeviceStaff, ctx: Ctx, response: Response
) -> IssuedBrokerCredentialOut:
    """Issue an MQTT login for one device or bridge of the property, scoped to its own topics (installer, manager;
    operator for any property). The password is in this answer only. 409 ``broker_credential_overlaps`` when the
    username, client id, a node id or a topic root is another live credential's; 422 ``broker_credential_invalid``;
    503 ``broker_sync_failed`` when the broker could not be told (nothing was issued)."""
    pid = _property(principal, ctx, property_id)
    request = CredentialRequest(
        kind=CredentialKind(body.kind),
        label=body.label,
        username=body.username,
        client_id=body.client_id,
        node_ids=body.node_ids,
        state_roots=body.state_roots,
        command_roots=body.command_roots,
    )
    service = ctx.services.device_credentials
    issued = await service.create(pid, request, by=principal)
    response.headers["Cache-Control"] = "no-store"
    credential = issued.record.credential
    return IssuedBrokerCredentialOut(
        credential=BrokerCredentialOut.of(issued.record),
        login=BrokerLoginOut(
            username=credential.username,
            password=issued.password.get_secret_value(),
            client_id=credential.client_id,
            broker_url=service.broker_url,
        ),
        note=NOTE,
    )


@router.get("/{property_id}/broker-credentials", operation_id="listBrokerCredentials")
async def list_broker_credentials(
    property_id: Id,
    principal: DeviceStaff,
    ctx: Ctx,
    include_revoked: Annotated[bool, Query(description="Also list revoked credentials")] = False,
) -> list[BrokerCredentialOut]:
    """The property's broker credentials, oldest first; never a password."""
    pid = _property(principal, ctx, property_id)
    records = await ctx.services.device_credentials.find(pid, include_revoked=include_revoked)
    return [BrokerCredentialOut.of(r) for r in records]


@router.delete("/{property_id}/broker-credentials/{credential_id}", operation_id="revokeBrokerCredential")
async def revoke_broker_credential(
    property_id: Id, credential_id: Id, principal: DeviceStaff, ctx: Ctx
) -> BrokerCredentialOut:
    """Revoke a broker credential: it logs in no more and its live connections are cut. Another property's
    credential answers 404 ``broker_credential_not_found``, exactly as an unknown id; 503 ``broker_sync_failed``
    when the broker could not be told (the revocation stands: send it again)."""
    pid = _property(principal, ctx, property_id)
    record = await ctx.services.device_credentials.revoke(pid, credential_id, by=principal)
    return BrokerCredentialOut.of(record)
