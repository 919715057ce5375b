"""The engine's tiny Qwen-VL tokenizer and an image-only Qwen2-VL processor (no hub, no
torchvision): one builder for the engine and the verl tests."""

from __future__ import annotations

import pytest

from openvlthinker.engine.modeling import build_tiny_processor, build_tiny_tokenizer


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_processor(tiny_tokenizer):
    return build_tiny_processor(
        "qwen2_vl", tiny_tokenizer, min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 64
    )
