import numpy as np
import pytest
from PIL import Image, ImageDraw

from openvlthinker.data import load_image, model_image_size


@pytest.mark.parametrize(
    ("size", "kw", "expected"),
    [
        # round(400/28)*28 = 392, round(300/28)*28 = 308
        ((400, 300), {}, (392, 308)),
        # 2000x1000 over 78400 px: beta = sqrt(2e6/78400); floor(1000/beta/28)*28 = 196
        ((2000, 1000), {"max_pixels": 28 * 28 * 100}, (392, 196)),
        # 20x20 under 56*56: beta = 2.8, ceil(20*2.8/28)*28 = 56
        ((20, 20), {"min_pixels": 56 * 56}, (56, 56)),
        # Qwen3-VL factor 32 (patch 16 x merge 2)
        ((320, 240), {"factor": 32}, (320, 256)),
    ],
)
def test_model_image_size_matches_the_smart_resize_rule(size, kw, expected):
    assert model_image_size(size, **kw) == expected


@pytest.mark.parametrize("size", [(224, 224), (320, 240), (448, 320), (1000, 37), (33, 700)])
def test_model_size_properties(size):
    lo, hi = 28 * 28 * 4, 28 * 28 * 64
    w, h = model_image_size(size, min_pixels=lo, max_pixels=hi)
    assert w % 28 == 0 and h % 28 == 0
    assert lo <= w * h <= hi
    assert abs(w / h - size[0] / size[1]) / (size[0] / size[1]) < 0.5


def test_bad_budget_is_named():
    with pytest.raises(ValueError, match=r"need 0 < min_pixels <= max_pixels, got 10, 5"):
        model_image_size((10, 10), min_pixels=10, max_pixels=5)


def test_load_image_resizes_and_keeps_a_box_consistent(tmp_path):
    """A box drawn in the original frame lands at box * (model / original) after resizing."""
    image = Image.new("RGB", (400, 300), "white")
    box = (100, 60, 220, 180)
    ImageDraw.Draw(image).rectangle(box, fill=(255, 0, 0))
    image.save(tmp_path / "x.png")
    loaded = load_image(tmp_path / "x.png", max_pixels=28 * 28 * 64)
    assert loaded.image_size == (400, 300)
    assert loaded.model_image_size == model_image_size((400, 300), max_pixels=28 * 28 * 64)
    assert loaded.image.size == loaded.model_image_size
    sx = loaded.model_image_size[0] / 400
    sy = loaded.model_image_size[1] / 300
    red = np.asarray(loaded.image).astype(int)
    ys, xs = np.nonzero((red[..., 0] > 200) & (red[..., 1] < 60))
    found = (xs.min(), ys.min(), xs.max(), ys.max())
    expected = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    np.testing.assert_allclose(found, expected, atol=2)


def test_load_image_converts_mode_and_reports_unreadable(tmp_path):
    loaded = load_image(Image.new("L", (56, 56)))
    assert loaded.image.mode == "RGB" and loaded.model_image_size == (56, 56)
    (tmp_path / "bad.png").write_bytes(b"xx")
    with pytest.raises(ValueError, match=r"unreadable image '.*bad\.png'"):
        load_image(tmp_path / "bad.png")
