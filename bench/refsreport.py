"""The ingest references' figures, each beside its target, with the load average it was measured under."""

from __future__ import annotations

from .refs import PUBLISHER_HEADROOM, RefPass, RefsResult
from .report import Figure

__all__ = ["CPU_RATIO", "INGEST_SHARE", "REALISTIC_RATIO", "refs_figures"]

INGEST_SHARE = 0.5  # of a bare paho subscriber's rate
CPU_RATIO = 2.5  # CPU per state message, times a bare gmqtt subscriber's
REALISTIC_RATIO = 2.0  # CPU per message at a realistic rate, times the saturated cost


def _line(p: RefPass) -> str:
    rate = "did not finish" if p.rate is None else f"{p.rate:,.0f} msg/s"
    cpu = "n/a" if p.cpu_us_per_message is None else f"{p.cpu_us_per_message:.0f} µs/msg"
    bound = " (within 80 % of the publisher: may be publisher-bound)" if p.publisher_bound else ""
    return (
        f"{p.consumer} {rate}, {cpu}, {p.received:,}/{p.messages:,} received, {p.lost} lost, {p.duplicated} "
        f"duplicated; publisher sent at {p.publisher_rate:,.0f} msg/s{bound}; load avg {p.load_avg:.2f}"
    )


def refs_figures(r: RefsResult) -> list[Figure]:
    """Ingest share of paho, CPU per message against gmqtt, per-message loss, publisher headroom, realistic rate."""
    gw, paho, gmqtt = r.of("gateway"), r.of("paho"), r.of("gmqtt")
    assert gw is not None
    every = "; ".join(_line(p) for p in r.passes)
    how = (
        f"{gw.messages:,} state messages ({r.rounds} rounds x {r.devices:,} devices, QoS 1, retained, each device at "
        f"most {r.device_rate:g}/s) from a raw-socket publisher"
    )
    figures: list[Figure] = []
    paho_rate = paho.rate if paho is not None else None
    figures.append(
        Figure(
            "ingest_share_of_paho",
            "ingest, share of a bare paho subscriber",
            None if gw.rate is None or not paho_rate else gw.rate / paho_rate,
            "x",
            ">=",
            INGEST_SHARE,
            f">= {INGEST_SHARE:g}x bare paho",
            reference=every + ".",
            note=how + "; the gateway's rate runs to every last state and every state event stored in SQLite.",
            ran=paho_rate is not None,
        )
    )
    gw_cpu, gm_cpu = gw.cpu_us_per_message, gmqtt.cpu_us_per_message if gmqtt is not None else None
    figures.append(
        Figure(
            "cpu_per_message_vs_gmqtt",
            "CPU per state message, times a bare gmqtt subscriber's",
            None if gw_cpu is None or not gm_cpu else gw_cpu / gm_cpu,
            "x",
            "<=",
            CPU_RATIO,
            f"<= {CPU_RATIO:g}x bare gmqtt",
            reference=(
                f"gateway {gw_cpu or 0:.0f} µs/msg, gmqtt {gm_cpu or 0:.0f} µs/msg; load avg {gw.load_avg:.2f}"
                if gm_cpu
                else "gmqtt not installed: " + "; ".join(r.skipped)
            ),
            ran=gm_cpu is not None,
        )
    )
    figures.append(
        Figure(
            "ingest_lost_messages",
            "state changes lost or recorded twice (per message)",
            float(gw.lost + gw.duplicated),
            "messages",
            "==",
            0.0,
            "0",
            note=(
                f"each published change must be one 'state' event in the gateway's events table: {gw.lost} missing, "
                f"{gw.duplicated} twice, of {gw.messages:,}; bare subscribers lost "
                + ", ".join(f"{p.consumer} {p.lost}" for p in r.passes if p.consumer != "gateway")
                + f"; load avg {gw.load_avg:.2f}"
            ),
        )
    )
    fastest = max((p.rate or 0.0 for p in r.passes), default=0.0)
    slowest_publisher = min(p.publisher_rate for p in r.passes)
    figures.append(
        Figure(
            "publisher_headroom",
            "publisher's send rate, times the fastest consumer's",
            slowest_publisher / fastest if fastest else None,
            "x",
            ">=",
            1 / PUBLISHER_HEADROOM,
            f">= {1 / PUBLISHER_HEADROOM:g}x (else the references may be publisher-bound)",
            note=f"slowest publisher pass {slowest_publisher:,.0f} msg/s, fastest consumer {fastest:,.0f} msg/s; "
            "the publisher is paced at the device rate, raise --device-rate for more headroom",
        )
    )
    if r.realistic is not None:
        real = r.realistic
        figures.append(
            Figure(
                "realistic_cpu_ratio",
                "CPU per message at a realistic rate, times saturated",
                # No ratio when the saturated pass used less CPU than the clock resolves (a tiny run: 0 ticks).
                real.cpu_us_per_message / gw_cpu if gw_cpu else None,
                "x",
                "<=",
                REALISTIC_RATIO,
                f"<= {REALISTIC_RATIO:g}x saturated",
                note=(
                    f"{real.messages:,} reports over {real.seconds:.0f} s ({real.messages / real.seconds:,.0f} msg/s): "
                    f"{real.cpu_us_per_message:.0f} µs/msg ({100 * real.cpu_s / real.seconds:.1f} % of a core) "
                    f"against {gw_cpu or 0:.0f} saturated; {real.lost} lost; load avg {real.load_avg:.2f}"
                ),
            )
        )
    return figures
