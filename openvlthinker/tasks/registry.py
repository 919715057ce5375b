"""The task registry: the one place that says which tasks exist and how each is shaped.

A *task* groups records that share a domain, a response-length envelope, an entropy band
and reward weights (method.md sections 2-4). Everything else (advantage stage 2, entropy
shaping, validation) asks the registry loaded from a task file; nothing keeps its own list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openvlthinker.tasks.files import read_with_extends
from openvlthinker.tasks.parsing import (
    DATA_KEYS,
    DEFAULT_KEYS,
    calibrated_spec,
    key_path,
    parse_field_map,
    parse_task,
)
from openvlthinker.tasks.spec import (
    ADVANTAGE_KEYS,
    AUTO,
    AUTO_FIELDS,
    DEFAULT_ENTROPY_BAND,
    DEFAULT_LENGTH_INTENT,
    LENGTH_INTENTS,
    ON_ERROR,
    DataFile,
    TaskFileError,
    TaskSpec,
    ValidationSet,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "ADVANTAGE_KEYS",
    "AUTO",
    "AUTO_FIELDS",
    "DEFAULT_ENTROPY_BAND",
    "DEFAULT_LENGTH_INTENT",
    "LENGTH_INTENTS",
    "ON_ERROR",
    "DataFile",
    "TaskFileError",
    "TaskRegistry",
    "TaskSpec",
    "ValidationSet",
    "auto_bounds",
    "load_tasks",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskRegistry(Mapping[str, TaskSpec]):
    """Task key -> :class:`TaskSpec`, in file order (the order gives ``index``)."""

    tasks: Mapping[str, TaskSpec]
    advantage_key: str = "task"
    on_error: str = "fail"
    field_map: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    check_images: bool = True
    source: Path | None = None
    #: Task key -> its position, so ``index`` / ``indices`` look a task up in O(1).
    _positions: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_positions", {key: i for i, key in enumerate(self.tasks)})

    def __getitem__(self, key: str) -> TaskSpec:
        try:
            return self.tasks[key]
        except KeyError:
            raise KeyError(f"unknown task {key!r}; known: {', '.join(self.tasks)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def index(self, key: str) -> int:
        """Position of task ``key`` (row of :meth:`entropy_tensors`)."""
        try:
            return self._positions[key]
        except KeyError:
            raise KeyError(f"unknown task {key!r}; known: {', '.join(self.tasks)}") from None

    def indices(self, tasks: Sequence[str], *, where: str = "task") -> torch.Tensor:
        """(B,) long position of each row's task; an unknown task raises naming its row and
        value (``where`` names the column, e.g. verl's ``data_source``)."""
        import torch

        out = []
        for row, key in enumerate(tasks):
            position = self._positions.get(key)
            if position is None:
                raise ValueError(
                    f"{where} {key!r} of row {row} is not a task of the task file; "
                    f"known: {', '.join(self.tasks)}"
                )
            out.append(position)
        return torch.tensor(out, dtype=torch.long)

    def auto_fields(self) -> dict[str, tuple[str, ...]]:
        """Task key -> the bounds still ``auto`` (of :data:`AUTO_FIELDS`); tasks with none left out."""
        out = {}
        for key, spec in self.tasks.items():
            names = (
                ("length_envelope",) * (spec.length_envelope is None)
                + ("h_min",) * (spec.entropy_band[0] is None)
                + ("h_max",) * (spec.entropy_band[1] is None)
            )
            if names:
                out[key] = names
        return out

    def with_bounds(self, bounds: Mapping[str, Mapping[str, Any]]) -> TaskRegistry:
        """A copy with calibrated bounds: task -> {length_envelope?, h_min?, h_max?}.

        Checked like the task file (ordering, ranges); an error names the task and the key."""
        source = self.source or Path("<task registry>")
        tasks = dict(self.tasks)
        for key, values in bounds.items():
            tasks[key] = calibrated_spec(self[key], values, source)
        return replace(self, tasks=tasks)

    def entropy_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-task entropy bands as float32 tensors ``(h_min[K], h_max[K], coef[K])``."""
        import torch

        pending = {k: v for k, v in self.auto_fields().items() if set(v) & {"h_min", "h_max"}}
        if pending:
            raise ValueError(
                f"entropy bands of task(s) {sorted(pending)} are 'auto' and not calibrated yet"
            )

        bands = torch.tensor([t.entropy_band for t in self.tasks.values()], dtype=torch.float32)
        bands = bands.reshape(len(self.tasks), 3)
        return bands[:, 0].clone(), bands[:, 1].clone(), bands[:, 2].clone()

    def length_enabled(self) -> torch.Tensor:
        """(K,) bool in index order: tasks whose length_weight > 0, the only ones whose length
        component carries signal (elsewhere GS-GDPO / GDPO must see it as a constant)."""
        import torch

        return torch.tensor([t.length_weight > 0 for t in self.tasks.values()], dtype=torch.bool)

    def reward_weight_tensors(self, components: Iterable[str]) -> dict[str, torch.Tensor]:
        """component -> (K,) float64 weight of that component in each task, in index order:
        what GS-GDPO / GDPO weigh each normalised component by (method.md section 1)."""
        import torch

        return {
            name: torch.tensor(
                [float(t.reward_weights.get(name, 0.0)) for t in self.tasks.values()],
                dtype=torch.float64,
            )
            for name in components
        }

    def problem_types(self) -> tuple[str, ...]:
        """Union of all tasks' problem types, in first-seen order."""
        seen: dict[str, None] = {}
        for spec in self.tasks.values():
            seen.update(dict.fromkeys(spec.problem_types))
        return tuple(seen)

    def validation_sets(self) -> dict[str, tuple[str, ValidationSet]]:
        """Validation set name -> (task key, set)."""
        return {v.name: (t.key, v) for t in self.tasks.values() for v in t.validation}


# --------------------------------------------------------------------------- loading


def load_tasks(
    path: str | Path, *, check_files: bool = True, allow_auto: bool = False
) -> TaskRegistry:
    """Load and validate a task file once; errors name the file, task and key.

    ``extends: other.yaml`` deep-merges this file over another (mappings merge, lists
    replace), which is how a small run overrides the envelopes of the shipped file.
    ``auto`` bounds are an error unless ``allow_auto`` (the caller then calibrates them, see
    :meth:`TaskRegistry.auto_fields` and :meth:`TaskRegistry.with_bounds`).
    """
    path = Path(path)
    data = read_with_extends(path)
    advantage_key = data.get("advantage_key", "task")
    if advantage_key not in ADVANTAGE_KEYS:
        raise TaskFileError(
            f"{key_path(path, None, 'advantage_key')}: {advantage_key!r} is unknown; known: {list(ADVANTAGE_KEYS)}"
        )
    data_cfg = data.get("data") or {}
    if not isinstance(data_cfg, dict) or set(data_cfg) - DATA_KEYS:
        raise TaskFileError(
            f"{key_path(path, None, 'data')}: must be a mapping with keys {sorted(DATA_KEYS)}, got {data_cfg!r}"
        )
    on_error = data_cfg.get("on_error", "fail")
    if on_error not in ON_ERROR:
        raise TaskFileError(
            f"{key_path(path, None, 'data.on_error')}: {on_error!r} is unknown; known: {list(ON_ERROR)}"
        )
    field_map = (
        parse_field_map(data_cfg.get("field_map"), key_path(path, None, "data.field_map")) or {}
    )
    check_images = data_cfg.get("check_images", True)
    if not isinstance(check_images, bool):
        raise TaskFileError(
            f"{key_path(path, None, 'data.check_images')}: must be true or false, got {check_images!r}"
        )
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict) or set(defaults) - DEFAULT_KEYS:
        raise TaskFileError(
            f"{key_path(path, None, 'defaults')}: unknown key(s) {sorted(set(defaults) - DEFAULT_KEYS)}; "
            f"allowed: {sorted(DEFAULT_KEYS)}"
        )
    tasks_raw = data.get("tasks")
    if not isinstance(tasks_raw, dict) or not tasks_raw:
        raise TaskFileError(
            f"{key_path(path, None, 'tasks')}: must be a non-empty mapping of tasks"
        )
    root = Path(data["data_root"])
    tasks = {
        key: parse_task(key, body, defaults, path, root, check_files, allow_auto)
        for key, body in tasks_raw.items()
    }
    seen: dict[str, str] = {}
    for spec in tasks.values():
        for v in spec.validation:
            if v.name in tasks:
                raise TaskFileError(
                    f"{key_path(path, spec.key, 'validation')}: validation set name {v.name!r} is "
                    f"also a task name; val/{v.name}/... would mean both, rename the set"
                )
            if v.problem_type is not None and v.problem_type not in spec.problem_types:
                raise TaskFileError(
                    f"{key_path(path, spec.key, 'validation')}: set {v.name!r}: problem_type "
                    f"{v.problem_type!r} is not one of the task's problem_types "
                    f"{list(spec.problem_types)}"
                )
            if v.name in seen:
                raise TaskFileError(
                    f"{key_path(path, spec.key, 'validation')}: duplicate validation set name "
                    f"{v.name!r} (also in task {seen[v.name]!r})"
                )
            seen[v.name] = spec.key
    registry = TaskRegistry(
        tasks=tasks,
        advantage_key=advantage_key,
        on_error=on_error,
        field_map=field_map,
        check_images=check_images,
        source=path,
    )
    logger.info("loaded %d tasks from %s: %s", len(tasks), path, ", ".join(tasks))
    return registry


def auto_bounds(path: str | Path) -> dict[str, list[str]]:
    """Task key -> its bounds set to ``auto`` (of :data:`AUTO_FIELDS`) in a task file, read
    without validating the rest (for a consumer that refuses ``auto`` before loading)."""
    data = read_with_extends(Path(path))
    defaults = data.get("defaults") if isinstance(data.get("defaults"), dict) else {}
    tasks = data.get("tasks") if isinstance(data.get("tasks"), dict) else {}
    out: dict[str, list[str]] = {}
    for key, body in tasks.items():
        merged = {**defaults, **(body if isinstance(body, dict) else {})}
        band = merged.get("entropy_band") if isinstance(merged.get("entropy_band"), dict) else {}
        names = ["length_envelope"] if merged.get("length_envelope") == AUTO else []
        names += [k for k in ("h_min", "h_max") if band.get(k) == AUTO]
        if names:
            out[str(key)] = names
    return out
