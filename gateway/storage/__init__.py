"""SQLite storage: the database owner, migrations and record shapes."""

from .db import Database
from .records import CommandRow, DeviceRow, EntityRow, EventRow

__all__ = ["CommandRow", "Database", "DeviceRow", "EntityRow", "EventRow"]
