"""The small, safe subset of Home Assistant value templates the gateway understands.

Home Assistant renders Jinja; the gateway never executes templates. It accepts the forms that
Zigbee2MQTT, Z-Wave JS UI, Tasmota and ESPHome emit for reading a value (``{{ value }}``,
``{{ value_json.a.b }}``, ``{{ value_json['a'] }}``) and refuses anything else at discovery time.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from .errors import ConfigInvalid, PayloadInvalid
from .limits import MAX_PAYLOAD_BYTES

__all__ = ["Payload", "ValuePath", "first_key", "parse_template"]

_TEMPLATE = re.compile(
    r"^\{\{\s*(value_json(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\s*'[^']+'\s*\]|\[\s*\"[^\"]+\"\s*\])*|value)\s*\}\}$"
)
_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^']+)'\s*\]|\[\s*\"([^\"]+)\"\s*\]")


class ValuePath:
    """Where a value lives in a payload: the raw payload (empty path) or a JSON path."""

    __slots__ = ("json", "path")

    def __init__(self, path: tuple[str, ...], *, json_: bool) -> None:
        self.path = path
        self.json = json_

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ValuePath) and (self.path, self.json) == (other.path, other.json)

    def __hash__(self) -> int:
        return hash((self.path, self.json))

    def __repr__(self) -> str:
        return f"ValuePath({self.path!r}, json_={self.json})"

    def extract(self, payload: bytes) -> Any:
        """Return the value this path selects from ``payload``; raise PayloadInvalid when absent."""
        return self.read(Payload(payload))

    def read(self, payload: Payload) -> Any:
        """As ``extract``, from a payload that decodes and parses itself once for every path read from it."""
        if not self.json:
            return payload.text()
        value = payload.json()
        for key in self.path:
            if not isinstance(value, dict) or key not in value:
                raise PayloadInvalid(f"missing key {'.'.join(self.path)!r}", code="payload_missing_field")
            value = value[key]
        return value

    def render(self, value: Any) -> bytes:
        """Build a payload from which ``extract`` reads ``value`` back (used by simulators)."""
        if not self.json:
            return str(value).encode()
        doc: Any = value
        for key in reversed(self.path):
            doc = {key: doc}
        return json.dumps(doc, separators=(",", ":")).encode()


class Payload:
    """One received payload: checked for size, decoded to text and parsed as JSON at most once each."""

    __slots__ = ("_json", "_parsed", "_raw", "_text")

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._text: str | None = None
        self._json: Any = None
        self._parsed = False

    def text(self) -> str:
        """The payload as text; PayloadInvalid when too large or not UTF-8."""
        if self._text is None:
            if len(self._raw) > MAX_PAYLOAD_BYTES:
                raise PayloadInvalid(
                    f"payload of {len(self._raw)} bytes exceeds {MAX_PAYLOAD_BYTES}", code="payload_too_large"
                )
            self._text = _decode_text(self._raw)
        return self._text

    def json(self) -> Any:
        """The payload parsed as JSON; PayloadInvalid when it is not JSON."""
        if not self._parsed:
            try:
                self._json = json.loads(self.text())
            except (ValueError, RecursionError) as exc:
                raise PayloadInvalid(f"not JSON: {exc}", code="payload_not_json") from exc
            self._parsed = True
        return self._json


RAW = ValuePath((), json_=False)


@functools.lru_cache(maxsize=4096)  # the same few templates, read for every state report
def parse_template(template: str | None) -> ValuePath:
    """Parse a value template into a ValuePath; raise ConfigInvalid for anything we do not evaluate."""
    if template is None:
        return RAW
    match = _TEMPLATE.match(template.strip())
    if match is None:
        raise ConfigInvalid(f"unsupported value template {template[:80]!r}", code="unsupported_template")
    expr = match.group(1)
    if expr == "value":
        return RAW
    parts = tuple(a or b or c for a, b, c in _SEGMENT.findall(expr[len("value_json") :]))
    return ValuePath(parts, json_=True)


def first_key(path: ValuePath) -> frozenset[str] | None:
    """The top-level JSON key a path reads (what a bridge's state request names), or None for the raw payload."""
    return frozenset(path.path[:1]) if path.json and path.path else None


def _decode_text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadInvalid("payload is not UTF-8", code="payload_not_utf8") from exc
