"""Errors raised by the device codecs; every one carries a stable machine-readable code."""

from __future__ import annotations

__all__ = ["CommandInvalid", "ConfigInvalid", "DeviceCodecError", "PayloadInvalid"]


class DeviceCodecError(Exception):
    """Root of the codec errors: ``code`` is stable, ``str()`` is for humans."""

    code: str = "codec_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.field = field


class ConfigInvalid(DeviceCodecError):
    """A discovery config that cannot be accepted."""

    code = "config_invalid"


class PayloadInvalid(DeviceCodecError):
    """A state (or, on the device side, a command) payload that cannot be accepted."""

    code = "payload_invalid"


class CommandInvalid(DeviceCodecError):
    """A command that the device kind or the device's advertised limits do not allow."""

    code = "command_invalid"
