"""The embedded broker's gate: amqtt plugins that admit only known credentials and enforce their scopes.

Client ids: a credential connects only with the client id it owns (``Scope.owns_client_id``; the gateway's may
use any), as Mosquitto's dynamic security does for a client with a ``clientid``. So only the owner of a client
id can take its session over. A last will is a publish too: a CONNECT whose will topic the credential may not
publish to is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action as AmqttAction
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from ..errors import StorageError
from .acl import Action, Scope, allowed

__all__ = ["DeferredVerifier", "GateAuthPlugin", "GateTopicPlugin", "ScopeGate", "Verifier"]

log = logging.getLogger(__name__)

Verifier = Callable[[str, str], Awaitable[Scope | None]]
"""``(username, password) -> scope`` of the live credential, or None (e.g. ``BrokerCredentials.verify``)."""


class DeferredVerifier:
    """A ``Verifier`` for a broker that starts before the gateway's credential store is open: it refuses every
    login until ``bind`` hands it the store's verifier, and while the store cannot answer (not open yet, closed
    at shutdown) - deny, never fail open."""

    def __init__(self) -> None:
        self._verify: Verifier | None = None

    def bind(self, verify: Verifier) -> None:
        """Answer logins with ``verify`` from now on."""
        self._verify = verify

    async def __call__(self, username: str, password: str) -> Scope | None:
        verify = self._verify
        if verify is None:
            return None
        try:
            return await verify(username, password)
        except StorageError as exc:
            log.warning("broker login refused: the credential store cannot answer (%s)", exc)
            return None


class ScopeGate:
    """Admits clients through a ``Verifier`` and answers topic checks from the scope each client id was admitted with.

    Keyed by client id: a client id is only ever admitted for the credential that owns it, so the scope of the
    connection holding it (or of its persistent session) is the one recorded at its latest admission.
    """

    def __init__(self, verify: Verifier) -> None:
        self._verify = verify
        self._scopes: dict[str, Scope] = {}

    async def admit(self, session: Session) -> bool:
        """Whether the CONNECT in ``session`` carries a live credential owning its client id (and its will topic)."""
        username, password, client_id = session.username, session.password, session.client_id
        if not username or password is None or not client_id:
            log.info("broker refused an anonymous client", extra={"client_id": str(client_id)[:64]})
            return False
        secret = password.decode("utf-8", "replace") if isinstance(password, bytes) else str(password)
        scope = await self._verify(str(username), secret)
        if scope is None:
            reason = "unknown username or wrong password"
        elif not scope.owns_client_id(client_id):
            reason = "client id not owned by the credential"
        elif session.will_flag and not allowed(scope, Action.PUBLISH, str(session.will_topic)):
            reason = "last will outside the credential's topics"
        else:
            self._scopes[client_id] = scope
            return True
        log.info("broker refused a client", extra={"username": str(username)[:64], "reason": reason})
        return False

    def permits(self, client_id: str | None, action: Action, topic: str) -> bool:
        """Whether the client admitted with ``client_id`` may do ``action`` on ``topic``; deny by default."""
        scope = self._scopes.get(client_id or "")
        return scope is not None and allowed(scope, action, topic)

    def checks(self, session: Session | None, topic: str | None, action: AmqttAction | None) -> bool:
        """amqtt's topic check (publish, subscribe, or receive a delivered message) answered at once, never
        suspending; deny by default."""
        if session is None or topic is None:
            return False
        # A delivered topic name is a filter covered by a grant exactly when the grant matches it.
        wanted = Action.PUBLISH if action == AmqttAction.PUBLISH else Action.SUBSCRIBE
        return self.permits(session.client_id, wanted, topic)

    def forget(self, username: str) -> list[str]:
        """Drop the scopes admitted for ``username`` (a revoked credential); the client ids it held."""
        gone = [cid for cid, scope in self._scopes.items() if scope.username == username]
        for cid in gone:
            del self._scopes[cid]
        return gone


@dataclass
class _GateConfig:
    gate: Any = None  # a ScopeGate; amqtt builds plugin configs with dacite, which passes Any through as is


def _gate(plugin: Any) -> ScopeGate:
    gate = getattr(plugin.context.config, "gate", None)
    if not isinstance(gate, ScopeGate):
        raise TypeError("the gate plugins need a ScopeGate in their config")
    return gate


class GateAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no type information
    """Authentication: a live credential, its own client id; nobody is anonymous."""

    Config = _GateConfig

    async def authenticate(self, *, session: Session) -> bool:
        return await _gate(self).admit(session)


class GateTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """Topic checks: publish and subscribe within the client's scope; deliver only what its scope could subscribe to."""

    Config = _GateConfig

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: AmqttAction | None = None
    ) -> bool:
        return _gate(self).checks(session, topic, action)
