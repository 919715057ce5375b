"""The task registry: the one place that says which tasks exist and how each is shaped.

A *task* groups records that share a domain, a response-length envelope, an entropy band
and reward weights (method.md sections 2-4). Everything else (advantage stage 2, entropy
shaping, validation) asks the registry loaded from a task file; nothing keeps its own list.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from openvlthinker.problem_types import canonical_problem_type

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

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
#: Why a trainer refuses ``reward.weights``: engine/config.py's copy of
#: ``rewards.config.WEIGHTS_FROM_TASKS`` until it imports that one (issue 13 merge).
WEIGHTS_FROM_TASKS = (
    "the weights come from the task file's reward_weights and length_weight, set them there"
)


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
            "help": "Benchmark metric (openvlthinker.evaluation.metrics), logged as "
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


@dataclass(frozen=True)
class TaskRegistry(Mapping[str, TaskSpec]):
    """Task key -> :class:`TaskSpec`, in file order (the order gives ``index``)."""

    tasks: Mapping[str, TaskSpec]
    advantage_key: str = "task"
    on_error: str = "fail"
    field_map: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    check_images: bool = True
    source: Path | None = None

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
        for i, name in enumerate(self.tasks):
            if name == key:
                return i
        raise KeyError(f"unknown task {key!r}; known: {', '.join(self.tasks)}")

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
            tasks[key] = _calibrated(self[key], values, source)
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

_TOP_KEYS = {"advantage_key", "data_root", "data", "defaults", "tasks", "extends"}
_DATA_KEYS = {"on_error", "field_map", "check_images"}
_DEFAULT_KEYS = {
    "length_envelope",
    "length_intent",
    "length_weight",
    "entropy_band",
    "reward_weights",
    "scorer_options",
}
_TASK_KEYS = {"domain", "problem_types", "train", "validation"} | _DEFAULT_KEYS
_BAND_KEYS = ("h_min", "h_max", "coef")
_FILE_KEYS = {"path", "image_root", "field_map"}
_VAL_KEYS = _FILE_KEYS | {"name", "metric", "problem_type", "box_format", "options_in_problem"}
BOX_FORMATS = ("xyxy", "xywh")
#: Names a validation set may not take: they would collide with ``val/macro/...`` / ``val/score``.
RESERVED_SET_NAMES = ("macro", "score")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise TaskFileError(
                f"{loader.name}: duplicate key {key!r} at line {key_node.start_mark.line + 1} "
                f"(first at line {seen[key] + 1}); each key may appear once"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TaskFileError(f"{path}: task file not found")
    with path.open(encoding="utf-8") as fh:
        loader = _UniqueKeyLoader(fh)
        loader.name = str(path)
        try:
            data = loader.get_single_data()
        except yaml.YAMLError as e:
            raise TaskFileError(f"{path}: not valid YAML: {e}") from e
        finally:
            loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TaskFileError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of mappings; lists and scalars in ``over`` replace those in ``base``."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_with_extends(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in chain:
        raise TaskFileError(f"{path}: 'extends' forms a cycle: {' -> '.join(map(str, chain))}")
    data = _read_yaml(path)
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise TaskFileError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}"
        )
    # A relative data_root belongs to the file that writes it, so resolve it here.
    root = data.get("data_root", "." if not data.get("extends") else None)
    if root is not None:
        data["data_root"] = str((path.parent / str(root)).resolve())
    if "extends" in data:
        base = _read_with_extends(path.parent / str(data.pop("extends")), (*chain, path))
        data = _merge(base, data)
    return data


def _where(path: Path, task: str | None, key: str) -> str:
    return f"{path}: task {task!r}, key {key!r}" if task else f"{path}: key {key!r}"


def _number(value: Any, where: str, *, integer: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or (integer and value != int(value)):
        kind = "an integer" if integer else "a finite number"
        raise TaskFileError(f"{where}: must be {kind}, got {value!r}")
    return int(value) if integer else float(value)


def _auto_refused(where: str) -> TaskFileError:
    return TaskFileError(
        f"{where}: 'auto' is measured from the policy before training: `openvlthinker train` "
        "does it at start-up; anywhere else run `openvlthinker calibrate --config CONFIG --out "
        "TASKS_OUT.yaml` first and pass TASKS_OUT.yaml"
    )


def _envelope(value: Any, where: str, *, allow_auto: bool) -> tuple[int, int, int, int] | None:
    if value == AUTO:
        if not allow_auto:
            raise _auto_refused(where)
        return None
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise TaskFileError(
            f"{where}: must be [L_min, L_low, L_high, L_max] or {AUTO!r}, got {value!r}"
        )
    lmin, low, high, lmax = (_number(v, where, integer=True) for v in value)
    if not (0 <= lmin < low <= high < lmax):
        raise TaskFileError(
            f"{where}: envelope {list(value)} out of order; need 0 <= L_min < L_low <= L_high < L_max"
        )
    return lmin, low, high, lmax


def _band(value: Any, where: str, *, allow_auto: bool) -> tuple[float | None, float | None, float]:
    if not isinstance(value, dict):
        raise TaskFileError(f"{where}: must be a mapping with {list(_BAND_KEYS)}, got {value!r}")
    unknown = set(value) - set(_BAND_KEYS)
    missing = set(_BAND_KEYS) - set(value)
    if unknown or missing:
        raise TaskFileError(
            f"{where}: needs exactly {list(_BAND_KEYS)}; unknown {sorted(unknown)}, missing {sorted(missing)}"
        )
    bounds: dict[str, float | None] = {}
    for k in ("h_min", "h_max"):
        if value[k] == AUTO:
            if not allow_auto:
                raise _auto_refused(f"{where}.{k}")
            bounds[k] = None
        else:
            bounds[k] = _number(value[k], f"{where}.{k}")
    h_min, h_max = bounds["h_min"], bounds["h_max"]
    coef = _number(value["coef"], f"{where}.coef")
    if h_min is not None and h_min < 0:
        raise TaskFileError(f"{where}.h_min: must be >= 0, got {h_min}")
    if h_min is not None and h_max is not None and not h_min < h_max:
        raise TaskFileError(f"{where}: need 0 <= h_min < h_max, got h_min={h_min}, h_max={h_max}")
    if h_max is not None and h_max <= 0:
        raise TaskFileError(f"{where}.h_max: must be > 0, got {h_max}")
    if coef < 0:
        raise TaskFileError(f"{where}.coef: must be >= 0, got {coef}")
    return h_min, h_max, coef


def _calibrated(spec: TaskSpec, values: Mapping[str, Any], source: Path) -> TaskSpec:
    """``spec`` with the bounds in ``values`` (of :data:`AUTO_FIELDS`) replaced and checked."""
    unknown = set(values) - set(AUTO_FIELDS)
    if unknown:
        raise TaskFileError(
            f"{source}: task {spec.key!r}: unknown calibrated bound(s) {sorted(unknown)}; "
            f"known: {list(AUTO_FIELDS)}"
        )
    envelope = spec.length_envelope
    if "length_envelope" in values:
        envelope = _envelope(
            list(values["length_envelope"]),
            f"{_where(source, spec.key, 'length_envelope')} (calibrated)",
            allow_auto=False,
        )
    h_min, h_max, coef = spec.entropy_band
    band = {"h_min": values.get("h_min", h_min), "h_max": values.get("h_max", h_max), "coef": coef}
    band = {k: AUTO if v is None else v for k, v in band.items()}
    where = f"{_where(source, spec.key, 'entropy_band')} (calibrated)"
    return replace(spec, length_envelope=envelope, entropy_band=_band(band, where, allow_auto=True))


def _weights(value: Any, where: str) -> dict[str, float]:
    """The task's weights: the released defaults with ``reward_weights`` over them."""
    # deferred: the rewards package is heavy, and loading a task file imports it anyway
    from openvlthinker.rewards.config import DEFAULT_WEIGHTS, TASK_WEIGHTED_COMPONENTS

    if not isinstance(value, dict):
        raise TaskFileError(f"{where}: must be a mapping component -> weight, got {value!r}")
    if "length" in value:
        raise TaskFileError(f"{where}: 'length' is set by the task's length_weight, not here")
    unknown = set(value) - set(TASK_WEIGHTED_COMPONENTS)
    if unknown:
        raise TaskFileError(
            f"{where}: unknown reward component(s) {sorted(unknown)}; "
            f"known: {list(TASK_WEIGHTED_COMPONENTS)}"
        )
    weights = {k: float(DEFAULT_WEIGHTS[k]) for k in TASK_WEIGHTED_COMPONENTS}
    weights.update({k: _number(v, f"{where}.{k}") for k, v in value.items()})
    return weights


def _raw_scorer_options(
    value: Any, where: str, types: tuple[str, ...] | None
) -> dict[str, dict[str, Any]]:
    """``scorer_options`` keyed by canonical problem type; ``types``: the ones allowed."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TaskFileError(f"{where}: must map problem type -> options, got {value!r}")
    out: dict[str, dict[str, Any]] = {}
    for raw, options in value.items():
        try:
            name = canonical_problem_type(raw, where=f"{where}.{raw}")
        except ValueError as e:
            raise TaskFileError(str(e)) from e
        if types is not None and name not in types:
            raise TaskFileError(
                f"{where}.{raw}: {name!r} is not a problem type of this task "
                f"(its problem_types: {', '.join(types)})"
            )
        if options is not None and not isinstance(options, dict):
            raise TaskFileError(
                f"{where}.{raw}: must be a mapping option -> value, got {options!r}"
            )
        out[name] = dict(options or {})
    return out


def _scorer_options(
    defaults: Any, body: Any, types: tuple[str, ...], path: Path, key: str
) -> dict[str, dict[str, Any]]:
    """The task's scorer options: ``defaults.scorer_options`` (for the task's own problem
    types) merged option by option under the task's, each checked by its scorer."""
    import openvlthinker.rewards  # noqa: F401  (registers the built-in scorers and options)
    from openvlthinker.rewards.options import ScorerOptionError
    from openvlthinker.rewards.registry import scorer_options

    base = _raw_scorer_options(defaults, f"{path}: key 'defaults.scorer_options'", None)
    own = _raw_scorer_options(body, _where(path, key, "scorer_options"), types)
    merged = {t: {**base.get(t, {}), **own.get(t, {})} for t in types if t in base or t in own}
    checks = [(t, o, "defaults.scorer_options", None) for t, o in base.items()]
    checks += [(t, o, "scorer_options", key) for t, o in merged.items()]
    for name, options, prefix, task in checks:
        try:
            scorer_options(name, options)
        except ScorerOptionError as e:
            where = _where(path, task, f"{prefix}.{name}.{e.key}")
            raise TaskFileError(f"{where}: {e.reason}") from e
    return merged


def _field_map(value: Any, where: str) -> dict[str, str | tuple[str, ...]] | None:
    if value is None:
        return None
    from openvlthinker.data.records import LIST_FIELDS, RECORD_FIELDS

    def column(k: Any, v: Any) -> bool:
        if isinstance(v, list) and k in LIST_FIELDS:  # several columns -> one list field
            return bool(v) and all(isinstance(c, str) and c for c in v)
        return isinstance(v, str)

    if not isinstance(value, dict) or not all(
        isinstance(k, str) and column(k, v) for k, v in value.items()
    ):
        raise TaskFileError(
            f"{where}: must map our field name -> file field name (a list of names for "
            f"{', '.join(LIST_FIELDS)}), got {value!r}"
        )
    unknown = set(value) - set(RECORD_FIELDS)
    if unknown:
        raise TaskFileError(
            f"{where}: unknown record field(s) {sorted(unknown)}; known: {list(RECORD_FIELDS)}"
        )
    return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}


def _set_options(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """name, metric, problem_type and box_format of one validation entry, checked."""
    name = entry["name"]
    if "/" in name or name in RESERVED_SET_NAMES:
        raise TaskFileError(
            f"{where}.name: {name!r} is not a valid set name (no '/', not one of "
            f"{list(RESERVED_SET_NAMES)}: metric names val/<set>/... would collide)"
        )
    out: dict[str, Any] = {"name": name}
    metric = entry.get("metric")
    if metric is not None:
        from openvlthinker.evaluation.metrics import METRICS

        if metric not in METRICS:
            raise TaskFileError(
                f"{where}.metric: {metric!r} is unknown; known: {', '.join(sorted(METRICS))}"
            )
        out["metric"] = metric
    if entry.get("problem_type") is not None:
        try:
            out["problem_type"] = canonical_problem_type(
                entry["problem_type"], where=f"{where}.problem_type"
            )
        except ValueError as e:
            raise TaskFileError(str(e)) from e
    box_format = entry.get("box_format", "xyxy")
    if box_format not in BOX_FORMATS:
        raise TaskFileError(
            f"{where}.box_format: {box_format!r} is unknown; known: {list(BOX_FORMATS)}"
        )
    out["box_format"] = box_format
    in_problem = entry.get("options_in_problem", False)
    if not isinstance(in_problem, bool):
        raise TaskFileError(
            f"{where}.options_in_problem: must be true or false, got {in_problem!r}"
        )
    out["options_in_problem"] = in_problem
    return out


def _files(
    value: Any, where: str, root: Path, *, validation: bool, check_files: bool
) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TaskFileError(f"{where}: must be a list of file entries, got {value!r}")
    allowed = _VAL_KEYS if validation else _FILE_KEYS
    out = []
    for i, entry in enumerate(value):
        w = f"{where}[{i}]"
        if isinstance(entry, str) and not validation:
            entry = {"path": entry}
        if not isinstance(entry, dict):
            raise TaskFileError(f"{w}: must be a mapping with {sorted(allowed)}, got {entry!r}")
        unknown = set(entry) - allowed
        if unknown:
            raise TaskFileError(
                f"{w}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        required = ("name", "path") if validation else ("path",)
        for k in required:
            if not isinstance(entry.get(k), str) or not entry[k]:
                raise TaskFileError(f"{w}.{k}: required non-empty string, got {entry.get(k)!r}")
        path = root / entry["path"]
        if check_files and not path.is_file():
            raise TaskFileError(f"{w}.path: file {str(path)!r} does not exist")
        image_root = root / entry["image_root"] if entry.get("image_root") else None
        if check_files and image_root is not None and not image_root.is_dir():
            raise TaskFileError(f"{w}.image_root: directory {str(image_root)!r} does not exist")
        item = {
            "path": path,
            "image_root": image_root,
            "field_map": _field_map(entry.get("field_map"), f"{w}.field_map"),
        }
        if validation:
            item.update(_set_options(entry, w))
        out.append(item)
    return out


def _task(
    key: str,
    body: Any,
    defaults: dict[str, Any],
    path: Path,
    root: Path,
    check_files: bool,
    allow_auto: bool,
) -> TaskSpec:
    if not isinstance(key, str) or not key or "/" in key:
        raise TaskFileError(f"{path}: task key {key!r} must be a non-empty string without '/'")
    if not isinstance(body, dict):
        raise TaskFileError(f"{_where(path, key, 'tasks')}: task body must be a mapping")
    unknown = set(body) - _TASK_KEYS
    if unknown:
        raise TaskFileError(
            f"{path}: task {key!r}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_TASK_KEYS)}"
        )
    merged = {**defaults, **body}

    def need(name: str) -> Any:
        if name not in merged:
            raise TaskFileError(
                f"{_where(path, key, name)}: missing (set it on the task or in defaults)"
            )
        return merged[name]

    domain = merged.get("domain")
    if not isinstance(domain, str) or not domain:
        raise TaskFileError(
            f"{_where(path, key, 'domain')}: required non-empty string, got {domain!r}"
        )
    raw_types = need("problem_types")
    if not isinstance(raw_types, list) or not raw_types:
        raise TaskFileError(
            f"{_where(path, key, 'problem_types')}: must be a non-empty list, got {raw_types!r}"
        )
    types: list[str] = []
    for t in raw_types:
        try:
            canon = canonical_problem_type(t, where=_where(path, key, "problem_types"))
        except ValueError as e:
            raise TaskFileError(str(e)) from e
        if canon in types:
            raise TaskFileError(f"{_where(path, key, 'problem_types')}: {t!r} listed twice")
        types.append(canon)
    length_weight = _number(need("length_weight"), _where(path, key, "length_weight"))
    if length_weight < 0:
        raise TaskFileError(
            f"{_where(path, key, 'length_weight')}: must be >= 0, got {length_weight}"
        )
    intent = merged.get("length_intent", DEFAULT_LENGTH_INTENT)
    if intent not in LENGTH_INTENTS:
        raise TaskFileError(
            f"{_where(path, key, 'length_intent')}: {intent!r} is unknown; known: {list(LENGTH_INTENTS)}"
        )
    weights = _weights(merged.get("reward_weights", {}), _where(path, key, "reward_weights"))
    weights["length"] = length_weight
    options = _scorer_options(
        defaults.get("scorer_options"), body.get("scorer_options"), tuple(types), path, key
    )
    return TaskSpec(
        key=key,
        domain=domain,
        problem_types=tuple(types),
        length_envelope=_envelope(
            need("length_envelope"), _where(path, key, "length_envelope"), allow_auto=allow_auto
        ),
        length_weight=length_weight,
        entropy_band=_band(
            merged.get("entropy_band", dict(zip(_BAND_KEYS, DEFAULT_ENTROPY_BAND))),
            _where(path, key, "entropy_band"),
            allow_auto=allow_auto,
        ),
        reward_weights=weights,
        scorer_options=options,
        train=tuple(
            DataFile(**f)
            for f in _files(
                body.get("train"),
                _where(path, key, "train"),
                root,
                validation=False,
                check_files=check_files,
            )
        ),
        validation=tuple(
            ValidationSet(**f)
            for f in _files(
                body.get("validation"),
                _where(path, key, "validation"),
                root,
                validation=True,
                check_files=check_files,
            )
        ),
        length_intent=intent,
    )


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
    data = _read_with_extends(path)
    advantage_key = data.get("advantage_key", "task")
    if advantage_key not in ADVANTAGE_KEYS:
        raise TaskFileError(
            f"{_where(path, None, 'advantage_key')}: {advantage_key!r} is unknown; known: {list(ADVANTAGE_KEYS)}"
        )
    data_cfg = data.get("data") or {}
    if not isinstance(data_cfg, dict) or set(data_cfg) - _DATA_KEYS:
        raise TaskFileError(
            f"{_where(path, None, 'data')}: must be a mapping with keys {sorted(_DATA_KEYS)}, got {data_cfg!r}"
        )
    on_error = data_cfg.get("on_error", "fail")
    if on_error not in ON_ERROR:
        raise TaskFileError(
            f"{_where(path, None, 'data.on_error')}: {on_error!r} is unknown; known: {list(ON_ERROR)}"
        )
    field_map = _field_map(data_cfg.get("field_map"), _where(path, None, "data.field_map")) or {}
    check_images = data_cfg.get("check_images", True)
    if not isinstance(check_images, bool):
        raise TaskFileError(
            f"{_where(path, None, 'data.check_images')}: must be true or false, got {check_images!r}"
        )
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict) or set(defaults) - _DEFAULT_KEYS:
        raise TaskFileError(
            f"{_where(path, None, 'defaults')}: unknown key(s) {sorted(set(defaults) - _DEFAULT_KEYS)}; "
            f"allowed: {sorted(_DEFAULT_KEYS)}"
        )
    tasks_raw = data.get("tasks")
    if not isinstance(tasks_raw, dict) or not tasks_raw:
        raise TaskFileError(f"{_where(path, None, 'tasks')}: must be a non-empty mapping of tasks")
    root = Path(data["data_root"])
    tasks = {
        key: _task(key, body, defaults, path, root, check_files, allow_auto)
        for key, body in tasks_raw.items()
    }
    seen: dict[str, str] = {}
    for spec in tasks.values():
        for v in spec.validation:
            if v.name in tasks:
                raise TaskFileError(
                    f"{_where(path, spec.key, 'validation')}: validation set name {v.name!r} is "
                    f"also a task name; val/{v.name}/... would mean both, rename the set"
                )
            if v.problem_type is not None and v.problem_type not in spec.problem_types:
                raise TaskFileError(
                    f"{_where(path, spec.key, 'validation')}: set {v.name!r}: problem_type "
                    f"{v.problem_type!r} is not one of the task's problem_types "
                    f"{list(spec.problem_types)}"
                )
            if v.name in seen:
                raise TaskFileError(
                    f"{_where(path, spec.key, 'validation')}: duplicate validation set name "
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
    data = _read_with_extends(Path(path))
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
