"""Mosquitto kept in step with the gateway's broker credentials through its dynamic security plugin.

The gateway logs in to Mosquitto with a dynsec admin login (``mosquitto_ctrl dynsec init`` made it); at start it
sets the defaults to deny, gives its own login the right to publish anywhere (the admin role of ``dynsec init``
may only read), and deletes the clients of credentials the database says are revoked. Then each credential
created through the gateway becomes a client with a role of its own, and each revocation deletes both.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Iterable

from ..config import BrokerSettings
from ..errors import BrokerUnavailable, ConfigError, Conflict, NotFound, TransportError
from .acl import Scope
from .dynsec import DynsecClient, role_acls

__all__ = ["GATEWAY_ROLE", "DynsecSync", "dynsec_admin"]

log = logging.getLogger(__name__)

GATEWAY_ROLE = "aptgateway:gateway"
"""The role giving the gateway's own login everything; the ':' keeps it apart from any credential's role name."""


def dynsec_admin(broker: BrokerSettings) -> DynsecClient:
    """An admin connection to the broker the gateway uses, with the gateway's own login; ConfigError without one."""
    if not broker.username or broker.password is None:
        raise ConfigError(
            "--dynsec needs the gateway's broker login (--username, --password): a dynamic security admin",
            field="username",
        )
    context: ssl.SSLContext | None = None
    if broker.tls:
        context = ssl.create_default_context(cafile=str(broker.ca_file) if broker.ca_file else None)
        if broker.tls_insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    return DynsecClient(broker.host, broker.port, broker.username, broker.password, tls_context=context)


class DynsecSync:
    """A ``BrokerSync`` over a connected ``DynsecClient``; refusals become the API's codes."""

    def __init__(self, client: DynsecClient, gateway_username: str) -> None:
        self._client = client
        self._gateway = gateway_username

    async def prepare(self) -> bool:
        """Deny by default and let the gateway's own login publish and subscribe anywhere; whether its rights
        changed, in which case Mosquitto has dropped this connection (it drops a client whose roles change): then
        reconnect, and prepare again to confirm."""
        try:
            return await self._prepare()
        except BrokerUnavailable:
            raise
        except TransportError as exc:
            raise BrokerUnavailable(f"Mosquitto's dynamic security refused the set-up: {exc}") from exc

    async def _prepare(self) -> bool:
        await self._client.deny_by_default()
        acls = role_acls(Scope(username=self._gateway, client_id=None, everything=True))
        try:
            role = await self._client.command("getRole", rolename=GATEWAY_ROLE)
        except NotFound:
            await self._client.command("createRole", rolename=GATEWAY_ROLE, acls=[a.model_dump() for a in acls])
        else:
            held = {(a.get("acltype"), a.get("topic")) for a in (role.data or {}).get("role", {}).get("acls", [])}
            for acl in acls:
                if (str(acl.acltype), acl.topic) not in held:
                    await self._client.add_role_acl(GATEWAY_ROLE, acl)
        try:
            client = await self._client.command("getClient", username=self._gateway)
        except NotFound as exc:
            raise ConfigError(
                f"the gateway's broker login {self._gateway!r} is not a dynamic security client",
                field="username",
            ) from exc
        roles = {r.get("rolename") for r in (client.data or {}).get("client", {}).get("roles", [])}
        if GATEWAY_ROLE in roles:
            return False
        with contextlib.suppress(BrokerUnavailable):  # applied, and this connection dropped
            await self._client.command("addClientRole", username=self._gateway, rolename=GATEWAY_ROLE)
        log.info("gateway's broker login given the right to publish anywhere", extra={"role": GATEWAY_ROLE})
        return True

    async def remove(self, usernames: Iterable[str]) -> list[str]:
        """Delete the clients (and roles) of these usernames that the broker still has; those it had."""
        try:
            present = set(await self._client.list_clients())
            gone = sorted((set(usernames) & present) - {self._gateway})
            for username in gone:
                await self._client.withdraw(username)
        except TransportError as exc:
            raise BrokerUnavailable(f"Mosquitto's dynamic security: {exc}") from exc
        if gone:
            log.warning("revoked broker logins removed from Mosquitto", extra={"usernames": gone})
        return gone

    async def grant(self, scope: Scope, password: str) -> None:
        """A client with a role of its own holding the scope's ACLs; nothing is left behind if it fails."""
        if scope.username == self._gateway:
            raise Conflict("that name is the gateway's own broker login", code="broker_credential_overlaps")
        try:
            await self._client.create_role(scope.username)
        except Conflict as exc:
            raise Conflict(
                f"Mosquitto already has a role {scope.username!r}", code="broker_credential_overlaps", field="username"
            ) from exc
        except TransportError as exc:
            raise BrokerUnavailable(f"Mosquitto's dynamic security: {exc}", code="broker_sync_failed") from exc
        try:
            for acl in role_acls(scope):
                await self._client.add_role_acl(scope.username, acl)
            await self._client.create_client(
                scope.username, password, client_id=scope.client_id, roles=(scope.username,)
            )
        except Exception as exc:
            with contextlib.suppress(TransportError):
                await self._client.delete_role(scope.username)  # ours: made just above; the client is not
            if isinstance(exc, Conflict):
                raise Conflict(
                    f"Mosquitto already has a login {scope.username!r}",
                    code="broker_credential_overlaps",
                    field="username",
                ) from exc
            if isinstance(exc, TransportError):
                raise BrokerUnavailable(f"Mosquitto's dynamic security: {exc}", code="broker_sync_failed") from exc
            raise

    async def withdraw(self, username: str) -> None:
        """Delete the client (Mosquitto disconnects it) and its role; either may be gone already."""
        if username == self._gateway:
            return
        try:
            await self._client.withdraw(username)
        except TransportError as exc:
            raise BrokerUnavailable(f"Mosquitto's dynamic security: {exc}", code="broker_sync_failed") from exc
