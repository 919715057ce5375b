"""Export our records to verl's RL parquet schema.

One row per record, the columns verl's ``RLHFDataset`` and reward loop read:

- ``data_source``: the task key for training rows; the *validation set's name* for validation
  rows (verl groups validation metrics by it: ``val-core/<set>/acc/...``; the plugin adds
  ``val/<set>/...``, ``val/<task>/...`` and ``val/macro/...`` from ``extra_info.task``);
- ``prompt``: chat messages whose user text holds one ``<image>`` placeholder per image, in
  order (verl swaps them for the images; our prompt templates put images first);
- ``images``: ``[{"bytes": <file bytes>, "path": <original path>, "min_pixels", "max_pixels"}]``,
  embedded so a multi-node run needs no shared image directory; the bytes are the file's own,
  unchanged; the pixel range is the model's (verl's ``fetch_image`` resizes into it);
- ``reward_model``: ``{"style": "rule", "ground_truth": <answer as JSON text>}``;
- ``extra_info``: ``index``, ``id``, ``task``, ``set`` (validation rows), ``problem_type``,
  ``options``, image sizes (``model_image_size`` by the model's processor geometry, see
  ``images.py``) and the record's ``metadata`` as JSON text (benchmark metrics read it).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from openvlthinker.verl_plugin.images import ASSUMED, ImageGeometry

logger = logging.getLogger(__name__)

DEFAULT_GEOMETRY = ImageGeometry(
    ASSUMED["image_factor"], ASSUMED["min_pixels"], ASSUMED["max_pixels"], source="assumed"
)
IMAGE_PLACEHOLDER = "<image>"

SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        (
            "prompt",
            pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])),
        ),
        (
            "images",
            pa.list_(
                pa.struct(
                    [
                        ("bytes", pa.binary()),
                        ("path", pa.string()),
                        ("min_pixels", pa.int64()),
                        ("max_pixels", pa.int64()),
                    ]
                )
            ),
        ),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        (
            "extra_info",
            pa.struct(
                [
                    ("index", pa.int64()),
                    ("id", pa.string()),
                    ("task", pa.string()),
                    ("set", pa.string()),
                    ("problem_type", pa.string()),
                    ("options", pa.list_(pa.string())),
                    ("image_size", pa.list_(pa.int64())),
                    ("model_image_size", pa.list_(pa.int64())),
                    ("metadata", pa.string()),
                ]
            ),
        ),
    ]
)


def flatten_messages(messages: Sequence[dict]) -> list[dict[str, str]]:
    """Qwen-VL processor messages (content lists) -> verl's text messages with one
    ``<image>`` per image entry, in order."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content})
            continue
        parts = []
        for item in content:
            kind = item.get("type")
            if kind == "image":
                parts.append(IMAGE_PLACEHOLDER)
            elif kind == "text":
                parts.append(item["text"])
            else:
                raise ValueError(f"message content of type {kind!r} cannot be exported to verl")
        out.append({"role": message["role"], "content": "".join(parts)})
    return out


def _image_entry(image: Any) -> dict[str, Any]:
    """A record image (absolute path, or a PIL image from a datasets.Dataset) as parquet bytes."""
    if hasattr(image, "save"):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return {"bytes": buf.getvalue(), "path": None}
    path = Path(os.fspath(image))
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    return {"bytes": path.read_bytes(), "path": str(path)}


def record_row(
    record: Any,
    index: int,
    *,
    geometry: ImageGeometry | None = None,
    val_set: str | None = None,
    **prompt_options: Any,
) -> dict[str, Any]:
    """One verl row for one ``openvlthinker.data.Record``; ``geometry`` is the model's resize
    (:func:`~openvlthinker.verl_plugin.images.resolve_geometry`; None: Qwen3-VL's, assumed),
    ``val_set`` the validation set it belongs to (its ``data_source``), ``prompt_options`` go
    to ``build_messages`` (template, tag names, coordinate frame, ...)."""
    from openvlthinker.data import build_messages

    if record.videos:
        raise ValueError(f"record {record.id!r}: video records are not exported to verl yet")
    geometry = geometry or DEFAULT_GEOMETRY
    prompt = flatten_messages(build_messages(record, **prompt_options))
    # verl's fetch_image resizes into this range, so the processor's own resize is a no-op
    limits = {"min_pixels": geometry.min_pixels, "max_pixels": geometry.max_pixels}
    images = [_image_entry(img) | limits for img in record.images]
    placeholders = sum(m["content"].count(IMAGE_PLACEHOLDER) for m in prompt)
    if placeholders != len(images):
        raise ValueError(
            f"record {record.id!r}: the prompt has {placeholders} image placeholders for "
            f"{len(images)} images"
        )
    size = record.image_size
    return {
        "data_source": val_set or record.task,
        "prompt": prompt,
        "images": images,
        "ability": record.problem_type,
        "reward_model": {"style": "rule", "ground_truth": json.dumps(record.answer)},
        "extra_info": {
            "index": index,
            "id": str(record.id),
            "task": record.task,
            "set": val_set,
            "problem_type": record.problem_type,
            "options": [str(o) for o in record.options] or None,
            "image_size": list(size) if size else None,
            "model_image_size": list(geometry.model_size(tuple(size))) if size else None,
            "metadata": json.dumps(dict(record.metadata), default=str) if record.metadata else None,
        },
    }


def write_parquet(rows: Iterable[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write rows with :data:`SCHEMA`; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(list(rows), schema=SCHEMA)
    pq.write_table(table, out)
    return out


def export_records(
    records: Sequence[Any],
    path: str | os.PathLike,
    *,
    geometry: ImageGeometry | None = None,
    val_set: str | None = None,
    **prompt_options: Any,
) -> Path:
    """Records -> one verl parquet file (``val_set``: the validation set they form)."""
    rows = (
        record_row(r, i, geometry=geometry, val_set=val_set, **prompt_options)
        for i, r in enumerate(records)
    )
    return write_parquet(rows, path)


def export_tasks(
    registry: Any,
    out_dir: str | os.PathLike,
    *,
    geometry: ImageGeometry | None = None,
    **prompt_options: Any,
) -> tuple[list[str], list[str]]:
    """The task file's training records into ``train.parquet`` and each validation set into
    ``val_<name>.parquet``, loaded with the task file's own settings; image sizes by
    ``geometry`` (None: Qwen3-VL's, with a warning). Returns (train_files, val_files)."""
    from openvlthinker.data import load_task_data

    if geometry is None:
        logger.warning(
            "export without the model's image geometry: model_image_size assumes Qwen3-VL's "
            "(factor %d, %d to %d pixels)",
            DEFAULT_GEOMETRY.factor,
            DEFAULT_GEOMETRY.min_pixels,
            DEFAULT_GEOMETRY.max_pixels,
        )
        geometry = DEFAULT_GEOMETRY
    prompt_options = {"geometry": geometry, **prompt_options}
    out = Path(out_dir)
    train_records = [r for recs in load_task_data(registry, "train").values() for r in recs]
    if not train_records:
        raise ValueError(f"{registry.source}: the task file lists no training records")
    train = export_records(train_records, out / "train.parquet", **prompt_options)
    val_files = [
        str(export_records(records, out / f"val_{name}.parquet", val_set=name, **prompt_options))
        for name, records in load_task_data(registry, "validation").items()
    ]
    logger.info(
        "exported %d training records and %d validation sets to %s",
        len(train_records),
        len(val_files),
        out,
    )
    return [str(train)], val_files
