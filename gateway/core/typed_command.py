"""A device command typed once, at the edge: parsed into its kind's model and checked against the device."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from devices import Command, CommandInvalid, Publish

from ..errors import CommandRejected
from .entity import Entity

__all__ = ["TypedCommand", "type_command"]


@dataclass(frozen=True, slots=True)
class TypedCommand:
    """A command for one entity, valid for that very device, with the messages that carry it (made by
    ``type_command``; it travels unchanged through the decision to the publish)."""

    entity: Entity
    command: Command
    publishes: tuple[Publish, ...]

    @property
    def body(self) -> dict[str, Any]:
        """The command as recorded: the fields that are set."""
        return self.command.model_dump(exclude_none=True)


def type_command(entity: Entity, command: Command | Mapping[str, Any]) -> TypedCommand:
    """Parse ``command`` into the entity's command model and encode it for the device; CommandRejected naming the
    field otherwise (``not_commandable``, ``wrong_kind``, ``command_invalid``, ``out_of_range``,
    ``unsupported_feature``)."""
    model = entity.config.command_model
    if model is None:
        raise CommandRejected(f"{entity.kind} devices take no commands", code="not_commandable")
    if isinstance(command, model):
        parsed = command
    elif isinstance(command, Command):
        raise CommandRejected(f"{entity.kind} devices take a different command", code="wrong_kind")
    else:
        try:
            parsed = model.model_validate(dict(command))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err.get("loc", ())) or None
            raise CommandRejected(
                f"{field + ': ' if field else ''}{err.get('msg', 'invalid')}", code="command_invalid", field=field
            ) from exc
    try:
        publishes = entity.config.encode_command_from(parsed, entity.state)
    except CommandInvalid as exc:
        raise CommandRejected(str(exc), code=exc.code, field=exc.field) from exc
    return TypedCommand(entity, parsed, tuple(publishes))
