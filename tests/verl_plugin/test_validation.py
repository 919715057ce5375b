"""Per-set validation metrics on verl: the export, the reward manager's extra info and the
trainer's metrics, through verl 0.9.1's real ``_val_metrics_update`` /
``process_validation_metrics``."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl import DataProto

from openvlthinker.tasks import load_tasks
from openvlthinker.verl_plugin.reward import OpenVLThinkerRewardManager
from openvlthinker.verl_plugin.trainer import G2RPOTrainer

TASKS = """
tasks:
  math:
    domain: math
    problem_types: [numerical]
    length_envelope: [1, 2, 8, 32]
    length_weight: 0.0
    validation:
      - {name: m_bench, path: m1.jsonl, metric: ocrbench}
      - {name: m_plain, path: m2.jsonl}
  ocr:
    domain: OCR
    problem_types: [ocr]
    length_envelope: [1, 2, 8, 32]
    length_weight: 0.0
    validation:
      - {name: o_set, path: o.jsonl}
"""


@pytest.fixture(scope="module")
def task_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("valtasks")
    (root / "tasks.yaml").write_text(TASKS)
    rows = {
        "m1.jsonl": [{"id": "a", "problem": "2+2?", "answer": "4", "problem_type": "numerical"}],
        "m2.jsonl": [{"id": "b", "problem": "1+2?", "answer": "3", "problem_type": "numerical"}],
        "o.jsonl": [{"id": "c", "problem": "read", "answer": "hi", "problem_type": "ocr"}],
    }
    for name, recs in rows.items():
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in recs))
    return root / "tasks.yaml"


def test_export_names_validation_rows_by_set(task_file, tmp_path):
    import pyarrow.parquet as pq

    from openvlthinker.verl_plugin.dataset import export_records

    registry = load_tasks(task_file)
    from openvlthinker.data import load_task_data

    val = load_task_data(registry, "validation")
    path = export_records(val["m_bench"], tmp_path / "v.parquet", val_set="m_bench")
    row = pq.read_table(path).to_pylist()[0]
    assert row["data_source"] == "m_bench"
    assert row["extra_info"]["task"] == "math" and row["extra_info"]["set"] == "m_bench"
    train_row = pq.read_table(export_records(val["m_bench"], tmp_path / "t.parquet")).to_pylist()
    assert train_row[0]["data_source"] == "math" and train_row[0]["extra_info"]["set"] is None


def trajectory(tokenizer, response, set_name, task, answer, problem_type):
    prompt = tokenizer("q", return_tensors="pt")["input_ids"][0]
    ids = tokenizer(response, return_tensors="pt")["input_ids"][0]
    mask = torch.ones(len(prompt) + len(ids)).long()
    return DataProto.from_dict(
        tensors={
            "prompts": prompt.unsqueeze(0),
            "responses": ids.unsqueeze(0),
            "attention_mask": mask.unsqueeze(0),
        },
        non_tensors={
            "data_source": np.array([set_name], dtype=object),
            "reward_model": np.array([{"ground_truth": json.dumps(answer)}], dtype=object),
            "extra_info": np.array(
                [{"task": task, "set": set_name, "problem_type": problem_type}], dtype=object
            ),
        },
    )


def test_reward_manager_and_trainer_give_per_set_task_and_macro_metrics(task_file, tiny_tokenizer):
    config = OmegaConf.create({"openvlthinker": {"tasks": str(task_file)}})
    manager = OpenVLThinkerRewardManager(config=config, tokenizer=tiny_tokenizer)
    rows = [
        # (set, task, response, answer, problem type); the two m_bench answers contain "4"
        ("m_bench", "math", "<think>x</think><answer>4</answer>", "4", "numerical"),
        ("m_bench", "math", "<think>x</think><answer>44</answer>", "4", "numerical"),
        ("m_plain", "math", "<think>x</think><answer>3</answer>", "3", "numerical"),
        ("o_set", "ocr", "<think>x</think><answer>hi</answer>", "hi", "ocr"),
    ]
    # what verl's _validate collects: data_source per sample, reward + reward_extra_info lists
    data_sources, uids, infos = [], [], defaultdict(list)
    for i, (name, task, response, answer, ptype) in enumerate(rows):
        out = asyncio.run(
            manager.run_single(trajectory(tiny_tokenizer, response, name, task, answer, ptype))
        )
        data_sources.append(name)
        uids.append(f"u{i}")
        infos["reward"].append(out["reward_score"])
        for key, value in out["reward_extra_info"].items():
            infos[key].append(value)
    assert infos["set"] == ["m_bench", "m_bench", "m_plain", "o_set"]
    assert infos["benchmark"] == [1.0, 1.0, 1.0, 1.0]  # ocrbench containment; else correctness
    assert infos["correctness"][:2] == [1.0, 0.0]

    trainer = G2RPOTrainer.__new__(G2RPOTrainer)
    trainer.config = OmegaConf.create({"actor_rollout_ref": {"rollout": {"response_length": 64}}})
    trainer.registry = load_tasks(task_file)
    m = trainer._val_metrics_update(data_sources, uids, dict(infos), [])
    # verl's own names, grouped by data_source = the set
    assert m["val-core/m_bench/acc/mean@1"] == pytest.approx(0.5)
    assert m["val-core/o_set/acc/mean@1"] == 1.0
    # ours: the set, its benchmark metric, the task over both sets, the macro mean
    assert m["val/m_bench/correctness"] == pytest.approx(0.5)
    assert m["val/m_bench/ocrbench"] == 1.0
    assert "val/m_plain/ocrbench" not in m
    assert m["val/m_bench/numerical/correctness"] == pytest.approx(0.5)
    assert m["val/math/correctness"] == pytest.approx(2 / 3)
    assert m["val/ocr/correctness"] == 1.0
    assert m["val/macro/correctness"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert m["val/score"] == m["val/macro/correctness"]
    assert m["val/m_bench/response_length/clip_ratio"] == 0.0
