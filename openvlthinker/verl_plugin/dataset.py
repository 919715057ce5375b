"""Export our records to verl's RL parquet schema.

One row per record, the columns verl's ``RLHFDataset`` and reward loop read:

- ``data_source``: the task key (verl groups validation metrics by it: ``val-core/<task>/acc``);
- ``prompt``: chat messages whose user text holds one ``<image>`` placeholder per image, in
  order (verl swaps them for the images; our prompt templates put images first);
- ``images``: ``[{"bytes": <file bytes>, "path": <original path>}]``, embedded so a
  multi-node run needs no shared image directory; the bytes are the file's own, unchanged;
- ``reward_model``: ``{"style": "rule", "ground_truth": <answer as JSON text>}``;
- ``extra_info``: ``index``, ``id``, ``task``, ``problem_type``, ``options`` and image sizes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

IMAGE_PLACEHOLDER = "<image>"

SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        (
            "prompt",
            pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])),
        ),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        (
            "extra_info",
            pa.struct(
                [
                    ("index", pa.int64()),
                    ("id", pa.string()),
                    ("task", pa.string()),
                    ("problem_type", pa.string()),
                    ("options", pa.list_(pa.string())),
                    ("image_size", pa.list_(pa.int64())),
                    ("model_image_size", pa.list_(pa.int64())),
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


def _image_entry(image: Any, image_root: str | os.PathLike | None) -> dict[str, Any]:
    path = Path(os.fspath(image))
    if not path.is_absolute() and image_root is not None:
        path = Path(image_root) / path
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    return {"bytes": path.read_bytes(), "path": str(image)}


def _size(value: Any) -> list[int] | None:
    if value is None:
        return None
    return [int(v) for v in value]


def record_row(
    record: Any,
    index: int,
    *,
    template: str | None = None,
    image_root: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """One verl row for one ``openvlthinker.data.Record``."""
    from openvlthinker.data import build_messages

    if getattr(record, "videos", None):
        raise ValueError(f"record {record.id!r}: video records are not exported to verl yet")
    messages = build_messages(record, template=template) if template else build_messages(record)
    prompt = flatten_messages(messages)
    images = [_image_entry(img, image_root) for img in (record.images or [])]
    placeholders = sum(m["content"].count(IMAGE_PLACEHOLDER) for m in prompt)
    if placeholders != len(images):
        raise ValueError(
            f"record {record.id!r}: the prompt has {placeholders} image placeholders for "
            f"{len(images)} images"
        )
    options = getattr(record, "options", None)
    return {
        "data_source": record.task,
        "prompt": prompt,
        "images": images,
        "ability": record.problem_type,
        "reward_model": {"style": "rule", "ground_truth": json.dumps(record.answer)},
        "extra_info": {
            "index": index,
            "id": str(record.id),
            "task": record.task,
            "problem_type": record.problem_type,
            "options": [str(o) for o in options] if options else None,
            "image_size": _size(getattr(record, "image_size", None)),
            "model_image_size": _size(getattr(record, "model_image_size", None)),
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
    template: str | None = None,
    image_root: str | os.PathLike | None = None,
) -> Path:
    """Records -> one verl parquet file."""
    return write_parquet(
        (record_row(r, i, template=template, image_root=image_root) for i, r in enumerate(records)),
        path,
    )


def export_tasks(registry: Any, out_dir: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Every task's train files into ``train.parquet`` and each validation set into
    ``val_<task>_<name>.parquet``. Returns (train_files, val_files)."""
    from openvlthinker.data import load_records

    out = Path(out_dir)
    train_rows: list[dict[str, Any]] = []
    val_files: list[str] = []
    for key in sorted(registry, key=registry.index):
        spec = registry[key]
        for data_file in spec.train:
            records = load_records(
                data_file.path, registry=registry, image_root=data_file.image_root
            )
            start = len(train_rows)
            train_rows.extend(
                record_row(r, start + i, image_root=data_file.image_root)
                for i, r in enumerate(records)
            )
        for vset in spec.validation:
            records = load_records(vset.path, registry=registry, image_root=vset.image_root)
            target = out / f"val_{key}_{vset.name}.parquet"
            export_records(records, target, image_root=vset.image_root)
            val_files.append(str(target))
    if not train_rows:
        raise ValueError("the task file lists no training records")
    train = write_parquet(train_rows, out / "train.parquet")
    logger.info(
        "exported %d training rows and %d validation sets to %s",
        len(train_rows),
        len(val_files),
        out,
    )
    return [str(train)], val_files
