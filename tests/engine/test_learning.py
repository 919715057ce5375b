"""Learning: on a fixed-answer OCR task the tiny model's mean reward clearly rises."""

import pytest

from openvlthinker.engine.trainer import Trainer


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["gs_grpo", "grpo"])
def test_mean_reward_rises_on_a_fixed_answer_task(engine_config, estimator):
    cfg = engine_config(
        f"algorithm.adv_estimator={estimator}",
        "trainer.total_steps=20",
        "actor.lr=0.02",
        "rollout.n=8",
        "rollout.max_new_tokens=10",
        "actor.micro_batch_size=16",
        tasks={"fixed": ("ocr", "the the the the the the")},
    )
    history = Trainer(cfg).fit()
    rewards = [row["train/reward"] for row in history]
    first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    assert last > first + 0.15, rewards
    assert last > 1.5 * first, rewards
