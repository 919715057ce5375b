from pathlib import Path

import pytest
import torch

from openvlthinker.tasks import TaskFileError, load_tasks

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "configs" / "tasks.yaml"
TINY = REPO / "configs" / "tasks_tiny.yaml"


def write_tasks(tmp_path: Path, body: str, name: str = "tasks.yaml") -> Path:
    (tmp_path / "train.jsonl").write_text("")
    (tmp_path / "val.jsonl").write_text("")
    (tmp_path / "images").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(body)
    return path


GOOD = """
advantage_key: task
tasks:
  math:
    domain: math
    problem_types: [math, "multiple choice"]
    length_envelope: [10, 20, 30, 40]
    length_weight: 0.5
    entropy_band: {h_min: 0.1, h_max: 0.9, coef: 0.05}
    reward_weights: {correctness: 0.8}
    train: [{path: train.jsonl, image_root: images}]
    validation: [{name: math_val, path: val.jsonl}]
  ocr:
    domain: OCR
    problem_types: [ocr]
    length_envelope: [1, 2, 2, 3]
    length_weight: 0.0
"""


def test_good_file_loads_with_canonical_types_defaults_and_resolved_paths(tmp_path):
    reg = load_tasks(write_tasks(tmp_path, GOOD))
    assert list(reg) == ["math", "ocr"]
    math = reg["math"]
    assert math.problem_types == ("math", "multiple_choice")
    assert math.length_envelope == (10, 20, 30, 40)
    assert math.entropy_band == (0.1, 0.9, 0.05)
    # unset weights keep the released defaults; length comes from length_weight
    assert math.reward_weights == {
        "correctness": 0.8,
        "format": 0.1,
        "structure": 1.0,
        "length": 0.5,
    }
    assert math.train[0].path == (tmp_path / "train.jsonl").resolve()
    assert math.train[0].image_root == (tmp_path / "images").resolve()
    assert math.validation[0].name == "math_val"
    assert math.validation[0].image_root is None
    assert reg["ocr"].entropy_band == (0.2, 0.6, 0.02)
    assert reg.index("ocr") == 1
    assert reg.advantage_key == "task"
    assert reg.problem_types() == ("math", "multiple_choice", "ocr")
    h_min, h_max, coef = reg.entropy_tensors()
    torch.testing.assert_close(h_min, torch.tensor([0.1, 0.2]))
    torch.testing.assert_close(h_max, torch.tensor([0.9, 0.6]))
    torch.testing.assert_close(coef, torch.tensor([0.05, 0.02]))
    with pytest.raises(KeyError, match="unknown task 'chart'; known: math, ocr"):
        reg.index("chart")


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (
            '[math, "multiple choice"]',
            "[math, algebra]",
            r"task 'math', key 'problem_types'.*unknown problem type 'algebra'",
        ),
        (
            '[math, "multiple choice"]',
            "[math, [ocr]]",
            r"task 'math', key 'problem_types': problem type must be a string, got \['ocr'\]",
        ),
        (
            "[10, 20, 30, 40]",
            "[10, 40, 30, 50]",
            r"task 'math', key 'length_envelope'.*\[10, 40, 30, 50\] out of order",
        ),
        (
            "[10, 20, 30, 40]",
            "[10, 20, 30]",
            r"task 'math', key 'length_envelope'.*must be \[L_min",
        ),
        (
            "path: train.jsonl,",
            "path: missing.jsonl,",
            r"task 'math', key 'train'\[0\]\.path: file .*missing\.jsonl' does not exist",
        ),
        (
            "image_root: images",
            "image_root: nowhere",
            r"task 'math', key 'train'\[0\]\.image_root: directory .*nowhere' does not exist",
        ),
        ("  ocr:\n", "  math:\n", r"duplicate key 'math' at line 13 \(first at line 4\)"),
        (
            "    length_weight: 0.5\n",
            "    length_weight: 0.5\n    lenght_weight: 1\n",
            r"task 'math': unknown key\(s\) \['lenght_weight'\]",
        ),
        (
            "h_min: 0.1, h_max: 0.9",
            "h_min: 0.9, h_max: 0.1",
            r"key 'entropy_band'.*need 0 <= h_min < h_max",
        ),
        ("coef: 0.05", "coef: -1", r"key 'entropy_band'.coef: must be >= 0"),
        (
            "{correctness: 0.8}",
            "{correctness: 0.8, length: 1}",
            r"'length' is set by the task's length_weight",
        ),
        ("{correctness: 0.8}", "{accuracy: 0.8}", r"unknown reward component\(s\) \['accuracy'\]"),
        (
            "advantage_key: task",
            "advantage_key: domain",
            r"key 'advantage_key'.*'domain' is unknown",
        ),
        (
            "advantage_key: task",
            "advantage_keys: task",
            r"unknown top-level key\(s\) \['advantage_keys'\]",
        ),
        ("    domain: OCR\n", "", r"task 'ocr', key 'domain'.*required non-empty string"),
        (
            "length_weight: 0.0",
            "length_weight: nan",
            r"task 'ocr', key 'length_weight'.*finite number",
        ),
        (
            "[{name: math_val, path: val.jsonl}]",
            "[{path: val.jsonl}]",
            r"key 'validation'\[0\]\.name: required non-empty string",
        ),
    ],
)
def test_bad_task_file_names_file_task_and_key(tmp_path, old, new, match):
    assert old in GOOD
    path = write_tasks(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(TaskFileError, match=match) as info:
        load_tasks(path)
    assert str(path.name) in str(info.value)


def test_duplicate_validation_name_across_tasks(tmp_path):
    body = GOOD + "    validation: [{name: math_val, path: val.jsonl}]\n"
    with pytest.raises(
        TaskFileError,
        match=r"task 'ocr'.*duplicate validation set name 'math_val' \(also in task 'math'\)",
    ):
        load_tasks(write_tasks(tmp_path, body))


def test_check_files_false_skips_existence_checks(tmp_path):
    path = write_tasks(tmp_path, GOOD.replace("path: train.jsonl,", "path: later.jsonl,"))
    reg = load_tasks(path, check_files=False)
    assert reg["math"].train[0].path.name == "later.jsonl"


def test_extends_merges_mappings_and_resolves_base_paths(tmp_path):
    write_tasks(tmp_path, GOOD)
    sub = tmp_path / "sub"
    sub.mkdir()
    child = sub / "small.yaml"
    child.write_text(
        "extends: ../tasks.yaml\nadvantage_key: problem_type\n"
        "tasks:\n  math: {length_envelope: [1, 2, 3, 4]}\n"
    )
    reg = load_tasks(child)
    assert reg.advantage_key == "problem_type"
    assert reg["math"].length_envelope == (1, 2, 3, 4)
    assert reg["math"].length_weight == 0.5
    assert reg["math"].train[0].path == (tmp_path / "train.jsonl").resolve()


def test_extends_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(TaskFileError, match="'extends' forms a cycle"):
        load_tasks(tmp_path / "a.yaml")


def test_shipped_registry_has_six_tasks_following_the_length_intent():
    reg = load_tasks(SHIPPED)
    assert list(reg) == ["grounding", "spatial", "science", "math", "chart", "ocr"]
    high = {k: reg[k].length_envelope[2] for k in reg}
    # reasoning long > hybrid middle > vision short (method.md section 2)
    assert min(high["math"], high["science"]) > max(high["chart"], high["spatial"])
    assert min(high["chart"], high["spatial"]) > max(high["grounding"], high["ocr"])
    for spec in reg.values():
        assert spec.entropy_band == (0.2, 0.6, 0.02)
        assert len(spec.train) == 1 and len(spec.validation) == 1
        assert spec.validation[0].path.is_file()


def test_tiny_registry_only_shrinks_the_envelopes():
    base, tiny = load_tasks(SHIPPED), load_tasks(TINY)
    assert list(base) == list(tiny)
    for key in base:
        assert tiny[key].length_envelope[3] <= 64
        assert tiny[key].train == base[key].train
        assert tiny[key].validation == base[key].validation
        assert tiny[key].problem_types == base[key].problem_types
        assert tiny[key].reward_weights == base[key].reward_weights


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("{on_error: ignore}", r"key 'data.on_error': 'ignore' is unknown"),
        ("{check_images: maybe}", r"key 'data.check_images': must be true or false"),
        (
            "{field_map: {solution: answer}}",
            r"key 'data.field_map': unknown record field\(s\) \['solution'\]",
        ),
        ("{shuffle: true}", r"key 'data': must be a mapping with keys"),
    ],
)
def test_bad_data_section(tmp_path, data, match):
    with pytest.raises(TaskFileError, match=match):
        load_tasks(write_tasks(tmp_path, f"data: {data}\n" + GOOD))


SCORED = """
defaults:
  length_envelope: [1, 2, 3, 4]
  length_weight: 0.0
  scorer_options:
    ocr: {case_sensitive: true}
    numerical: {rule: relaxed}
tasks:
  chart:
    domain: chart
    problem_types: [numerical, open_ended]
    scorer_options:
      numerical: {tolerance: 0.1}
      open_ended: {metric: anls}
  math:
    domain: math
    problem_types: [numerical]
    scorer_options:
      numerical: {rule: mathvista}
  ocr:
    domain: OCR
    problem_types: [OCR]
"""


def test_scorer_options_merge_defaults_under_each_task_per_problem_type(tmp_path):
    reg = load_tasks(write_tasks(tmp_path, SCORED))
    assert reg["chart"].scorer_options == {
        "numerical": {"rule": "relaxed", "tolerance": 0.1},
        "open_ended": {"metric": "anls"},
    }
    assert reg["math"].scorer_options == {"numerical": {"rule": "mathvista"}}
    # defaults reach only the task's own problem types (canonical names)
    assert reg["ocr"].scorer_options == {"ocr": {"case_sensitive": True}}
    assert load_tasks(SHIPPED)["chart"].scorer_options == {}


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (
            "numerical: {tolerance: 0.1}",
            "numerical: {tolerence: 0.1}",
            r"task 'chart', key 'scorer_options.numerical.tolerence': unknown option; "
            r"known: rule, tolerance",
        ),
        (
            "numerical: {tolerance: 0.1}",
            "numerical: {tolerance: 2}",
            r"task 'chart', key 'scorer_options.numerical.tolerance': expected a number in",
        ),
        (
            "numerical: {rule: mathvista}",
            "numerical: {rule: relaxd}",
            r"task 'math', key 'scorer_options.numerical.rule': 'relaxd' is unknown; "
            r"known: mathvista, relaxed",
        ),
        (
            "numerical: {rule: mathvista}",
            "numerical: {rule: mathvista, tolerance: 0.1}",
            r"task 'math', key 'scorer_options.numerical.tolerance': applies to rule: relaxed",
        ),
        (
            "numerical: {rule: mathvista}",
            "ocr: {case_sensitive: true}",
            r"task 'math', key 'scorer_options'.ocr: 'ocr' is not a problem type of this task",
        ),
        (
            "open_ended: {metric: anls}",
            "open_ended: {case_sensitive: true}",
            r"task 'chart', key 'scorer_options.open_ended.case_sensitive': rouge_l compares",
        ),
        (
            "ocr: {case_sensitive: true}",
            "ocr: {case_sensitive: yes please}",
            r"key 'defaults.scorer_options.ocr.case_sensitive': expected true or false",
        ),
        (
            "ocr: {case_sensitive: true}",
            "ocr: {metric: bleu}",
            r"key 'defaults.scorer_options.ocr.metric': 'bleu' is unknown; known: wer, cer, anls",
        ),
        (
            "numerical: {rule: relaxed}",
            "numerical: {rule: relaxed}\n    algebra: {}",
            r"key 'defaults.scorer_options'.algebra.*unknown problem type 'algebra'",
        ),
        (
            "numerical: {rule: relaxed}",
            "numerical: {rule: relaxed}\n    math: {x: 1}",
            r"key 'defaults.scorer_options.math.x': the 'math' scorer takes no options",
        ),
    ],
)
def test_bad_scorer_options_name_file_task_and_key(tmp_path, old, new, match):
    assert old in SCORED
    path = write_tasks(tmp_path, SCORED.replace(old, new, 1))
    with pytest.raises(TaskFileError, match=match) as info:
        load_tasks(path)
    assert str(path.name) in str(info.value)


@pytest.mark.parametrize(
    "entry, error",
    [
        ("{name: ocr, path: val.jsonl}", r"set name 'ocr' is also a task name"),
        ("{name: macro, path: val.jsonl}", r"'macro' is not a valid set name"),
        ("{name: a/b, path: val.jsonl}", r"'a/b' is not a valid set name"),
        ("{name: s, path: val.jsonl, metric: anlz}", r"metric: 'anlz' is unknown; known: .*anls"),
        (
            "{name: s, path: val.jsonl, problem_type: ocr}",
            r"set 's': problem_type 'ocr' is not one of the task's problem_types",
        ),
        ("{name: s, path: val.jsonl, box_format: cxcywh}", r"box_format: 'cxcywh' is unknown"),
    ],
)
def test_bad_validation_set_entries(tmp_path, entry, error):
    body = GOOD.replace("validation: [{name: math_val, path: val.jsonl}]", f"validation: [{entry}]")
    with pytest.raises(TaskFileError, match=error):
        load_tasks(write_tasks(tmp_path, body))


def test_validation_set_metric_problem_type_and_list_field_map(tmp_path):
    entry = (
        "{name: mmmu, path: val.jsonl, metric: mmmu, problem_type: multiple-choice, "
        "box_format: xywh, field_map: {options: [A, B, C], images: [image_1, image_2]}}"
    )
    body = GOOD.replace("validation: [{name: math_val, path: val.jsonl}]", f"validation: [{entry}]")
    vset = load_tasks(write_tasks(tmp_path, body))["math"].validation[0]
    assert (vset.metric, vset.problem_type, vset.box_format) == ("mmmu", "multiple_choice", "xywh")
    assert vset.field_map == {"options": ("A", "B", "C"), "images": ("image_1", "image_2")}
    # only list fields take several columns
    bad = body.replace("options: [A, B, C]", "problem: [a, b]")
    with pytest.raises(TaskFileError, match=r"a list of names for images, videos, options"):
        load_tasks(write_tasks(tmp_path, bad))


def test_index_and_indices_give_file_order_positions(tmp_path):
    registry = load_tasks(write_tasks(tmp_path, GOOD))
    assert [registry.index(k) for k in ("math", "ocr")] == [0, 1]
    assert registry.with_bounds({}).index("ocr") == 1  # a copy keeps its lookup
    got = registry.indices(["ocr", "math", "ocr"])
    assert got.dtype == torch.long and got.tolist() == [1, 0, 1]
    assert registry.indices([]).tolist() == []
    with pytest.raises(KeyError, match=r"unknown task 'poem'; known: math, ocr"):
        registry.index("poem")
    with pytest.raises(
        ValueError, match=r"data_source 'poem' of row 1 is not a task of the task file; known"
    ):
        registry.indices(["math", "poem"], where="data_source")
