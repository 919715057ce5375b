"""The record schema: one record is one prompt (see docs/data.md), and what a load reports.

One record is one prompt: problem text with ``<image>``/``<video>`` placeholders, its
answer, media, problem type (answer format), task and options. :class:`TaskCatalog` is what
the loaders read from a task file (``openvlthinker.tasks.TaskRegistry`` is one), so the data
layer needs nothing from the task layer above it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

IMAGE_PLACEHOLDER = "<image>"
VIDEO_PLACEHOLDER = "<video>"
DATA_TYPES = ("image", "video", "text")
RECORD_FIELDS = (
    "id",
    "problem",
    "answer",
    "images",
    "videos",
    "problem_type",
    "data_type",
    "task",
    "options",
    "metadata",
)
REQUIRED_FIELDS = ("problem", "answer", "problem_type")
#: Fields a field map may fill from several columns (their non-empty values, in order).
LIST_FIELDS = ("images", "videos", "options")
RELEASED_FIELD_MAP: Mapping[str, str] = {"task": "task_type"}
"""Field map for the released OneThinker/OpenVLThinker sample format."""


class RecordError(ValueError):
    """A record is invalid; the message names the file, row, field and value."""

    def __init__(self, source: str, row: int, message: str):
        super().__init__(f"{source}: row {row}: {message}")
        self.source, self.row, self.reason = source, row, message


@dataclass(frozen=True)
class Record:
    """One prompt of the dataset (see docs/data.md for the file schema)."""

    id: str = field(metadata={"help": "Unique id; defaults to '<file stem>-<row>'."})
    problem: str = field(metadata={"help": "Question text with <image>/<video> placeholders."})
    answer: Any = field(metadata={"help": "Ground truth: a string, number or box list."})
    problem_type: str = field(metadata={"help": "Canonical problem type (answer format)."})
    task: str = field(metadata={"help": "Task key of the registry."})
    data_type: str = field(metadata={"help": "'image', 'video' or 'text'."})
    images: tuple[Any, ...] = field(
        default=(), metadata={"help": "Absolute image paths (or PIL images from a Dataset)."}
    )
    videos: tuple[str, ...] = field(default=(), metadata={"help": "Absolute video paths."})
    options: tuple[str, ...] = field(default=(), metadata={"help": "Multiple-choice options."})
    image_sizes: tuple[tuple[int, int], ...] = field(
        default=(), metadata={"help": "Original (width, height) of each image, read at load."}
    )
    metadata: Mapping[str, Any] = field(
        default_factory=dict, metadata={"help": "The record's 'metadata' plus unmapped fields."}
    )
    source: str = field(default="", metadata={"help": "'<file>:<row>' the record came from."})

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(width, height) of the first image, the frame of a grounding answer."""
        return self.image_sizes[0] if self.image_sizes else None


@dataclass
class LoadReport:
    """What a load did: how many rows were read, loaded and skipped, and why."""

    source: str
    rows: int = 0
    loaded: int = 0
    skipped: int = 0
    reasons: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


class LoadedRecords(list):
    """``list[Record]`` with the :class:`LoadReport` of the load attached as ``.report``."""

    report: LoadReport


class DataFileSettings(Protocol):
    """One record file a task file lists (``openvlthinker.tasks.DataFile``; a validation set
    adds ``name``, ``problem_type``, ``box_format`` and ``options_in_problem``)."""

    @property
    def path(self) -> Path: ...
    @property
    def image_root(self) -> Path | None: ...
    @property
    def field_map(self) -> Mapping[str, str | tuple[str, ...]] | None: ...


class TaskRecords(Protocol):
    """What the loaders read of one task (``openvlthinker.tasks.TaskSpec``)."""

    @property
    def key(self) -> str: ...
    @property
    def problem_types(self) -> tuple[str, ...]: ...
    @property
    def train(self) -> Sequence[DataFileSettings]: ...
    @property
    def validation(self) -> Sequence[Any]: ...


class TaskCatalog(Protocol):
    """The tasks records may name and the task file's data settings
    (``openvlthinker.tasks.TaskRegistry``)."""

    @property
    def field_map(self) -> Mapping[str, str | tuple[str, ...]]: ...
    @property
    def on_error(self) -> str: ...
    @property
    def check_images(self) -> bool: ...
    def __contains__(self, key: object) -> bool: ...
    def __getitem__(self, key: str) -> TaskRecords: ...
    def __iter__(self) -> Iterator[str]: ...
    def values(self) -> Any: ...
