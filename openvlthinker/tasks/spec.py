"""What a task is: one task's settings (:class:`TaskSpec`), its files, and the task file's
names and defaults (method.md sections 2-4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ADVANTAGE_KEYS = ("task", "problem_type")
ON_ERROR = ("fail", "skip")
DEFAULT_ENTROPY_BAND = (0.2, 0.6, 0.02)
#: A task's declared response-length intent; the calibration rule shifts the envelope by it
#: (method.md section 7).
LENGTH_INTENTS = ("short", "medium", "long")
DEFAULT_LENGTH_INTENT = "medium"
#: The value that asks for a bound measured from the policy (method.md section 7).
AUTO = "auto"
#: Bounds that may be ``auto``, as :meth:`TaskRegistry.auto_fields` names them.
AUTO_FIELDS = ("length_envelope", "h_min", "h_max")


class TaskFileError(ValueError):
    """A task file is invalid; the message names the file, the task and the key."""


@dataclass(frozen=True)
class DataFile:
    """One training file of a task."""

    path: Path = field(metadata={"help": "Record file (.json, .jsonl or .parquet)."})
    image_root: Path | None = field(
        default=None,
        metadata={"help": "Directory that relative image/video paths resolve against."},
    )
    field_map: Mapping[str, str | tuple[str, ...]] | None = field(
        default=None,
        metadata={
            "help": "Our field name -> the file's field name (e.g. task: task_type); images, "
            "videos and options may name several columns (e.g. options: [A, B, C, D])."
        },
    )


@dataclass(frozen=True)
class ValidationSet(DataFile):
    """One validation file of a task; its metrics are logged under its own name
    (``val/<set>/...``) and under the task (``val/<task>/...``, over all of its sets)."""

    name: str = field(
        kw_only=True,
        metadata={"help": "Unique name of the set (across all tasks; never a task's name)."},
    )
    metric: str | None = field(
        default=None,
        kw_only=True,
        metadata={
            "help": "Benchmark metric (openvlthinker.benchmarks), logged as "
            "val/<set>/<metric>; null = the problem type's reward correctness only."
        },
    )
    problem_type: str | None = field(
        default=None,
        kw_only=True,
        metadata={"help": "Problem type of the set's records that carry none."},
    )
    options_in_problem: bool = field(
        default=False,
        kw_only=True,
        metadata={
            "help": "Multiple-choice records may lack options: the question text lists them "
            "(MMStar's card has no options column)."
        },
    )
    box_format: str = field(
        default="xyxy",
        kw_only=True,
        metadata={
            "help": "Box answers of the file: xyxy (ours) or xywh (COCO), made xyxy at load."
        },
    )


@dataclass(frozen=True)
class TaskSpec:
    """Everything the trainer needs to know about one task."""

    key: str = field(metadata={"help": "Task name, used as the `task` field of records."})
    domain: str = field(metadata={"help": "Free-text domain label (e.g. 'math', 'OCR')."})
    problem_types: tuple[str, ...] = field(
        metadata={"help": "Canonical problem types (answer formats) this task contains."}
    )
    length_envelope: tuple[int, int, int, int] | None = field(
        metadata={
            "help": "(L_min, L_low, L_high, L_max) in tokens, method.md section 2; None while "
            "'auto' awaits its calibration."
        }
    )
    length_weight: float = field(
        metadata={"help": "Weight of the length trapezoid in the overall reward."}
    )
    entropy_band: tuple[float | None, float | None, float] = field(
        metadata={
            "help": "(H_min, H_max, coef) of the entropy hinge, method.md section 3; a bound is "
            "None while 'auto' awaits its calibration."
        }
    )
    reward_weights: Mapping[str, float] = field(
        metadata={"help": "Weights of correctness/format/structure, plus length = length_weight."}
    )
    scorer_options: Mapping[str, Mapping[str, Any]] = field(
        default_factory=dict,
        metadata={
            "help": "Problem type -> options of its scorer (checked at load), e.g. "
            "{numerical: {rule: relaxed, tolerance: 0.05}, ocr: {case_sensitive: false}}."
        },
    )
    train: tuple[DataFile, ...] = field(
        default=(), metadata={"help": "Training files of the task."}
    )
    validation: tuple[ValidationSet, ...] = field(
        default=(), metadata={"help": "Validation sets of the task."}
    )
    length_intent: str = field(
        default=DEFAULT_LENGTH_INTENT,
        metadata={"help": "short, medium or long: where calibration puts the envelope."},
    )
