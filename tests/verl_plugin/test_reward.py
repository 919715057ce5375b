"""The `openvlthinker` reward manager: token lengths, per-task envelopes and weights."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl import DataProto

from openvlthinker.rewards import RESULT_KEYS, score
from openvlthinker.shaping import length_trapezoid
from openvlthinker.step import SCORE_KEYS
from openvlthinker.tasks import load_tasks
from openvlthinker.verl_plugin.reward import OpenVLThinkerRewardManager

REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "configs" / "tasks_tiny.yaml"


@pytest.fixture(scope="module")
def manager(tiny_tokenizer):
    config = OmegaConf.create({"openvlthinker": {"tasks": str(TASKS)}})
    return OpenVLThinkerRewardManager(config=config, tokenizer=tiny_tokenizer, compute_score=None)


def trajectory(tokenizer, response: str, task: str, answer, problem_type: str, pad: int = 5):
    """One trajectory as verl's agent loop hands it to a reward manager (right-padded)."""
    prompt = tokenizer("What is shown?", return_tensors="pt")["input_ids"][0]
    ids = tokenizer(response, return_tensors="pt")["input_ids"][0]
    responses = torch.cat([ids, torch.full((pad,), tokenizer.pad_token_id)])
    mask = torch.cat([torch.ones(len(prompt) + len(ids)), torch.zeros(pad)]).long()
    data = DataProto.from_dict(
        tensors={
            "prompts": prompt.unsqueeze(0),
            "responses": responses.unsqueeze(0),
            "attention_mask": mask.unsqueeze(0),
        },
        non_tensors={
            "data_source": np.array([task], dtype=object),
            "reward_model": np.array(
                [{"style": "rule", "ground_truth": json.dumps(answer)}], dtype=object
            ),
            "extra_info": np.array([{"problem_type": problem_type, "task": task}], dtype=object),
        },
    )
    return data, len(ids)


def run(manager, data):
    return asyncio.run(manager.run_single(data))


@pytest.mark.parametrize("thinking", ["count the boxes ", "count the boxes " * 4])
def test_length_counts_tokens_with_the_tasks_envelope(manager, tiny_tokenizer, thinking):
    response = f"<think>{thinking}</think><answer>3.5</answer>"
    data, n_tokens = trajectory(tiny_tokenizer, response, "math", "3.5", "numerical")
    out = run(manager, data)
    info = out["reward_extra_info"]
    envelope = load_tasks(TASKS)["math"].length_envelope
    assert info["length"] == pytest.approx(length_trapezoid(float(n_tokens), envelope))
    assert info["length"] > 0
    # counted in characters instead of tokens the length reward would differ
    assert length_trapezoid(float(len(response)), envelope) != pytest.approx(info["length"])
    spec = load_tasks(TASKS)["math"]
    direct = score(
        response,
        "3.5",
        "numerical",
        task="math",
        response_tokens=n_tokens,
        length_envelope=tuple(spec.length_envelope),
        weights={**spec.reward_weights, "length": spec.length_weight},
    )
    assert out["reward_score"] == pytest.approx(direct["overall"])
    assert info["acc"] == info["correctness"] == pytest.approx(direct["correctness"])
    assert set(info) == set(SCORE_KEYS) and info["reward_error"] == 0.0
    assert all(isinstance(v, float) for v in info.values())
    # what the manager writes is the reward suite's result, key for key, plus the error flag
    assert set(direct) - {"error"} == set(RESULT_KEYS) == set(info) - {"reward_error"}
    assert {n: info[n] for n in RESULT_KEYS} == pytest.approx({n: direct[n] for n in RESULT_KEYS})


def test_unknown_task_scores_zero_without_crashing(manager, tiny_tokenizer):
    data, _ = trajectory(
        tiny_tokenizer, "<think>x</think><answer>1</answer>", "poetry", "1", "numerical"
    )
    out = run(manager, data)
    assert out["reward_score"] == 0.0 and out["reward_extra_info"]["reward_error"] == 1.0


def test_a_malformed_row_scores_zero_without_crashing(manager, tiny_tokenizer):
    data, _ = trajectory(tiny_tokenizer, "<think>x</think><answer>1</answer>", "math", "1", "math")
    data.non_tensor_batch["reward_model"] = np.array([{"style": "rule"}], dtype=object)
    out = run(manager, data)
    assert out["reward_score"] == 0.0 and out["reward_extra_info"]["reward_error"] == 1.0
    assert set(out["reward_extra_info"]) == set(SCORE_KEYS)


def test_the_tasks_scorer_options_reach_the_scorer(tiny_tokenizer, tmp_path):
    # chart uses ChartQA's relaxed accuracy; math keeps the default MathVista rule
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(
        f"extends: {TASKS}\n"
        "tasks:\n  chart:\n    scorer_options: {numerical: {rule: relaxed}}\n"
    )
    config = OmegaConf.create({"openvlthinker": {"tasks": str(tasks)}})
    manager = OpenVLThinkerRewardManager(
        config=config, tokenizer=tiny_tokenizer, compute_score=None
    )
    response = "<think>x</think><answer>104</answer>"
    for task, expected in (("chart", 1.0), ("math", 0.0)):
        data, _ = trajectory(tiny_tokenizer, response, task, "100", "numerical")
        assert run(manager, data)["reward_extra_info"]["correctness"] == expected, task
