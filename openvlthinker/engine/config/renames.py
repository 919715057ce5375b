"""Keys the engine's config no longer has: each old name, refused at load with a one-line
error naming what replaced it (listed with the release in CHANGELOG.md), and the mapping that
reads a checkpoint's config written under the old names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openvlthinker.engine.config.base import ConfigError
from openvlthinker.rewards.config import REMOVED as REWARD_REMOVED
from openvlthinker.rewards.config import WEIGHTS_FROM_TASKS

_VERL = "verl's name, same meaning and values"
_VERL_ACTOR = "verl's actor key, same meaning and values"

#: Old dotted key (a leaf or a whole section) -> (new dotted key, why).
RENAMED: dict[str, tuple[str, str]] = {
    "algorithm.kl_penalty": ("actor.kl_loss_type", _VERL_ACTOR),
    "algorithm.kl_coef": ("actor.kl_loss_coef", _VERL_ACTOR),
    "algorithm.use_kl_loss": ("actor.use_kl_loss", _VERL_ACTOR),
    "algorithm.dynamic_sampling": (
        "algorithm.filter_groups",
        f"{_VERL}: enable, metric, max_num_gen_batches",
    ),
    "actor.clip_ratio_dual": ("actor.clip_ratio_c", _VERL),
    "trainer.val_freq": ("trainer.test_freq", _VERL),
    "trainer.resume": (
        "trainer.resume_mode",
        "verl's name: auto, disable, or resume_path with trainer.resume_from_path=<folder>",
    ),
}

#: Old dotted key -> why it is gone and what to set instead.
REMOVED: dict[str, str] = {
    "data.on_error": (
        "it never took effect; the task file (data.tasks) sets what a bad record does, under "
        "its own data.on_error (fail or skip)"
    ),
    "model.tiny.tokenizer": (
        "the tiny model's tokenizer is always the byte-level BPE trained locally; "
        "model.tiny.tokenizer_vocab_size sets its size"
    ),
    "reward.weights": WEIGHTS_FROM_TASKS,
    **{f"reward.{key}": why for key, why in REWARD_REMOVED.items()},
}


def dotted_keys(node: Any, prefix: str = "") -> list[str]:
    """Every dotted path of a nested mapping: its sections and its leaves."""
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}{key}"
            out.append(path)
            out.extend(dotted_keys(value, path + "."))
    return out


def refuse_old_keys(keys: Iterable[str], where: str = "") -> None:
    """ConfigError for the first key of ``keys`` that was renamed or removed."""
    for key in keys:
        if key in RENAMED:
            new, why = RENAMED[key]
            raise ConfigError(f"{where}{key} was renamed {new} ({why}); see CHANGELOG.md")
        if key in REMOVED:
            raise ConfigError(f"{where}{key} was removed: {REMOVED[key]}")


def upgrade_saved(flat: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's flattened config under today's names: renamed keys moved, removed dropped."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        for old, (new, _) in RENAMED.items():
            if key == old or key.startswith(old + "."):
                key = new + key[len(old) :]
                break
        if key not in REMOVED:
            out[key] = value
    return out
