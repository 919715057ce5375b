"""The image geometry of the exported data: the resize the model's processor applies.

A grounding reward maps the model's box (in the resized frame) back to the ground truth's,
so ``extra_info.model_image_size`` must be the size the model really sees. That size is
Qwen-VL's smart resize with the processor's factor (``patch_size * merge_size``: 28 for
Qwen2/2.5-VL, 32 for Qwen3-VL) and pixel range. The export reads them from the image
processor of ``actor_rollout_ref.model.path`` when it loads offline; otherwise from our
section's ``image_factor`` / ``min_pixels`` / ``max_pixels`` (unset ones: Qwen3-VL's), with a
warning naming what was assumed. Each exported image also carries ``min_pixels`` /
``max_pixels``: verl's ``fetch_image`` (qwen_vl_utils) resizes into that range first, so the
processor's own resize is a no-op and the recorded size holds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

SECTION = "openvlthinker"
#: Qwen3-VL's processor (patch 16 x merge 2, 256^2 to 4096^2 pixels): the 8B config's model.
ASSUMED = {"image_factor": 32, "min_pixels": 256 * 256, "max_pixels": 4096 * 4096}


@dataclass(frozen=True)
class ImageGeometry:
    """Smart-resize settings: both sides become multiples of ``factor``, the area lands in
    ``[min_pixels, max_pixels]``; ``source`` says where they came from."""

    factor: int
    min_pixels: int
    max_pixels: int
    source: str = "assumed"

    def model_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) the model sees for an image of ``image_size`` (width, height)."""
        from openvlthinker.data import model_image_size

        return model_image_size(
            tuple(image_size),
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
            factor=self.factor,
        )


def _get(source: Any, name: str) -> Any:
    return source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)


def geometry_of(image_processor: Any, where: str) -> ImageGeometry:
    """The geometry of a Qwen-VL image processor (object or its config dict): patch_size *
    merge_size, and min_pixels / max_pixels or size.shortest_edge / longest_edge."""
    patch, merge = _get(image_processor, "patch_size"), _get(image_processor, "merge_size")
    size = _get(image_processor, "size") or {}
    low = _get(image_processor, "min_pixels") or _get(size, "shortest_edge")
    high = _get(image_processor, "max_pixels") or _get(size, "longest_edge")
    values = {"patch_size": patch, "merge_size": merge, "min_pixels": low, "max_pixels": high}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise ValueError(
            f"{where}: the image processor has no {', '.join(missing)}; set "
            f"{SECTION}.image_factor, {SECTION}.min_pixels and {SECTION}.max_pixels"
        )
    return ImageGeometry(int(patch) * int(merge), int(low), int(high), source=where)


def load_image_processor(path: str, trust_remote_code: bool = False) -> tuple[Any, str]:
    """(image processor or its config dict, "") from ``path`` without the network, or
    (None, why not). AutoProcessor first; its config dict where AutoProcessor cannot build one
    (e.g. no torchvision)."""
    from transformers import AutoProcessor
    from transformers.image_processing_base import ImageProcessingMixin

    reason = ""
    try:
        processor = AutoProcessor.from_pretrained(
            path, local_files_only=True, trust_remote_code=trust_remote_code
        )
        image_processor = getattr(processor, "image_processor", None)
        if _get(image_processor, "patch_size") is not None:
            return image_processor, ""
    except Exception as e:  # any failure (no torchvision, no files, ...): read the config
        reason = f"AutoProcessor: {type(e).__name__}: {e}".splitlines()[0]
    try:
        config, _ = ImageProcessingMixin.get_image_processor_dict(path, local_files_only=True)
    except (OSError, ValueError) as e:
        return None, (reason or f"{type(e).__name__}: {e}").splitlines()[0]
    return config, ""


def resolve_geometry(
    model_path: str | None,
    *,
    image_factor: int | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    trust_remote_code: bool = False,
) -> ImageGeometry:
    """The export's geometry: the model's image processor when it loads offline (explicit
    values must agree: the factor equal, the pixel range inside the processor's), else the
    explicit values, unset ones taken from :data:`ASSUMED`, with a warning."""
    explicit = {"image_factor": image_factor, "min_pixels": min_pixels, "max_pixels": max_pixels}
    image_processor, reason = (
        load_image_processor(model_path, trust_remote_code) if model_path else (None, "no path")
    )
    if image_processor is None:
        values = {k: v if v is not None else ASSUMED[k] for k, v in explicit.items()}
        told = [f"{SECTION}.{k}={v}" for k, v in values.items() if explicit[k] is not None]
        assumed = [f"{k}={v}" for k, v in values.items() if explicit[k] is None]
        logger.warning(
            "the image processor of actor_rollout_ref.model.path=%s cannot be loaded offline "
            "(%s): exported model_image_size uses %s%s",
            model_path,
            reason,
            ", ".join(told) or "no explicit setting",
            f"; assumed (Qwen3-VL): {', '.join(assumed)}" if assumed else "",
        )
        return ImageGeometry(
            values["image_factor"],
            values["min_pixels"],
            values["max_pixels"],
            source=f"config ({', '.join(told + assumed)})",
        )
    geometry = geometry_of(image_processor, f"image processor of {model_path}")
    if image_factor is not None and image_factor != geometry.factor:
        raise ValueError(
            f"{SECTION}.image_factor={image_factor}, but the image processor of {model_path} "
            f"resizes to multiples of {geometry.factor} (patch_size x merge_size)"
        )
    low = geometry.min_pixels if min_pixels is None else min_pixels
    high = geometry.max_pixels if max_pixels is None else max_pixels
    for key, value in (("min_pixels", low), ("max_pixels", high)):
        if not geometry.min_pixels <= value <= geometry.max_pixels:
            raise ValueError(
                f"{SECTION}.{key}={value} is outside the range of the image processor of "
                f"{model_path} [{geometry.min_pixels}, {geometry.max_pixels}], which would "
                "resize the image again"
            )
    if low > high:
        raise ValueError(f"{SECTION}.min_pixels={low} > {SECTION}.max_pixels={high}")
    return ImageGeometry(geometry.factor, low, high, source=geometry.source)
