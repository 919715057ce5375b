"""Records, their loaders, prompt building and image loading."""

from openvlthinker.data.images import LoadedImage, load_image, model_image_size
from openvlthinker.data.prompts import build_messages, render_prompt
from openvlthinker.data.records import (
    RELEASED_FIELD_MAP,
    LoadedRecords,
    LoadReport,
    Record,
    RecordError,
    load_records,
    load_task_data,
)

__all__ = [
    "RELEASED_FIELD_MAP",
    "LoadReport",
    "LoadedImage",
    "LoadedRecords",
    "Record",
    "RecordError",
    "build_messages",
    "load_image",
    "load_records",
    "load_task_data",
    "model_image_size",
    "render_prompt",
]
