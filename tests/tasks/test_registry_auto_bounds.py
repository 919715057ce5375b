"""Task-file fields of the calibration: length_intent, `auto` bounds, calibrated copies."""

from pathlib import Path

import pytest

from openvlthinker.tasks import TaskFileError, load_tasks
from openvlthinker.tasks.registry import auto_bounds

REPO = Path(__file__).resolve().parents[2]

BASE = """
defaults:
  length_weight: 0.1
  length_intent: long
tasks:
  math:
    domain: math
    problem_types: [math]
    length_envelope: auto
    entropy_band: {h_min: auto, h_max: auto, coef: 0.05}
  ocr:
    domain: OCR
    problem_types: [ocr]
    length_intent: short
    length_envelope: [1, 2, 2, 3]
    entropy_band: {h_min: auto, h_max: 0.6, coef: 0.02}
  chart:
    domain: chart
    problem_types: [numerical]
    length_intent: medium
    length_envelope: [1, 2, 3, 4]
"""


def write(tmp_path: Path, body: str, name: str = "tasks.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_auto_is_refused_unless_the_caller_calibrates(tmp_path):
    path = write(tmp_path, BASE)
    with pytest.raises(
        TaskFileError,
        match=rf"{path}: task 'math', key 'length_envelope': 'auto' is measured .*"
        r"openvlthinker calibrate --config CONFIG --out TASKS_OUT.yaml",
    ):
        load_tasks(path)
    reg = load_tasks(path, allow_auto=True)
    assert reg["math"].length_envelope is None
    assert reg["math"].entropy_band == (None, None, 0.05)
    assert reg["ocr"].entropy_band == (None, 0.6, 0.02)
    assert reg.auto_fields() == {"math": ("length_envelope", "h_min", "h_max"), "ocr": ("h_min",)}
    with pytest.raises(
        ValueError, match=r"entropy bands of task\(s\) \['math', 'ocr'\] are 'auto'"
    ):
        reg.entropy_tensors()


def test_length_intent_defaults_to_medium_and_is_checked(tmp_path):
    reg = load_tasks(write(tmp_path, BASE), allow_auto=True)
    assert [s.length_intent for s in reg.values()] == ["long", "short", "medium"]
    bad = write(tmp_path, BASE.replace("length_intent: short", "length_intent: brief"), "bad.yaml")
    with pytest.raises(
        TaskFileError,
        match=rf"{bad}: task 'ocr', key 'length_intent': 'brief' is unknown; "
        r"known: \['short', 'medium', 'long'\]",
    ):
        load_tasks(bad, allow_auto=True)
    minimal = write(
        tmp_path,
        "tasks:\n  t:\n    domain: d\n    problem_types: [ocr]\n"
        "    length_envelope: [1, 2, 3, 4]\n    length_weight: 0\n",
        "minimal.yaml",
    )
    assert load_tasks(minimal)["t"].length_intent == "medium"


def test_the_shipped_task_file_states_each_tasks_intent():
    reg = load_tasks(REPO / "configs" / "tasks.yaml", check_files=False)
    assert {k: s.length_intent for k, s in reg.items()} == {
        "grounding": "short",
        "spatial": "medium",
        "science": "long",
        "math": "long",
        "chart": "medium",
        "ocr": "short",
    }


@pytest.mark.parametrize(
    ("band", "message"),
    [
        (
            "{h_min: auto, h_max: auto, coef: auto}",
            r"key 'entropy_band'\.coef: must be a finite number, got 'auto'",
        ),
        ("{h_min: -1, h_max: auto, coef: 0.1}", r"key 'entropy_band'\.h_min: must be >= 0, got -1"),
        ("{h_min: auto, h_max: 0, coef: 0.1}", r"key 'entropy_band'\.h_max: must be > 0, got 0"),
    ],
)
def test_a_bad_band_with_auto_fails_naming_the_key(tmp_path, band, message):
    path = write(
        tmp_path,
        "tasks:\n  t:\n    domain: d\n    problem_types: [ocr]\n"
        f"    length_envelope: auto\n    length_weight: 0\n    entropy_band: {band}\n",
    )
    with pytest.raises(TaskFileError, match=message):
        load_tasks(path, allow_auto=True)


def test_with_bounds_fills_auto_and_checks_like_the_task_file(tmp_path):
    path = write(tmp_path, BASE)
    reg = load_tasks(path, allow_auto=True)
    done = reg.with_bounds(
        {
            "math": {"length_envelope": [2, 10, 20, 40], "h_min": 0.3, "h_max": 0.9},
            "ocr": {"h_min": 0.1},
        }
    )
    assert done.auto_fields() == {}
    assert done["math"].length_envelope == (2, 10, 20, 40)
    assert done["math"].entropy_band == (0.3, 0.9, 0.05)
    assert done["ocr"].entropy_band == (0.1, 0.6, 0.02)
    assert done["ocr"].length_envelope == (1, 2, 2, 3)
    assert reg.auto_fields()  # the original is unchanged
    h_min, h_max, coef = done.entropy_tensors()
    assert h_min.tolist() == pytest.approx([0.3, 0.1, 0.2])
    assert h_max.tolist() == pytest.approx([0.9, 0.6, 0.6])
    assert coef.tolist() == pytest.approx([0.05, 0.02, 0.02])
    with pytest.raises(
        TaskFileError,
        match=rf"{path}: task 'math', key 'length_envelope' \(calibrated\): envelope \[5, 4, 6, 7\] out of order",
    ):
        reg.with_bounds({"math": {"length_envelope": [5, 4, 6, 7]}})
    with pytest.raises(
        TaskFileError,
        match=r"task 'ocr', key 'entropy_band' \(calibrated\): need 0 <= h_min < h_max, got h_min=0.7, h_max=0.6",
    ):
        reg.with_bounds({"ocr": {"h_min": 0.7}})
    with pytest.raises(TaskFileError, match=r"unknown calibrated bound\(s\) \['coef'\]"):
        reg.with_bounds({"ocr": {"coef": 0.7}})


def test_auto_bounds_reads_through_extends_and_defaults(tmp_path):
    write(tmp_path, BASE.replace("length_envelope: auto", "length_envelope: [1, 2, 3, 4]"))
    over = write(
        tmp_path,
        "extends: tasks.yaml\n"
        "defaults:\n  entropy_band: {h_min: 0.1, h_max: auto, coef: 0.02}\n"
        "tasks:\n  chart: {length_envelope: auto}\n",
        "over.yaml",
    )
    # math and ocr set their own bands; chart takes the defaults' band
    assert auto_bounds(over) == {
        "math": ["h_min", "h_max"],
        "ocr": ["h_min"],
        "chart": ["length_envelope", "h_max"],
    }
    assert auto_bounds(REPO / "configs" / "tasks_tiny.yaml") == {}
