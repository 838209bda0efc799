"""Structured logs: one JSON object a line (or plain text for a terminal), extra fields included."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

__all__ = ["JsonFormatter", "configure_logging"]

# uvicorn adds "color_message" (ANSI-coloured copy of the message) to its records.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with its ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object."""
        body: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        body.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        return f"{base} {json.dumps(extra, default=str, ensure_ascii=False)}" if extra else base


def configure_logging(level: str = "info", fmt: Literal["json", "text"] = "json") -> None:
    """Send the gateway's logs to stderr; amqtt's and paho's chatter is kept at warning."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else _TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("amqtt", "transitions", "asyncio", "aiomqtt", "paho", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # amqtt logs an expected CancelledError traceback at shutdown as an error; it is not one.
    logging.getLogger("amqtt.broker").setLevel(logging.CRITICAL)
