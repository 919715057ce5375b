"""LoRA adapters (peft) and a frozen vision tower for the single-process policy.

Keys are verl's (``model.lora_rank``, ``lora_alpha``, ``target_modules``,
``exclude_modules``, ``lora_adapter_path``, ``freeze_vision_tower``) with the same meaning,
so one vocabulary serves both engines. With LoRA only the adapter matrices train; the
reference policy for KL is the same model with its adapters disabled (:func:`reference`),
not a second copy. Adapters have no dropout: the old log-probs of a step must score the
very policy that the update's ratio compares against.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, ProcessorMixin

logger = logging.getLogger(__name__)

#: The module every Qwen-VL family holds its vision encoder and merger under (``model.visual``).
VISION_TOWER = "visual"
#: ``model.exclude_modules`` default: keep adapters out of the vision tower (a peft regex,
#: matched in full against module names such as ``model.visual.blocks.0.attn.qkv``).
EXCLUDE_VISION_TOWER = ".*visual.*"


def is_peft(model: torch.nn.Module) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def base_model(model: torch.nn.Module) -> PreTrainedModel:
    """The Hugging Face model under peft's wrappers (``model`` itself without LoRA)."""
    return model.get_base_model() if is_peft(model) else model


def vision_tower(model: torch.nn.Module) -> torch.nn.Module:
    """The vision encoder + merger of a Qwen-VL (``model.visual``), peft-wrapped or not."""
    base = base_model(model)
    for owner in (getattr(base, "model", None), base):
        tower = getattr(owner, VISION_TOWER, None) if owner is not None else None
        if isinstance(tower, torch.nn.Module):
            return tower
    raise ValueError(
        f"model.freeze_vision_tower: {type(base).__name__} has no vision tower "
        f"(no '{VISION_TOWER}' module)"
    )


def freeze_vision_tower(model: torch.nn.Module) -> int:
    """Stop gradients to every parameter of the vision tower; returns how many elements."""
    tower = vision_tower(model)
    tower.requires_grad_(False)
    return sum(p.numel() for p in tower.parameters())


def lora_config(
    rank: int, alpha: float, target_modules: Any, exclude_modules: Any
) -> Any:  # peft.LoraConfig
    """peft's ``LoraConfig`` for the engine keys (the fields verl's FSDP engine sets)."""
    from peft import LoraConfig, TaskType

    def plain(value: Any) -> Any:  # a list from YAML may be an omegaconf ListConfig
        return value if value is None or isinstance(value, str) else [str(x) for x in value]

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=rank,
        lora_alpha=alpha,
        target_modules=plain(target_modules),
        exclude_modules=plain(exclude_modules),
        lora_dropout=0.0,
        bias="none",
    )


class LoraSettings(Protocol):
    """The ``model.*`` keys a LoRA run reads (``engine.config.ModelConfig`` has them)."""

    lora_rank: int
    lora_alpha: int
    target_modules: Any
    exclude_modules: Any


def apply_lora(
    model: PreTrainedModel,
    cfg: LoraSettings,
    adapter_path: str | os.PathLike | None = None,
    *,
    seed: int = 0,
) -> torch.nn.Module:
    """Wrap ``model`` in peft adapters: fresh ones from ``cfg`` (A drawn from ``seed``, B
    zero), or the trainable adapter at ``adapter_path`` (a checkpoint's ``model/`` or
    ``model.lora_adapter_path``), whose own ``adapter_config.json`` fixes rank, alpha and
    targets."""
    from peft import PeftModel, get_peft_model

    if adapter_path is None:
        devices = sorted({p.device.index or 0 for p in model.parameters() if p.is_cuda})
        # A private RNG stream: the same adapters whatever ran before, and the caller's
        # sampling stream is left where it was.
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            wrapped = get_peft_model(
                model,
                lora_config(cfg.lora_rank, cfg.lora_alpha, cfg.target_modules, cfg.exclude_modules),
            )
    else:
        folder = Path(adapter_path)
        if not (folder / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"{folder} holds no adapter_config.json: not a peft adapter folder "
                "(model.lora_adapter_path, or the model/ of a LoRA run's checkpoint)"
            )
        wrapped = PeftModel.from_pretrained(model, str(folder), is_trainable=True)
        saved = wrapped.peft_config["default"]
        if (saved.r, saved.lora_alpha) != (cfg.lora_rank, cfg.lora_alpha):
            logger.warning(
                "model.lora_adapter_path %s: its rank %s / alpha %s replace model.lora_rank %s / "
                "model.lora_alpha %s",
                folder,
                saved.r,
                saved.lora_alpha,
                cfg.lora_rank,
                cfg.lora_alpha,
            )
    targets = adapted_modules(wrapped)
    if not targets:
        raise ValueError(
            f"model.target_modules={cfg.target_modules!r} with model.exclude_modules="
            f"{cfg.exclude_modules!r} selects no linear layer"
        )
    return wrapped


def adapted_modules(model: torch.nn.Module) -> list[str]:
    """Names (in the base model) of the layers that carry a LoRA adapter."""
    from peft.tuners.lora import LoraLayer

    prefix = "base_model.model."
    return [
        name.removeprefix(prefix)
        for name, module in model.named_modules()
        if isinstance(module, LoraLayer)
    ]


def check_frozen_tower_has_no_adapter(model: torch.nn.Module) -> None:
    """freeze_vision_tower with adapters inside the tower would train nothing there: refuse."""
    inside = [n for n in adapted_modules(model) if f".{VISION_TOWER}." in f".{n}"]
    if inside:
        raise ValueError(
            f"model.freeze_vision_tower=true but model.target_modules / model.exclude_modules put "
            f"LoRA adapters in the vision tower ({len(inside)} layers, e.g. {inside[0]}): "
            f"exclude them (model.exclude_modules={EXCLUDE_VISION_TOWER!r}) or set "
            "model.freeze_vision_tower=false"
        )


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Parameters that get gradients and optimizer state, in the model's (stable) order."""
    return [p for p in model.parameters() if p.requires_grad]


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter elements."""
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


@contextlib.contextmanager
def reference(model: torch.nn.Module) -> Iterator[None]:
    """The reference policy of a LoRA policy: adapters disabled (the base model's forward);
    a no-op without LoRA (the trainer then scores a frozen copy instead)."""
    if is_peft(model):
        with model.disable_adapter():
            yield
    else:
        yield


def save_merged(
    model: torch.nn.Module, processor: ProcessorMixin, folder: str | os.PathLike
) -> Path:
    """A Hugging Face model with the adapters merged into the base weights, plus the
    processor: loadable by ``from_pretrained`` and by ``model.path``.

    Merges a copy, so ``model`` keeps its adapters and its base weights bit for bit (it
    needs memory for one more copy of the model, once, at the end of a run)."""
    folder = Path(folder)
    merged = copy.deepcopy(model).merge_and_unload() if is_peft(model) else model
    merged.save_pretrained(folder)
    processor.save_pretrained(folder)
    del merged
    logger.info("merged model written to %s", folder)
    return folder
