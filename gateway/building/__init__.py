"""Properties, units and device bindings."""

from .building_service import BuildingService
from .models import Binding, Property, Unit

__all__ = ["Binding", "BuildingService", "Property", "Unit"]
