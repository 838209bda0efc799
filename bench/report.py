"""Figures beside their targets: the printed table and the JSON file, with the machine they were measured on."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import psutil  # type: ignore[import-untyped]  # no stubs installed

__all__ = ["Figure", "code_version", "machine", "render", "write_json"]

Op = Literal["<", "<=", ">=", "=="]


@dataclass
class Figure:
    """One measured figure, its target (``value op target``) and, where useful, the reference it is judged by."""

    key: str
    label: str
    value: float | None
    unit: str
    op: Op
    target: float
    target_text: str
    reference: str | None = None
    note: str | None = None
    ran: bool = True  # False: the phase did not run (n/a); a phase that ran without a value missed its target

    @property
    def passed(self) -> bool | None:
        """Whether the target is met; False when the phase ran but reached no value, None when it did not run."""
        if self.value is None:
            return False if self.ran else None
        return {
            "<": self.value < self.target,
            "<=": self.value <= self.target,
            ">=": self.value >= self.target,
            "==": self.value == self.target,
        }[self.op]

    def as_json(self) -> dict[str, Any]:
        """The figure for the JSON file."""
        data = asdict(self)
        data["pass"] = self.passed
        return data


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=False)


def code_version(repo: Path) -> dict[str, object]:
    """The git commit measured, and whether the work tree had uncommitted changes (None when not a git tree)."""
    try:
        head = _git(repo, "rev-parse", "HEAD")
        status = _git(repo, "status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "uncommitted_changes": None}
    if head.returncode != 0:
        return {"commit": None, "uncommitted_changes": None}
    return {"commit": head.stdout.strip(), "uncommitted_changes": bool(status.stdout.strip())}


def machine(broker: dict[str, object]) -> dict[str, object]:
    """CPU model and count, memory, OS, Python, and the broker with its version and configuration."""
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "broker": broker,
    }


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit in ("msg/s", "devices", "commands", "messages"):
        return f"{value:,.0f} {unit}"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:.2f} {unit}" if unit else f"{value:g}"


def render(meta: dict[str, Any], figures: list[Figure]) -> str:
    """The report as text: the machine, the run's settings, then one row per figure with PASS/FAIL."""
    m = meta["machine"]
    b = m["broker"]
    dirty = " + uncommitted changes" if meta["code"]["uncommitted_changes"] else ""
    lines = [
        f"machine: {m['cpu']} x {m['cpus']}, {m['memory_gib']} GiB, {m['os']}, {m['python']}",
        f"broker:  {b['kind']} {b['version']} at {b['url']}; config: {b['config']}",
        "run:     " + ", ".join(f"{k} {v}" for k, v in meta["run"].items()),
        f"code:    commit {meta['code']['commit']}{dirty}",
    ]
    lines += [f"note:    {n}" for n in meta.get("notes", [])]
    rows = [("figure", "value", "target", "result")]
    for f in figures:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[f.passed]
        rows.append((f.label, _number(f.value, f.unit), f.target_text, verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines.append("")
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"  {f.label}: {' '.join(x for x in (f.reference, f.note) if x)}" for f in figures]
    notes = [n for f, n in zip(figures, notes, strict=True) if f.reference or f.note]
    if notes:
        lines += ["", "where the figures come from:", *notes]
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], figures: list[Figure], details: dict[str, Any]) -> None:
    """Write the figures, the machine and the raw details as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**meta, "figures": [f.as_json() for f in figures], "details": details}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
