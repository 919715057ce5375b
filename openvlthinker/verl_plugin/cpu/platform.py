"""verl's platform ``cpu``: device ``cpu``, process-group backend ``gloo``, Ray resource ``GPU``.

verl reaches the device through ``get_torch_device()`` (the platform's device module):
``empty_cache``, ``mem_get_info``, RNG state, streams... ``torch.cpu`` has only some of
them, so :data:`DEVICE_MODULE` adds the rest as the no-ops or host-memory answers a CPU
gives. The Ray resource stays ``GPU``: verl's placement groups ask for GPUs, which the CPU
run provides as logical resources (``ray_init.num_gpus``, ``ray start --num-gpus``).
"""

from __future__ import annotations

import contextlib
import os
import types
from typing import Any

import torch
from verl.plugin.platform.platform_base import PlatformBase

#: What ``VERL_PLATFORM`` names.
PLATFORM = "cpu"


def _host_memory() -> tuple[int, int]:
    """(free, total) bytes of host memory, as ``torch.cuda.mem_get_info`` reports a GPU's."""
    page = os.sysconf("SC_PAGE_SIZE")
    return os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page


def _zero(*_args: Any, **_kwargs: Any) -> int:
    return 0


def _none(*_args: Any, **_kwargs: Any) -> None:
    return None


def _device_module() -> types.ModuleType:
    """``torch.cpu`` plus the ``torch.cuda`` calls verl makes that a CPU answers trivially."""
    module = types.ModuleType("openvlthinker_cpu_device")
    for name in dir(torch.cpu):
        if not name.startswith("_"):
            setattr(module, name, getattr(torch.cpu, name))
    module.is_available = lambda: True
    module.device_count = lambda: 1
    module.set_device = _none
    module.empty_cache = _none
    module.ipc_collect = _none
    module.reset_peak_memory_stats = _none
    module.set_per_process_memory_fraction = _none
    module.manual_seed = torch.manual_seed
    module.manual_seed_all = torch.manual_seed
    module.get_rng_state = lambda *_a, **_k: torch.get_rng_state()
    module.set_rng_state = lambda state, *_a, **_k: torch.set_rng_state(state)
    module.mem_get_info = lambda *_a, **_k: _host_memory()
    for stat in (
        "memory_allocated",
        "memory_reserved",
        "max_memory_allocated",
        "max_memory_reserved",
    ):
        setattr(module, stat, _zero)
    module.get_device_name = lambda *_a, **_k: "cpu"
    module.get_device_capability = lambda *_a, **_k: (None, None)
    return module


DEVICE_MODULE = _device_module()


class CPUPlatform(PlatformBase):
    """The host CPU as verl's accelerator (gloo collectives, FSDP2 on CPU tensors)."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        return DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # never auto-detected: only VERL_PLATFORM=cpu selects it
        return False

    def current_device(self) -> str:  # type: ignore[override]
        # verl uses it as a device (tensor.to(get_device_id())): an index would mean cuda:0
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        # Ray sets it for actors holding logical GPUs; nothing on a CPU reads it
        return "CUDA_VISIBLE_DEVICES"

    @contextlib.contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None
