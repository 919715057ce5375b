"""The process-group backend on a CPU: one ``gloo`` for the one device type.

verl builds ``"cpu:gloo,{device}:{backend}"`` (``verl/utils/distributed.py``), which on the
``cpu`` platform is ``"cpu:gloo,cpu:gloo"``; torch rejects the repeated device type
("Duplicate device type cpu", verl issue #6237). :func:`install` wraps
``torch.distributed.init_process_group`` so that a backend string naming a device type
twice keeps its first entry; every other call passes through unchanged.
"""

from __future__ import annotations

import functools
from typing import Any

import torch.distributed


def collapse_backend(backend: Any) -> Any:
    """``"cpu:gloo,cpu:gloo"`` -> ``"cpu:gloo"``; anything without a repeat is returned as is."""
    if not isinstance(backend, str) or "," not in backend:
        return backend
    kept: dict[str, str] = {}
    for entry in backend.split(","):
        device, _, name = entry.strip().partition(":")
        if not name:
            return backend  # not a device:backend list
        kept.setdefault(device, name)
    if len(kept) == len(backend.split(",")):
        return backend
    return ",".join(f"{d}:{n}" for d, n in kept.items())


def install() -> None:
    """Wrap ``torch.distributed.init_process_group`` once per process."""
    original = torch.distributed.init_process_group
    if getattr(original, "_openvlthinker_cpu", False):
        return

    @functools.wraps(original)
    def init_process_group(backend: Any = None, *args: Any, **kwargs: Any) -> Any:
        return original(collapse_backend(backend), *args, **kwargs)

    init_process_group._openvlthinker_cpu = True  # type: ignore[attr-defined]
    torch.distributed.init_process_group = init_process_group
