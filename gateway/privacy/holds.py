"""The privacy requests' holds as the retention purge asks for them: open requests and restrictions keep their
person's and unit's rows."""

from __future__ import annotations

from collections.abc import Sequence

from ..retention import Hold
from .privacy_service import PrivacyService

__all__ = ["RequestHolds"]


class RequestHolds:
    """A retention ``HoldSource``: what a privacy request waiting for staff, or a restriction in force, needs kept."""

    def __init__(self, privacy: PrivacyService) -> None:
        self._privacy = privacy

    async def holds(self) -> Sequence[Hold]:
        """One hold over every account and unit a request or restriction concerns now (none when there is none)."""
        held = await self._privacy.holds()
        if not held.account_ids and not held.unit_ids:
            return ()
        return (
            Hold(
                reason="a privacy request awaiting an answer, or a restriction in force",
                account_ids=held.account_ids,
                unit_ids=held.unit_ids,
            ),
        )
