"""Where failure reports go: a webhook, or a topic on an upstream MQTT broker. Each delivers one report or raises."""

from __future__ import annotations

import contextlib
import json
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import urlsplit, urlunsplit

from ..config import BrokerSettings
from ..errors import BrokerUnavailable, DeliveryFailed
from ..mqtt.transport import MqttLink
from .models import Report

__all__ = ["MqttUpstream", "Upstream", "WebhookUpstream", "report_payload"]

_CONNECT_SECONDS = 10.0


class Upstream(Protocol):
    """Delivers reports; an async context manager holding any connection it needs."""

    description: str

    async def deliver(self, report: Report) -> None:
        """Hand the report over, returning only once the upstream has acknowledged it."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def report_payload(report: Report) -> bytes:
    """The JSON sent upstream: the report's body with its id and idempotency key."""
    body = {"id": report.id, "idempotency_key": report.idempotency_key, **report.body}
    return json.dumps(body, separators=(",", ":"), default=str).encode()


class WebhookUpstream:
    """POSTs each report as JSON with an ``Idempotency-Key`` header; any 2xx is delivery."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        parts = urlsplit(url)
        self.description = urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))  # no credentials
        # Imported here: httpx brings its command line's rich, click and pygments into every gateway otherwise.
        import httpx

        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._http_error: type[Exception] = httpx.HTTPError

    async def deliver(self, report: Report) -> None:
        """POST the report."""
        headers = {"Content-Type": "application/json", "Idempotency-Key": report.idempotency_key}
        try:
            response = await self._client.post(self.url, content=report_payload(report), headers=headers)
        except self._http_error as exc:
            raise DeliveryFailed(f"webhook {self.description}: {type(exc).__name__}: {exc}"[:300]) from exc
        if not response.is_success:
            raise DeliveryFailed(f"webhook {self.description} answered {response.status_code}")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()


class MqttUpstream:
    """Publishes each report (QoS 1, not retained) to a topic on an upstream broker; the PUBACK is delivery."""

    def __init__(self, url: str, client_id: str) -> None:
        parts = urlsplit(url)
        self.topic = parts.path.lstrip("/")
        broker_url = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self.broker = BrokerSettings.from_url(broker_url)
        self.description = f"{self.broker.url}/{self.topic}"
        self.link = MqttLink(self.broker, client_id=client_id, subscriptions=[], on_message=lambda _m: None)

    async def deliver(self, report: Report) -> None:
        """Publish the report and wait for the broker's acknowledgement."""
        try:
            with contextlib.suppress(BrokerUnavailable):
                await self.link.wait_connected(_CONNECT_SECONDS)
            await self.link.publish(self.topic, report_payload(report), qos=1)
        except BrokerUnavailable as exc:
            raise DeliveryFailed(f"upstream broker {self.description}: {exc}") from exc

    async def __aenter__(self) -> Self:
        await self.link.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.link.__aexit__(exc_type, exc, tb)
