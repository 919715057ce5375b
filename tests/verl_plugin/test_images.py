"""The export's image geometry comes from the model's processor (or explicit config), and
the recorded model_image_size is the size the processor really feeds the model."""

from __future__ import annotations

import logging
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from openvlthinker.engine.modeling import build_tiny_processor
from openvlthinker.verl_plugin.config import compose_config
from openvlthinker.verl_plugin.images import ImageGeometry, resolve_geometry
from openvlthinker.verl_plugin.main import prepare
from openvlthinker.verl_plugin.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
MIN_PIXELS, MAX_PIXELS = 32 * 32 * 4, 32 * 32 * 64


@pytest.fixture(scope="module")
def qwen3_processor(tiny_tokenizer):
    return build_tiny_processor(
        "qwen3_vl", tiny_tokenizer, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS
    )


@pytest.fixture(scope="module")
def model_dir(qwen3_processor, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_qwen3_vl")
    qwen3_processor.save_pretrained(folder)
    return folder


def processor_size(processor, size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) the processor feeds the model for an image of ``size``."""
    pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = processor.image_processor(images=[Image.fromarray(pixels)], return_tensors="pt")
    _, h, w = out["image_grid_thw"][0].tolist()
    patch = processor.image_processor.patch_size
    return w * patch, h * patch


SIZES = [(300, 170), (600, 400), (40, 30), (1000, 90)]


def test_geometry_is_the_processors_and_matches_what_it_feeds_the_model(model_dir, qwen3_processor):
    geometry = resolve_geometry(str(model_dir))
    assert (geometry.factor, geometry.min_pixels, geometry.max_pixels) == (
        32,
        MIN_PIXELS,
        MAX_PIXELS,
    )
    for size in SIZES:
        assert geometry.model_size(size) == processor_size(qwen3_processor, size)
    # the old default (factor 28, Qwen2-VL's range) gives another size for the same image
    old = ImageGeometry(28, 56 * 56, 28 * 28 * 1280)
    assert old.model_size((300, 170)) == (308, 168) != geometry.model_size((300, 170))


def test_a_narrower_explicit_range_is_kept_and_a_conflict_fails(model_dir):
    narrow = resolve_geometry(str(model_dir), max_pixels=32 * 32 * 16)
    assert (narrow.factor, narrow.min_pixels, narrow.max_pixels) == (32, MIN_PIXELS, 16384)
    with pytest.raises(ValueError, match=r"openvlthinker\.image_factor=28, .* multiples of 32"):
        resolve_geometry(str(model_dir), image_factor=28)
    with pytest.raises(ValueError, match=r"openvlthinker\.max_pixels=1000000 is outside"):
        resolve_geometry(str(model_dir), max_pixels=1_000_000)


def test_without_a_loadable_processor_config_is_used_and_the_warning_names_it(tmp_path, caplog):
    missing = str(tmp_path / "no_model")
    with caplog.at_level(logging.WARNING, logger="openvlthinker.verl_plugin.images"):
        geometry = resolve_geometry(missing, min_pixels=1024)
    assert (geometry.factor, geometry.min_pixels, geometry.max_pixels) == (32, 1024, 4096**2)
    (message,) = [r.getMessage() for r in caplog.records]
    assert missing in message and "openvlthinker.min_pixels=1024" in message
    assert "image_factor=32" in message and f"max_pixels={4096**2}" in message
    assert "min_pixels=65536" not in message


def test_bad_explicit_geometry_fails_at_load_naming_the_key():
    from omegaconf import OmegaConf

    def settings(**section):
        return load_settings(OmegaConf.create({"openvlthinker": {"tasks": "t.yaml", **section}}))

    assert settings(image_factor=28).image_factor == 28
    with pytest.raises(ValueError, match=r"openvlthinker\.image_factor=0"):
        settings(image_factor=0)
    with pytest.raises(ValueError, match=r"openvlthinker\.min_pixels=5000 > .*max_pixels=4000"):
        settings(min_pixels=5000, max_pixels=4000)


def test_prepare_exports_the_processors_sizes(model_dir, qwen3_processor, tmp_path, monkeypatch):
    cfg = compose_config(
        REPO / "configs" / "g2rpo_qwen3vl_8b.yaml",
        [
            f"openvlthinker.tasks={REPO / 'configs' / 'tasks.yaml'}",
            f"openvlthinker.export_dir={tmp_path}",
            f"actor_rollout_ref.model.path={model_dir}",
        ],
    )
    monkeypatch.chdir(tmp_path)
    prepare(cfg)
    rows = datasets.load_dataset("parquet", data_files=cfg.data.train_files[0])["train"]
    checked = 0
    for row in rows:
        info = row["extra_info"]
        if not info["image_size"]:
            continue
        size = tuple(info["image_size"])
        assert tuple(info["model_image_size"]) == processor_size(qwen3_processor, size)
        # verl's fetch_image resizes into the same range, so the processor's resize is a no-op
        assert all(
            (i["min_pixels"], i["max_pixels"]) == (MIN_PIXELS, MAX_PIXELS) for i in row["images"]
        )
        checked += 1
    assert checked > 0
