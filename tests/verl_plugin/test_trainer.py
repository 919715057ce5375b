"""G2RPOTrainer's advantage step on a faked TransferQueue holding a multi-task batch."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from transfer_queue import KVBatchMeta
from verl.utils.tensordict_utils import list_of_dict_to_tensordict

from openvlthinker.advantage import compute_advantage
from openvlthinker.method_config import EntropyBandConfig
from openvlthinker.step import BandSide, StepTasks, TaskBands, band_weights
from openvlthinker.tasks import TaskRegistry, TaskSpec
from openvlthinker.verl_plugin import trainer as trainer_module
from openvlthinker.verl_plugin.loss import BAND_WEIGHT_KEY
from openvlthinker.verl_plugin.settings import PluginSettings
from openvlthinker.verl_plugin.trainer import G2RPOTrainer

TASKS = ("grounding", "math", "ocr")
PROBLEM_TYPE = {"grounding": "spatial_grounding", "math": "math", "ocr": "ocr"}
# per-task reward weights as a task file gives them (correctness, format, structure, length)
WEIGHTS = {
    "grounding": (0.9, 0.1, 1.0, 0.0),
    "math": (0.5, 0.2, 1.0, 0.3),
    "ocr": (1.0, 0.0, 0.5, 0.0),
}
COMPONENT_NAMES = ("correctness", "format", "structure", "length")
BANDS = TaskBands(
    names=TASKS,
    h_min=torch.tensor([0.2, 0.2, 0.2]),
    h_max=torch.tensor([0.6, 0.6, 0.6]),
    coef=torch.tensor([0.02, 0.05, 0.03]),
)


def make_registry(advantage_key: str = "task") -> TaskRegistry:
    """The three tasks with BANDS' entropy bands and WEIGHTS' reward weights."""
    specs = {}
    for i, task in enumerate(TASKS):
        weights = dict(zip(COMPONENT_NAMES, WEIGHTS[task]))
        specs[task] = TaskSpec(
            key=task,
            domain=task,
            problem_types=(PROBLEM_TYPE[task],),
            length_envelope=(1, 2, 8, 16),
            length_weight=weights["length"],
            entropy_band=(float(BANDS.h_min[i]), float(BANDS.h_max[i]), float(BANDS.coef[i])),
            reward_weights=weights,
            scorer_options={},
            train=(),
            validation=(),
        )
    return TaskRegistry(tasks=specs, advantage_key=advantage_key)


class FakeTQ:
    """Per-key field store with TransferQueue's kv_batch_get / kv_batch_put surface."""

    def __init__(self):
        self.store: dict[str, dict] = {}

    def kv_batch_get(self, keys, partition_id, select_fields=None):
        rows = [
            {f: self.store[k][f] for f in (select_fields or self.store[k]) if f in self.store[k]}
            for k in keys
        ]
        return list_of_dict_to_tensordict(rows)

    def kv_batch_put(self, keys, partition_id, fields=None, tags=None):
        for i, key in enumerate(keys):
            for name in fields.keys():
                self.store[key][name] = fields[name][i]
        return KVBatchMeta(keys=list(keys), tags=[{}] * len(keys), partition_id=partition_id)


def make_batch(seed: int = 0):
    """3 tasks x 2 prompts x 4 responses, ragged lengths, shuffled keys, 2 padding rows."""
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    rows = []
    for t, task in enumerate(TASKS):
        for p in range(2):
            uid = f"{task}-p{p}"
            for s in range(4):
                length = 2 + (3 * t + p + s) % 5
                reward = float(torch.rand(1, generator=g)) if task != "math" else float(s % 2)
                rm = torch.zeros(length)
                rm[-1] = reward
                level = [0.9, 0.4, 0.05][t]
                rows.append(
                    (
                        f"{uid}_{s}_0",
                        {"is_padding": False},
                        {
                            "uid": uid,
                            "response_mask": torch.ones(length, dtype=torch.int64),
                            "rm_scores": rm,
                            "data_source": task,
                            "extra_info": {"task": task, "problem_type": PROBLEM_TYPE[task]},
                            "extra_fields": {
                                "reward_extra_info": {
                                    "correctness": reward,
                                    "format": float(s != 3),
                                    "structure": 1.0,
                                    "length": 0.5 * s,
                                }
                            },
                            "entropy": level + 0.01 * torch.rand(length, generator=g),
                            # sampled-token entropy on other sides of the band than the full one
                            "old_log_probs": -(
                                [0.05, 0.9, 0.4][t] + 0.01 * torch.rand(length, generator=g)
                            ),
                        },
                    )
                )
    rng.shuffle(rows)
    pad = rows[0][2] | {
        "uid": "padxyz",
        "response_mask": torch.zeros(1, dtype=torch.int64),
        "rm_scores": torch.zeros(1),
        "entropy": torch.zeros(1),
        "old_log_probs": torch.zeros(1),
    }
    rows += [(f"padxyz_{i}_0", {"is_padding": True}, dict(pad)) for i in range(2)]
    return rows


def make_trainer(
    fake: FakeTQ,
    estimator: str,
    options=None,
    advantage_key="task",
    entropy="full",
    band=True,
):
    trainer = G2RPOTrainer.__new__(G2RPOTrainer)
    trainer.config = OmegaConf.create(
        {"algorithm": {"adv_estimator": estimator, "use_kl_in_reward": False}}
    )
    trainer.settings = PluginSettings(
        tasks="unused.yaml",
        estimator_options=options or {},
        entropy_band=EntropyBandConfig(enable=band, estimator=entropy),
    )
    trainer.registry = make_registry(advantage_key)
    trainer.step_tasks = StepTasks.from_registry(trainer.registry, trainer.settings.components)
    trainer.estimator_options = dict(options or {})
    return trainer


def queued(rows) -> tuple[FakeTQ, KVBatchMeta]:
    """``rows`` in a fake TransferQueue, and the batch handle verl's trainer gets for them."""
    fake = FakeTQ()
    for key, _, fields in rows:
        fake.store[key] = dict(fields)
    batch = KVBatchMeta(keys=[r[0] for r in rows], tags=[r[1] for r in rows], partition_id="train")
    return fake, batch


def run_step(estimator: str, options=None, advantage_key="task", entropy="full", band=True):
    rows = make_batch()
    fake, batch = queued(rows)
    trainer = make_trainer(fake, estimator, options, advantage_key, entropy, band)
    metrics: dict = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trainer_module, "tq", fake)
        trainer._compute_advantage(batch, metrics)
    return rows, fake, metrics


def real_rows(rows):
    return [r for r in rows if not r[1]["is_padding"]]


def written(fake, key, field):
    return fake.store[key][field]


def expected_gs_grpo(real, key=lambda fields: fields["data_source"]):
    """compute_advantage("gs_grpo") of the real rows, stage 2 keyed by ``key(fields)``."""
    rewards = torch.tensor([float(r[2]["rm_scores"].sum()) for r in real])
    return compute_advantage(
        "gs_grpo", rewards, group=[r[2]["uid"] for r in real], task=[key(r[2]) for r in real]
    )


def components(real) -> dict[str, torch.Tensor]:
    """The rows' reward components; length only where the task weights it (math here)."""
    info = [r[2]["extra_fields"]["reward_extra_info"] for r in real]
    on = {"grounding": 0.0, "math": 1.0, "ocr": 0.0}
    comps = {
        name: torch.tensor([i[name] for i in info], dtype=torch.float64)
        for name in ("correctness", "format", "structure")
    }
    comps["length"] = torch.tensor(
        [i["length"] * on[r[2]["data_source"]] for i, r in zip(info, real)], dtype=torch.float64
    )
    return comps


def written_band_weights(fake, real, token_entropy) -> tuple[torch.Tensor, BandSide]:
    """The band weight written for each real row, after checking it is band_weights of
    ``token_entropy`` (one tensor per row) under the rows' masks and tasks; and the side."""
    entropy = torch.nn.utils.rnn.pad_sequence(token_entropy, batch_first=True)
    mask = torch.nn.utils.rnn.pad_sequence([r[2]["response_mask"] for r in real], batch_first=True)
    index = make_registry().indices([r[2]["data_source"] for r in real])
    want, side = band_weights(entropy, mask, index, BANDS)
    got = torch.tensor([float(written(fake, r[0], BAND_WEIGHT_KEY)[0]) for r in real])
    torch.testing.assert_close(got, want.to(got.dtype))
    return got, side


def test_gs_grpo_matches_compute_advantage_and_lines_up_by_key():
    rows, fake, _ = run_step("gs_grpo")
    real = real_rows(rows)
    expected = expected_gs_grpo(real)
    for (key, _, fields), want in zip(real, expected.tolist()):
        adv = written(fake, key, "advantages")
        assert adv.shape == fields["response_mask"].shape
        torch.testing.assert_close(adv, torch.full_like(adv, want), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(written(fake, key, "returns"), adv)
    for key, tag, _ in rows:
        if tag["is_padding"]:
            assert written(fake, key, "advantages").abs().sum() == 0


def test_stage_two_keys_on_problem_type_when_the_task_file_says_so():
    rows, fake, _ = run_step("gs_grpo", advantage_key="problem_type")
    real = real_rows(rows)
    expected = expected_gs_grpo(real, key=lambda fields: fields["extra_info"]["problem_type"])
    got = torch.tensor([float(written(fake, r[0], "advantages")[0]) for r in real])
    torch.testing.assert_close(got, expected.to(got.dtype))


def test_gs_gdpo_reads_components_and_masks_length_by_task():
    rows, fake, _ = run_step("gs_gdpo", options={"pin_equal_groups": True})
    real = real_rows(rows)
    comps = components(real)
    # each normalised component weighted by its row's task weight (method.md section 1)
    weights = {
        name: torch.tensor([WEIGHTS[r[2]["data_source"]][i] for r in real], dtype=torch.float64)
        for i, name in enumerate(COMPONENT_NAMES)
    }
    args = {
        "rewards": torch.tensor([float(r[2]["rm_scores"].sum()) for r in real]),
        "group": [r[2]["uid"] for r in real],
        "task": [r[2]["data_source"] for r in real],
        "components": comps,
        "pin_equal_groups": True,
    }
    expected = compute_advantage("gs_gdpo", **args, reward_weights=weights)
    got = torch.tensor([float(written(fake, r[0], "advantages")[0]) for r in real])
    torch.testing.assert_close(got, expected.to(got.dtype), rtol=1e-6, atol=1e-6)
    unweighted = compute_advantage("gs_gdpo", **args)
    assert (got.double() - unweighted).abs().max() > 0.05


def test_component_weights_option_overrides_the_task_weights():
    override = {"correctness": 1.0, "format": 1.0, "structure": 1.0, "length": 1.0}
    rows, fake, _ = run_step("gdpo", options={"component_weights": override})
    real = real_rows(rows)
    comps = components(real)
    expected = compute_advantage(
        "gdpo",
        torch.tensor([float(r[2]["rm_scores"].sum()) for r in real]),
        group=[r[2]["uid"] for r in real],
        components=comps,
        lengths=torch.tensor([len(r[2]["response_mask"]) for r in real]),
    )
    got = torch.tensor([float(written(fake, r[0], "advantages")[0]) for r in real])
    torch.testing.assert_close(got, expected.to(got.dtype), rtol=1e-5, atol=1e-5)


def test_per_task_metrics_and_band_weights():
    rows, fake, metrics = run_step("grpo")
    real = real_rows(rows)
    for task in TASKS:
        mine = [r for r in real if r[2]["data_source"] == task]
        tokens = torch.cat([r[2]["entropy"] for r in mine])
        assert metrics[f"train/{task}/entropy"] == pytest.approx(float(tokens.mean()), rel=1e-6)
        assert metrics[f"train/{task}/reward"] == pytest.approx(
            sum(float(r[2]["rm_scores"].sum()) for r in mine) / len(mine)
        )
        # train/<task>/length is the length reward component, as in the engine (unmasked);
        # tokens are response_length
        assert metrics[f"train/{task}/length"] == pytest.approx(
            sum(r[2]["extra_fields"]["reward_extra_info"]["length"] for r in mine) / len(mine)
        )
        assert metrics[f"train/{task}/response_length"] == pytest.approx(
            sum(len(r[2]["response_mask"]) for r in mine) / len(mine)
        )
        adv = torch.tensor([float(written(fake, r[0], "advantages")[0]) for r in mine])
        assert metrics[f"train/{task}/advantage_std"] == pytest.approx(
            float(adv.std(unbiased=False)), rel=1e-5
        )
    got, side = written_band_weights(fake, real, [r[2]["entropy"] for r in real])
    signs = {r[2]["data_source"]: torch.sign(g).item() for r, g in zip(real, got)}
    assert signs == {"grounding": 1.0, "math": 0.0, "ocr": -1.0}
    # the band loss, the single-process engine's actor/entropy_band_loss: sum of coef * hinge
    hinge = torch.relu(side.mean - BANDS.h_max.double()) + torch.relu(
        BANDS.h_min.double() - side.mean
    )
    assert metrics["actor/entropy_band_loss"] == pytest.approx(float((BANDS.coef * hinge).sum()))
    assert metrics["actor/entropy_band_loss"] > 0


def test_sampled_estimator_judges_and_logs_minus_old_log_probs():
    # method.md section 3: H_t = token mean of -log pi(y) of the sampled tokens
    rows, fake, metrics = run_step("grpo", entropy="sampled")
    real = real_rows(rows)
    for task in TASKS:
        mine = [r for r in real if r[2]["data_source"] == task]
        tokens = -torch.cat([r[2]["old_log_probs"] for r in mine])
        assert metrics[f"train/{task}/entropy"] == pytest.approx(float(tokens.mean()), rel=1e-6)
    got, _ = written_band_weights(fake, real, [-r[2]["old_log_probs"] for r in real])
    # the full-vocabulary entropy would give (+, 0, -): the sampled one decides (-, +, 0)
    signs = {r[2]["data_source"]: torch.sign(g).item() for r, g in zip(real, got)}
    assert signs == {"grounding": -1.0, "math": 1.0, "ocr": 0.0}


def test_per_task_entropy_is_logged_with_the_band_off():
    rows, fake, metrics = run_step("grpo", entropy="sampled", band=False)
    real = real_rows(rows)
    mine = [r for r in real if r[2]["data_source"] == "math"]
    tokens = -torch.cat([r[2]["old_log_probs"] for r in mine])
    assert metrics["train/math/entropy"] == pytest.approx(float(tokens.mean()), rel=1e-6)
    assert all(BAND_WEIGHT_KEY not in fake.store[r[0]] for r in rows)


def test_unknown_task_fails_naming_it():
    rows = make_batch()
    rows[0][2]["data_source"] = "chart"
    fake, batch = queued(rows)
    trainer = make_trainer(fake, "gs_grpo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trainer_module, "tq", fake)
        with pytest.raises(ValueError, match="'chart' of row"):
            trainer._compute_advantage(batch, {})


def test_bands_and_length_switch_follow_the_task_file():
    from pathlib import Path

    from openvlthinker.tasks import load_tasks

    registry = load_tasks(Path(__file__).resolve().parents[2] / "configs" / "tasks.yaml")
    bands = TaskBands.from_registry(registry)
    assert bands.names == tuple(registry)
    for i, name in enumerate(bands.names):
        h_min, h_max, coef = registry[name].entropy_band
        assert (float(bands.h_min[i]), float(bands.h_max[i])) == pytest.approx((h_min, h_max))
        assert float(bands.coef[i]) == pytest.approx(coef)
        assert bool(registry.length_enabled()[i]) == (registry[name].length_weight > 0)


def test_constructor_and_setup_put_the_band_loss_on_the_actor_workers(monkeypatch):
    from pathlib import Path

    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
    from verl.workers.config import FSDPActorConfig

    from openvlthinker.verl_plugin.config import compose_config
    from openvlthinker.verl_plugin.loss import band_ppo_loss

    repo = Path(__file__).resolve().parents[2]
    config = compose_config(
        repo / "configs" / "g2rpo_qwen3vl_8b.yaml",
        [f"openvlthinker.tasks={repo / 'configs' / 'tasks.yaml'}"],
    )
    calls = []
    monkeypatch.setattr(PPOTrainerSync, "_setup", lambda self: None)
    trainer = G2RPOTrainer(config)  # verl's real constructor: replay buffer, checkpoint hooks
    assert trainer.trainer_mode == "sync" and type(trainer.replay_buffer) is ReplayBuffer
    trainer.actor_rollout_wg = SimpleNamespace(set_loss_fn=calls.append)
    trainer._setup()
    (loss_fn,) = calls
    assert loss_fn.func is band_ppo_loss
    assert isinstance(loss_fn.keywords["config"], FSDPActorConfig)
    assert loss_fn.keywords["config"].clip_ratio_high == 0.3
    assert loss_fn.keywords["estimator"] == trainer.settings.entropy_band.estimator == "sampled"
    assert trainer.step_tasks.names == tuple(trainer.registry)
    # the task file's reward weights, per task in index order, for GS-GDPO / GDPO
    for i, task in enumerate(trainer.registry):
        for name in trainer.settings.components:
            want = trainer.registry[task].reward_weights[name]
            assert float(trainer.step_tasks.reward_weights[name][i]) == pytest.approx(want)
    assert trainer.estimator_options == {}
