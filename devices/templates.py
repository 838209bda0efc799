"""The small, safe subset of Home Assistant value templates the gateway understands.

Home Assistant renders Jinja; the gateway never executes templates. It accepts the forms that
Zigbee2MQTT, Z-Wave JS UI, Tasmota and ESPHome emit for reading a value (``{{ value }}``,
``{{ value_json.a.b }}``, ``{{ value_json['a'] }}``), and the two word-choosing forms Z-Wave JS UI emits
(api/hass/DiscoveryGenerator.ts, configurations.ts): a conditional, ``{{'online' if value_json.value else 'offline'}}``
or ``{{ "OFF" if value_json.value == 0 else "ON" }}``, and a lookup with a default,
``{{ {0: "off", 1: "heat"}[value_json.value] | default('off') }}``; a constant word (``{{ "offline" }}``, Zigbee2MQTT's
availability for a disabled device); an empty template reads the payload. Anything else is refused at discovery time.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigInvalid, PayloadInvalid
from .limits import MAX_PAYLOAD_BYTES

__all__ = ["Payload", "ValuePath", "first_key", "keys_by_topic", "parse_template"]

_TEMPLATE = re.compile(
    r"^\{\{\s*(value_json(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\s*'[^']+'\s*\]|\[\s*\"[^\"]+\"\s*\])*|value)\s*\}\}$"
)
_PATH = r"value_json(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\s*'[^']+'\s*\]|\[\s*\"[^\"]+\"\s*\])*|value"
_WORD = r"'[^']{0,64}'|\"[^\"]{0,64}\""
_LITERAL = _WORD + r"|-?\d{1,12}(?:\.\d{1,6})?|true|false|True|False"
# {{ 'A' if PATH else 'B' }} and {{ 'A' if PATH == LITERAL else 'B' }}
_CHOICE = re.compile(
    rf"^\{{\{{\s*(?P<then>{_WORD})\s+if\s+(?P<path>{_PATH})(?:\s*==\s*(?P<test>{_LITERAL}))?"
    rf"\s+else\s+(?P<otherwise>{_WORD})\s*\}}\}}$"
)
# {{ "offline" }}: Zigbee2MQTT's availability template for a device disabled in its configuration
_CONSTANT = re.compile(rf"^\{{\{{\s*(?P<word>{_WORD})\s*\}}\}}$")
# {{ {K: "V", ...}[PATH] | default('D') }}
_LOOKUP = re.compile(
    rf"^\{{\{{\s*\{{(?P<pairs>[^{{}}]{{0,2000}})\}}\s*\[\s*(?P<path>{_PATH})\s*\]\s*\|\s*default\(\s*(?P<default>{_WORD})\s*\)\s*\}}\}}$"
)
_PAIR = re.compile(rf"\s*(?P<key>{_LITERAL})\s*:\s*(?P<value>{_WORD})\s*(?:,|$)")
_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^']+)'\s*\]|\[\s*\"([^\"]+)\"\s*\]")


@dataclass(frozen=True, slots=True)
class Choice:
    """``then`` when the value is truthy (or equals ``test``, when given), else ``otherwise``, as Jinja decides."""

    then: str
    otherwise: str
    test: Any = None
    has_test: bool = False

    def apply(self, value: Any) -> str:
        """The word this value selects."""
        hit = _same(value, self.test) if self.has_test else bool(value)
        return self.then if hit else self.otherwise

    def invert(self, word: Any) -> Any:
        """A value that selects ``word`` (used by simulators)."""
        if word == self.then:
            return self.test if self.has_test else True
        if word == self.otherwise and not self.has_test:
            return False
        raise PayloadInvalid(f"no value selects {str(word)[:32]!r}", code="payload_out_of_range")


@dataclass(frozen=True, slots=True)
class Lookup:
    """The word a value maps to, else ``default``."""

    table: tuple[tuple[Any, str], ...]
    default: str

    def apply(self, value: Any) -> str:
        """The word this value selects."""
        for key, word in self.table:
            if _same(value, key):
                return word
        return self.default

    def invert(self, word: Any) -> Any:
        """A value that selects ``word`` (used by simulators)."""
        for key, mapped in self.table:
            if mapped == word:
                return key
        raise PayloadInvalid(f"no value selects {str(word)[:32]!r}", code="payload_out_of_range")


class ValuePath:
    """Where a value lives in a payload: the raw payload (empty path) or a JSON path, and optionally the word a
    conditional or lookup template turns it into."""

    __slots__ = ("json", "path", "transform")

    def __init__(self, path: tuple[str, ...], *, json_: bool, transform: Choice | Lookup | None = None) -> None:
        self.path = path
        self.json = json_
        self.transform = transform

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ValuePath) and (self.path, self.json, self.transform) == (
            other.path,
            other.json,
            other.transform,
        )

    def __hash__(self) -> int:
        return hash((self.path, self.json, self.transform))

    def __repr__(self) -> str:
        return f"ValuePath({self.path!r}, json_={self.json}, transform={self.transform!r})"

    def extract(self, payload: bytes) -> Any:
        """Return the value this path selects from ``payload``; raise PayloadInvalid when absent."""
        return self.read(Payload(payload))

    def read(self, payload: Payload) -> Any:
        """As ``extract``, from a payload that decodes and parses itself once for every path read from it."""
        if not self.json:
            value: Any = payload.text()
        else:
            value = payload.json()
            for key in self.path:
                if not isinstance(value, dict) or key not in value:
                    raise PayloadInvalid(f"missing key {'.'.join(self.path)!r}", code="payload_missing_field")
                value = value[key]
        return value if self.transform is None else self.transform.apply(value)

    def render(self, value: Any) -> bytes:
        """Build a payload from which ``extract`` reads ``value`` back (used by simulators)."""
        if self.transform is not None:
            value = self.transform.invert(value)
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
    text = "" if template is None else template.strip()
    if not text:
        return RAW  # an empty template reads the payload (Shelly's discovery script sends "val_tpl": "")
    match = _TEMPLATE.match(text)
    if match is not None:
        return _path(match.group(1))
    if (choice := _CHOICE.match(text)) is not None:
        test = choice.group("test")
        transform: Choice | Lookup = Choice(
            _unquote(choice.group("then")),
            _unquote(choice.group("otherwise")),
            None if test is None else _literal(test),
            has_test=test is not None,
        )
        return _path(choice.group("path"), transform)
    if (constant := _CONSTANT.match(text)) is not None:
        return ValuePath((), json_=False, transform=Lookup((), _unquote(constant.group("word"))))
    if (lookup := _LOOKUP.match(text)) is not None:
        pairs = lookup.group("pairs").strip()
        table: list[tuple[Any, str]] = []
        position = 0
        while position < len(pairs):
            pair = _PAIR.match(pairs, position)
            if pair is None or pair.end() == position:
                raise ConfigInvalid(f"unsupported value template {text[:80]!r}", code="unsupported_template")
            table.append((_literal(pair.group("key")), _unquote(pair.group("value"))))
            position = pair.end()
        return _path(lookup.group("path"), Lookup(tuple(table), _unquote(lookup.group("default"))))
    raise ConfigInvalid(f"unsupported value template {text[:80]!r}", code="unsupported_template")


def _path(expr: str, transform: Choice | Lookup | None = None) -> ValuePath:
    if expr == "value":
        return RAW if transform is None else ValuePath((), json_=False, transform=transform)
    parts = tuple(a or b or c for a, b, c in _SEGMENT.findall(expr[len("value_json") :]))
    return ValuePath(parts, json_=True, transform=transform)


def _unquote(word: str) -> str:
    return word[1:-1]


def _literal(text: str) -> Any:
    """A Jinja literal: a quoted string, a number or a boolean."""
    if text[0] in "'\"":
        return _unquote(text)
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    return float(text) if "." in text else int(text)


def _same(value: Any, literal: Any) -> bool:
    """Jinja's ``==``: numbers by value (``1 == 1.0``), but a boolean is no number here and a string no number."""
    if isinstance(value, bool) or isinstance(literal, bool):
        return isinstance(value, bool) and isinstance(literal, bool) and value is literal
    if isinstance(value, int | float) and isinstance(literal, int | float):
        return bool(value == literal)
    return type(value) is type(literal) and bool(value == literal)


def first_key(path: ValuePath) -> frozenset[str] | None:
    """The top-level JSON key a path reads (what a bridge's state request names), or None for the raw payload."""
    return frozenset(path.path[:1]) if path.json and path.path else None


def keys_by_topic(readers: Iterable[tuple[str, ValuePath]]) -> dict[str, frozenset[str] | None]:
    """Per state topic, the top-level keys its readers read (None where one of them reads the whole payload)."""
    keys: dict[str, frozenset[str]] = {}
    whole: set[str] = set()
    for topic, path in readers:
        key = first_key(path)
        if key is None:
            whole.add(topic)
        keys[topic] = keys.get(topic, frozenset()) | (key or frozenset())
    return {topic: None if topic in whole else found for topic, found in keys.items()}


def _decode_text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadInvalid("payload is not UTF-8", code="payload_not_utf8") from exc
