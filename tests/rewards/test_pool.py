"""score_batch and the worker pool: input order, and survival of raising, hanging, dying scorers."""

import threading
from pathlib import Path

import pytest

from openvlthinker.rewards import (
    RewardConfig,
    close_pools,
    load_reward_function,
    score,
    score_batch,
)
from tests.rewards.helpers import assert_in_range, wrap

USER_FILE = Path(__file__).with_name("user_scorers.py")
CFG = RewardConfig(call_timeout=0.3, kill_grace=0.5)


@pytest.fixture(scope="module", autouse=True)
def misbehaving_types():
    for name in ("hang", "hang_in_c", "crash", "explode"):
        load_reward_function(f"{USER_FILE}:{name}", problem_type=f"pool_{name}")
    yield
    close_pools()


def mixed_items(n: int) -> list[dict]:
    items = []
    for i in range(n):
        items.append(
            {"response": wrap(str(i)), "ground_truth": str(i), "problem_type": "numerical"}
        )
        items.append(
            {"response": wrap(str(i)), "ground_truth": str(i + 1), "problem_type": "counting"}
        )
    return items


def test_pool_matches_serial_in_input_order():
    items = [*mixed_items(100), {"response": wrap("B"), "ground_truth": "B", "problem_type": "mc"}]
    serial = score_batch(items, workers=0, config=CFG)
    pooled = score_batch(items, workers=2, config=CFG)
    assert pooled == serial
    assert [r["correctness"] for r in pooled[:4]] == [1.0, 0.0, 1.0, 0.0]


def test_pool_survives_raise_hang_c_hang_and_crash():
    bad = [
        {"response": wrap("x"), "ground_truth": "x", "problem_type": "pool_explode"},
        {"response": wrap("hang"), "ground_truth": "x", "problem_type": "pool_hang"},
        {"response": wrap("hang"), "ground_truth": "x", "problem_type": "pool_hang_in_c"},
        {"response": wrap("crash"), "ground_truth": "x", "problem_type": "pool_crash"},
        "not a dict",
        {"response": wrap("1"), "ground_truth": "1", "problem_type": "numerical", "colour": "red"},
    ]
    good = mixed_items(20)
    items = good[:10] + bad + good[10:]
    results = score_batch(items, workers=2, config=CFG)
    assert len(results) == len(items)
    for r in results:
        assert_in_range(r)
    assert results[:10] == score_batch(good[:10], workers=0, config=CFG)
    assert results[16:] == score_batch(good[10:], workers=0, config=CFG)
    errors = [r["error"] for r in results[10:16]]
    assert errors[0] == "RuntimeError: scorer bug"
    assert errors[1] == "timed out after 0.3s"
    assert errors[2] == "killed after 0.8s without finishing"
    assert errors[3] == "worker process died"
    assert errors[4] == "item must be a dict, got str"
    assert errors[5] == "unknown item key(s) colour"
    # The pool is still usable afterwards.
    assert score_batch(good[:4], workers=2, config=CFG) == score_batch(
        good[:4], workers=0, config=CFG
    )


def test_off_main_thread_calls_are_still_bounded():
    out = {}

    def run():
        out["single"] = score(wrap("hang"), "x", "pool_hang_in_c", config=CFG)
        out["batch"] = score_batch(mixed_items(3), workers=0, config=CFG)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert out["single"]["error"] == "killed after 0.8s without finishing"
    assert [r["correctness"] for r in out["batch"]] == [1.0, 0.0] * 3


def test_fork_start_method():
    cfg = RewardConfig(start_method="fork")
    items = mixed_items(10)
    assert score_batch(items, workers=1, config=cfg) == score_batch(items, workers=0, config=cfg)


def test_unpicklable_scorer_is_left_out_of_forkserver_workers(caplog):
    from openvlthinker.rewards import register_scorer

    register_scorer("pool_lambda")(lambda answer, ground_truth, ctx: 1.0)
    items = [
        {"response": wrap("x"), "ground_truth": "x", "problem_type": "pool_lambda"},
        {"response": wrap("2"), "ground_truth": "2", "problem_type": "numerical"},
    ]
    results = score_batch(items, workers=1, config=CFG)
    assert "unknown problem type 'pool_lambda'" in results[0]["error"]
    assert results[1]["correctness"] == 1.0
    assert (
        "scorer of problem type 'pool_lambda' cannot be sent to forkserver workers" in caplog.text
    )
    # With fork the worker inherits it.
    fork = RewardConfig(start_method="fork")
    assert score_batch(items[:1], workers=1, config=fork)[0]["correctness"] == 1.0


def test_pool_gives_up_when_workers_cannot_start(tmp_path):
    user_file = tmp_path / "parent_only.py"
    user_file.write_text(
        "import multiprocessing\n"
        "if multiprocessing.parent_process() is not None:\n"
        "    raise ImportError('only importable in the parent')\n"
        "def scorer(answer, ground_truth, ctx):\n"
        "    return 1.0\n"
    )
    load_reward_function(f"{user_file}:scorer", problem_type="parent_only")
    items = mixed_items(5)
    try:
        results = score_batch(items, workers=1, config=CFG)
        # In-process scoring is unaffected.
        assert score_batch(items, workers=0, config=CFG)[0]["error"] is None
    finally:  # forget the file, or every later pool would fail to start the same way
        from openvlthinker.rewards import REWARD_FUNCTIONS, registry, user

        del REWARD_FUNCTIONS["parent_only"]
        user._modules.pop(str(user_file.resolve()))
        registry.registry_version[0] += 1
    assert [r["error"] for r in results] == [
        "reward workers died during start-up 3 times in a row"
    ] * len(items)


def test_workers_default_comes_from_config():
    cfg = RewardConfig(workers=1, call_timeout=0.3, kill_grace=0.5)
    items = [{"response": wrap("crash"), "ground_truth": "x", "problem_type": "pool_crash"}]
    # Only a worker process can die and be reported; in-process this would end the test run.
    assert score_batch(items, config=cfg)[0]["error"] == "worker process died"


def test_empty_batch_and_bad_worker_count():
    assert score_batch([], workers=2) == []
    with pytest.raises(ValueError, match="score_batch: workers must be >= 0, got -1"):
        score_batch(mixed_items(1), workers=-1)


def test_a_worker_warning_is_shown_once_per_cause(caplog, capfd, monkeypatch):
    import json
    import logging

    from openvlthinker.rewards import pool

    monkeypatch.setattr(pool, "_relayed", set())
    # qwen_1000 boxes without image_size: every worker meets this cause on every call.
    cause = "qwen_1000 boxes scored without image_size"
    box = wrap(json.dumps({"boxes": [100, 100, 500, 500]}))
    items = [
        {"response": box, "ground_truth": json.dumps({"boxes": [1, 1, 5, 5]}), "problem_type": t}
        for t in ("grounding", "spatial_grounding")
        for _ in range(200)
    ]
    close_pools()  # fresh workers: none has warned yet
    with caplog.at_level(logging.WARNING, logger="openvlthinker"):
        for _ in range(3):
            assert len(score_batch(items, workers=2, config=CFG)) == 400
    assert [r.getMessage() for r in caplog.records if cause in r.getMessage()] == [
        f"{cause}: the ground truth is taken to be 0..1000 too"
    ]
    assert cause not in capfd.readouterr().err  # the workers print nothing themselves
