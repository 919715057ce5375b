"""Checks of one task file's entries (a task, its files, bounds, weights and options),
each error naming the file, the task and the key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from openvlthinker.problem_types import canonical_problem_type
from openvlthinker.tasks.spec import (
    AUTO,
    AUTO_FIELDS,
    DEFAULT_ENTROPY_BAND,
    DEFAULT_LENGTH_INTENT,
    LENGTH_INTENTS,
    DataFile,
    TaskFileError,
    TaskSpec,
    ValidationSet,
)

DATA_KEYS = {"on_error", "field_map", "check_images"}
DEFAULT_KEYS = {
    "length_envelope",
    "length_intent",
    "length_weight",
    "entropy_band",
    "reward_weights",
    "scorer_options",
}
_TASK_KEYS = {"domain", "problem_types", "train", "validation"} | DEFAULT_KEYS
_BAND_KEYS = ("h_min", "h_max", "coef")
_FILE_KEYS = {"path", "image_root", "field_map"}
_VAL_KEYS = _FILE_KEYS | {"name", "metric", "problem_type", "box_format", "options_in_problem"}
BOX_FORMATS = ("xyxy", "xywh")
#: Names a validation set may not take: they would collide with ``val/macro/...`` / ``val/score``.
RESERVED_SET_NAMES = ("macro", "score")


def key_path(path: Path, task: str | None, key: str) -> str:
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


def calibrated_spec(spec: TaskSpec, values: Mapping[str, Any], source: Path) -> TaskSpec:
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
            f"{key_path(source, spec.key, 'length_envelope')} (calibrated)",
            allow_auto=False,
        )
    h_min, h_max, coef = spec.entropy_band
    band = {"h_min": values.get("h_min", h_min), "h_max": values.get("h_max", h_max), "coef": coef}
    band = {k: AUTO if v is None else v for k, v in band.items()}
    where = f"{key_path(source, spec.key, 'entropy_band')} (calibrated)"
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
    own = _raw_scorer_options(body, key_path(path, key, "scorer_options"), types)
    merged = {t: {**base.get(t, {}), **own.get(t, {})} for t in types if t in base or t in own}
    checks = [(t, o, "defaults.scorer_options", None) for t, o in base.items()]
    checks += [(t, o, "scorer_options", key) for t, o in merged.items()]
    for name, options, prefix, task in checks:
        try:
            scorer_options(name, options)
        except ScorerOptionError as e:
            where = key_path(path, task, f"{prefix}.{name}.{e.key}")
            raise TaskFileError(f"{where}: {e.reason}") from e
    return merged


def parse_field_map(value: Any, where: str) -> dict[str, str | tuple[str, ...]] | None:
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
        from openvlthinker.benchmarks import METRICS

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
            "field_map": parse_field_map(entry.get("field_map"), f"{w}.field_map"),
        }
        if validation:
            item.update(_set_options(entry, w))
        out.append(item)
    return out


def parse_task(
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
        raise TaskFileError(f"{key_path(path, key, 'tasks')}: task body must be a mapping")
    unknown = set(body) - _TASK_KEYS
    if unknown:
        raise TaskFileError(
            f"{path}: task {key!r}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_TASK_KEYS)}"
        )
    merged = {**defaults, **body}

    def need(name: str) -> Any:
        if name not in merged:
            raise TaskFileError(
                f"{key_path(path, key, name)}: missing (set it on the task or in defaults)"
            )
        return merged[name]

    domain = merged.get("domain")
    if not isinstance(domain, str) or not domain:
        raise TaskFileError(
            f"{key_path(path, key, 'domain')}: required non-empty string, got {domain!r}"
        )
    raw_types = need("problem_types")
    if not isinstance(raw_types, list) or not raw_types:
        raise TaskFileError(
            f"{key_path(path, key, 'problem_types')}: must be a non-empty list, got {raw_types!r}"
        )
    types: list[str] = []
    for t in raw_types:
        try:
            canon = canonical_problem_type(t, where=key_path(path, key, "problem_types"))
        except ValueError as e:
            raise TaskFileError(str(e)) from e
        if canon in types:
            raise TaskFileError(f"{key_path(path, key, 'problem_types')}: {t!r} listed twice")
        types.append(canon)
    length_weight = _number(need("length_weight"), key_path(path, key, "length_weight"))
    if length_weight < 0:
        raise TaskFileError(
            f"{key_path(path, key, 'length_weight')}: must be >= 0, got {length_weight}"
        )
    intent = merged.get("length_intent", DEFAULT_LENGTH_INTENT)
    if intent not in LENGTH_INTENTS:
        raise TaskFileError(
            f"{key_path(path, key, 'length_intent')}: {intent!r} is unknown; known: {list(LENGTH_INTENTS)}"
        )
    weights = _weights(merged.get("reward_weights", {}), key_path(path, key, "reward_weights"))
    weights["length"] = length_weight
    options = _scorer_options(
        defaults.get("scorer_options"), body.get("scorer_options"), tuple(types), path, key
    )
    return TaskSpec(
        key=key,
        domain=domain,
        problem_types=tuple(types),
        length_envelope=_envelope(
            need("length_envelope"), key_path(path, key, "length_envelope"), allow_auto=allow_auto
        ),
        length_weight=length_weight,
        entropy_band=_band(
            merged.get("entropy_band", dict(zip(_BAND_KEYS, DEFAULT_ENTROPY_BAND))),
            key_path(path, key, "entropy_band"),
            allow_auto=allow_auto,
        ),
        reward_weights=weights,
        scorer_options=options,
        train=tuple(
            DataFile(**f)
            for f in _files(
                body.get("train"),
                key_path(path, key, "train"),
                root,
                validation=False,
                check_files=check_files,
            )
        ),
        validation=tuple(
            ValidationSet(**f)
            for f in _files(
                body.get("validation"),
                key_path(path, key, "validation"),
                root,
                validation=True,
                check_files=check_files,
            )
        ),
        length_intent=intent,
    )
