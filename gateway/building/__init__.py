"""Properties, units, device bindings and bound devices' pinned wiring."""

from .building_service import BuildingService
from .models import Binding, Property, Unit
from .wiring_service import DeviceWiring, EntityWiringView, WiringService

__all__ = ["Binding", "BuildingService", "DeviceWiring", "EntityWiringView", "Property", "Unit", "WiringService"]
