"""verl on a CPU: platform ``cpu``, gloo process groups, the ``hf`` rollout, images without
torchvision. Importing this package registers all of it with verl's extension points.

``openvlthinker.cpu: true`` makes ``openvlthinker-verl`` name this package in
``VERL_USE_EXTERNAL_MODULES`` (verl imports it in every Ray process) and set
``VERL_PLATFORM=cpu`` (see :mod:`openvlthinker.verl_plugin.cpu.settings`). Nothing here is
imported on the GPU path.
"""

from __future__ import annotations

from verl.plugin.platform.platform_manager import PlatformRegistry
from verl.workers.rollout import base as _rollout_base
from verl.workers.rollout.replica import RolloutReplicaRegistry

from openvlthinker.verl_plugin.cpu import distributed
from openvlthinker.verl_plugin.cpu.platform import PLATFORM, CPUPlatform
from openvlthinker.verl_plugin.cpu.rollout import ROLLOUT_NAME, HFReplica
from openvlthinker.verl_plugin.cpu.settings import CPU_MODULE
from openvlthinker.verl_plugin.cpu.vision import has_torchvision, register_processors


def register() -> None:
    """Register platform, rollout and (without torchvision) processors; idempotent."""
    PlatformRegistry.register(PLATFORM)(CPUPlatform)
    RolloutReplicaRegistry.register(ROLLOUT_NAME, lambda: HFReplica)
    # verl has no public register call for the in-worker adapter; its registry is this dict
    _rollout_base._ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = (
        "openvlthinker.verl_plugin.cpu.rollout.HFRolloutAdapter"
    )
    distributed.install()
    if not has_torchvision():
        register_processors()


register()

__all__ = ["CPU_MODULE", "CPUPlatform", "HFReplica", "register"]
