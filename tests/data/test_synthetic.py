"""The shipped example data is in sync with its generator and answerable from its images.

Answers are re-derived here independently of the generator: shapes from the image's
pixels (colour + fill ratio gives the kind), text tasks from the text the scene drew
(the image is verified to be exactly the render of that scene).
"""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from openvlthinker.data.synthetic import generate_dataset, generate_records, render_scene
from openvlthinker.data.synthetic.generate import contact_sheet
from openvlthinker.data.synthetic.render import COLORS

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
TASKS = ("grounding", "spatial", "science", "math", "chart", "ocr")
SHAPE_COLORS = ("red", "green", "blue", "yellow", "purple")


def shipped(task: str, split: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / task / f"{split}.jsonl").read_text().splitlines()]


ALL = [(t, s, r) for t in TASKS for s in ("train", "val") for r in shipped(t, s)]


def components(pixels: np.ndarray) -> list[dict]:
    """Connected single-colour blobs: colour name, kind from the fill ratio, bbox, centre."""
    out = []
    for name in SHAPE_COLORS:
        mask = np.all(pixels == COLORS[name], axis=-1)
        labels, _ = ndimage.label(mask)
        for i, sl in enumerate(ndimage.find_objects(labels), start=1):
            blob = labels[sl] == i
            fill = blob.sum() / blob.size
            kind = "square" if fill > 0.93 else "circle" if fill > 0.65 else "triangle"
            ys, xs = sl
            out.append(
                {
                    "color": name,
                    "kind": kind,
                    "box": [xs.start, ys.start, xs.stop - 1, ys.stop - 1],
                    "centre": ((xs.start + xs.stop) / 2, (ys.start + ys.stop) / 2),
                }
            )
    return out


def letter(options: list[str], value: str) -> str:
    return chr(ord("A") + options.index(value))


def solve(record: dict, pixels: np.ndarray | None) -> object:
    """Re-derive the answer from the image (shapes) or the drawn text."""
    problem, task = record["problem"], record["task"]
    scene = record["metadata"]["scene"]
    texts = [it["text"] for it in scene["items"] if it["type"] == "text"] if scene else []
    if task in ("grounding", "spatial"):
        blobs = components(pixels)
        by_name = {f"{b['color']} {b['kind']}": b for b in blobs}
        assert len(by_name) == len(blobs) or task == "grounding"
        if m := re.search(r"Find the (\w+ \w+)", problem):
            return by_name[m.group(1)]["box"]
        if m := re.search(r"How many (\w+) shapes are there", problem):
            return str(sum(b["color"] == m.group(1) for b in blobs))
        if m := re.search(r"How many (\w+)s are there", problem):
            return str(sum(b["kind"] == m.group(1) for b in blobs))
        if "How many shapes" in problem:
            return str(len(blobs))
        if m := re.search(
            r"Is the (\w+ \w+) (to the left or to the right of|above or below) the (\w+ \w+)\?",
            problem,
        ):
            axis = 0 if "left" in m.group(2) else 1
            first = by_name[m.group(1)]["centre"][axis] < by_name[m.group(3)]["centre"][axis]
            return "A" if first else "B"
        m = re.search(r"Which shape is the (\w+)most\?", problem)
        axis = 0 if m.group(1) in ("left", "right") else 1
        pick = min if m.group(1) in ("left", "top") else max
        return letter(record["options"], pick(by_name, key=lambda k: by_name[k]["centre"][axis]))
    if task == "math":
        expr = (
            texts[0].removesuffix(" = ?")
            if texts
            else problem.removeprefix("What is ").removesuffix("?")
        )
        if m := re.fullmatch(r"(\d+) ([-+×]) (\d+)", expr):
            a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
            return str({"+": a + b, "-": a - b, "×": a * b}[op])
        sides = [int(t.removesuffix(" cm")) for t in texts]
        if "area" in problem:
            return str(sides[0] * sides[1])
        return str(math.isqrt(sides[0] ** 2 + sides[1] ** 2))
    if task == "ocr":
        return " ".join(texts)
    if task == "chart":
        chart = scene["items"][0]
        values = dict(zip(chart["categories"], chart["values"]))
        if m := re.search(r"value of (\w+)\?|How many (\w+) were sold per day\?", problem):
            return str(values[m.group(1) or m.group(2)])
        if "most" in problem:
            return letter(record["options"], max(values, key=values.get))
        if "difference" in problem:
            return str(max(values.values()) - min(values.values()))
        m = re.search(r"How many (\w+) and (\w+) were sold", problem)
        return str(values[m.group(1)] + values[m.group(2)])
    if task == "science":
        if "beaker" in problem:
            items = sorted(
                (
                    it
                    for it in scene["items"]
                    if it["type"] == "text" and it["text"].endswith(" mL")
                ),
                key=lambda it: it["xy"][0],
            )
            volumes = [int(it["text"].removesuffix(" mL")) for it in items]
            return letter(
                record["options"], f"beaker {chr(ord('A') + volumes.index(max(volumes)))}"
            )
        if "temperature" in problem:
            t = int(re.search(r"(-?\d+) °C", texts[0]).group(1))
            return letter(record["options"], "solid" if t < 0 else "liquid" if t < 100 else "gas")
        chain = texts[1:]  # top to bottom, title first
        return letter(record["options"], chain[0] if "producer" in problem else chain[-1])
    raise AssertionError(task)


@pytest.mark.parametrize(("task", "split", "record"), ALL, ids=[r["id"] for _, _, r in ALL])
def test_record_is_answerable_from_its_image(task, split, record):
    scene = record["metadata"]["scene"]
    pixels = None
    if record["images"]:
        with Image.open(DATA / task / "images" / record["images"][0]) as im:
            pixels = np.asarray(im.convert("RGB"))
        np.testing.assert_array_equal(pixels, np.asarray(render_scene(scene)))
        assert 224 <= max(scene["size"]) <= 448
    else:
        assert scene is None and record["data_type"] == "text"
    assert solve(record, pixels) == record["answer"]


@pytest.mark.parametrize("task", TASKS)
def test_shipped_data_matches_the_generator_and_has_easy_records(task):
    for split, n in (("train", 48), ("val", 12)):
        records = shipped(task, split)
        assert [r for r, _ in generate_records(task, split, n, seed=0)] == records
        easy = [r for r in records if r["metadata"]["difficulty"] == "easy"]
        assert len(easy) == n // 6
        if task != "grounding":
            assert all(len(r["answer"]) <= 2 for r in easy)


def test_generation_is_deterministic_and_seeded(tmp_path):
    generate_dataset(tmp_path / "a", seed=3, n_train=3, n_val=1, tasks=["ocr", "spatial"])
    generate_dataset(tmp_path / "b", seed=3, n_train=3, n_val=1, tasks=["ocr", "spatial"])
    files_a = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert len(files_a) == 2 * 2 + 4 * 2
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    assert generate_records("ocr", "train", 3, seed=4) != generate_records(
        "ocr", "train", 3, seed=3
    )
    with pytest.raises(ValueError, match="task 'poetry' has no generator"):
        generate_records("poetry", "train", 1)


def test_shipped_data_is_small():
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert total < 4 * 2**20


def test_contact_sheet_shows_each_task(tmp_path):
    generate_dataset(tmp_path, seed=1, n_train=0, n_val=3, tasks=["math", "ocr"])
    png = contact_sheet(tmp_path, tmp_path / "sheet.png", per_task=2)
    with Image.open(png) as im:
        # two task rows of 3.0 in, two columns of 3.2 in, at 80 dpi
        assert im.size == (2 * 3.2 * 80, 2 * 3.0 * 80)
