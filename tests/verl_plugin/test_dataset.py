"""Exported parquet loads in verl's RLHFDataset and the images come out byte-for-byte."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image
from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

from openvlthinker.verl_plugin.dataset import flatten_messages, write_parquet

REPO = Path(__file__).resolve().parents[2]


def png_bytes(size, color) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(sum(color))
    pixels = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def row(i, task, images, answer, problem_type, options=None):
    content = [{"type": "image"} for _ in images] + [{"type": "text", "text": f"Question {i}?"}]
    return {
        "data_source": task,
        "prompt": flatten_messages([{"role": "user", "content": content}]),
        "images": [{"bytes": b, "path": f"img_{i}_{k}.png"} for k, b in enumerate(images)],
        "ability": problem_type,
        "reward_model": {"style": "rule", "ground_truth": json.dumps(answer)},
        "extra_info": {
            "index": i,
            "id": f"r{i}",
            "task": task,
            "problem_type": problem_type,
            "options": options,
            "image_size": [40, 30],
            "model_image_size": None,
        },
    }


@pytest.fixture
def exported(tmp_path):
    images = [
        png_bytes((40, 30), (1, 2, 3)),
        png_bytes((56, 28), (9, 9, 9)),
        png_bytes((28, 84), (4, 5, 6)),
    ]
    rows = [
        row(0, "grounding", [images[0]], {"boxes": [1, 2, 30, 20]}, "spatial_grounding"),
        row(1, "chart", [images[1], images[2]], "B", "multiple_choice", ["A) 1", "B) 2"]),
        row(2, "math", [], 3.5, "numerical"),
    ]
    path = write_parquet(rows, tmp_path / "train.parquet")
    return path, rows


def dataset(path, tmp_path, tokenizer, processor):
    config = OmegaConf.create(
        {
            "prompt_key": "prompt",
            "image_key": "images",
            "max_prompt_length": 1024,
            "filter_overlong_prompts": False,
            "return_raw_chat": True,
            "cache_dir": str(tmp_path / "cache"),
        }
    )
    return RLHFDataset(str(path), tokenizer, config, processor)


def test_rlhf_dataset_reads_rows_and_images_intact(
    exported, tmp_path, tiny_tokenizer, tiny_processor
):
    path, rows = exported
    ds = dataset(path, tmp_path, tiny_tokenizer, tiny_processor)
    assert len(ds) == 3
    for i, src in enumerate(rows):
        item = ds[i]
        assert item["data_source"] == src["data_source"]
        assert json.loads(item["reward_model"]["ground_truth"]) == json.loads(
            src["reward_model"]["ground_truth"]
        )
        assert item["extra_info"]["problem_type"] == src["extra_info"]["problem_type"]
        assert item["index"] == i
        content = item["raw_prompt"][0]["content"]
        got = [c["image"] for c in content if isinstance(content, list) and c["type"] == "image"]
        assert len(got) == len(src["images"])
        for image, want in zip(got, src["images"]):
            expected = Image.open(io.BytesIO(want["bytes"]))
            assert image.size == expected.size
            assert np.array_equal(
                np.asarray(image.convert("RGB")), np.asarray(expected.convert("RGB"))
            )
    assert ds[1]["extra_info"]["options"] == ["A) 1", "B) 2"]
    assert ds[2]["raw_prompt"][0]["content"] == "Question 2?"


def test_tiny_processor_consumes_the_prompt_and_a_batch_collates(
    exported, tmp_path, tiny_tokenizer, tiny_processor
):
    path, _ = exported
    ds = dataset(path, tmp_path, tiny_tokenizer, tiny_processor)
    item = ds[1]
    messages = item["raw_prompt"]
    images = [c["image"] for c in messages[0]["content"] if c["type"] == "image"]
    text = tiny_processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text.count("<|vision_start|>") == 2 and text.index("<|vision_start|>") < text.index(
        "Question"
    )
    inputs = tiny_processor(text=[text], images=images, return_tensors="pt")
    pad_id = tiny_tokenizer.convert_tokens_to_ids("<|image_pad|>")
    merge = tiny_processor.image_processor.merge_size**2
    assert (
        int((inputs["input_ids"] == pad_id).sum())
        == int(inputs["image_grid_thw"].prod(-1).sum()) // merge
    )
    batch = collate_fn([ds[0], ds[1], ds[2]])
    assert list(batch["data_source"]) == ["grounding", "chart", "math"]


def test_non_image_content_is_refused():
    with pytest.raises(ValueError, match="of type 'video'"):
        flatten_messages([{"role": "user", "content": [{"type": "video"}]}])


def test_shipped_task_file_exports_and_loads_with_images_intact(
    tmp_path, tiny_tokenizer, tiny_processor
):
    from openvlthinker.data import load_task_data
    from openvlthinker.tasks import load_tasks
    from openvlthinker.verl_plugin.dataset import export_tasks

    registry = load_tasks(REPO / "configs" / "tasks.yaml")
    train_files, val_files = export_tasks(registry, tmp_path / "verl")
    records = [r for recs in load_task_data(registry, "train").values() for r in recs]
    ds = dataset(train_files[0], tmp_path, tiny_tokenizer, tiny_processor)
    assert len(ds) == len(records)
    assert {ds[i]["data_source"] for i in range(len(ds))} == set(registry)
    assert len(val_files) == len(registry.validation_sets())
    for i in range(0, len(records), max(1, len(records) // 12)):
        record, item = records[i], ds[i]
        assert item["data_source"] == record.task
        assert item["extra_info"]["id"] == record.id
        assert item["extra_info"]["problem_type"] == record.problem_type
        assert json.loads(item["reward_model"]["ground_truth"]) == record.answer
        content = item["raw_prompt"][-1]["content"]
        images = [c["image"] for c in content if c["type"] == "image"]
        assert len(images) == len(record.images)
        for got, path in zip(images, record.images):
            want = Image.open(path)
            assert np.array_equal(np.asarray(got.convert("RGB")), np.asarray(want.convert("RGB")))
        if record.image_size:
            assert tuple(item["extra_info"]["image_size"]) == tuple(record.image_size)
