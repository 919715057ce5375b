"""The per-task plot: a row per task with its envelope, band and validation sets."""

from pathlib import Path

import matplotlib.pyplot as plt

from openvlthinker.engine.plot import PANELS, build_figure, plot_history
from openvlthinker.tasks import load_tasks

REPO = Path(__file__).resolve().parents[2]

HISTORY = [
    {
        "step": 0,
        "val/math/correctness": 0.1,
        "val/math_val/correctness": 0.1,
        "val/macro/correctness": 0.1,
    },
    {
        "step": 1,
        "train/reward": 0.2,
        "train/math/reward": 0.3,
        "train/math/response_length": 20.0,
        "train/math/entropy": 0.4,
        "train/ocr/reward": 0.1,
    },
    {
        "step": 2,
        "train/reward": 0.4,
        "train/math/reward": 0.5,
        "train/math/response_length": 30.0,
        "train/math/entropy": 0.5,
        "val/math/correctness": 0.3,
        "val/math_val/correctness": 0.3,
        "val/macro/correctness": 0.2,
    },
]


def test_rows_per_task_with_envelope_band_and_one_line_per_set():
    registry = load_tasks(REPO / "configs" / "tasks_tiny.yaml")
    fig = build_figure(HISTORY, registry)
    axes = fig.axes
    # rows: all tasks, then math and ocr (the tasks in the history, in registry order)
    assert len(axes) == 3 * len(PANELS)
    titles = [ax.get_title() for ax in axes]
    assert titles[len(PANELS)] == "math: train reward" and titles[-1] == "ocr: validation"
    length, entropy, val = axes[len(PANELS) + 1], axes[len(PANELS) + 2], axes[len(PANELS) + 3]
    assert (
        len(length.patches) == 2 and len(entropy.patches) == 1
    )  # L_min..L_max, L_low..L_high; H band
    # data coordinates of the spans: the math envelope of tasks_tiny.yaml, (4, 12, 32, 64)
    envelope = sorted((p.get_y(), p.get_y() + p.get_height()) for p in length.patches)
    assert envelope == [(4, 64), (12, 32)]
    band = entropy.patches[0]
    assert (band.get_y(), band.get_y() + band.get_height()) == (0.2, 0.6)
    assert [line.get_label() for line in val.lines] == ["math (all sets)", "math_val (correctness)"]
    assert list(val.lines[1].get_xdata()) == [0, 2]
    plt.close(fig)


def test_plot_history_writes_a_png_without_registry(tmp_path):
    path = plot_history(HISTORY, tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
