"""The broker round trip: publish to the gateway's own echo topic and wait for the broker to deliver it back."""

from __future__ import annotations

import asyncio
import secrets
import time

from ..errors import BrokerUnavailable
from ..mqtt.transport import InboundMessage, MqttLink

__all__ = ["BrokerEcho"]


class BrokerEcho:
    """Round trips through the broker on ``<prefix>/<nonce>``; the gateway routes that prefix here."""

    def __init__(self, link: MqttLink, prefix: str) -> None:
        self.link = link
        self.prefix = prefix.rstrip("/") + "/"
        self._waiting: dict[str, asyncio.Future[None]] = {}

    @property
    def topic_filter(self) -> str:
        """What the gateway subscribes to."""
        return f"{self.prefix}+"

    def owns(self, topic: str) -> bool:
        """Whether a received message is an echo."""
        return topic.startswith(self.prefix)

    def handle(self, message: InboundMessage) -> None:
        """An echo came back."""
        future = self._waiting.get(message.topic[len(self.prefix) :])
        if future is not None and not future.done():
            future.set_result(None)

    async def round_trip(self, timeout: float) -> float:
        """Milliseconds from publish to delivery back; BrokerUnavailable when the broker is down or silent."""
        nonce = secrets.token_hex(8)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[nonce] = future
        started = time.perf_counter()
        try:
            # Measured as the broker delivers it, not after a held read (gateway.mqtt.hold).
            with self.link.expedite():
                async with asyncio.timeout(timeout):
                    await self.link.publish(f"{self.prefix}{nonce}", b"echo", qos=1)
                    await future
        except TimeoutError as exc:
            raise BrokerUnavailable(f"the broker did not deliver the echo back within {timeout:g} s") from exc
        finally:
            del self._waiting[nonce]
        return round((time.perf_counter() - started) * 1000, 3)
