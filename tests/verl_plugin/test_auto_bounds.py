"""openvlthinker-verl refuses `auto` shaping bounds: a calibration never hides in the Ray job."""

from __future__ import annotations

from pathlib import Path

import pytest

from openvlthinker.verl_plugin.config import compose_config, validate

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "g2rpo_qwen3vl_8b.yaml"


def test_auto_bounds_are_refused_with_the_calibrate_command_to_run(tmp_path):
    auto = tmp_path / "tasks_auto.yaml"
    auto.write_text(
        f"extends: {REPO / 'configs' / 'tasks.yaml'}\n"
        "tasks:\n  math: {length_envelope: auto}\n"
        "  ocr: {entropy_band: {h_min: auto, h_max: auto, coef: 0.02}}\n"
    )
    cfg = compose_config(CONFIG, [f"openvlthinker.tasks={auto}"])
    with pytest.raises(
        ValueError,
        match=rf"openvlthinker.tasks: {auto} sets shaping bounds to 'auto' \(math: "
        r"length_envelope; ocr: h_min, h_max\); openvlthinker-verl does not calibrate inside "
        r"the Ray job: run `openvlthinker calibrate --config ENGINE_CONFIG --out "
        r"TASKS_OUT.yaml` first .* openvlthinker.tasks=TASKS_OUT.yaml",
    ):
        validate(cfg)
