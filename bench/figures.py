"""What was measured, and the figures made of it, each beside its target."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .commands import Latencies
from .footprint import IdleCpu
from .ingest import IngestResult
from .report import Figure
from .storms import StormResult

__all__ = ["Measured", "build_figures", "latency_summary"]

INGEST_SHARE = 0.5  # the gateway takes in and persists at least half of what a bare subscriber receives
P50_FACTOR = 3.0  # command p50 within 3x the bare MQTT round trip's
P99_MS = 10.0
STORM_SECONDS = 10.0
RSS_MB = 150.0
IDLE_CPU_PERCENT = 5.0


@dataclass
class Measured:
    """Everything measured, phase by phase (None: the phase did not run)."""

    fleet_start_s: float | None = None
    start: StormResult | None = None
    ingest: IngestResult | None = None
    idle: IdleCpu | None = None
    bare_commands: Latencies | None = None
    gateway_commands: Latencies | None = None
    gateway_service: Latencies | None = None  # recorded -> finished, from the gateway's own commands table
    gateway_commands_cpu_s: float | None = None  # the gateway's CPU time during the measured HTTP commands
    httpx_commands: Latencies | None = None  # the same commands with httpx as the client (a note)
    reconnect: StormResult | None = None
    peak_rss_mb: float | None = None
    rss_source: str = ""
    rss_mb: dict[str, float] = field(default_factory=dict)  # current RSS after each phase
    reconnect_skipped: str | None = None


def latency_summary(lat: Latencies | None) -> dict[str, Any] | None:
    """Count, failures, duration and quantiles of one series of round trips."""
    if lat is None:
        return None
    return {
        "count": len(lat.ms),
        "failures": lat.failures,
        "seconds": round(lat.seconds, 3),
        "p50_ms": lat.p(0.5),
        "p90_ms": lat.p(0.9),
        "p99_ms": lat.p(0.99),
        "max_ms": max(lat.ms, default=None),
    }


def _ingest(i: IngestResult) -> list[Figure]:
    bare, gw = i.bare.rate, i.gateway.rate
    cap = i.devices * i.device_rate
    share = f"; the gateway reached {gw / bare:.0%} of it" if bare and gw else ""
    if gw is None:
        share += f"; the gateway's stored states never all matched the last ones published within {i.timeout:g} s"
    if bare is None:
        share = f" (not all {i.bare.messages:,} messages within {i.timeout:g} s: nothing to compare with)"
    how = (
        f"{i.gateway.messages:,} state messages ({i.rounds} rounds x {i.devices:,} devices, QoS 1, retained, "
        f"each device at most {i.device_rate:g}/s, so the publisher is capped at {cap:,.0f} msg/s; it sent at "
        f"{i.gateway.messages / max(i.gateway.publisher_send_s, 1e-9):,.0f} msg/s), timed from the first publish "
        "until the last device's last state was in SQLite (the gateway flushes every 0.2 s)"
    )
    if i.gateway_cpu_s is not None:
        per_message = 1e6 * i.gateway_cpu_s / i.gateway.messages
        how += f"; the gateway used {i.gateway_cpu_s:.2f} CPU s ({per_message:.0f} µs per message)"
    return [
        Figure(
            "ingest_rate",
            "telemetry ingest (taken in and persisted)",
            gw if bare is not None else None,
            "msg/s",
            ">=",
            INGEST_SHARE * (bare or 0.0),
            f">= {INGEST_SHARE:.0%} of bare ({INGEST_SHARE * (bare or 0.0):,.0f} msg/s)",
            reference=f"bare aiomqtt subscriber on the same broker: {bare or 0:,.0f} msg/s{share}.",
            note=how + ".",
            ran=bare is not None,
        ),
        Figure(
            "ingest_lost_updates",
            "lost state updates",
            float(i.lost),
            "devices",
            "==",
            0.0,
            "0",
            note=(
                f"devices whose stored state is not the last one published; the gateway recorded "
                f"{i.state_events:,} of {i.gateway.messages:,} messages as state changes (each was one). The bare "
                f"subscriber got {i.bare_received:,} messages and ended on an older one than the last published on "
                f"{i.bare_stale:,} of {i.devices:,} topics (a broker delivering out of order)."
            ),
        ),
    ]


def _commands(
    bare: Latencies, gw: Latencies, service: Latencies | None, cpu_s: float | None, heavy: Latencies | None
) -> list[Figure]:
    bare50, bare99 = bare.p(0.5), bare.p(0.99)
    failed = sum(gw.failures.values())
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(gw.failures.items()))
    inside = ""
    if service is not None and service.ms:
        inside = (
            f" Inside the gateway's command service (recorded -> outcome, from its commands table): "
            f"p50 {service.p(0.5) or 0:.2f} ms, p99 {service.p(0.99) or 0:.2f} ms; the rest is HTTP, the session "
            "check and the service's rules."
        )
    if cpu_s is not None and gw.ms:
        inside += f" The gateway used {1000 * cpu_s / len(gw.ms):.2f} ms of CPU per command."
    if heavy is not None and heavy.ms:
        inside += (
            f" Client: h11 on one keep-alive connection; the same commands through httpx ({len(heavy.ms):,}): "
            f"p50 {heavy.p(0.5) or 0:.2f} ms, p99 {heavy.p(0.99) or 0:.2f} ms (httpx's own CPU per request)."
        )
    return [
        Figure(
            "command_p50_ms",
            "command round trip p50 (HTTP)",
            gw.p(0.5) if bare50 is not None else None,
            "ms",
            "<=",
            P50_FACTOR * (bare50 or 0.0),
            f"<= {P50_FACTOR:g}x bare ({P50_FACTOR * (bare50 or 0.0):.2f} ms)",
            reference=f"bare MQTT round trip p50 {bare50 or 0:.2f} ms over {len(bare.ms):,} commands.",
            note=f"{len(gw.ms):,} sequential confirmed commands (HTTP -> MQTT -> simulator -> state -> HTTP).{inside}",
            ran=bare50 is not None,
        ),
        Figure(
            "command_p99_ms",
            "command round trip p99 (HTTP)",
            gw.p(0.99),
            "ms",
            "<",
            P99_MS,
            f"< {P99_MS:g} ms",
            reference=f"bare MQTT round trip p99 {bare99 or 0:.2f} ms.",
        ),
        Figure(
            "commands_unconfirmed",
            "commands not confirmed",
            float(failed),
            "commands",
            "==",
            0.0,
            "0",
            note=reasons or None,
        ),
    ]


def _words(key: str) -> str:
    return key.removesuffix("_s").replace("_", " ")


def _storm(key: str, label: str, storm: StormResult | None, skipped: str | None) -> Figure:
    note: str | None
    if storm is None:
        note = skipped
    elif storm.seconds is None:
        note = f"only {storm.online:,}/{storm.devices:,} devices online after {storm.timeout:g} s."
    else:
        parts = [f"{_words(k)} {v:.2f} s" for k, v in storm.details.items() if v is not None]
        note = f"{storm.devices:,} devices, read from the gateway's SQLite"
        if parts:
            note += f" ({', '.join(parts)})"
    value = None if storm is None else storm.seconds
    target = f"< {STORM_SECONDS:g} s"
    return Figure(key, label, value, "s", "<", STORM_SECONDS, target, note=note, ran=storm is not None)


def _rss_note(m: Measured) -> str | None:
    if not m.rss_source:
        return None
    now = ", ".join(f"{phase} {mb:.0f}" for phase, mb in m.rss_mb.items())
    return f"{m.rss_source}, over the whole run, in 10^6 bytes; RSS at the time, in MB: {now}."


def build_figures(m: Measured) -> list[Figure]:
    """The figures, in report order; a phase that did not run gives figures without a value."""
    out: list[Figure] = []
    if m.ingest is not None:
        out += _ingest(m.ingest)
    if m.bare_commands is not None and m.gateway_commands is not None:
        out += _commands(
            m.bare_commands, m.gateway_commands, m.gateway_service, m.gateway_commands_cpu_s, m.httpx_commands
        )
    out.append(_storm("start_storm_s", "start storm (all discovered and online)", m.start, None))
    label = "reconnect storm (after a broker restart)"
    out.append(_storm("reconnect_storm_s", label, m.reconnect, m.reconnect_skipped))
    out.append(
        Figure(
            "peak_rss_mb",
            "gateway peak RSS",
            m.peak_rss_mb,
            "MB",
            "<",
            RSS_MB,
            f"< {RSS_MB:g} MB",
            note=_rss_note(m),
        )
    )
    idle = m.idle
    out.append(
        Figure(
            "idle_cpu_percent",
            "gateway CPU at idle",
            None if idle is None else idle.percent,
            "% of a core",
            "<",
            IDLE_CPU_PERCENT,
            f"< {IDLE_CPU_PERCENT:g}% of a core",
            note=None if idle is None else f"{idle.cpu_seconds:.2f} CPU s over {idle.seconds:.1f} s with no traffic.",
        )
    )
    return out
