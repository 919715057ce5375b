"""Write the example dataset: JSONL records plus small PNG images per task and split."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

from tqdm import tqdm

from openvlthinker.data.synthetic.examples import GENERATORS
from openvlthinker.data.synthetic.render import render_scene

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
EASY_EVERY = 6
"""Every 6th record is very easy (one-token answer), for the tiny CPU demo."""


def generate_records(
    task: str, split: str, n: int, seed: int = 0
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """``n`` (record, scene) pairs of ``task``/``split``; same arguments, same output."""
    if task not in GENERATORS:
        raise ValueError(f"task {task!r} has no generator; known: {', '.join(GENERATORS)}")
    rng = random.Random(f"{seed}/{task}/{split}")
    out = []
    for i in range(n):
        easy = i % EASY_EVERY == 0
        body = GENERATORS[task](rng, easy)
        rid = f"{task}-{split}-{i:03d}"
        scene = body.pop("scene")
        record = {
            "id": rid,
            "problem": body["problem"],
            "answer": body["answer"],
            "images": [f"{rid}.png"] if scene is not None else [],
            "videos": [],
            "problem_type": body["problem_type"],
            "data_type": "image" if scene is not None else "text",
            "task": task,
            "options": body.get("options", []),
            "metadata": {
                "difficulty": "easy" if easy else "normal",
                "scene": scene,
                "facts": body["facts"],
                "generator": f"openvlthinker.data.synthetic v{GENERATOR_VERSION} seed {seed}",
            },
        }
        out.append((record, scene))
    return out


def generate_dataset(
    out_dir: str | Path,
    *,
    seed: int = 0,
    n_train: int = 48,
    n_val: int = 12,
    tasks: list[str] | None = None,
) -> dict[str, dict[str, int]]:
    """Write ``<out_dir>/<task>/{train,val}.jsonl`` and ``images/``; returns counts."""
    out_dir = Path(out_dir)
    counts: dict[str, dict[str, int]] = {}
    for task in tasks or list(GENERATORS):
        task_dir = out_dir / task
        image_dir = task_dir / "images"
        image_dir.mkdir(parents=True, exist_ok=True)
        counts[task] = {}
        for split, n in (("train", n_train), ("val", n_val)):
            pairs = generate_records(task, split, n, seed)
            lines = []
            for record, scene in tqdm(pairs, desc=f"{task}/{split}", leave=False):
                if scene is not None:
                    render_scene(scene).save(image_dir / record["images"][0], optimize=True)
                lines.append(json.dumps(record, ensure_ascii=False, sort_keys=False))
            (task_dir / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
            counts[task][split] = n
            logger.info("wrote %d %s records of task %s", n, split, task)
    return counts


def contact_sheet(data_dir: str | Path, out_png: str | Path, *, per_task: int = 3) -> Path:
    """A PNG showing the first image records of each task's val split with Q and A."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    data_dir = Path(data_dir)
    tasks = sorted(p.name for p in data_dir.iterdir() if (p / "val.jsonl").is_file())
    fig, axes = plt.subplots(
        len(tasks), per_task, figsize=(3.2 * per_task, 3.0 * len(tasks)), squeeze=False
    )
    for row, task in enumerate(tasks):
        lines = (data_dir / task / "val.jsonl").read_text(encoding="utf-8").splitlines()
        records = [r for r in map(json.loads, lines) if r["images"]][1 : per_task + 1]
        for col, ax in enumerate(axes[row]):
            ax.axis("off")
            if col >= len(records):
                continue
            r = records[col]
            with Image.open(data_dir / task / "images" / r["images"][0]) as im:
                ax.imshow(im.convert("RGB"))
            question = r["problem"].replace("<image>", "")
            if r["options"]:
                question += " " + " ".join(
                    f"{chr(65 + i)}. {o}" for i, o in enumerate(r["options"])
                )
            ax.set_title(
                f"{task}: " + "\n".join(textwrap.wrap(question, 40)) + f"\nanswer: {r['answer']}",
                fontsize=7,
            )
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
    return out_png
