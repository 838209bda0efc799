"""Device firmware: what each device's update entity reports, and staged rollouts started by staff."""

from .models import DeviceFirmware, DeviceStep, Rollout, RolloutDevice, RolloutRules, RolloutScope, RolloutStatus
from .plan import stages
from .rollout_service import FirmwareService

__all__ = [
    "DeviceFirmware",
    "DeviceStep",
    "FirmwareService",
    "Rollout",
    "RolloutDevice",
    "RolloutRules",
    "RolloutScope",
    "RolloutStatus",
    "stages",
]
