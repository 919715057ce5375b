import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openvlthinker.tasks.validation import BEST_CHECKPOINT_METRIC, compute_validation_metrics


def sample(task, ptype, correctness, fmt=1.0, length=10, max_len=16, entropy=None, error=None):
    s = {
        "task": task,
        "problem_type": ptype,
        "scores": {
            "overall": 0.9 * correctness + 0.1 * fmt,
            "correctness": correctness,
            "format": fmt,
            "acc": correctness,
            "error": error,
        },
        "response_length": length,
        "max_response_length": max_len,
    }
    if entropy is not None:
        s["entropy"] = entropy
    return s


SAMPLES = [
    sample("math", "math", 1.0, length=16, entropy=0.4),
    sample("math", "math", 0.0, fmt=0.0, length=8, entropy=0.2),
    sample("math", "numerical", 1.0, length=4, entropy=0.3),
    sample("ocr", "ocr", 0.5, length=2, error="timeout"),
]


def test_per_task_per_type_and_macro_values():
    m = compute_validation_metrics(SAMPLES, tasks=["math", "ocr"])
    assert m["val/math/correctness"] == pytest.approx(2 / 3)
    assert m["val/math/format"] == pytest.approx(2 / 3)
    # the overall reward is "reward", as in training's train/<task>/reward
    assert m["val/math/reward"] == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    assert "val/math/overall" not in m
    assert m["val/math/response_length/mean"] == pytest.approx(28 / 3)
    assert m["val/math/response_length/clip_ratio"] == pytest.approx(1 / 3)  # 16 >= 16
    assert m["val/math/entropy"] == pytest.approx(0.3)
    assert m["val/math/reward_error_rate"] == 0.0
    assert m["val/math/count"] == 3.0
    assert m["val/math/math/correctness"] == pytest.approx(0.5)
    assert m["val/math/numerical/correctness"] == 1.0
    assert m["val/ocr/correctness"] == 0.5
    assert m["val/ocr/reward_error_rate"] == 1.0
    # macro: unweighted over tasks, not over samples (3 math samples count as one task)
    assert m["val/macro/correctness"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert m[BEST_CHECKPOINT_METRIC] == m["val/macro/correctness"]
    # entropy exists for math only, so it has no macro value
    assert "val/macro/entropy" not in m
    assert "val/ocr/entropy" not in m


def test_clipped_flag_overrides_length_comparison_and_select_metric():
    samples = [
        dict(sample("a", "ocr", 1.0), clipped=True),
        dict(sample("b", "ocr", 0.0), clipped=False),
    ]
    m = compute_validation_metrics(samples, select_metric="reward")
    assert m["val/a/response_length/clip_ratio"] == 1.0
    assert m["val/b/response_length/clip_ratio"] == 0.0
    assert m["val/score"] == pytest.approx((1.0 + 0.1) / 2)


def test_task_order_follows_the_registry_and_missing_task_raises():
    m = compute_validation_metrics(SAMPLES, tasks=["ocr", "math"])
    assert [k for k in m if k.count("/") == 2 and k.endswith("/count")] == [
        "val/ocr/count",
        "val/math/count",
    ]
    with pytest.raises(ValueError, match=r"no samples for task\(s\) \['chart'\]"):
        compute_validation_metrics(SAMPLES, tasks=["math", "ocr", "chart"])
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['ocr'\]"):
        compute_validation_metrics(SAMPLES, tasks=["math"])


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"validation sample 0: needs 'task' and 'problem_type'"):
        compute_validation_metrics([{"task": "math"}])
    with pytest.raises(
        ValueError, match=r"select_metric 'entropy' is not available for every task"
    ):
        compute_validation_metrics(SAMPLES, select_metric="entropy")


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]), st.sampled_from(["ocr", "math"]), st.floats(0, 1)
        ),
        min_size=1,
        max_size=30,
    )
)
def test_macro_is_the_mean_of_task_means_and_type_counts_add_up(rows):
    samples = [sample(t, p, c) for t, p, c in rows]
    m = compute_validation_metrics(samples)
    tasks = sorted({t for t, _, _ in rows})
    means = [np.mean([c for t, _, c in rows if t == task]) for task in tasks]
    assert m["val/macro/correctness"] == pytest.approx(np.mean(means))
    for task in tasks:
        per_type = sum(m.get(f"val/{task}/{p}/count", 0.0) for p in ("ocr", "math"))
        assert per_type == m[f"val/{task}/count"]


def test_per_set_metrics_next_to_task_and_macro():
    samples = [
        dict(sample("math", "math", 1.0), set="mathvista", metrics={"mathvista": 1.0}),
        dict(sample("math", "math", 0.0), set="mathvista", metrics={"mathvista": 0.0}),
        dict(sample("math", "numerical", 1.0), set="mathverse"),
        dict(sample("ocr", "ocr", 0.5), set="ocrbench", metrics={"ocrbench": 1.0}),
    ]
    m = compute_validation_metrics(samples, tasks=["math", "ocr"])
    # the task aggregates over all of its sets, each set alone under its own name
    assert m["val/math/correctness"] == pytest.approx(2 / 3)
    assert m["val/mathvista/correctness"] == 0.5
    assert m["val/mathvista/mathvista"] == 0.5
    assert m["val/mathvista/count"] == 2.0
    assert m["val/mathverse/correctness"] == 1.0
    assert "val/mathverse/mathvista" not in m
    assert m["val/mathvista/math/correctness"] == 0.5  # per problem type too
    assert m["val/ocrbench/ocrbench"] == 1.0
    assert m["val/macro/correctness"] == pytest.approx((2 / 3 + 0.5) / 2)
    # benchmark metrics stay per set: no task or macro value
    assert "val/math/mathvista" not in m and "val/macro/ocrbench" not in m


def test_set_named_like_a_task_or_spanning_tasks_raises():
    with pytest.raises(ValueError, match=r"set name\(s\) \['ocr'\] collide"):
        compute_validation_metrics([dict(sample("math", "math", 1.0), set="ocr"), SAMPLES[3]])
    with pytest.raises(ValueError, match="set 'mix' holds tasks 'math' and 'ocr'"):
        compute_validation_metrics(
            [dict(sample("math", "math", 1.0), set="mix"), dict(SAMPLES[3], set="mix")]
        )
