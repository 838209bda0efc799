"""What ingest decides on its own: a device's id, an availability verdict, and how a refusal is counted and logged."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from devices import DiscoveryKey, EntityConfig

from ..clock import Clock
from ..mqtt.transport import InboundMessage
from .entity import Entity
from .metrics import Metrics, Rejection
from .ratelimit import RateLimiter

__all__ = ["Refusals", "availability_after", "device_id_of"]

log = logging.getLogger(__name__)
_EXCERPT = 120
_THROTTLE_LOG_SECONDS = 10.0
_PUBLISHER_LOG_SECONDS = 60.0


@dataclass(slots=True)
class _Quiet:
    """When a publisher's refusals were last logged, and how many since were counted but not logged."""

    logged_at: datetime
    unlogged: int = 0


def device_id_of(key: DiscoveryKey, config: EntityConfig) -> str:
    """The device an entity belongs to: its first device identifier, else its node id, else itself."""
    if config.device is not None and config.device.identifiers:
        return config.device.identifiers[0]
    return key.node_id or key.key


def availability_after(entity: Entity, message: InboundMessage) -> bool | None:
    """Whether ``entity`` is available once ``message`` (on one of its availability topics) is counted, recording
    the topic's verdict on the entity; None (nothing recorded) when the payload says neither."""
    entries = [e for e in entity.config.availability_entries() if e.topic == message.topic]
    verdicts = [v for v in (e.decode(message.payload) for e in entries) if v is not None]
    if not verdicts:
        return None
    entity.availability_by_topic[message.topic] = verdicts[0]
    if entity.config.availability_mode == "all":
        return all(entity.availability_by_topic.values())
    if entity.config.availability_mode == "any":
        return any(entity.availability_by_topic.values())
    return verdicts[0]


class Refusals:
    """Counts and logs refused messages: every one counted, a flood logged at most every few seconds per device."""

    def __init__(self, metrics: Metrics, clock: Clock, limiter: RateLimiter | None) -> None:
        self.metrics = metrics
        self.limiter = limiter
        self._clock = clock
        self._publishers: dict[str, _Quiet] = {}  # keyed by credential id (a bounded set), or one key for the unowned

    def allow(self, device_id: str, message: InboundMessage) -> bool:
        """Whether the device's rate limit lets ``message`` through; a refusal is counted (and logged when due)."""
        if self.limiter is None or self.limiter.allow(device_id):
            return True
        self.metrics.rejected["rate_limited"] += 1
        dropped = self.limiter.report_due(device_id, _THROTTLE_LOG_SECONDS)
        if dropped:
            detail = f"{dropped} messages over {self.limiter.rate:g}/s (burst {self.limiter.burst}) dropped"
            self.metrics.recent_rejections.append(
                Rejection(self._clock.now(), message.topic[:200], "rate_limited", detail)
            )
            log.warning(
                "device flooding its topics: messages dropped",
                extra={"device": device_id, "topic": message.topic[:200], "dropped": dropped, "reason": "rate_limited"},
            )
        return False

    def reject(self, message: InboundMessage, reason: str, detail: str, *, publisher: str | None = None) -> bool:
        """Count one refused message and log it with a short excerpt of its payload; with a ``publisher``, a flood
        is logged at most once a minute per publisher (saying how many went unlogged). Whether it was logged."""
        now = self._clock.now()
        self.metrics.reject(Rejection(now, message.topic[:200], reason, detail[:200]))
        unlogged = 0
        if publisher is not None:
            quiet = self._publishers.get(publisher)
            if quiet is not None and (now - quiet.logged_at).total_seconds() < _PUBLISHER_LOG_SECONDS:
                quiet.unlogged += 1
                return False
            unlogged = 0 if quiet is None else quiet.unlogged
            self._publishers[publisher] = _Quiet(now)
        excerpt = message.payload[:_EXCERPT].decode("utf-8", "replace")
        extra: dict[str, object] = {
            "topic": message.topic[:200],
            "reason": reason,
            "detail": detail[:200],
            "excerpt": excerpt,
        }
        if publisher is not None:
            extra.update(publisher=publisher, unlogged=unlogged)
        log.warning("refused message: %s", reason, extra=extra)
        return True
