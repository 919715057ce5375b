"""``actor_rollout_ref.actor.freeze_vision_tower`` on verl 0.9.1's FSDP engine.

verl 0.9.1 declares the key (``ActorConfig.freeze_vision_tower``) but nothing reads it: its
V1 FSDP engine trains the vision tower whatever the key says. ``openvlthinker-verl`` sets
:data:`FREEZE_ENV` in every Ray process when the key is true, and importing the plugin there
wraps ``FSDPEngine._build_module`` so that the actor's model leaves it with its vision tower
(``model.visual``, encoder and merger, the engine's ``model.freeze_vision_tower``) frozen,
before LoRA and FSDP wrapping. Forward-only engines (reference) and value models are left
alone. With LoRA the base model, tower included, is frozen by peft anyway.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

#: Set to "1" by openvlthinker-verl (driver and Ray runtime env) to freeze the actor's tower.
FREEZE_ENV = "OPENVLTHINKER_FREEZE_VISION_TOWER"
_MARK = "_openvlthinker_freezes_vision_tower"


def freeze_requested() -> bool:
    return os.environ.get(FREEZE_ENV) == "1"


def freeze_for_engine(engine: Any, module: Any) -> Any:
    """Freeze ``module``'s vision tower when ``engine`` trains the actor's language model."""
    from openvlthinker.engine.lora import freeze_vision_tower

    if not freeze_requested() or engine.engine_config.forward_only:
        return module
    if engine.model_config.model_type != "language_model":
        return module
    frozen = freeze_vision_tower(module)
    logger.info("actor_rollout_ref.actor.freeze_vision_tower: %d vision parameters frozen", frozen)
    return module


def install_vision_freeze() -> None:
    """Wrap verl's ``FSDPEngine._build_module`` once (idempotent)."""
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    original = FSDPEngine._build_module
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def _build_module(self):
        return freeze_for_engine(self, original(self))

    setattr(_build_module, _MARK, True)
    FSDPEngine._build_module = _build_module
