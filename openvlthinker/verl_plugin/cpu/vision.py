"""Images on a CPU install without torchvision: the processor and the dataset's image path.

Two verl steps need torchvision through third-party code: ``hf_processor``
(``AutoProcessor``), whose Qwen-VL processors load a video processor, and the agent loop's
``RLHFDataset.process_multi_modal_info``, which imports ``qwen_vl_utils``. Both are
replaced through their own extension points, never by editing verl:

- :func:`register_processors` registers, with ``AutoProcessor.register``, a loader for each
  image-only processor the tiny builder saves (``Qwen3VLProcessorImageOnly``, ...; see
  :mod:`openvlthinker.engine.modeling`). It returns the image-only processor under the
  class name of the Qwen-VL processor it extends, the name verl dispatches on to bind the
  model's ``get_rope_index``. Checkpoints that name a stock processor still need
  torchvision.
- :class:`ImageDataset` (``data.custom_cls``) opens the embedded images with PIL and
  resizes them into each image's pixel range by Qwen-VL's smart resize
  (:func:`openvlthinker.data.images.load_image`), the rule ``qwen_vl_utils`` applies.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from typing import Any

from PIL import Image
from verl.utils.dataset.rl_dataset import RLHFDataset

#: Qwen-VL merges 2 x 2 patches into one token (``spatial_merge_size``).
MERGE_SIZE = 2


def has_torchvision() -> bool:
    """Whether torchvision is importable (then nothing here is needed for processors)."""
    return importlib.util.find_spec("torchvision") is not None


def _named_processor(model_type: str) -> type:
    """The image-only processor of ``model_type`` under its stock class's name."""
    from openvlthinker.engine.modeling import _ARCH, _processor_class

    base = _ARCH[model_type]["processor"]
    return type(base.__name__, (_processor_class(base),), {"__module__": __name__})


def _loader(model_type: str) -> type:
    """What ``AutoProcessor`` resolves the saved image-only class name to."""
    from openvlthinker.engine.modeling import _ARCH, _processor_class

    saved_name = _processor_class(_ARCH[model_type]["processor"]).__name__

    def from_pretrained(cls, path: str | Path, **kwargs: Any) -> Any:
        from transformers import AutoTokenizer, Qwen2VLImageProcessorPil

        tokenizer = AutoTokenizer.from_pretrained(path)
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(path)
        processor_cls = _named_processor(model_type)
        return processor_cls(
            image_processor=image_processor,
            tokenizer=tokenizer,
            chat_template=tokenizer.chat_template,
        )

    return type(saved_name, (), {"from_pretrained": classmethod(from_pretrained)})


def register_processors() -> None:
    """Register the image-only processor loaders with ``AutoProcessor`` (no torchvision)."""
    from transformers import AutoConfig, AutoProcessor

    from openvlthinker.engine.modeling import known_architectures

    for model_type in known_architectures():
        config_cls = type(AutoConfig.for_model(model_type))
        AutoProcessor.register(config_cls, _loader(model_type), exist_ok=True)


def _open(item: dict[str, Any]) -> Image.Image:
    image = item.get("image", item)
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, str | Path):
        return Image.open(image)
    if isinstance(image, dict) and image.get("bytes") is not None:
        return Image.open(io.BytesIO(image["bytes"]))
    if isinstance(image, dict) and image.get("path"):
        return Image.open(image["path"])
    raise ValueError(f"image entry with none of image/bytes/path: keys {sorted(item)}")


def load_message_images(messages: list[dict], image_patch_size: int) -> list[Image.Image] | None:
    """The images of chat ``messages`` in order, each resized into its own pixel range."""
    from openvlthinker.data.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, load_image

    images = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for item in content:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "video":
                raise NotImplementedError("videos need torchvision (qwen_vl_utils)")
            if item.get("type") != "image":
                continue
            source = item.get("image") if isinstance(item.get("image"), dict) else item
            loaded = load_image(
                _open(item),
                min_pixels=int(source.get("min_pixels") or DEFAULT_MIN_PIXELS),
                max_pixels=int(source.get("max_pixels") or DEFAULT_MAX_PIXELS),
                factor=image_patch_size * MERGE_SIZE,
            )
            images.append(loaded.image)
    return images or None


class ImageDataset(RLHFDataset):
    """verl's ``RLHFDataset`` whose image step needs neither torchvision nor qwen_vl_utils."""

    @classmethod
    def _process_multi_modal_info(
        cls, messages: list[dict], image_patch_size: int, config: Any
    ) -> tuple[list[Image.Image] | None, None, Any]:
        images = load_message_images(messages, image_patch_size)
        return images, None, cls._extract_audio_info(messages)
