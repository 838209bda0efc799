"""Limits every codec applies before it reads a payload."""

from __future__ import annotations

__all__ = ["MAX_PAYLOAD_BYTES"]

MAX_PAYLOAD_BYTES = 64 * 1024
"""Largest discovery config or state payload the gateway parses; larger ones are refused unread."""
