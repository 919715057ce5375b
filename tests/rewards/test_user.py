"""User scorers named in the config: loaded once at config load, then scored everywhere."""

from pathlib import Path

import pytest

from openvlthinker.rewards import (
    REWARD_FUNCTIONS,
    RewardConfig,
    close_pools,
    load_user_scorers,
    score,
    score_batch,
)
from openvlthinker.rewards import user as user_module
from tests.rewards.helpers import wrap

USER_FILE = Path(__file__).with_name("user_scorers.py")


@pytest.fixture
def counted_loads(monkeypatch):
    """Every load of a ``path.py:function`` spec, as (spec, problem type)."""
    calls = []
    real = user_module.load_reward_function

    def counting(spec, problem_type=None):
        calls.append((spec, problem_type))
        return real(spec, problem_type=problem_type)

    monkeypatch.setattr(user_module, "load_reward_function", counting)
    yield calls
    close_pools()


def test_a_config_scorer_scores_in_process_and_in_the_pool_after_one_load(counted_loads):
    spec = f"{USER_FILE}:half"
    cfg = RewardConfig(user_scorers={"config_half_type": spec}, workers=1)
    item = {"response": wrap("x"), "ground_truth": "y", "problem_type": "config_half_type"}

    # score() does not load: before the config load the type is unknown.
    before = score(wrap("x"), "y", "config_half_type", config=cfg)
    assert before["correctness"] == 0.0
    assert "config_half_type" in before["error"]
    assert "config_half_type" not in REWARD_FUNCTIONS and counted_loads == []

    load_user_scorers(cfg)
    assert counted_loads == [(spec, "config_half_type")]

    in_process = score(wrap("x"), "y", "config_half_type", config=cfg)
    serial = score_batch([item], workers=0, config=cfg)
    pooled = score_batch([item, item], workers=1, config=cfg)
    for result in (in_process, *serial, *pooled):
        # tests/rewards/user_scorers.py:half gives correctness 0.5 and structure 0
        assert (result["correctness"], result["structure"], result["error"]) == (0.5, 0.0, None)
    assert counted_loads == [(spec, "config_half_type")]  # nothing loaded it again
