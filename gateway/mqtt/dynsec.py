"""Mosquitto's dynamic security plugin, managed over ``$CONTROL/dynamic-security/v1``: clients, roles and ACLs.

Every client gets a role of its own (named after its username) holding its scope's filters as ACLs, and the
client id it owns. The defaults deny publishing and subscribing; delivering and unsubscribing stay allowed (a
client only receives what it could subscribe to).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import uuid
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

import aiomqtt
from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import BrokerUnavailable, Conflict, GatewayError, NotFound, TransportError
from .acl import Scope

__all__ = [
    "CONTROL_TOPIC",
    "RESPONSE_TOPIC",
    "AclType",
    "DefaultAcl",
    "DynsecClient",
    "DynsecResponse",
    "RoleAcl",
    "role_acls",
]

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"


class AclType(StrEnum):
    """The kinds of ACL a role holds."""

    PUBLISH_SEND = "publishClientSend"
    PUBLISH_RECEIVE = "publishClientReceive"
    SUBSCRIBE_LITERAL = "subscribeLiteral"
    SUBSCRIBE_PATTERN = "subscribePattern"
    UNSUBSCRIBE_LITERAL = "unsubscribeLiteral"
    UNSUBSCRIBE_PATTERN = "unsubscribePattern"


class DefaultAcl(StrEnum):
    """What the defaults (applied when no role ACL matches) are set for."""

    PUBLISH_SEND = "publishClientSend"
    PUBLISH_RECEIVE = "publishClientReceive"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"


class RoleAcl(BaseModel):
    """One ACL of a role: allow or deny one kind of access to a topic filter."""

    model_config = ConfigDict(frozen=True)

    acltype: AclType
    topic: str
    allow: bool = True
    priority: int = 0


class DynsecResponse(BaseModel):
    """One answer of the plugin, matched to its request by ``correlationData``."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    command: str
    error: str | None = None
    data: dict[str, Any] | None = None
    correlationData: str | None = None  # the plugin's field name


class _Responses(BaseModel):
    model_config = ConfigDict(frozen=True)

    responses: list[DynsecResponse]


def role_acls(scope: Scope) -> tuple[RoleAcl, ...]:
    """The ACLs granting exactly ``scope`` (the gateway's: everything under ``#``)."""
    publish = ("#",) if scope.everything else scope.publish
    subscribe = ("#",) if scope.everything else scope.subscribe
    return (
        *(RoleAcl(acltype=AclType.PUBLISH_SEND, topic=t) for t in publish),
        *(RoleAcl(acltype=AclType.SUBSCRIBE_PATTERN, topic=t) for t in subscribe),
    )


def _refusal(command: str, error: str) -> GatewayError:
    text = error.lower()
    if "already exists" in text:
        return Conflict(f"dynamic security {command}: {error}", code="dynsec_exists")
    if "not found" in text:
        return NotFound(f"dynamic security {command}: {error}", code="dynsec_not_found")
    return TransportError(f"dynamic security {command}: {error}", code="dynsec_refused")


class DynsecClient:
    """An admin connection to Mosquitto's dynamic security plugin; an async context manager owning its reader task."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._client = aiomqtt.Client(
            host,
            port,
            username=username,
            password=password,
            identifier=f"dynsec-admin-{uuid.uuid4().hex[:8]}",
            tls_context=tls_context,
            timeout=timeout,
        )
        self._timeout = timeout
        self._pending: dict[str, asyncio.Future[DynsecResponse]] = {}
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> Self:
        try:
            await self._client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise BrokerUnavailable(f"dynamic security admin could not connect: {exc}") from exc
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self._disconnect)
            try:
                await self._client.subscribe(RESPONSE_TOPIC, qos=1)
            except aiomqtt.MqttError as exc:
                raise BrokerUnavailable(f"dynamic security admin could not subscribe: {exc}") from exc
            group = await stack.enter_async_context(asyncio.TaskGroup())
            group.create_task(self._read(), name="dynsec-responses")
            # Unwound first on exit: disconnecting ends the reader's message loop, so the task group can finish.
            stack.push_async_callback(self._disconnect)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    async def _disconnect(self) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        try:
            async for message in self._client.messages:
                payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
                try:
                    answers = _Responses.model_validate_json(payload).responses
                except ValidationError:
                    log.warning("dynamic security sent an unreadable response")
                    continue
                for answer in answers:
                    waiter = self._pending.pop(answer.correlationData or "", None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(answer)
        except aiomqtt.MqttError as exc:
            for waiter in self._pending.values():
                if not waiter.done():
                    waiter.set_exception(BrokerUnavailable(f"dynamic security admin link lost: {exc}"))

    async def command(self, command: str, **fields: Any) -> DynsecResponse:
        """Send one command and await its answer; GatewayError if the plugin refuses it or does not answer."""
        correlation = uuid.uuid4().hex
        waiter: asyncio.Future[DynsecResponse] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = waiter
        body = {"commands": [{"command": command, **fields, "correlationData": correlation}]}
        try:
            await self._client.publish(CONTROL_TOPIC, json.dumps(body).encode(), qos=1)
            async with asyncio.timeout(self._timeout):
                answer = await waiter
        except aiomqtt.MqttError as exc:
            raise BrokerUnavailable(f"dynamic security {command} not sent: {exc}") from exc
        except TimeoutError as exc:
            raise BrokerUnavailable(f"dynamic security {command}: no answer in {self._timeout} s") from exc
        finally:
            self._pending.pop(correlation, None)
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # a lost link failed it too: the error raised here is the one that counts
        if answer.error:
            raise _refusal(command, answer.error)
        return answer

    # --- the commands the gateway uses ------------------------------------------------------------------------

    async def set_default_acl_access(self, access: dict[DefaultAcl, bool]) -> None:
        """Set what happens when no ACL of a client's roles matches."""
        acls = [{"acltype": str(kind), "allow": allow} for kind, allow in access.items()]
        await self.command("setDefaultACLAccess", acls=acls)

    async def deny_by_default(self) -> None:
        """Deny publishing and subscribing unless a role allows it; delivering and unsubscribing stay allowed."""
        await self.set_default_acl_access(
            {
                DefaultAcl.PUBLISH_SEND: False,
                DefaultAcl.SUBSCRIBE: False,
                DefaultAcl.PUBLISH_RECEIVE: True,
                DefaultAcl.UNSUBSCRIBE: True,
            }
        )

    async def create_role(self, rolename: str, acls: tuple[RoleAcl, ...] = ()) -> None:
        """Create a role, then add its ACLs one by one."""
        await self.command("createRole", rolename=rolename)
        for acl in acls:
            await self.add_role_acl(rolename, acl)

    async def add_role_acl(self, rolename: str, acl: RoleAcl) -> None:
        """Add one ACL to a role."""
        await self.command("addRoleACL", rolename=rolename, **acl.model_dump(mode="json"))

    async def delete_role(self, rolename: str) -> None:
        """Delete a role."""
        await self.command("deleteRole", rolename=rolename)

    async def create_client(
        self, username: str, password: str, *, client_id: str | None = None, roles: tuple[str, ...] = ()
    ) -> None:
        """Create a client login (bound to ``client_id`` when given) holding ``roles``."""
        fields: dict[str, Any] = {"username": username, "password": password, "roles": [{"rolename": r} for r in roles]}
        if client_id is not None:
            fields["clientid"] = client_id
        await self.command("createClient", **fields)

    async def delete_client(self, username: str) -> None:
        """Delete a client login (connected clients are disconnected by the plugin)."""
        await self.command("deleteClient", username=username)

    async def disable_client(self, username: str) -> None:
        """Disable a client login without deleting it (connected clients are disconnected)."""
        await self.command("disableClient", username=username)

    async def list_clients(self) -> list[str]:
        """Every client login's username."""
        answer = await self.command("listClients", verbose=False, count=-1, offset=0)
        clients = (answer.data or {}).get("clients", [])
        return [c if isinstance(c, str) else str(c.get("username")) for c in clients]

    async def grant(self, scope: Scope, password: str) -> None:
        """Create the client for a credential: a role of its own with the scope's ACLs, and its client id."""
        await self.create_role(scope.username, role_acls(scope))
        await self.create_client(scope.username, password, client_id=scope.client_id, roles=(scope.username,))

    async def withdraw(self, username: str) -> None:
        """Remove a credential's client and its role (either may already be gone)."""
        for remove in (self.delete_client, self.delete_role):
            with contextlib.suppress(NotFound):
                await remove(username)
