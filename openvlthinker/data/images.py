"""Image loading within the model's pixel budget (Qwen-VL smart resize).

The resize rule is transformers' own ``smart_resize`` from the PIL image processor of
Qwen2-VL, which imports without torchvision: both sides become multiples of
``patch_size * merge_size`` and the area lands in ``[min_pixels, max_pixels]`` with the
aspect ratio kept. The original and resized sizes are both returned, because a grounding
reward must map the model's box (in the resized frame) back to the ground truth's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

# Qwen2/2.5-VL: patch 14 x merge 2; Qwen3-VL: patch 16 x merge 2.
DEFAULT_FACTOR = 28
DEFAULT_MIN_PIXELS = 56 * 56
DEFAULT_MAX_PIXELS = 28 * 28 * 1280


@dataclass(frozen=True)
class LoadedImage:
    """An RGB image resized for the model, with both frames' sizes as (width, height)."""

    image: Image.Image
    image_size: tuple[int, int]
    model_image_size: tuple[int, int]


def model_image_size(
    image_size: tuple[int, int],
    *,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    factor: int = DEFAULT_FACTOR,
) -> tuple[int, int]:
    """(width, height) the processor will feed the model for an image of ``image_size``."""
    if not 0 < min_pixels <= max_pixels:
        raise ValueError(f"need 0 < min_pixels <= max_pixels, got {min_pixels}, {max_pixels}")
    # Imported here: transformers is slow to import and only this function needs it.
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    width, height = image_size
    h, w = smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return w, h


def load_image(
    image: str | Path | Image.Image | Any,
    *,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    factor: int = DEFAULT_FACTOR,
) -> LoadedImage:
    """Open ``image`` (a path or PIL image), convert to RGB and resize within the budget.

    The result already has the size the processor would pick, so the processor's own
    resize is a no-op and the recorded ``model_image_size`` is the one the model sees.
    """
    if isinstance(image, str | Path):
        try:
            with Image.open(image) as im:
                pil = im.convert("RGB")
        except OSError as e:
            raise ValueError(f"unreadable image {str(image)!r}: {e}") from e
    else:
        pil = image.convert("RGB")
    size = tuple(pil.size)
    target = model_image_size(size, min_pixels=min_pixels, max_pixels=max_pixels, factor=factor)
    if target != size:
        pil = pil.resize(target, Image.Resampling.BICUBIC)
    return LoadedImage(image=pil, image_size=size, model_image_size=target)
