"""Render a scene description to an image, deterministically.

A scene is plain JSON (it is stored in each record's ``metadata.scene``) so that a test
can re-render the image and re-derive the answer from what was drawn::

    {"size": [w, h], "background": "white",
     "items": [{"type": "shape", "kind": "circle", "color": "red", "box": [x1, y1, x2, y2]},
               {"type": "text", "text": "37 + 48 = ?", "xy": [x, y], "font_size": 28},
               {"type": "line", "points": [[x, y], ...], "width": 2},
               {"type": "chart", ...}]}

Shapes are drawn without anti-aliasing in pure colours, so their pixels can be found
again by colour. Charts are rendered with matplotlib.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 150, 60),
    "blue": (30, 70, 220),
    "yellow": (230, 190, 0),
    "purple": (140, 50, 170),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (120, 120, 120),
    "lightblue": (160, 200, 240),
}
SHAPES = ("circle", "square", "triangle")


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans at ``size`` px: the font matplotlib ships, so every machine has it."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return ImageFont.truetype(str(path), size)


def _rgb(color: str | list[int]) -> tuple[int, int, int]:
    return COLORS[color] if isinstance(color, str) else tuple(color)


def _draw_shape(draw: ImageDraw.ImageDraw, item: dict[str, Any]) -> None:
    x1, y1, x2, y2 = item["box"]
    fill = _rgb(item["color"])
    if item["kind"] == "circle":
        draw.ellipse([x1, y1, x2, y2], fill=fill)
    elif item["kind"] == "square":
        draw.rectangle([x1, y1, x2, y2], fill=fill)
    elif item["kind"] == "triangle":
        draw.polygon([(x1, y2), (x2, y2), ((x1 + x2) // 2, y1)], fill=fill)
    elif item["kind"] == "outline":
        draw.rectangle([x1, y1, x2, y2], outline=fill, width=item.get("width", 2))
    else:
        raise ValueError(f"scene item: unknown shape kind {item['kind']!r}")


def _render_chart(chart: dict[str, Any], size: tuple[int, int]) -> Image.Image:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dpi = 100
    fig, ax = plt.subplots(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    cats, vals = chart["categories"], chart["values"]
    color = chart.get("color", "tab:blue")
    if chart["kind"] == "bar":
        bars = ax.bar(cats, vals, color=color)
        ax.set_ylim(0, max(vals) * 1.25)
    elif chart["kind"] == "barh":
        bars = ax.barh(cats, vals, color=color)
        ax.set_xlim(0, max(vals) * 1.3)
    else:
        raise ValueError(f"scene chart: unknown kind {chart['kind']!r}")
    ax.bar_label(bars, labels=[str(v) for v in vals], fontsize=9)
    ax.set_title(chart["title"], fontsize=10)
    ax.tick_params(labelsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    buf.seek(0)
    with Image.open(buf) as im:
        return im.convert("RGB")


def render_scene(scene: dict[str, Any]) -> Image.Image:
    """The RGB image of ``scene`` (same scene, same pixels)."""
    size = tuple(scene["size"])
    chart = next((it for it in scene["items"] if it["type"] == "chart"), None)
    if chart is not None:
        return _render_chart(chart, size)
    image = Image.new("RGB", size, _rgb(scene.get("background", "white")))
    draw = ImageDraw.Draw(image)
    for item in scene["items"]:
        kind = item["type"]
        if kind == "shape":
            _draw_shape(draw, item)
        elif kind == "text":
            draw.text(
                tuple(item["xy"]),
                item["text"],
                fill=_rgb(item.get("color", "black")),
                font=font(item["font_size"]),
            )
        elif kind == "line":
            draw.line(
                [tuple(p) for p in item["points"]],
                fill=_rgb(item.get("color", "black")),
                width=item.get("width", 2),
            )
        else:
            raise ValueError(f"scene item: unknown type {kind!r}")
    return image


def text_width(text: str, size: int) -> int:
    """Rendered width of ``text`` in pixels (for layout)."""
    left, _, right, _ = font(size).getbbox(text)
    return int(right - left)
