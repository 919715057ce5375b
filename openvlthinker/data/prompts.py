"""Prompt building: a Jinja template renders the text, placeholders become media entries.

Templates live in ``examples/format_prompt/<name>.jinja`` (or any path). The rendered text
keeps the record's ``<image>``/``<video>`` placeholders; :func:`build_messages` splits it
there into the Qwen-VL processor's chat format::

    [{"role": "user", "content": [{"type": "image", "image": "/abs/a.png"},
                                  {"type": "text", "text": "What ..."}]}]

Records without placeholders get their media first, then the text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from openvlthinker.data.records import IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER, Record

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "examples" / "format_prompt"
DEFAULT_TEMPLATE = "default"
_PLACEHOLDER = re.compile(f"({re.escape(IMAGE_PLACEHOLDER)}|{re.escape(VIDEO_PLACEHOLDER)})")
_LETTERED = re.compile(r"^\(?[A-Z][.):]\s")


def template_path(template: str | Path) -> Path:
    """The file of a template name (``examples/format_prompt/<name>.jinja``) or path;
    FileNotFoundError naming the known templates."""
    path = Path(template)
    if path.suffix != ".jinja":
        path = TEMPLATE_DIR / f"{template}.jinja"
    if not path.is_file():
        known = sorted(p.stem for p in TEMPLATE_DIR.glob("*.jinja"))
        raise FileNotFoundError(
            f"prompt template {str(template)!r} not found at {path}; known: {known}"
        )
    return path


@lru_cache(maxsize=16)
def _compile(path: Path) -> jinja2.Template:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )
    return env.from_string(path.read_text(encoding="utf-8"))


def letter_options(options: tuple[str, ...] | list[str]) -> list[str]:
    """Prefix options with ``A. ``, ``B. ``... unless they already carry a letter."""
    if all(_LETTERED.match(o) for o in options):
        return list(options)
    return [f"{chr(ord('A') + i)}. {o}" for i, o in enumerate(options)]


def render_prompt(
    record: Record,
    template: str | Path = DEFAULT_TEMPLATE,
    *,
    think_tag: str = "think",
    answer_tag: str = "answer",
    coordinate_frame: str = "qwen_1000",
) -> str:
    """The prompt text of ``record`` (placeholders kept)."""
    text = _compile(template_path(template)).render(
        problem=record.problem,
        options=letter_options(record.options),
        problem_type=record.problem_type,
        task=record.task,
        think_tag=think_tag,
        answer_tag=answer_tag,
        coordinate_frame=coordinate_frame,
    )
    return text.strip()


def build_messages(
    record: Record,
    template: str | Path = DEFAULT_TEMPLATE,
    *,
    system_prompt: str | None = None,
    images: list[Any] | None = None,
    think_tag: str = "think",
    answer_tag: str = "answer",
    coordinate_frame: str = "qwen_1000",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> list[dict[str, Any]]:
    """Chat messages of ``record`` in the Qwen-VL processor format.

    ``images`` replaces the record's image paths (e.g. already resized PIL images from
    :func:`openvlthinker.data.images.load_image`); ``min_pixels``/``max_pixels`` are
    attached to each image entry when given (qwen-vl-utils reads them there).
    """
    paths = list(record.images) if images is None else list(images)
    if len(paths) != len(record.images):
        raise ValueError(
            f"{record.id}: {len(paths)} images given for {len(record.images)} in the record"
        )
    image_entries = []
    for img in paths:
        entry: dict[str, Any] = {"type": "image", "image": img}
        if min_pixels is not None:
            entry["min_pixels"] = min_pixels
        if max_pixels is not None:
            entry["max_pixels"] = max_pixels
        image_entries.append(entry)
    video_entries = [{"type": "video", "video": v} for v in record.videos]

    text = render_prompt(
        record,
        template,
        think_tag=think_tag,
        answer_tag=answer_tag,
        coordinate_frame=coordinate_frame,
    )
    # Media whose kind has no placeholder go first; the others replace their placeholders.
    content: list[dict[str, Any]] = []
    media: dict[str, Any] = {}
    for tag, entries in ((IMAGE_PLACEHOLDER, image_entries), (VIDEO_PLACEHOLDER, video_entries)):
        n_tags = text.count(tag)
        if n_tags == 0:
            content.extend(entries)
        elif n_tags == len(entries):
            media[tag] = iter(entries)
        else:
            raise ValueError(
                f"{record.id}: prompt has {n_tags} {tag} placeholders for {len(entries)} entries"
            )
    for piece in _PLACEHOLDER.split(text):
        if piece in media:
            content.append(next(media[piece]))
        elif piece.strip():
            content.append({"type": "text", "text": piece.strip()})
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    messages.append({"role": "user", "content": content})
    return messages
