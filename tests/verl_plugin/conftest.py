"""The engine's tiny Qwen-VL tokenizer and an image-only Qwen2-VL processor (no hub, no
torchvision): one builder for the engine and the verl tests; each test's environment
variables restored after it."""

from __future__ import annotations

import os

import pytest

from openvlthinker.engine.modeling import build_tiny_processor, build_tiny_tokenizer


@pytest.fixture(autouse=True)
def _restore_environ():
    """``prepare()`` puts what it sends to Ray (plugin modules, the CPU platform, the vision
    freeze) into ``os.environ``: keep each test's variables out of the next test's verl runs
    and subprocesses."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_processor(tiny_tokenizer):
    return build_tiny_processor(
        "qwen2_vl", tiny_tokenizer, min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 64
    )
