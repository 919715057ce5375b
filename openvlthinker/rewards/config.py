"""Typed, validated configuration of the reward suite (method.md section 4)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

#: The components :func:`~openvlthinker.rewards.score` scores; ``overall`` is their weighted sum.
SCORED_COMPONENTS: tuple[str, ...] = ("correctness", "format", "structure", "length")
#: The components a task file's ``reward_weights`` weighs (``length`` is its ``length_weight``).
TASK_WEIGHTED_COMPONENTS: tuple[str, ...] = ("correctness", "format", "structure")
#: The float keys of a scored result (``error`` aside): what both engines log and read.
RESULT_KEYS: tuple[str, ...] = ("overall", *SCORED_COMPONENTS, "acc")
#: The released weighting (method.md section 4): a task file's ``reward_weights`` default, and
#: the weights of a call to ``score`` that passes none.
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"correctness": 0.9, "format": 0.1, "structure": 1.0, "length": 0.0}
)
COORDINATE_FRAMES: tuple[str, ...] = ("qwen_1000", "absolute")
START_METHODS: tuple[str, ...] = ("fork", "forkserver", "spawn")


_NUMERIC_RULE = (
    "numerical answers follow MathVista's rule; a task file sets another per task "
    "(scorer_options: {numerical: {rule: relaxed, tolerance: 0.05}})"
)
#: Why neither engine reads ``reward.weights``: every task's weights come from its task file.
WEIGHTS_FROM_TASKS = (
    "the weights come from the task file's reward_weights and length_weight, set them there"
)
#: Keys that used to exist, with what replaced them.
REMOVED: dict[str, str] = {"numeric_rel_tol": _NUMERIC_RULE, "numeric_abs_tol": _NUMERIC_RULE}


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class RewardConfig:
    """How responses are parsed and scored; every field is checked once, at construction."""

    think_tag: str = field(
        default="think",
        metadata=_help("Name of the reasoning tag; 'thinking' matches the released data."),
    )
    answer_tag: str = field(default="answer", metadata=_help("Name of the answer tag."))
    require_answer_tag: bool = field(
        default=True,
        metadata=_help(
            "No answer tag means correctness 0 (error 'no <answer> tag'). False scores the "
            "text after the think block (or the whole response) instead."
        ),
    )
    structure_bonus: float = field(
        default=0.5,
        metadata=_help("Structure component of a fully valid answer (released: 0.5); in [0, 1]."),
    )
    structure_requires_format: bool = field(
        default=True,
        metadata=_help("Structure is 0 when the format check fails (as released)."),
    )
    coordinate_frame: str = field(
        default="qwen_1000",
        metadata=_help(
            "Frame of predicted boxes/points: 'qwen_1000' (0..1000 normalised, Qwen3-VL) or "
            "'absolute' (pixels of the image the model saw, model_image_size)."
        ),
    )
    regression_thresholds: tuple[float, ...] = field(
        default=(0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95),
        metadata=_help("Confidence thresholds of the mean relative accuracy, each in (0, 1)."),
    )
    regression_zero_scale: float = field(
        default=1.0,
        metadata=_help("Denominator of the relative error when the target is 0."),
    )
    ocr_metric: str = field(
        default="wer",
        metadata=_help(
            "OCR correctness: 1 - 'wer' or 1 - 'cer' (clipped), or 'anls'; a task's "
            "scorer_options.ocr.metric overrides it."
        ),
    )
    point_sigma: float = field(
        default=50.0,
        metadata=_help("Gaussian width (ground-truth pixels) of segmentation point similarity."),
    )
    time_tau: float = field(
        default=2.0,
        metadata=_help(
            "Decay (seconds) of video-segmentation key-frame similarity exp(-|dt|/tau)."
        ),
    )
    max_answer_chars: int = field(
        default=20_000,
        metadata=_help("Longer extracted answers score 0 with an error (bounds parser time)."),
    )
    max_math_chars: int = field(
        default=1_000, metadata=_help("Longer math answers score 0 with an error.")
    )
    max_boxes: int = field(
        default=100, metadata=_help("More boxes/points/frames than this score 0 with an error.")
    )
    math_timeout: float = field(
        default=1.0, metadata=_help("Seconds allowed for symbolic math parsing + verification.")
    )
    call_timeout: float = field(
        default=2.0,
        metadata=_help("Seconds allowed for one scorer call before it is interrupted."),
    )
    kill_grace: float = field(
        default=1.0,
        metadata=_help("Extra seconds before a pool worker stuck past call_timeout is killed."),
    )
    workers: int = field(
        default=0, metadata=_help("Worker processes of score_batch; 0 scores in-process.")
    )
    start_method: str = field(
        default="forkserver",
        metadata=_help("multiprocessing start method of the pool: fork, forkserver or spawn."),
    )
    user_scorers: dict[str, str] = field(
        default_factory=dict,
        metadata=_help("problem type -> 'path/to/file.py:function', loaded and registered."),
    )

    def __post_init__(self) -> None:
        for name in ("think_tag", "answer_tag"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.isidentifier():
                raise ValueError(f"reward.{name}: expected a tag name like 'think', got {value!r}")
        if self.think_tag == self.answer_tag:
            raise ValueError(
                f"reward.think_tag and reward.answer_tag must differ, both are {self.think_tag!r}"
            )
        if self.coordinate_frame not in COORDINATE_FRAMES:
            raise ValueError(
                f"reward.coordinate_frame: {self.coordinate_frame!r} is unknown; "
                f"known: {', '.join(COORDINATE_FRAMES)}"
            )
        if self.ocr_metric not in ("wer", "cer", "anls"):
            raise ValueError(
                f"reward.ocr_metric: expected 'wer', 'cer' or 'anls', got {self.ocr_metric!r}"
            )
        if self.start_method not in START_METHODS:
            raise ValueError(
                f"reward.start_method: {self.start_method!r} is unknown; "
                f"known: {', '.join(START_METHODS)}"
            )
        _check_range("structure_bonus", self.structure_bonus, 0.0, 1.0)
        for name in ("regression_zero_scale", "point_sigma", "time_tau"):
            _check_positive(name, getattr(self, name))
        for name in ("math_timeout", "call_timeout", "kill_grace"):
            _check_positive(name, getattr(self, name))
        self.regression_thresholds = tuple(float(t) for t in self.regression_thresholds)
        if not self.regression_thresholds or not all(
            0.0 < t < 1.0 for t in self.regression_thresholds
        ):
            raise ValueError(
                "reward.regression_thresholds: expected a non-empty list of values in (0, 1), "
                f"got {list(self.regression_thresholds)!r}"
            )
        for name in ("max_answer_chars", "max_math_chars", "max_boxes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"reward.{name}: expected a positive integer, got {value!r}")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"reward.workers: expected an integer >= 0, got {self.workers!r}")
        for key, spec in dict(self.user_scorers).items():
            if not isinstance(spec, str) or ":" not in spec:
                raise ValueError(
                    f"reward.user_scorers.{key}: expected 'path/to/file.py:function', got {spec!r}"
                )

    @property
    def prompt_options(self) -> dict[str, str]:
        """The prompt settings that must agree with the scoring (tag names, box frame): the
        keyword arguments of ``openvlthinker.data.prompts.build_messages`` both engines pass."""
        return {
            "think_tag": self.think_tag,
            "answer_tag": self.answer_tag,
            "coordinate_frame": self.coordinate_frame,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> RewardConfig:
        """Build from a plain mapping (YAML/omegaconf); unknown keys are an error naming them."""
        values = dict(values or {})
        if "weights" in values:
            given = values["weights"]
            shown = dict(given) if isinstance(given, Mapping) else given
            raise ValueError(f"reward.weights={shown!r}: unused: {WEIGHTS_FROM_TASKS}")
        removed = sorted(set(values) & set(REMOVED))
        if removed:
            raise ValueError(f"reward.{removed[0]} was removed: {REMOVED[removed[0]]}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"reward: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**values)


def merge_weights(
    base: Mapping[str, float], override: Mapping[str, float] | None, *, where: str = "weights"
) -> dict[str, float]:
    """``base`` with the keys of ``override`` replaced; each weight finite and >= 0."""
    merged = dict(base)
    for key, value in dict(override or {}).items():
        if key not in SCORED_COMPONENTS:
            raise ValueError(
                f"{where}: unknown component {key!r}; known: {', '.join(SCORED_COMPONENTS)}"
            )
        try:
            number = float(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}.{key}: expected a number, got {value!r}") from e
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{where}.{key}: expected a finite weight >= 0, got {value!r}")
        merged[key] = number
    return merged


def _check_range(name: str, value: Any, low: float, high: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (low <= value <= high)
        or math.isnan(value)
    ):
        raise ValueError(f"reward.{name}: expected a number in [{low}, {high}], got {value!r}")


def _check_positive(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"reward.{name}: expected a finite number > 0, got {value!r}")
