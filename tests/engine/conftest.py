"""Shared fixtures: one tiny Qwen-VL checkpoint per architecture, built once per session."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="session")
def tiny_qwen3(tiny_cache):
    """(path, processor, model) of the tiny Qwen3-VL, loaded through from_pretrained."""
    from openvlthinker.engine.modeling import (
        TinySpec,
        ensure_tiny_checkpoint,
        load_policy,
        load_processor,
    )

    path = ensure_tiny_checkpoint(TinySpec(architecture="qwen3_vl"), tiny_cache)
    processor = load_processor(path, "qwen3_vl", 32 * 32, 128 * 128)
    model = load_policy(path, torch.float32, "cpu")
    return path, processor, model


def random_image(seed: int, width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype("uint8"))


@pytest.fixture()
def make_image():
    """``make_image(seed, width, height)``: a deterministic random RGB image."""
    return random_image
