"""Fault-injection commands for simulated devices, as sent on ``<base>/<unit>/<name>/fault`` or ``--fault``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["DEFAULT_OFFLINE_SECONDS", "DEFAULT_REBOOT_SECONDS", "Fault", "FaultInvalid", "FaultKind", "parse_fault"]

DEFAULT_OFFLINE_SECONDS = 10.0
DEFAULT_REBOOT_SECONDS = 2.0
_MAX_FAULT_BYTES = 1024
_SWITCH_WORDS = {"on": True, "off": False, "true": True, "false": False, "1": True, "0": False}


class FaultInvalid(ValueError):
    """A fault payload that is not one of the documented forms."""


class FaultKind(StrEnum):
    """What to break (or mend) on a device."""

    OFFLINE = "offline"
    REBOOT = "reboot"
    IGNORE = "ignore"
    OBEY = "obey"
    JAM = "jam"
    JAM_NEXT = "jam_next"
    BATTERY = "battery"
    LEAK = "leak"


class Fault(BaseModel):
    """One parsed fault: ``seconds`` for offline/reboot, ``value`` a percentage (battery) or a flag (leak)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fault: FaultKind
    seconds: Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)] | None = None
    value: bool | Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Fault:
        timed = self.fault in (FaultKind.OFFLINE, FaultKind.REBOOT)
        if self.seconds is not None and not timed:
            raise ValueError(f"{self.fault} takes no seconds")
        if self.fault is FaultKind.BATTERY:
            if self.value is None or isinstance(self.value, bool):
                raise ValueError("battery needs a percentage value 0..100")
        elif self.fault is FaultKind.LEAK:
            if not isinstance(self.value, bool):
                raise ValueError("leak needs an on/off value")
        elif self.value is not None:
            raise ValueError(f"{self.fault} takes no value")
        return self

    @property
    def percent(self) -> float:
        """The battery percentage of a battery fault."""
        if self.value is None or isinstance(self.value, bool):
            raise FaultInvalid("not a battery fault")
        return float(self.value)

    @property
    def switch(self) -> bool:
        """The on/off flag of a leak fault."""
        if not isinstance(self.value, bool):
            raise FaultInvalid("not a leak fault")
        return self.value


def parse_fault(payload: bytes | str) -> Fault:
    """Parse ``word``, ``word:arg`` or JSON like ``{"fault":"offline","seconds":5}``; raise FaultInvalid."""
    if len(payload) > _MAX_FAULT_BYTES:
        raise FaultInvalid(f"fault payload longer than {_MAX_FAULT_BYTES} bytes")
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    except UnicodeDecodeError as exc:
        raise FaultInvalid("fault payload is not UTF-8") from exc
    text = text.strip()
    if not text:
        raise FaultInvalid("empty fault payload")
    try:
        if text.startswith("{"):
            return Fault.model_validate_json(text)
        return Fault.model_validate(_word_form(text))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "fault"
        raise FaultInvalid(f"{where}: {err.get('msg', 'invalid')}") from exc


def _word_form(text: str) -> dict[str, object]:
    word, sep, arg = text.partition(":")
    try:
        kind = FaultKind(word.strip().lower().replace("-", "_"))
    except ValueError as exc:
        raise FaultInvalid(f"unknown fault {word[:32]!r}") from exc
    if not sep:
        return {"fault": kind}
    arg = arg.strip()
    try:
        if kind in (FaultKind.OFFLINE, FaultKind.REBOOT):
            return {"fault": kind, "seconds": float(arg)}
        if kind is FaultKind.BATTERY:
            return {"fault": kind, "value": float(arg)}
    except ValueError as exc:
        raise FaultInvalid(f"{kind} needs a number, got {arg[:32]!r}") from exc
    if kind is FaultKind.LEAK:
        if arg.lower() not in _SWITCH_WORDS:
            raise FaultInvalid(f"leak needs on or off, got {arg[:32]!r}")
        return {"fault": kind, "value": _SWITCH_WORDS[arg.lower()]}
    raise FaultInvalid(f"{kind} takes no argument")
