"""Properties, units, device bindings and the audit log."""

from .audit import AuditLog
from .models import Binding, Property, Unit
from .service import BuildingService

__all__ = ["AuditLog", "Binding", "BuildingService", "Property", "Unit"]
