"""The ``model`` section: which policy (a Hugging Face folder, or the tiny model of
``model.tiny``), its dtype, device, attention backend and image limits, LoRA and the frozen
vision tower (verl's ``actor_rollout_ref.model`` keys where verl has them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from openvlthinker.engine.config.base import RESUME_FREE, Section
from openvlthinker.engine.config.tiny import TinySpec
from openvlthinker.engine.lora import EXCLUDE_VISION_TOWER


def _is_names(value: Any, allow_none: bool) -> bool:
    """A peft module selector: a string (regex or all-linear) or a list of strings."""
    if value is None:
        return allow_none
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, list | tuple) and all(isinstance(x, str) and x for x in value)


@dataclass
class ModelConfig(Section):
    SECTION = "model"

    path: str | None = field(
        default=None,
        metadata={
            "help": "HF checkpoint folder (e.g. Qwen3-VL-8B-Instruct); null builds the tiny model."
        },
    )
    tiny: TinySpec = field(
        default_factory=TinySpec, metadata={"help": "Sizes of the random-init tiny model."}
    )
    cache_dir: str = field(
        default="~/.cache/openvlthinker",
        metadata={"help": "Where the tiny checkpoint is saved once.", **RESUME_FREE},
    )
    dtype: str = field(
        default="float32", metadata={"help": "Parameter dtype: float32, bfloat16 or float16."}
    )
    device: str = field(
        default="auto", metadata={"help": "auto (cuda when available), cpu or cuda[:i]."}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations in backward (saves memory)."}
    )
    attn_implementation: str | None = field(
        default=None,
        metadata={
            "help": "Attention backend passed to from_pretrained (sdpa, eager, flash_attention_2, "
            "...); null = transformers' default."
        },
    )
    min_pixels: int = field(
        default=32 * 32, metadata={"help": "Smallest image area after resizing (pixels)."}
    )
    max_pixels: int = field(
        default=128 * 128, metadata={"help": "Largest image area after resizing (pixels)."}
    )
    # LoRA and vision-tower keys are verl's (actor_rollout_ref.model.*), same meaning.
    lora_rank: int = field(
        default=0, metadata={"help": "LoRA rank (peft); 0 = off (full fine-tuning)."}
    )
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling factor alpha."})
    target_modules: Any = field(
        default="all-linear",
        metadata={
            "help": "Layers given adapters: all-linear (every linear layer but the LM head), a "
            "list of module-name suffixes or a regex (peft's target_modules)."
        },
    )
    exclude_modules: Any = field(
        default=EXCLUDE_VISION_TOWER,
        metadata={
            "help": "Layers never given adapters (peft regex or list); the default keeps them out "
            "of the vision tower, so LoRA adapts the language model only."
        },
    )
    lora_adapter_path: str | None = field(
        default=None,
        metadata={
            "help": "Continue from this peft adapter folder (e.g. a checkpoint's model/); its "
            "adapter_config.json sets rank, alpha and targets. Needs lora_rank > 0."
        },
    )
    freeze_vision_tower: bool = field(
        default=False,
        metadata={
            "help": "No gradient to the vision encoder and merger (model.visual); with or without "
            "LoRA (verl: actor_rollout_ref.actor.freeze_vision_tower)."
        },
    )

    def __post_init__(self) -> None:
        self._check(
            self.dtype in ("float32", "bfloat16", "float16"),
            "dtype",
            "use float32, bfloat16 or float16",
        )
        self._check(
            self.device in ("auto", "cpu") or self.device.startswith("cuda"),
            "device",
            "use auto, cpu or cuda[:i]",
        )
        self._check(
            0 < self.min_pixels <= self.max_pixels,
            "min_pixels",
            "needs 0 < min_pixels <= max_pixels",
        )
        self._check(self.lora_rank >= 0, "lora_rank", "must be >= 0 (0 = off)")
        self._check(self.lora_alpha > 0, "lora_alpha", "must be > 0")
        self._check(
            _is_names(self.target_modules, allow_none=False),
            "target_modules",
            "use all-linear, a regex string or a list of module names",
        )
        self._check(
            _is_names(self.exclude_modules, allow_none=True),
            "exclude_modules",
            "use a regex string, a list of module names or null",
        )
        if self.lora_adapter_path is not None:
            self._check(
                self.lora_rank > 0,
                "lora_adapter_path",
                "needs model.lora_rank > 0 (as in verl, the adapter is read only with LoRA on)",
            )
            adapter = os.path.expanduser(self.lora_adapter_path)
            self._check(
                os.path.isfile(os.path.join(adapter, "adapter_config.json")),
                "lora_adapter_path",
                "is not a peft adapter folder (no adapter_config.json)",
            )
        if self.path is not None:
            self._check(
                os.path.isfile(os.path.join(os.path.expanduser(self.path), "config.json")),
                "path",
                "not a Hugging Face checkpoint folder (no config.json there; the hub is never "
                "used: give a local folder, or null for the tiny model)",
            )
