import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from openvlthinker.data import RELEASED_FIELD_MAP, RecordError, load_records, load_task_data
from openvlthinker.tasks import load_tasks

REPO = Path(__file__).resolve().parents[2]
REGISTRY = load_tasks(REPO / "configs" / "tasks.yaml")

# The released OneThinker/OpenVLThinker sample layout: the task is called task_type and
# problem types use the released spellings.
RELEASED = [
    {
        "problem": "<image>What colour is the square?",
        "answer": "B",
        "images": ["a.png"],
        "problem_type": "multiple choice",
        "data_type": "image",
        "task_type": "science",
        "options": ["A. red", "B. blue"],
    },
    {
        "problem": "What is 2 + 2?",
        "answer": "4",
        "images": [],
        "problem_type": "math",
        "data_type": "text",
        "task_type": "math",
        "options": [],
    },
]


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    Image.new("RGB", (40, 30), "white").save(tmp_path / "a.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    return tmp_path


def _strip(records):
    return [
        (r.id, r.problem, r.answer, r.images, r.problem_type, r.task, r.data_type, r.options)
        for r in records
    ]


def test_released_format_loads_unchanged_from_json_jsonl_parquet_and_dataset(image_dir):
    (image_dir / "s.json").write_text(json.dumps(RELEASED))
    (image_dir / "s.jsonl").write_text("\n".join(json.dumps(r) for r in RELEASED))
    pq.write_table(pa.Table.from_pylist(RELEASED), image_dir / "s.parquet")
    kw = {"registry": REGISTRY, "field_map": RELEASED_FIELD_MAP, "image_root": image_dir}
    loaded = [load_records(image_dir / f"s.{ext}", **kw) for ext in ("json", "jsonl", "parquet")]
    loaded.append(load_records(datasets.Dataset.from_list(RELEASED), **kw))
    first = loaded[0]
    assert [r.task for r in first] == ["science", "math"]
    assert first[0].problem_type == "multiple_choice"
    assert first[0].images == (str(image_dir / "a.png"),)
    assert first[0].image_sizes == ((40, 30),)
    assert first[0].image_size == (40, 30)
    assert first[0].options == ("A. red", "B. blue")
    assert first[1].data_type == "text" and first[1].images == () and first[1].image_size is None
    assert first[0].id == "s-0"
    assert first[0].source == f"{image_dir / 's.json'}:0"
    assert first.report.loaded == 2 and first.report.skipped == 0
    for other in loaded[1:3]:
        assert _strip(other) == _strip(first)
    assert [r.task for r in loaded[3]] == ["science", "math"]


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


GOOD = {
    "problem": "<image>Read it.",
    "answer": "hi",
    "images": ["a.png"],
    "problem_type": "ocr",
    "task": "ocr",
}
BAD_ROWS = [
    ({"answer": "x", "problem_type": "ocr", "task": "ocr"}, r"missing field 'problem'"),
    (dict(GOOD, task="poetry"), r"field 'task': unknown task 'poetry'"),
    (
        '{"problem": "Q", "answer": NaN, "problem_type": "numerical", "task": "chart"}',
        r"field 'answer': NaN",
    ),
    (dict(GOOD, images=["broken.png"]), r"field 'images': unreadable image '.*broken\.png'"),
    (dict(GOOD, images=["gone.png"]), r"field 'images': unreadable image '.*gone\.png'"),
    ("{not json", r"invalid JSON at column 2: Expecting property name"),
    (dict(GOOD, problem="<image><image>Read."), r"2 <image> placeholder\(s\) but 1 images"),
    (dict(GOOD, problem_type="counting"), r"problem type 'counting' is not one of task 'ocr'"),
    (dict(GOOD, problem_type="haiku"), r"field 'problem_type': unknown problem type 'haiku'"),
    (dict(GOOD, problem_type="multiple_choice", task="science"), r"multiple_choice needs options"),
    (dict(GOOD, data_type="text"), r"'text' but the record has media"),
    (dict(GOOD, metadata=5), r"field 'metadata': must be a mapping, got 5"),
    (dict(GOOD, metadata=["a", "b"]), r"field 'metadata': must be a mapping, got \['a', 'b'\]"),
    (dict(GOOD, task=["ocr"]), r"field 'task': must be a string, got \['ocr'\]"),
    (dict(GOOD, id={"a": 1}), r"field 'id': must be a string or an integer, got \{'a': 1\}"),
]


@pytest.mark.parametrize(("row", "match"), BAD_ROWS)
def test_bad_record_fails_with_file_and_row(image_dir, row, match):
    path = _write_jsonl(image_dir / "bad.jsonl", [GOOD, row, GOOD | {"id": "z"}])
    with pytest.raises(RecordError, match=rf"bad\.jsonl: row 1: .*{match}") as info:
        load_records(path, registry=REGISTRY)
    assert info.value.row == 1


def test_a_jsonl_error_names_one_position_the_row(image_dir):
    # A blank line does not count: rows are records, numbered as in default ids (stem-row).
    path = image_dir / "gap.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + '{"problem": "Q",, }\n')
    with pytest.raises(RecordError) as info:
        load_records(path, registry=REGISTRY)
    assert (
        str(info.value)
        == f"{path}: row 1: invalid JSON at column 17: Expecting property name enclosed in double quotes"
    )


def test_skip_policy_drops_and_counts(image_dir, caplog):
    rows = [GOOD] + [r for r, _ in BAD_ROWS] + [dict(GOOD, id="last")]
    path = _write_jsonl(image_dir / "mixed.jsonl", rows)
    records = load_records(path, registry=REGISTRY, on_error="skip")
    assert [r.id for r in records] == ["mixed-0", "last"]
    assert records.report.rows == len(BAD_ROWS) + 2
    assert records.report.skipped == len(BAD_ROWS)
    assert records.report.loaded == 2
    assert len(records.report.examples) == 5
    assert f"skipped {len(BAD_ROWS)} of {len(BAD_ROWS) + 2} records" in caplog.text


def test_duplicate_id_is_a_bad_record(image_dir):
    path = _write_jsonl(image_dir / "dup.jsonl", [dict(GOOD, id="x"), dict(GOOD, id="x")])
    with pytest.raises(
        RecordError, match=r"row 1: field 'id': duplicate id 'x' \(first at row 0\)"
    ):
        load_records(path, registry=REGISTRY)


def test_default_task_fills_missing_task_and_bad_arguments_are_named(image_dir):
    row = {k: v for k, v in GOOD.items() if k != "task"}
    path = _write_jsonl(image_dir / "t.jsonl", [row])
    with pytest.raises(
        RecordError, match=r"missing field 'task' \(task\) and the file has no task"
    ):
        load_records(path, registry=REGISTRY)
    assert load_records(path, registry=REGISTRY, default_task="ocr")[0].task == "ocr"
    with pytest.raises(ValueError, match=r"on_error: 'ignore' is unknown"):
        load_records(path, registry=REGISTRY, on_error="ignore")
    with pytest.raises(ValueError, match=r"field_map: unknown record field\(s\) \['solution'\]"):
        load_records(path, registry=REGISTRY, field_map={"solution": "answer"})
    with pytest.raises(ValueError, match=r"unsupported record file type '\.csv'"):
        (image_dir / "x.csv").write_text("a")
        load_records(image_dir / "x.csv", registry=REGISTRY)
    with pytest.raises(FileNotFoundError, match=r"nothing\.jsonl: record file not found"):
        load_records(image_dir / "nothing.jsonl", registry=REGISTRY)


def test_unmapped_fields_land_in_metadata(image_dir):
    path = _write_jsonl(image_dir / "m.jsonl", [dict(GOOD, source_dataset="x", metadata={"k": 1})])
    assert load_records(path, registry=REGISTRY)[0].metadata == {"k": 1, "source_dataset": "x"}


def test_shipped_data_loads_through_the_registry():
    train = load_task_data(REGISTRY, "train")
    val = load_task_data(REGISTRY, "validation")
    assert sorted(val) == sorted(f"{t}_val" for t in REGISTRY)
    for key, records in val.items():
        assert len(records) == 12 and records.report.skipped == 0
        assert {r.task for r in records} == {key.removesuffix("_val")}
    assert sum(len(r) for r in train.values()) == 6 * 48
    text_only = [r for rs in train.values() for r in rs if r.data_type == "text"]
    assert text_only and all(r.task == "math" for r in text_only)


def test_task_file_data_settings_drive_load_task_data(image_dir):
    rows = [
        RELEASED[0],
        dict(RELEASED[0], task_type="poetry"),
        dict(RELEASED[0], images=["broken.png"]),
    ]
    _write_jsonl(image_dir / "released.jsonl", rows)
    task_file = image_dir / "tasks.yaml"
    task_file.write_text(
        "data: {on_error: skip, field_map: {task: task_type}, check_images: false}\n"
        "tasks:\n  science:\n    domain: science\n    problem_types: [multiple_choice]\n"
        "    length_envelope: [1, 2, 3, 4]\n    length_weight: 0\n"
        "    validation: [{name: sci, path: released.jsonl, image_root: .}]\n"
    )
    registry = load_tasks(task_file)
    assert registry.on_error == "skip" and registry.check_images is False
    records = load_task_data(registry, "validation")["sci"]
    # check_images off: the broken image passes and no size is recorded
    assert [r.id for r in records] == ["released-0", "released-2"]
    assert records[0].image_sizes == ()
    assert records.report.skipped == 1
    records = load_task_data(registry, "validation", check_images=True)["sci"]
    assert [r.id for r in records] == ["released-0"] and records.report.skipped == 2
    with pytest.raises(ValueError, match=r"split: 'test' is unknown"):
        load_task_data(registry, "test")


def _png_bytes(size=(12, 8)) -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_hub_parquet_layout_several_columns_image_bytes_and_options_text(tmp_path):
    # MMMU's card: image_1..image_7 (Image feature: bytes + a bare file name), options as
    # the text of a Python list, question_type "multiple-choice"; MMBench: options A..D
    rows = [
        {
            "id": "validation_Art_1",
            "question": "<image 1> Which colour?",
            "options": "['red', 'green']",
            "image_1": {"bytes": _png_bytes(), "path": "img.png"},
            "image_2": None,
            "answer": "A",
            "question_type": "multiple-choice",
        },
        {
            "id": "validation_Art_2",
            "question": "How many?",
            "options": "[]",
            "image_1": {"bytes": _png_bytes((6, 4)), "path": "img2.png"},
            "image_2": {"bytes": _png_bytes((3, 3)), "path": "img3.png"},
            "answer": "3",
            "question_type": "open",
        },
    ]
    path = tmp_path / "mmmu.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    field_map = {
        "problem": "question",
        "problem_type": "question_type",
        "images": ["image_1", "image_2"],
    }
    registry = load_tasks(REPO / "configs" / "tasks.yaml")
    recs = load_records(path, registry=registry, field_map=field_map, default_task="science")
    assert recs[0].options == ("red", "green") and recs[0].problem_type == "multiple_choice"
    assert len(recs[0].images) == 1 and recs[0].image_sizes == ((12, 8),)
    assert recs[1].options == () and recs[1].problem_type == "open_ended"
    assert recs[1].image_sizes == ((6, 4), (3, 3))
    bad = [dict(rows[0], options="[1, 2")]
    pq.write_table(pa.Table.from_pylist(bad), tmp_path / "bad.parquet")
    with pytest.raises(RecordError, match=r"row 0: field 'options': .*looks like a list"):
        load_records(
            tmp_path / "bad.parquet", registry=registry, field_map=field_map, default_task="science"
        )


def test_default_problem_type_and_coco_boxes(tmp_path):
    path = tmp_path / "refcoco.jsonl"
    Image.new("RGB", (50, 40)).save(tmp_path / "a.png")
    line = {"question_id": 7, "answer": "the dog", "bbox": [10, 5, 20, 30], "image": "a.png"}
    path.write_text(json.dumps(line) + "\n")
    fm = {"id": "question_id", "problem": "answer", "answer": "bbox", "images": "image"}
    registry = load_tasks(REPO / "configs" / "tasks.yaml")
    rec = load_records(
        path,
        registry=registry,
        field_map=fm,
        default_task="grounding",
        default_problem_type="spatial_grounding",
        box_format="xywh",
    )[0]
    assert rec.problem_type == "spatial_grounding"
    assert rec.answer == [10.0, 5.0, 30.0, 35.0]
    with pytest.raises(RecordError, match=r"missing field 'problem_type'"):
        load_records(path, registry=registry, field_map=fm, default_task="grounding")
