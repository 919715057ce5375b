"""Our section of the verl config (``openvlthinker:``) as a typed, validated object, built
once per section (:func:`load_settings`), and what the plugin derives from it: the task
registry with its reward config, the tiny model, the image geometry of the export.

verl's own keys stay where verl reads them (``algorithm.adv_estimator``, ``actor_rollout_ref``
...): extra keys inside verl's dataclass sections break verl, so everything of ours lives
under ``openvlthinker``.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf

from openvlthinker.method_config import EntropyBandConfig

# Reward components the reward manager writes and GS-GDPO / GDPO may normalise: the
# reward suite's own list, so a component added there is known here too.
from openvlthinker.rewards.config import SCORED_COMPONENTS, RewardConfig

logger = logging.getLogger(__name__)

SECTION = "openvlthinker"
#: Keys of our section renamed to the engine's names (issue 13): old key -> new key.
RENAMED: dict[str, str] = {"entropy_band_estimator": "entropy_band.estimator"}


@dataclass(frozen=True)
class PluginSettings:
    """The ``openvlthinker:`` section of a verl config, checked when built (errors name
    ``openvlthinker.<key>``); nested mappings become their typed configs. Built from a verl
    config by :func:`load_settings` only."""

    tasks: str = field(
        default="",
        metadata={"help": "Task registry YAML (issue 4 format): tasks, envelopes, bands, data."},
    )
    estimator_options: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "Keyword options of the estimator named by algorithm.adv_estimator, "
            "e.g. {stages: [group, task], pin_equal_groups: false} for gs_grpo (the engine's "
            "algorithm.estimator_options)."
        },
    )
    components: list[str] = field(
        default_factory=lambda: list(SCORED_COMPONENTS),
        metadata={
            "help": "Reward components normalised separately by gs_gdpo / gdpo. 'length' "
            "counts only for tasks whose length_weight > 0 (the engine's algorithm.components)."
        },
    )
    entropy_band: EntropyBandConfig = field(
        default_factory=EntropyBandConfig,
        metadata={
            "help": "The per-task entropy band of the actor loss: {enable, estimator} "
            "(openvlthinker.method_config.EntropyBandConfig, the engine's actor.entropy_band)."
        },
    )
    reward: RewardConfig = field(
        default_factory=RewardConfig,
        metadata={"help": "Fields of openvlthinker.rewards.RewardConfig (tag names, timeouts)."},
    )
    image_factor: int | None = field(
        default=None,
        metadata={
            "help": "Resize factor (patch_size x merge_size) of the exported model_image_size; "
            "null: from the image processor of actor_rollout_ref.model.path (which it must "
            "equal), or 32 (Qwen3-VL) when that does not load offline."
        },
    )
    min_pixels: int | None = field(
        default=None,
        metadata={
            "help": "Smallest image area after resizing; null: the model's image processor's "
            "(or Qwen3-VL's 256*256 when it does not load offline). Written into each image."
        },
    )
    max_pixels: int | None = field(
        default=None,
        metadata={
            "help": "Largest image area after resizing; null: the model's image processor's "
            "(or Qwen3-VL's 4096*4096 when it does not load offline). Written into each image."
        },
    )
    export_dir: str = field(
        default="outputs/verl_data",
        metadata={
            "help": "Where the task file's train/validation data is exported as verl parquet "
            "when data.train_files / data.val_files are null."
        },
    )
    tiny_model: str | None = field(
        default=None,
        metadata={
            "help": "Build the engine's random-init tiny model of this architecture (qwen3_vl, "
            "qwen2_5_vl, qwen2_vl) offline under tiny_model_cache and train it: "
            "actor_rollout_ref.model.path is set to its folder. null: use model.path."
        },
    )
    tiny_model_cache: str = field(
        default="~/.cache/openvlthinker",
        metadata={"help": "Where tiny_model is built once (the engine's model.cache_dir)."},
    )
    cpu: bool = field(
        default=False,
        metadata={
            "help": "Run verl on the CPU: platform cpu (gloo), FSDP2, the hf rollout, logical "
            "Ray GPUs (openvlthinker.verl_plugin.cpu). For debugging configs on a laptop."
        },
    )
    check_only: bool = field(
        default=False,
        metadata={"help": "Validate, print the resolved config and exit without starting Ray."},
    )

    def __post_init__(self) -> None:
        if isinstance(self.entropy_band, bool):
            raise ValueError(
                f"{SECTION}.entropy_band={str(self.entropy_band).lower()}: the band's switch is "
                f"now {SECTION}.entropy_band.enable (entropy_band: {{enable, estimator}}, as the "
                "engine's actor.entropy_band)"
            )
        if isinstance(self.entropy_band, Mapping):
            object.__setattr__(self, "entropy_band", _entropy_band(self.entropy_band))
        if isinstance(self.reward, Mapping):
            object.__setattr__(self, "reward", _reward(self.reward))
        for key, kind in (("entropy_band", EntropyBandConfig), ("reward", RewardConfig)):
            if not isinstance(getattr(self, key), kind):
                raise ValueError(
                    f"{SECTION}.{key}: expected a mapping of {kind.__name__} fields, "
                    f"got {getattr(self, key)!r}"
                )
        if not self.tasks:
            raise ValueError(f"{SECTION}.tasks is required: the task registry YAML")
        for key in ("image_factor", "min_pixels", "max_pixels"):
            value = getattr(self, key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value <= 0
            ):
                raise ValueError(f"{SECTION}.{key}={value!r}: expected a positive integer or null")
        if self.min_pixels and self.max_pixels and self.min_pixels > self.max_pixels:
            raise ValueError(
                f"{SECTION}.min_pixels={self.min_pixels} > {SECTION}.max_pixels={self.max_pixels}"
            )
        if self.tiny_model is not None:
            from openvlthinker.engine.modeling import known_architectures

            if self.tiny_model not in known_architectures():
                raise ValueError(
                    f"{SECTION}.tiny_model {self.tiny_model!r} is unknown; known: "
                    f"{', '.join(known_architectures())}"
                )
        bad = [c for c in self.components if c not in SCORED_COMPONENTS]
        if bad:
            raise ValueError(
                f"{SECTION}.components names {bad[0]!r}; known: {', '.join(SCORED_COMPONENTS)}"
            )


def _entropy_band(values: Mapping[str, Any]) -> EntropyBandConfig:
    known = [f.name for f in fields(EntropyBandConfig)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(
            f"unknown key {SECTION}.entropy_band.{unknown[0]}; known: {', '.join(known)}"
        )
    try:
        return EntropyBandConfig(**values)
    except ValueError as e:
        # EntropyBandConfig names its keys "entropy_band.<field>", which live in our section
        raise ValueError(f"{SECTION}.{e}") from e


def check_entropy_estimator(name: str) -> None:
    """Raise naming ``openvlthinker.entropy_band.estimator`` unless ``name`` is known."""
    _entropy_band({"estimator": name})


def _reward(values: Mapping[str, Any]) -> RewardConfig:
    try:
        return RewardConfig.from_dict(values)
    except (TypeError, ValueError) as e:
        # RewardConfig names its keys "reward.<field>", which live under our section here
        raise ValueError(
            f"{SECTION}.{e}" if str(e).startswith("reward") else f"{SECTION}.reward: {e}"
        ) from e


def load_settings(cfg: DictConfig) -> PluginSettings:
    """Our section of ``cfg`` as :class:`PluginSettings`, built once per distinct section (a
    cache: the launcher, the trainer and the reward manager all ask). An unknown key raises
    naming it and the known ones; a renamed key raises naming the new one."""
    section = cfg.get(SECTION)
    if section is None:
        raise ValueError(f"the config has no '{SECTION}:' section (needs at least {SECTION}.tasks)")
    if not isinstance(section, DictConfig):
        raise ValueError(f"'{SECTION}' must be a mapping, got {type(section).__name__}")
    return _settings(OmegaConf.to_yaml(section, resolve=True))


@functools.lru_cache(maxsize=8)
def _settings(section_yaml: str) -> PluginSettings:
    raw = OmegaConf.to_container(OmegaConf.create(section_yaml))
    if not isinstance(raw, dict):
        raise ValueError(f"'{SECTION}' must be a mapping, got {type(raw).__name__}")
    renamed = sorted(set(raw) & set(RENAMED))
    if renamed:
        old = renamed[0]
        raise ValueError(
            f"{SECTION}.{old} was renamed to {SECTION}.{RENAMED[old]} (the engine's name; "
            "see CHANGELOG.md)"
        )
    known = {f.name for f in fields(PluginSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"unknown key {SECTION}.{unknown[0]}; known: {', '.join(sorted(known))}")
    return PluginSettings(**raw)


def load_registry(settings: PluginSettings) -> tuple[Any, RewardConfig]:
    """(TaskRegistry, RewardConfig) of our section. The reward's user scorers are loaded
    first: they register the problem types a task file may name."""
    from openvlthinker.rewards.user import load_user_scorers
    from openvlthinker.tasks import load_tasks

    try:
        load_user_scorers(settings.reward)
    except (OSError, ImportError, AttributeError, TypeError, ValueError) as e:
        raise ValueError(f"{SECTION}.reward.user_scorers: {e}") from e
    return load_tasks(settings.tasks), settings.reward


def tiny_model_path(settings: PluginSettings) -> str:
    """Build (once) the tiny model ``openvlthinker.tiny_model`` names; return its folder."""
    from openvlthinker.engine.modeling import TinySpec, ensure_tiny_checkpoint

    spec = TinySpec(architecture=settings.tiny_model)
    return str(ensure_tiny_checkpoint(spec, os.path.expanduser(settings.tiny_model_cache)))


def image_geometry(cfg: DictConfig, settings: PluginSettings) -> Any:
    """The export's :class:`~openvlthinker.verl_plugin.images.ImageGeometry`: the image
    processor of ``actor_rollout_ref.model.path`` when it loads offline, else our section's
    ``image_factor`` / ``min_pixels`` / ``max_pixels`` (a warning names what was assumed)."""
    from openvlthinker.verl_plugin.images import resolve_geometry

    model = cfg.actor_rollout_ref.model
    return resolve_geometry(
        model.get("path", None),
        image_factor=settings.image_factor,
        min_pixels=settings.min_pixels,
        max_pixels=settings.max_pixels,
        trust_remote_code=bool(model.get("trust_remote_code", False)),
    )
