"""The record loaders (JSON, JSONL, parquet, ``datasets.Dataset``) and the schema they fill.

Files in another layout (e.g. the released OneThinker sample, which calls the task
``task_type``) load through a field map. A bad record is reported with its file and row; the
policy either fails or skips and counts. The schema (:class:`Record` and its fields) lives in
:mod:`openvlthinker.data.schema` and is re-exported here. One concept, so one module over
~400 lines: turning a file's rows into checked records.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from openvlthinker.data.schema import (
    DATA_TYPES,
    IMAGE_PLACEHOLDER,
    LIST_FIELDS,
    RECORD_FIELDS,
    RELEASED_FIELD_MAP,
    REQUIRED_FIELDS,
    VIDEO_PLACEHOLDER,
    LoadedRecords,
    LoadReport,
    Record,
    RecordError,
    TaskCatalog,
)
from openvlthinker.problem_types import canonical_problem_type

__all__ = [
    "DATA_TYPES",
    "IMAGE_PLACEHOLDER",
    "LIST_FIELDS",
    "RECORD_FIELDS",
    "RELEASED_FIELD_MAP",
    "REQUIRED_FIELDS",
    "VIDEO_PLACEHOLDER",
    "LoadReport",
    "LoadedRecords",
    "Record",
    "RecordError",
    "TaskCatalog",
    "load_records",
    "load_task_data",
]

logger = logging.getLogger(__name__)


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nan(v) for v in value)
    return False


def _as_list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | Mapping) or not isinstance(value, Iterable):
        value = [value]
    out = list(value)
    for v in out:
        if v is None or (isinstance(v, str) and not v):
            raise ValueError(f"field {name!r}: empty entry in {out!r}")
    return out


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _list_text(value: Any, name: str) -> Any:
    """A list written as text (MMMU's ``options`` column: ``"['1', '2']"``) -> the list."""
    if not isinstance(value, str) or not value.lstrip().startswith("["):
        return value
    import ast

    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"field {name!r}: {value[:60]!r} looks like a list but is not one") from e
    if not isinstance(parsed, list):
        raise ValueError(f"field {name!r}: {value[:60]!r} is not a list")
    return parsed


def _xywh_to_xyxy(answer: Any, column: Any) -> list[float]:
    """A COCO box ``[x, y, w, h]`` -> ``[x1, y1, x2, y2]`` (the set's ``box_format: xywh``)."""
    ok = isinstance(answer, list | tuple) and len(answer) == 4
    if not ok or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in answer):
        raise ValueError(f"field {column!r}: box_format xywh needs [x, y, w, h], got {answer!r}")
    x, y, w, h = (float(v) for v in answer)
    return [x, y, x + w, y + h]


def _media_path(value: Any, root: Path | None, name: str) -> Any:
    if isinstance(value, Mapping):  # datasets' Image feature without decoding
        if value.get("bytes"):  # a Hub parquet file: the image itself, its path only a name
            import io

            from PIL import Image, UnidentifiedImageError

            try:
                return Image.open(io.BytesIO(value["bytes"]))
            except (OSError, UnidentifiedImageError) as e:
                raise ValueError(f"field {name!r}: undecodable image bytes: {e}") from e
        if value.get("path"):
            value = value["path"]
        else:
            raise ValueError(f"field {name!r}: entry {sorted(value)} has neither bytes nor a path")
    if isinstance(value, str | Path):
        p = Path(value)
        if not p.is_absolute() and root is not None:
            p = root / p
        return str(p)
    if hasattr(value, "size") and hasattr(value, "mode"):  # a decoded PIL image
        return value
    raise ValueError(f"field {name!r}: expected a path, got {type(value).__name__} {value!r}")


def _image_size(image: Any, check: bool) -> tuple[int, int] | None:
    if not isinstance(image, str):
        return tuple(image.size)
    if not check:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as im:  # reads the header only
            return tuple(im.size)
    except (OSError, UnidentifiedImageError) as e:
        raise ValueError(f"field 'images': unreadable image {image!r}: {e}") from e


def _make_record(
    raw: Any,
    row: int,
    source: str,
    *,
    registry: TaskCatalog,
    field_map: Mapping[str, str | tuple[str, ...]],
    image_root: Path | None,
    default_task: str | None,
    check_images: bool,
    stem: str,
    default_problem_type: str | None = None,
    box_format: str = "xyxy",
    options_in_problem: bool = False,
) -> Record:
    if not isinstance(raw, Mapping):
        raise ValueError(f"record must be an object, got {type(raw).__name__}")
    mapped_from = {ours: field_map.get(ours, ours) for ours in RECORD_FIELDS}

    def get(name: str) -> Any:
        source = mapped_from[name]
        if isinstance(source, tuple):  # several columns -> the list of their non-empty values
            values = [raw.get(c) for c in source]
            return [v for v in values if not _missing(v)] or None
        return raw.get(source)

    for name in REQUIRED_FIELDS:
        if get(name) is None and not (name == "problem_type" and default_problem_type):
            raise ValueError(f"missing field {mapped_from[name]!r} ({name})")
    for name in RECORD_FIELDS:
        if _has_nan(get(name)):
            raise ValueError(f"field {mapped_from[name]!r}: NaN/inf value {get(name)!r}")
    problem = get("problem")
    if not isinstance(problem, str) or not problem.strip():
        raise ValueError(f"field {mapped_from['problem']!r}: must be a non-empty string")
    answer = get("answer")
    if isinstance(answer, str) and not answer.strip():
        raise ValueError(f"field {mapped_from['answer']!r}: empty answer")

    task = get("task") if get("task") is not None else default_task
    if task is None:
        raise ValueError(f"missing field {mapped_from['task']!r} (task) and the file has no task")
    if not isinstance(task, str):
        raise ValueError(f"field {mapped_from['task']!r}: must be a string, got {task!r}")
    if task not in registry:
        raise ValueError(
            f"field {mapped_from['task']!r}: unknown task {task!r}; known: {', '.join(registry)}"
        )
    raw_type = get("problem_type") if get("problem_type") is not None else default_problem_type
    problem_type = canonical_problem_type(
        str(raw_type), where=f"field {mapped_from['problem_type']!r}"
    )
    if problem_type not in registry[task].problem_types:
        raise ValueError(
            f"field {mapped_from['problem_type']!r}: problem type {problem_type!r} is not one of "
            f"task {task!r}'s problem_types {list(registry[task].problem_types)}"
        )

    images = tuple(_media_path(v, image_root, "images") for v in _as_list(get("images"), "images"))
    videos = tuple(_media_path(v, image_root, "videos") for v in _as_list(get("videos"), "videos"))
    for name, items, tag in (
        ("images", images, IMAGE_PLACEHOLDER),
        ("videos", videos, VIDEO_PLACEHOLDER),
    ):
        n_tags = problem.count(tag)
        if n_tags not in (0, len(items)):
            raise ValueError(
                f"field {mapped_from['problem']!r}: {n_tags} {tag} placeholder(s) but "
                f"{len(items)} {name}"
            )
    for v in videos:
        if check_images and not Path(v).is_file():
            raise ValueError(f"field 'videos': video file {v!r} does not exist")
    sizes = [_image_size(im, check_images) for im in images]

    data_type = get("data_type") or ("video" if videos else "image" if images else "text")
    if data_type not in DATA_TYPES:
        raise ValueError(
            f"field {mapped_from['data_type']!r}: {data_type!r} is unknown; known: {list(DATA_TYPES)}"
        )
    if data_type == "text" and (images or videos):
        raise ValueError(f"field {mapped_from['data_type']!r}: 'text' but the record has media")

    options = tuple(str(o) for o in _as_list(_list_text(get("options"), "options"), "options"))
    if problem_type == "multiple_choice" and not options and not options_in_problem:
        raise ValueError(f"field {mapped_from['options']!r}: multiple_choice needs options")

    meta = get("metadata") or {}
    if not isinstance(meta, Mapping):
        raise ValueError(f"field {mapped_from['metadata']!r}: must be a mapping, got {meta!r}")
    meta = dict(meta)
    used = {c for v in mapped_from.values() for c in (v if isinstance(v, tuple) else (v,))}
    meta.update({k: v for k, v in raw.items() if k not in used})
    rid = get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, str | int)):
        raise ValueError(
            f"field {mapped_from['id']!r}: must be a string or an integer, got {rid!r}"
        )
    if box_format == "xywh" and problem_type == "spatial_grounding":
        answer = _xywh_to_xyxy(answer, mapped_from["answer"])
    return Record(
        id=str(rid) if rid is not None else f"{stem}-{row}",
        problem=problem,
        answer=answer,
        problem_type=problem_type,
        task=task,
        data_type=data_type,
        images=images,
        videos=videos,
        options=options,
        image_sizes=tuple(sizes) if all(s is not None for s in sizes) else (),
        metadata=meta,
        source=f"{source}:{row}",
    )


def _rows(source: Any) -> tuple[str, str, Iterator[tuple[int, Any, str | None]]]:
    """(display name, stem, iterator of (row, raw record or None, parse error))."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a pinned dependency
        datasets = None
    if datasets is not None and isinstance(source, datasets.Dataset):
        name = f"<datasets.Dataset {source.info.dataset_name or 'in memory'}>"
        return name, "dataset", ((i, row, None) for i, row in enumerate(source))

    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: record file not found")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":

        def jsonl() -> Iterator[tuple[int, Any, str | None]]:
            with path.open(encoding="utf-8") as fh:
                row = 0
                for line in fh:
                    if not line.strip():
                        continue
                    try:
                        yield row, json.loads(line), None
                    except json.JSONDecodeError as e:
                        # one numbering in messages: the row (as in default ids), not the line
                        yield row, None, f"invalid JSON at column {e.colno}: {e.msg}"
                    row += 1

        return str(path), path.stem, jsonl()
    if suffix == ".json":
        with path.open(encoding="utf-8") as fh:
            try:
                data = json.load(fh)
            except json.JSONDecodeError as e:
                raise RecordError(str(path), 0, f"invalid JSON: {e}") from e
        if not isinstance(data, list):
            raise RecordError(
                str(path), 0, f"a .json file must hold a list of records, got {type(data).__name__}"
            )
        return str(path), path.stem, ((i, r, None) for i, r in enumerate(data))
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        return str(path), path.stem, ((i, r, None) for i, r in enumerate(rows))
    raise ValueError(
        f"{path}: unsupported record file type {suffix!r}; use .json, .jsonl or .parquet"
    )


def load_records(
    path: str | Path | Any,
    *,
    registry: TaskCatalog,
    field_map: Mapping[str, Any] | None = None,
    on_error: Literal["fail", "skip"] = "fail",
    image_root: str | Path | None = None,
    default_task: str | None = None,
    check_images: bool = True,
    default_problem_type: str | None = None,
    box_format: str = "xyxy",
    options_in_problem: bool = False,
) -> LoadedRecords:
    """Load and validate records from a file or a ``datasets.Dataset``.

    ``field_map`` maps our field names to the file's (``{"task": "task_type"}`` reads the
    released format); ``default_task`` is the task of records without one (the task a
    file is listed under), ``default_problem_type`` that of records without one, and
    ``box_format="xywh"`` turns COCO box answers into ``[x1, y1, x2, y2]``;
    ``options_in_problem`` lets multiple-choice records list their options in the question
    text instead of ``options``. A field map may
    fill ``images`` / ``videos`` / ``options`` from several columns (their non-empty values).
    ``on_error="fail"`` raises :class:`RecordError` naming file and row; ``"skip"`` drops bad records, logs a warning and counts them in ``.report``.
    """
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error: {on_error!r} is unknown; known: 'fail', 'skip'")
    field_map = {k: tuple(v) if isinstance(v, list) else v for k, v in (field_map or {}).items()}
    unknown = set(field_map) - set(RECORD_FIELDS)
    if unknown:
        raise ValueError(
            f"field_map: unknown record field(s) {sorted(unknown)}; known: {list(RECORD_FIELDS)}"
        )
    if default_task is not None and default_task not in registry:
        raise ValueError(
            f"default_task: unknown task {default_task!r}; known: {', '.join(registry)}"
        )
    name, stem, rows = _rows(path)
    root = (
        Path(image_root)
        if image_root is not None
        else (Path(path).parent if isinstance(path, str | Path) else None)
    )
    out = LoadedRecords()
    report = LoadReport(source=name)
    seen_ids: dict[str, int] = {}
    for row, raw, parse_error in rows:
        report.rows += 1
        try:
            if parse_error is not None:
                raise ValueError(parse_error)
            rec = _make_record(
                raw,
                row,
                name,
                registry=registry,
                field_map=field_map,
                image_root=root,
                default_task=default_task,
                check_images=check_images,
                stem=stem,
                default_problem_type=default_problem_type,
                box_format=box_format,
                options_in_problem=options_in_problem,
            )
            if rec.id in seen_ids:
                raise ValueError(
                    f"field 'id': duplicate id {rec.id!r} (first at row {seen_ids[rec.id]})"
                )
            seen_ids[rec.id] = row
        except ValueError as e:
            err = RecordError(name, row, str(e))
            if on_error == "fail":
                raise err from e
            report.skipped += 1
            report.reasons[str(e).split(":")[0]] += 1
            if len(report.examples) < 5:
                report.examples.append(str(err))
            logger.warning("skipping bad record: %s", err)
            continue
        out.append(rec)
        report.loaded += 1
    if report.skipped:
        logger.warning(
            "%s: skipped %d of %d records (%s)",
            name,
            report.skipped,
            report.rows,
            dict(report.reasons),
        )
    out.report = report
    return out


def load_task_data(
    registry: TaskCatalog,
    split: Literal["train", "validation"],
    *,
    check_images: bool | None = None,
) -> dict[str, LoadedRecords]:
    """Load every file of ``split`` listed in the registry, with its settings.

    Returns file key -> records: for ``train`` the key is ``'<task>:<path>'``, for
    ``validation`` the validation set's name. Records without a task get the task the
    file is listed under. ``check_images`` (default: the task file's ``data.check_images``)
    opens every image header to check it is readable and record its size.
    """
    if split not in ("train", "validation"):
        raise ValueError(f"split: {split!r} is unknown; known: 'train', 'validation'")
    out: dict[str, LoadedRecords] = {}
    for spec in registry.values():
        for f in getattr(spec, split):
            key = f.name if split == "validation" else f"{spec.key}:{f.path}"
            out[key] = load_records(
                f.path,
                registry=registry,
                field_map={**registry.field_map, **(f.field_map or {})},
                on_error=registry.on_error,
                image_root=f.image_root,
                default_task=spec.key,
                check_images=registry.check_images if check_images is None else check_images,
                **(
                    {
                        "default_problem_type": f.problem_type,
                        "box_format": f.box_format,
                        "options_in_problem": f.options_in_problem,
                    }
                    if split == "validation"
                    else {}
                ),
            )
    return out
