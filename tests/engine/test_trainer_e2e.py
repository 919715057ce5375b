"""End-to-end: the tiny Qwen3-VL trained a few steps on CPU, with real effects asserted, and
its mean reward rising on a fixed-answer task."""

import json

import pytest
import torch

from openvlthinker.advantage import ESTIMATORS
from openvlthinker.engine.trainer import Trainer
from tests.engine.conftest import fit_until_killed, set_band

TWO_TASKS = {"alpha": ("ocr", "the the the the"), "beta": ("ocr", "the world the the")}
VOLATILE = ("timing/", "perf/")


def _stable(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith(VOLATILE)}


def test_one_step_advantages_log_probs_and_direction(engine_config):
    cfg = engine_config(
        "rollout.check_log_probs=true",
        "actor.lr=0.02",
        "data.rollout_batch_size=4",
        "actor.mini_batch_size=4",
        "actor.micro_batch_size=6",
        tasks=TWO_TASKS,
    )
    trainer = Trainer(cfg)
    batch, _ = trainer.collect()
    advantages = trainer.advantage(batch)
    tasks = [r.task for r in batch.records]
    assert set(tasks) == {"alpha", "beta"}
    for t in ("alpha", "beta"):
        adv = advantages[torch.tensor([x == t for x in tasks])]
        assert adv.abs().max() > 0.1  # dense rewards: the groups are not all-equal
        assert abs(float(adv.double().mean())) < 1e-6
    old = trainer.old_log_probs(batch)
    mask = batch.rollout.response_mask.bool()
    assert (old.log_probs - batch.rollout.gen_log_probs)[mask].abs().max() < 1e-4

    trainer.update(batch, advantages, old)
    new = trainer.policy_io.log_probs(trainer.policy, batch.rollout).log_probs
    change = ((new - old.log_probs) * mask).sum(-1)
    pos, neg = advantages > 0, advantages < 0
    # The update raises the likelihood of better-than-average responses relative to worse ones.
    assert change[pos].mean() > change[neg].mean()
    corr = torch.corrcoef(torch.stack([change, advantages.float()]))[0, 1]
    assert corr > 0.3


def test_seeded_runs_are_identical_and_kill_resume_continues_exactly(engine_config, tmp_path):
    common = ("trainer.total_steps=3", "trainer.save_freq=1", "rollout.check_log_probs=true")
    straight = Trainer(engine_config(*common, out="straight"))
    history = straight.fit()
    assert [r["step"] for r in history] == [1, 2, 3]
    assert all(r["debug/log_prob_gap"] < 1e-4 for r in history)

    fit_until_killed(Trainer(engine_config(*common, out="killed")), step=2)
    resumed = Trainer(engine_config(*common, "trainer.resume_mode=auto", out="killed"))
    again = resumed.fit()
    assert resumed.step == 3
    rows = [json.loads(x) for x in (tmp_path / "killed/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    # Same seeds: steps 1-2 bit-identical; after the kill, step 3 as if never interrupted.
    for a, b in zip(history, again):
        assert _stable(a) == _stable(b)
    for p, q in zip(straight.policy.parameters(), resumed.policy.parameters()):
        assert torch.equal(p, q)


def test_entropy_band_gradient_zero_inside_and_pushes_outside(engine_config):
    cfg = engine_config("actor.lr=0.02", "actor.clip_ratio_c=null")
    trainer = Trainer(cfg)
    batch, _ = trainer.collect()
    advantages = torch.zeros(batch.size)  # only the band moves the policy
    old = trainer.old_log_probs(batch)
    mask = batch.rollout.response_mask.float()
    start = {k: v.clone() for k, v in trainer.policy.state_dict().items()}
    h = float((old.entropy * mask).sum() / mask.sum())

    def mean_entropy():
        lp = trainer.policy_io.log_probs(trainer.policy, batch.rollout).log_probs
        return float((-lp * mask).sum() / mask.sum())

    def run(h_min, h_max):
        trainer.policy.load_state_dict(start)
        trainer.optimizer.state.clear()
        set_band(trainer, h_min=h_min, h_max=h_max, coef=1.0)
        stats = trainer.update(batch, advantages, old)
        return stats["actor/grad_norm"], mean_entropy()

    grad_inside, h_inside = run(h - 1.0, h + 1.0)
    assert grad_inside == 0.0 and h_inside == pytest.approx(h, abs=1e-6)
    grad_above, h_above = run(0.0, h - 1.0)  # entropy above the band: pushed down
    assert grad_above > 0 and h_above < h - 1e-3
    grad_below, h_below = run(h + 1.0, h + 5.0)  # entropy below the band: pushed up
    assert grad_below > 0 and h_below > h + 1e-3


def test_dynamic_sampling_drops_constant_groups_and_refills(engine_config):
    # "zero": a numerical answer a random model never gives, so its groups are all-0 and
    # carry no signal; "alpha": dense 1 - CER rewards that vary inside every group.
    cfg = engine_config(
        "algorithm.filter_groups.enable=true",
        "algorithm.filter_groups.max_num_gen_batches=6",
        "data.rollout_batch_size=2",
        tasks={"zero": ("numerical", "123456"), "alpha": ("ocr", "the the the the")},
    )
    trainer = Trainer(cfg)
    batch, info = trainer.collect()
    assert info["batch/kept_groups"] == 2 and info["batch/gen_batches"] >= 2
    assert {r.task for r in batch.records} == {"alpha"}
    acc = batch.scores["acc"].view(2, 4)
    assert ((acc.max(1).values - acc.min(1).values) > 0).all()
    assert batch.group.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]

    only_zero = Trainer(
        engine_config(
            "algorithm.filter_groups.enable=true",
            "data.only_tasks=[zero]",
            tasks={"zero": ("numerical", "123456"), "alpha": ("ocr", "the")},
        )
    )
    nothing, info = only_zero.collect()
    assert nothing is None and info["batch/kept_groups"] == 0 and info["batch/gen_batches"] == 4


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen2_vl"])
def test_older_families_train_a_step_with_matching_log_probs(engine_config, arch):
    trainer = Trainer(
        engine_config(f"model.tiny.architecture={arch}", "rollout.check_log_probs=true")
    )
    assert trainer.policy.config.model_type == arch
    before = [p.clone() for p in trainer.policy.parameters()]
    metrics = trainer.train_step()
    assert metrics["debug/log_prob_gap"] < 1e-4
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.policy.parameters()))


def test_kl_loss_starts_at_zero_and_composes_with_the_band(engine_config):
    cfg = engine_config(
        "actor.use_kl_loss=true",
        "actor.kl_loss_coef=0.5",
        "actor.micro_batch_size=3",
        "actor.lr=0.05",
    )
    trainer = Trainer(cfg)
    set_band(trainer, h_max=1.0, coef=0.1)  # entropy (about 6) is above the band: band active
    first = trainer.train_step()
    assert first["actor/kl_loss"] == 0.0  # one mini-batch: the policy still equals the reference
    assert first["actor/entropy_band_loss"] > 0
    second = trainer.train_step()
    assert second["actor/kl_loss"] > 0  # after one update the policy has left the reference


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_every_registered_estimator_runs_through_the_engine(engine_config, estimator):
    trainer = Trainer(engine_config(f"algorithm.adv_estimator={estimator}"))
    batch, _ = trainer.collect()
    advantages = trainer.advantage(batch)
    assert advantages.shape == (8,) and torch.isfinite(advantages).all()
    rewards = batch.scores["overall"].float()
    if estimator == "remax":
        # ReMax: reward minus the greedy response's reward of the same prompt (one per group).
        base = batch.baselines.float()
        assert torch.equal(base.view(2, 4), base.view(2, 4)[:, :1].expand(2, 4))
        torch.testing.assert_close(advantages, rewards - base)
    else:
        assert batch.baselines is None


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean"])
def test_micro_batch_split_does_not_change_the_update(engine_config, mode):
    # One mini-batch of 8 responses, accumulated as 1 x 8 or as 3 + 3 + 2, with KL and an
    # active entropy band (judged over the whole mini-batch either way): same gradient.
    results = []
    for micro in (8, 3):
        trainer = Trainer(
            engine_config(
                f"actor.micro_batch_size={micro}",
                f"actor.loss_agg_mode={mode}",
                "actor.use_kl_loss=true",
                "actor.lr=0.01",
                out=f"micro{micro}",
            )
        )
        set_band(trainer, h_max=1.0, coef=0.5)
        batch, _ = trainer.collect()
        advantages = trainer.advantage(batch)
        old = trainer.old_log_probs(batch)
        grads = []
        params = list(trainer.policy.parameters())
        trainer.optimizer.register_step_pre_hook(
            lambda *_, grads=grads, params=params: grads.extend(p.grad.clone() for p in params)
        )
        stats = trainer.update(batch, advantages, old)
        results.append((stats, grads))
    (a, pa), (b, pb) = results
    assert a["actor/entropy_band_loss"] > 0
    assert a["actor/grad_norm"] == pytest.approx(b["actor/grad_norm"], rel=1e-4)
    assert a["actor/pg_loss"] == pytest.approx(b["actor/pg_loss"], rel=1e-4, abs=1e-6)
    assert a["actor/entropy_band_loss"] == pytest.approx(b["actor/entropy_band_loss"], rel=1e-5)
    assert len(pa) == len(pb) > 0
    for x, y in zip(pa, pb):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-7)


def test_gs_gdpo_weighs_components_by_the_task_file(engine_config):
    from dataclasses import replace

    from openvlthinker.advantage import compute_advantage

    trainer = Trainer(engine_config("algorithm.adv_estimator=gs_gdpo"))
    batch, _ = trainer.collect()
    # Every task of the test file has length_weight 0: its length component is a constant
    # (as the verl trainer treats it), however much the trapezoid values vary.
    b = batch.size
    rows = torch.arange(b, dtype=torch.float64)
    scores = {**batch.scores, "length": (rows % 3) / 2, "format": rows % 2}
    batch = replace(batch, scores=scores)
    advantages = trainer.advantage(batch)
    names = ("correctness", "format", "structure")
    components = {n: scores[n].float() for n in names}
    components["length"] = torch.zeros(b)
    args = {
        "rewards": scores["overall"].float(),
        "group": batch.group,
        "task": [r.task for r in batch.records],
        "components": components,
    }
    # the test task file weighs correctness 1.0, format / structure / length 0
    weights = {n: torch.full((b,), 1.0 if n == "correctness" else 0.0) for n in components}
    want = compute_advantage("gs_gdpo", **args, reward_weights=weights)
    torch.testing.assert_close(advantages, want)
    assert not torch.allclose(advantages, compute_advantage("gs_gdpo", **args))


def test_a_task_file_may_use_a_user_scorers_problem_type(engine_config, tmp_path):
    # reward.user_scorers register their problem types before the task file is read
    scorer = tmp_path / "scorer.py"
    scorer.write_text("def exact(answer, ground_truth, ctx):\n    return answer == ground_truth\n")
    cfg = engine_config(
        f"reward.user_scorers.engine_user_poem={scorer}:exact",
        tasks={"poems": ("engine_user_poem", "roses")},
    )
    trainer = Trainer(cfg)
    assert trainer.registry["poems"].problem_types == ("engine_user_poem",)
    assert {r.problem_type for r in trainer.train_records} == {"engine_user_poem"}


def test_only_tasks_selects_records_by_their_own_task(engine_config, tmp_path):
    # A file listed under one task may hold records of another (records carry their task).
    cfg = engine_config("data.only_tasks=[alpha]", tasks=TWO_TASKS)
    for split in ("train", "val"):
        path = tmp_path / "data" / "alpha" / f"{split}.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        rows[0]["task"] = "beta"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    trainer = Trainer(cfg)
    assert {r.task for r in trainer.train_records} == {"alpha"}
    assert len(trainer.train_records) == 5
    assert {r.task for recs in trainer.val_sets.values() for r in recs} == {"alpha"}


def test_val_before_train_runs_without_periodic_validation(engine_config):
    # trainer.test_freq=0 (the fixture's) turns off periodic validation only, as in verl
    history = Trainer(engine_config("trainer.total_steps=1", "trainer.val_before_train=true")).fit()
    assert [r["step"] for r in history] == [0, 1]
    assert "val/alpha/reward" in history[0]
    assert not any(k.startswith("val/") for k in history[1])


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
