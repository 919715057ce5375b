"""step.metrics: the per-task training metrics against a per-task Python loop."""

from __future__ import annotations

import pytest
import torch

from openvlthinker.step import SCORE_KEYS, score_row, score_tensors, training_metrics

TASKS = ("a", "b", "c", "d")  # d is absent from the batch


def make_batch():
    gen = torch.Generator().manual_seed(0)
    tasks = ["b", "a", "b", "b", "c", "a"]
    mask = torch.tensor(
        [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]]
    )
    entropy = torch.rand(6, 4, generator=gen) + 100 * (1 - mask)  # masked values must not count
    results = [
        {**{k: float(torch.rand(1, generator=gen)) for k in SCORE_KEYS[:-1]}, "error": e}
        for e in (None, "x", None, None, None, None)
    ]
    advantages = torch.randn(6, generator=gen)
    return tasks, mask, entropy, results, advantages


def expect(prefix, rows, mask, entropy, results, advantages):
    name = {"overall": "reward"}
    out = {
        f"train/{prefix}{name.get(k, k)}": sum(results[i][k] for i in rows) / len(rows)
        for k in SCORE_KEYS[:-1]
    }
    out[f"train/{prefix}reward_error_rate"] = sum(
        results[i]["error"] is not None for i in rows
    ) / len(rows)
    lengths = [float(mask[i].sum()) for i in rows]
    out[f"train/{prefix}response_length"] = sum(lengths) / len(rows)
    ent = sum(float((entropy[i] * mask[i]).sum()) for i in rows)
    out[f"train/{prefix}entropy"] = ent / sum(lengths)
    adv = advantages[rows].double()
    out[f"train/{prefix}advantage_mean"] = float(adv.mean())
    out[f"train/{prefix}advantage_std"] = float(adv.std(unbiased=False))
    return out


def test_training_metrics_match_a_per_task_loop():
    tasks, mask, entropy, results, advantages = make_batch()
    index = torch.tensor([TASKS.index(t) for t in tasks])
    scores = score_tensors([score_row(r) for r in results])
    got = training_metrics(TASKS, index, scores, mask, advantages, entropy)

    want = expect("", list(range(6)), mask, entropy, results, advantages)
    for t in ("a", "b", "c"):
        rows = [i for i, x in enumerate(tasks) if x == t]
        want.update(expect(f"{t}/", rows, mask, entropy, results, advantages))
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert got["train/reward_error_rate"] == pytest.approx(1 / 6)


def test_without_entropy_or_components_only_what_is_known_is_logged():
    tasks, mask, _, results, advantages = make_batch()
    index = torch.tensor([TASKS.index(t) for t in tasks])
    scores = {"overall": torch.tensor([r["overall"] for r in results], dtype=torch.float64)}
    got = training_metrics(TASKS, index, scores, mask, advantages)
    assert set(got) == {
        f"train/{p}{m}"
        for p in ("", "a/", "b/", "c/")
        for m in ("reward", "response_length", "advantage_mean", "advantage_std")
    }


def test_score_rows_keep_every_key_and_flag_errors():
    row = score_row({"overall": 0.5, "correctness": 1.0, "acc": 1.0, "error": None})
    assert tuple(row) == SCORE_KEYS
    assert row["reward_error"] == 0.0 and row["format"] == 0.0
    assert score_row({"error": "timed out"})["reward_error"] == 1.0
    tensors = score_tensors([row, {**row, "overall": 0.25}])
    assert tensors["overall"].dtype == torch.float64
    assert tensors["overall"].tolist() == [0.5, 0.25]
    # a key missing from one row is left out, not filled
    assert "format" not in score_tensors([row, {"overall": 1.0}])
