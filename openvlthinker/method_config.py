"""Config of the method that both engines share, one typed object per concept.

The single-process engine holds :class:`EntropyBandConfig` at ``actor.entropy_band``, the
verl plugin at ``openvlthinker.entropy_band``; the reward's prompt settings are
:attr:`openvlthinker.rewards.RewardConfig.prompt_options`. Errors name the key relative to
the object (``entropy_band.estimator``); each engine's loader prefixes its section. Nothing
here imports an engine, verl or transformers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Token entropy estimates of the band: -log pi of the sampled token (method.md section 3),
#: or the entropy of the whole next-token distribution.
ENTROPY_ESTIMATORS: tuple[str, ...] = ("sampled", "full")


@dataclass
class EntropyBandConfig:
    """The per-task entropy band of the actor loss (method.md section 3); the bands
    themselves (h_min, h_max, coef) are the task file's."""

    enable: bool = field(
        default=True,
        metadata={"help": "Add the per-task entropy band (method.md section 3) to the loss."},
    )
    estimator: str = field(
        default="sampled",
        metadata={
            "help": "Token entropy of the band and of train/<task>/entropy: sampled (-log pi "
            "of the sampled token, method.md section 3) or full (over the vocabulary; on verl "
            "it needs actor_rollout_ref.actor.calculate_entropy)."
        },
    )

    def __post_init__(self) -> None:
        if not isinstance(self.enable, bool):
            raise ValueError(f"entropy_band.enable: expected true or false, got {self.enable!r}")
        if self.estimator not in ENTROPY_ESTIMATORS:
            raise ValueError(
                f"entropy_band.estimator {self.estimator!r} is unknown; known: "
                f"{', '.join(ENTROPY_ESTIMATORS)}"
            )
