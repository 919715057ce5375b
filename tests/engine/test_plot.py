"""The per-task plot: a row per task with its envelope, band and validation sets."""

from pathlib import Path

import matplotlib.pyplot as plt
from PIL import Image

from openvlthinker.engine.plot import (
    PANELS,
    build_figure,
    plot_history,
    tasks_in,
    validation_lines,
)
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


def test_tasks_come_from_the_per_task_reward_keys_only():
    history = [{"step": 1, "train/reward": 0.1, "train/b/reward": 0.2, "train/a/entropy": 0.3}]
    history.append({"step": 2, "train/a/reward": 0.4, "val/c/reward": 0.5, "train/x/y/reward": 1})
    assert tasks_in(history) == ["a", "b"]


def test_without_registry_each_panel_plots_its_series():
    fig = build_figure(HISTORY)
    titles = [ax.get_title() for ax in fig.axes]
    rows = ("all tasks", "math", "ocr")  # all tasks first, then the history's tasks, sorted
    assert titles == [f"{row}: {label}" for row in rows for _, label in PANELS]
    reward, length = fig.axes[0], fig.axes[len(PANELS) + 1]
    assert list(reward.lines[0].get_xdata()) == [1, 2]
    assert list(reward.lines[0].get_ydata()) == [0.2, 0.4]
    assert list(length.lines[0].get_ydata()) == [20.0, 30.0] and not length.patches
    assert [ax.get_xlabel() for ax in fig.axes[-len(PANELS) :]] == ["step"] * len(PANELS)
    macro = fig.axes[len(PANELS) - 1]
    assert [line.get_label() for line in macro.lines] == ["macro"]
    assert list(macro.lines[0].get_ydata()) == [0.1, 0.2]
    plt.close(fig)


def test_validation_lines_name_each_set_and_its_metric():
    registry = load_tasks(REPO / "configs" / "tasks_tiny.yaml")
    assert validation_lines(None, registry) == [
        ("macro", "val/macro/correctness", {"color": "black", "linewidth": 2})
    ]
    assert validation_lines("math", None) == [
        ("math (all sets)", "val/math/correctness", {"linestyle": "--"})
    ]
    sets = validation_lines("math", registry)[1:]
    assert sets == [
        (f"{v.name} ({v.metric or 'correctness'})", f"val/{v.name}/{v.metric or 'correctness'}", {})
        for v in registry["math"].validation
    ]
    assert sets and sets[0][0] == "math_val (correctness)"


def test_plot_history_saves_the_figure_at_its_size(tmp_path):
    path = plot_history(HISTORY, tmp_path / "new" / "curves.png")
    assert path == tmp_path / "new" / "curves.png" and path.stat().st_size > 0
    with Image.open(path) as image:
        # 4.2 x 2.6 inches per panel at 80 dpi: 4 panels by 3 rows
        assert image.format == "PNG" and image.size == (1344, 624)
