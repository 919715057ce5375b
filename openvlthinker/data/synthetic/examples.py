"""One generator per task: a random scene, a question about it and its answer.

Each generator takes a seeded ``random.Random`` and ``easy`` (a very easy record with a
one-token answer, so a tiny model in the CPU demo can learn something) and returns a
record body plus the scene it drew and the facts the answer follows from. Register a
new generator with :func:`register_generator`. One concept, so one module over ~400 lines:
the registry of per-task generators, each a self-contained recipe.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

from openvlthinker.data.synthetic.render import SHAPES, text_width

Generated = dict[str, Any]
GENERATORS: dict[str, Callable[[random.Random, bool], Generated]] = {}

SIZES = ((224, 224), (256, 256), (320, 240), (384, 288), (448, 320))
SHAPE_COLORS = ("red", "green", "blue", "yellow", "purple")


def register_generator(task: str) -> Callable:
    """Decorator: make ``fn(rng, easy) -> record body`` the generator of ``task``."""

    def wrap(fn: Callable[[random.Random, bool], Generated]) -> Callable:
        GENERATORS[task] = fn
        return fn

    return wrap


def _text(text: str, x: int, y: int, size: int, color: str = "black") -> dict[str, Any]:
    return {"type": "text", "text": text, "xy": [x, y], "font_size": size, "color": color}


def _place_boxes(
    rng: random.Random, size: tuple[int, int], n: int, lo: int = 28, hi: int = 64, gap: int = 8
) -> list[list[int]]:
    """``n`` square boxes [x1, y1, x2, y2] inside the canvas, at least ``gap`` px apart."""
    w, h = size
    for _ in range(200):
        boxes: list[list[int]] = []
        for _ in range(n):
            for _ in range(100):
                s = rng.randint(lo, hi)
                x, y = rng.randint(gap, w - s - gap), rng.randint(gap, h - s - gap)
                box = [x, y, x + s, y + s]
                if all(
                    box[2] + gap < b[0]
                    or b[2] + gap < box[0]
                    or box[3] + gap < b[1]
                    or b[3] + gap < box[1]
                    for b in boxes
                ):
                    boxes.append(box)
                    break
        if len(boxes) == n:
            return boxes
    raise RuntimeError(f"could not place {n} shapes on a {w}x{h} canvas")


def _shape(kind: str, color: str, box: list[int]) -> dict[str, Any]:
    return {"type": "shape", "kind": kind, "color": color, "box": box}


def _mc(rng: random.Random, correct: str, distractors: list[str]) -> tuple[list[str], str]:
    """Shuffled options and the letter of ``correct``."""
    options = [correct, *distractors]
    rng.shuffle(options)
    return options, chr(ord("A") + options.index(correct))


@register_generator("grounding")
def grounding(rng: random.Random, easy: bool) -> Generated:
    size = rng.choice(SIZES)
    if easy:
        kind, color = rng.choice(SHAPES), rng.choice(SHAPE_COLORS)
        if rng.random() < 0.5:
            box = _place_boxes(rng, size, 1, lo=60, hi=100)[0]
            return {
                "problem": f"<image>Find the {color} {kind}.",
                "answer": box,
                "problem_type": "spatial_grounding",
                "scene": {"size": list(size), "items": [_shape(kind, color, box)]},
                "facts": {"target": 0},
            }
        n = rng.randint(1, 3)
        boxes = _place_boxes(rng, size, n)
        items = [_shape(rng.choice(SHAPES), rng.choice(SHAPE_COLORS), b) for b in boxes]
        return {
            "problem": "<image>How many shapes are in the image?",
            "answer": str(n),
            "problem_type": "counting",
            "scene": {"size": list(size), "items": items},
            "facts": {"count": {}},
        }
    if rng.random() < 0.5:
        n = rng.randint(3, 5)
        combos = rng.sample([(k, c) for k in SHAPES for c in SHAPE_COLORS], n)
        boxes = _place_boxes(rng, size, n)
        items = [_shape(k, c, b) for (k, c), b in zip(combos, boxes)]
        target = rng.randrange(n)
        kind, color = combos[target]
        return {
            "problem": f"<image>Find the {color} {kind} and give its bounding box.",
            "answer": boxes[target],
            "problem_type": "spatial_grounding",
            "scene": {"size": list(size), "items": items},
            "facts": {"target": target},
        }
    n = rng.randint(3, 7)
    boxes = _place_boxes(rng, size, n, lo=24, hi=48)
    items = [_shape(rng.choice(SHAPES), rng.choice(SHAPE_COLORS), b) for b in boxes]
    if rng.random() < 0.5:
        color = rng.choice([it["color"] for it in items])
        count = sum(it["color"] == color for it in items)
        return {
            "problem": f"<image>How many {color} shapes are there?",
            "answer": str(count),
            "problem_type": "counting",
            "scene": {"size": list(size), "items": items},
            "facts": {"count": {"color": color}},
        }
    kind = rng.choice([it["kind"] for it in items])
    count = sum(it["kind"] == kind for it in items)
    return {
        "problem": f"<image>How many {kind}s are there?",
        "answer": str(count),
        "problem_type": "counting",
        "scene": {"size": list(size), "items": items},
        "facts": {"count": {"kind": kind}},
    }


def _separated(boxes: list[list[int]], axis: int, min_gap: int = 30) -> bool:
    centres = sorted((b[axis] + b[axis + 2]) / 2 for b in boxes)
    return all(b - a >= min_gap for a, b in itertools.pairwise(centres))


@register_generator("spatial")
def spatial(rng: random.Random, easy: bool) -> Generated:
    size = rng.choice(SIZES)
    n = 2 if easy else rng.randint(2, 4)
    combos = rng.sample([(k, c) for k in SHAPES for c in SHAPE_COLORS], n)
    axis = rng.randrange(2)  # 0: x (left/right), 1: y (above/below)
    for _ in range(1000):
        boxes = _place_boxes(rng, size, n)
        if _separated(boxes, axis):
            break
    else:
        raise RuntimeError(f"could not separate {n} shapes on a {size} canvas")
    items = [_shape(k, c, b) for (k, c), b in zip(combos, boxes)]
    names = [f"{c} {k}" for k, c in combos]
    a, b = rng.sample(range(n), 2)
    centre = [(bx[axis] + bx[axis + 2]) / 2 for bx in boxes]
    scene = {"size": list(size), "items": items}
    if easy or n == 2 or rng.random() < 0.6:
        words = ("left", "right") if axis == 0 else ("above", "below")
        relation = words[0] if centre[a] < centre[b] else words[1]
        verb = "to the left or to the right of" if axis == 0 else "above or below"
        return {
            "problem": f"<image>Is the {names[a]} {verb} the {names[b]}?",
            "answer": "A" if relation == words[0] else "B",
            "options": list(words),
            "problem_type": "multiple_choice",
            "scene": scene,
            "facts": {"pair": [a, b], "axis": axis},
        }
    extreme = ("leftmost", "rightmost") if axis == 0 else ("topmost", "bottommost")
    which = rng.randrange(2)
    order = sorted(range(n), key=lambda i: centre[i])
    target = order[0] if which == 0 else order[-1]
    options, letter = _mc(rng, names[target], [names[i] for i in range(n) if i != target])
    return {
        "problem": f"<image>Which shape is the {extreme[which]}?",
        "answer": letter,
        "options": options,
        "problem_type": "multiple_choice",
        "scene": scene,
        "facts": {"extreme": [axis, which]},
    }


FOOD_CHAINS = (
    ("grass", "grasshopper", "frog", "snake", "hawk"),
    ("algae", "shrimp", "small fish", "heron"),
    ("oak leaves", "caterpillar", "sparrow", "falcon"),
    ("phytoplankton", "krill", "whale"),
    ("clover", "rabbit", "fox"),
    ("seeds", "mouse", "owl"),
)


@register_generator("science")
def science(rng: random.Random, easy: bool) -> Generated:
    kind = "beakers" if easy else rng.choice(("beakers", "water", "food_chain"))
    if kind == "beakers":
        n = 2 if easy else 3
        volumes = rng.sample(range(10, 100, 10), n)
        size = (320, 240)
        items: list[dict[str, Any]] = []
        for i, vol in enumerate(volumes):
            x = 30 + i * 95
            top, bottom = 50, 200
            level = bottom - int((bottom - top) * vol / 100)
            items.append(_shape("square", "lightblue", [x, level, x + 60, bottom]))
            items.append(_shape("outline", "black", [x, top, x + 60, bottom]))
            items.append(_text(f"{vol} mL", x + 4, 24, 16))
            items.append(_text(chr(ord("A") + i), x + 24, 206, 18))
        labels = [f"beaker {chr(ord('A') + i)}" for i in range(n)]
        best = max(range(n), key=lambda i: volumes[i])
        return {
            "problem": "<image>Which beaker holds the most liquid?",
            "answer": chr(ord("A") + best),
            "options": labels,
            "problem_type": "multiple_choice",
            "scene": {"size": list(size), "items": items},
            "facts": {"volumes": volumes},
        }
    if kind == "water":
        state = rng.choice(("solid", "liquid", "gas"))
        temp = {
            "solid": rng.randint(-30, -3),
            "liquid": rng.randint(5, 95),
            "gas": rng.randint(105, 140),
        }[state]
        size = (320, 240)
        fill = 200 - int(150 * (temp + 30) / 170)
        items = [
            _text(f"Water temperature: {temp} °C", 16, 20, 18),
            _shape("outline", "black", [150, 50, 170, 200]),
            _shape("square", "red", [153, fill, 167, 197]),
        ]
        options, letter = _mc(rng, state, [s for s in ("solid", "liquid", "gas") if s != state])
        return {
            "problem": "<image>The picture shows the temperature of pure water at sea-level "
            "pressure. In which state is the water?",
            "answer": letter,
            "options": options,
            "problem_type": "multiple_choice",
            "scene": {"size": list(size), "items": items},
            "facts": {"temperature": temp},
        }
    chain = rng.choice(FOOD_CHAINS)
    start = rng.randrange(0, len(chain) - 2)
    links = list(chain[start : start + rng.randint(3, min(4, len(chain) - start))])
    size = (320, 60 + 60 * len(links))
    items = [_text("Food chain (arrows point to the eater)", 10, 8, 14)]
    for i, name in enumerate(links):
        y = 40 + 60 * i
        items.append(_text(name, 160 - text_width(name, 18) // 2, y, 18))
        if i + 1 < len(links):
            items.append({"type": "line", "points": [[160, y + 26], [160, y + 54]], "width": 2})
            items.append(
                {
                    "type": "line",
                    "points": [[153, y + 46], [160, y + 54], [167, y + 46]],
                    "width": 2,
                }
            )
    role = rng.choice(("producer", "top predator"))
    correct = links[0] if role == "producer" else links[-1]
    options, letter = _mc(rng, correct, [x for x in links if x != correct])
    return {
        "problem": f"<image>Which organism in this food chain is the {role}?",
        "answer": letter,
        "options": options,
        "problem_type": "multiple_choice",
        "scene": {"size": list(size), "items": items},
        "facts": {"chain": links, "role": role},
    }


PYTHAGOREAN = ((3, 4, 5), (6, 8, 10), (5, 12, 13), (8, 15, 17), (9, 12, 15), (7, 24, 25))


@register_generator("math")
def math_task(rng: random.Random, easy: bool) -> Generated:
    if easy:
        a, b = rng.randint(1, 4), rng.randint(1, 4)
        kind = "text" if rng.random() < 0.25 else "arithmetic"
        if kind == "text":
            return {
                "problem": f"What is {a} + {b}?",
                "answer": str(a + b),
                "problem_type": "math",
                "scene": None,
                "facts": {"expression": f"{a} + {b}"},
            }
        size = (224, 224)
        return {
            "problem": "<image>Compute the result shown in the image.",
            "answer": str(a + b),
            "problem_type": "math",
            "scene": {"size": list(size), "items": [_text(f"{a} + {b} = ?", 50, 90, 36)]},
            "facts": {"expression": f"{a} + {b}"},
        }
    kind = rng.choice(("arithmetic", "arithmetic", "area", "hypotenuse", "text"))
    if kind in ("arithmetic", "text"):
        op = rng.choice("+-*")
        a, b = (
            (rng.randint(10, 99), rng.randint(10, 99))
            if op != "*"
            else (rng.randint(2, 9), rng.randint(11, 30))
        )
        if op == "-" and b > a:
            a, b = b, a
        expr = f"{a} {op} {b}"
        value = {"+": a + b, "-": a - b, "*": a * b}[op]
        shown = expr.replace("*", "×")
        if kind == "text":
            return {
                "problem": f"What is {shown}?",
                "answer": str(value),
                "problem_type": "math",
                "scene": None,
                "facts": {"expression": expr},
            }
        return {
            "problem": "<image>Compute the result shown in the image.",
            "answer": str(value),
            "problem_type": "math",
            "scene": {"size": [320, 240], "items": [_text(f"{shown} = ?", 40, 100, 34)]},
            "facts": {"expression": expr},
        }
    if kind == "area":
        w, h = rng.randint(2, 12), rng.randint(2, 9)
        x1, y1 = 60, 50
        x2, y2 = x1 + 16 * w, y1 + 16 * h
        items = [
            _shape("outline", "black", [x1, y1, x2, y2]),
            _text(f"{w} cm", (x1 + x2) // 2 - 20, y2 + 8, 18),
            _text(f"{h} cm", x2 + 8, (y1 + y2) // 2 - 10, 18),
        ]
        return {
            "problem": "<image>What is the area of the rectangle in square centimetres?",
            "answer": str(w * h),
            "problem_type": "numerical",
            "scene": {"size": [384, 288], "items": items},
            "facts": {"width": w, "height": h},
        }
    a, b, c = rng.choice(PYTHAGOREAN)
    scale = 150 / max(a, b)
    x0, y0 = 60, 220
    xa, yb = int(x0 + b * scale), int(y0 - a * scale)
    items = [
        {"type": "line", "points": [[x0, y0], [xa, y0], [x0, yb], [x0, y0]], "width": 2},
        _shape("outline", "black", [x0, y0 - 12, x0 + 12, y0]),
        _text(f"{b} cm", (x0 + xa) // 2 - 20, y0 + 8, 18),
        _text(f"{a} cm", x0 - 52, (y0 + yb) // 2 - 10, 18),
    ]
    return {
        "problem": "<image>The triangle has a right angle. How long is its longest side, in centimetres?",
        "answer": str(c),
        "problem_type": "numerical",
        "scene": {"size": [320, 260], "items": items},
        "facts": {"legs": [a, b]},
    }


CATEGORIES = ("apples", "pears", "plums", "kiwis", "grapes", "lemons", "figs")


@register_generator("chart")
def chart(rng: random.Random, easy: bool) -> Generated:
    if easy:
        cats = ["A", "B"]
        values = rng.sample(range(1, 10), 2)
        target = rng.randrange(2)
        item = {
            "type": "chart",
            "kind": "bar",
            "categories": cats,
            "values": values,
            "title": "Scores",
        }
        return {
            "problem": f"<image>What is the value of {cats[target]}?",
            "answer": str(values[target]),
            "problem_type": "numerical",
            "scene": {"size": [256, 256], "items": [item]},
            "facts": {"ask": "value", "target": target},
        }
    n = rng.randint(3, 5)
    cats = rng.sample(CATEGORIES, n)
    values = rng.sample(range(2, 40), n)
    item = {
        "type": "chart",
        "kind": rng.choice(("bar", "barh")),
        "categories": cats,
        "values": values,
        "title": "Fruit sold per day",
    }
    scene = {"size": [384, 288], "items": [item]}
    ask = rng.choice(("value", "max", "difference", "sum"))
    if ask == "value":
        target = rng.randrange(n)
        return {
            "problem": f"<image>How many {cats[target]} were sold per day?",
            "answer": str(values[target]),
            "problem_type": "numerical",
            "scene": scene,
            "facts": {"ask": ask, "target": target},
        }
    if ask == "max":
        best = max(range(n), key=lambda i: values[i])
        options, letter = _mc(rng, cats[best], [c for i, c in enumerate(cats) if i != best])
        return {
            "problem": "<image>Which fruit sold the most per day?",
            "answer": letter,
            "options": options,
            "problem_type": "multiple_choice",
            "scene": scene,
            "facts": {"ask": ask},
        }
    if ask == "difference":
        return {
            "problem": "<image>What is the difference between the largest and the smallest value?",
            "answer": str(max(values) - min(values)),
            "problem_type": "numerical",
            "scene": scene,
            "facts": {"ask": ask},
        }
    i, j = rng.sample(range(n), 2)
    return {
        "problem": f"<image>How many {cats[i]} and {cats[j]} were sold per day in total?",
        "answer": str(values[i] + values[j]),
        "problem_type": "numerical",
        "scene": scene,
        "facts": {"ask": ask, "pair": [i, j]},
    }


WORDS = (
    "river",
    "stone",
    "light",
    "green",
    "paper",
    "music",
    "north",
    "table",
    "cloud",
    "seven",
    "apple",
    "quiet",
    "bread",
    "smile",
    "ocean",
    "train",
    "field",
    "glass",
    "honey",
    "tiger",
)


@register_generator("ocr")
def ocr(rng: random.Random, easy: bool) -> Generated:
    if easy:
        text = rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ")
        size = (224, 224)
        items = [_text(text, 90, 70, 64)]
        lines = [text]
    else:
        size = (448, 160)
        n_lines = rng.randint(1, 2)
        font_size = rng.randint(22, 30)
        lines = []
        for _ in range(n_lines):
            words = rng.sample(WORDS, rng.randint(2, 4))
            while text_width(" ".join(words), font_size) > size[0] - 32:
                words.pop()
            lines.append(" ".join(words))
        color = rng.choice(("black", "blue", "purple"))
        items = [
            _text(line, 16, 24 + i * (font_size + 20), font_size, color)
            for i, line in enumerate(lines)
        ]
    return {
        "problem": "<image>Read the text in the image.",
        "answer": " ".join(lines),
        "problem_type": "ocr",
        "scene": {"size": list(size), "items": items},
        "facts": {"lines": lines},
    }
