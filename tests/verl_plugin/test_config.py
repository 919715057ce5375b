"""Composing verl's config with ours: the 8B YAML resolves without a GPU, wrong keys fail
with their name, the estimator is a one-line switch, and `auto` shaping bounds are refused
(a calibration never hides in the Ray job)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.errors import ConfigCompositionException

from openvlthinker.method_config import EntropyBandConfig
from openvlthinker.verl_plugin.config import compose_config, validate

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "g2rpo_qwen3vl_8b.yaml"


@pytest.fixture
def tasks_file():
    return str(REPO / "configs" / "tasks.yaml")


def compose(tasks_file, *overrides, config=CONFIG):
    return compose_config(config, [f"openvlthinker.tasks={tasks_file}", *overrides])


def run_cli(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "openvlthinker.verl_plugin.main",
            "--config-path",
            str(CONFIG.parent),
            "--config-name",
            CONFIG.stem,
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=180,
    )


def test_check_only_composes_validates_and_prints_the_resolved_8b_config(tasks_file):
    # the CLI equivalent of `--cfg job --resolve` plus validation, in a fresh process, no GPU
    out = run_cli(f"openvlthinker.tasks={tasks_file}", "openvlthinker.check_only=true")
    assert out.returncode == 0, out.stderr
    cfg = yaml.safe_load(out.stdout)
    assert cfg["algorithm"]["adv_estimator"] == "gs_grpo"
    assert cfg["actor_rollout_ref"]["model"]["path"] == "Qwen/Qwen3-VL-8B-Instruct"
    assert cfg["actor_rollout_ref"]["rollout"]["n"] == 8
    assert cfg["data"]["train_batch_size"] == 512
    assert cfg["actor_rollout_ref"]["actor"]["ppo_mini_batch_size"] == 128
    assert cfg["actor_rollout_ref"]["actor"]["optim"]["lr"] == 2e-6
    assert cfg["openvlthinker"]["tasks"] == tasks_file
    # resolved interpolations, and verl's own defaults composed in
    assert cfg["trainer"]["default_local_dir"] == "checkpoints/openvlthinker/g2rpo_qwen3vl_8b"
    assert cfg["actor_rollout_ref"]["rollout"]["response_length"] == 4096
    assert cfg["transfer_queue"]["backend"]["storage_backend"] == "SimpleStorage"


@pytest.mark.parametrize("estimator", ["gs_grpo", "gs_gdpo", "grpo", "gdpo"])
def test_estimator_is_a_one_line_switch(tasks_file, estimator):
    cfg = compose(tasks_file, f"algorithm.adv_estimator={estimator}")
    settings = validate(cfg)
    assert cfg.algorithm.adv_estimator == estimator and settings.entropy_band.enable


def test_unknown_key_in_the_yaml_fails_naming_it(tasks_file, tmp_path):
    doc = yaml.safe_load(CONFIG.read_text())
    doc["actor_rollout_ref"]["actor"]["clip_ratio_hgh"] = 0.3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(
        ValueError, match=r"unknown config key actor_rollout_ref\.actor\.clip_ratio_hgh"
    ):
        validate(compose(tasks_file, config=bad))


def test_unknown_override_fails_naming_it(tasks_file):
    with pytest.raises(ConfigCompositionException, match="clip_ratio_hgh"):
        compose(tasks_file, "actor_rollout_ref.actor.clip_ratio_hgh=0.3")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["algorithm.adv_estimator=gs_grp"],
            r"algorithm.adv_estimator 'gs_grp' is unknown; known: .*gs_grpo",
        ),
        (
            ["+openvlthinker.estimator_options.stagez=[group]"],
            r"estimator_options.stagez is not an option of 'gs_grpo'",
        ),
        (["+openvlthinker.typo=1"], r"unknown key openvlthinker.typo"),
        (["openvlthinker.components=[correctness,speed]"], r"components names 'speed'"),
        (
            [
                "openvlthinker.entropy_band.estimator=full",
                "actor_rollout_ref.actor.calculate_entropy=false",
            ],
            r"calculate_entropy=true",
        ),
        (
            ["openvlthinker.entropy_band.estimator=vocab"],
            r"openvlthinker\.entropy_band\.estimator 'vocab' is unknown; known: sampled, full",
        ),
        (
            ["algorithm.adv_estimator=gs_gdpo", "reward.reward_manager.name=naive"],
            r"needs the reward components",
        ),
        (
            ["algorithm.adv_estimator=remax"],
            r"'remax' needs greedy-response reward baselines, which nothing on verl's V1 trainer",
        ),
        (
            ["algorithm.adv_estimator=reinforce_plus_plus", "algorithm.gamma=0.99"],
            r"'reinforce_plus_plus' under openvlthinker-verl is the outcome form .*gamma=0.99",
        ),
        (
            ["algorithm.adv_estimator=gs_grpo", "algorithm.norm_adv_by_std_in_grpo=false"],
            r"norm_adv_by_std_in_grpo=false has no effect on 'gs_grpo'",
        ),
        (
            [
                "algorithm.adv_estimator=grpo",
                "algorithm.norm_adv_by_std_in_grpo=false",
                "+openvlthinker.estimator_options.norm_adv_by_std_in_grpo=true",
            ],
            r"norm_adv_by_std_in_grpo=False contradicts openvlthinker.estimator_options",
        ),
        (["trainer.v1.trainer_mode=colocate_async"], r"trainer_mode=sync"),
        (
            ["+openvlthinker.reward.think_tag=think-"],
            r"openvlthinker\.reward\.think_tag: expected a tag name",
        ),
        (["+openvlthinker.reward.tagz=x"], r"openvlthinker\.reward: unknown key\(s\) tagz"),
        (
            ["+openvlthinker.reward.weights.format=0.5"],
            r"openvlthinker.reward.weights=\{'format': 0.5\}: .*task file's reward_weights",
        ),
        (
            ["openvlthinker.tasks=/nonexistent/tasks.yaml"],
            r"/nonexistent/tasks.yaml does not exist",
        ),
    ],
)
def test_bad_values_fail_with_their_key(tasks_file, overrides, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        validate(compose(tasks_file, *overrides))


def test_a_task_file_may_use_a_user_scorers_problem_type(tmp_path):
    # the user scorer registers its problem type before the task file is read
    scorer = tmp_path / "scorer.py"
    scorer.write_text("def exact(answer, ground_truth, ctx):\n    return answer == ground_truth\n")
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(
        "tasks:\n  poems:\n    domain: text\n    problem_types: [verl_user_poem]\n"
        "    length_envelope: [1, 2, 8, 16]\n    length_weight: 0.0\n"
    )
    cfg = compose(tasks, f"+openvlthinker.reward.user_scorers.verl_user_poem={scorer}:exact")
    settings = validate(cfg)
    assert settings.reward.user_scorers == {"verl_user_poem": f"{scorer}:exact"}


def test_the_band_estimator_defaults_to_sampled_which_needs_no_full_entropy(tasks_file):
    # method.md section 3: H_t is the token mean of -log pi of the sampled tokens
    settings = validate(compose(tasks_file, "actor_rollout_ref.actor.calculate_entropy=false"))
    assert settings.entropy_band == EntropyBandConfig(enable=True, estimator="sampled")
    full = validate(compose(tasks_file, "openvlthinker.entropy_band.estimator=full"))
    assert full.entropy_band.estimator == "full"


def test_components_are_the_reward_suites_own_list():
    from openvlthinker.rewards.config import SCORED_COMPONENTS
    from openvlthinker.verl_plugin import settings as plugin_config

    assert plugin_config.PluginSettings(tasks="t.yaml").components == list(SCORED_COMPONENTS)
    with pytest.raises(ValueError, match=r"openvlthinker.components names 'acc'; known: corr"):
        plugin_config.PluginSettings(tasks="t.yaml", components=["correctness", "acc"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["+openvlthinker.entropy_band_estimator=full"],
            r"^openvlthinker\.entropy_band_estimator was renamed to "
            r"openvlthinker\.entropy_band\.estimator",
        ),
        (
            ["openvlthinker.entropy_band=false"],
            r"^openvlthinker\.entropy_band=false: .* now openvlthinker\.entropy_band\.enable",
        ),
        (
            ["+openvlthinker.entropy_band.enabled=false"],
            r"^unknown key openvlthinker\.entropy_band\.enabled; known: enable, estimator",
        ),
        (
            ["openvlthinker.entropy_band.enable=maybe"],
            r"^openvlthinker\.entropy_band\.enable: expected true or false, got 'maybe'",
        ),
        (
            ["openvlthinker.reward=null"],
            r"^openvlthinker\.reward: expected a mapping of RewardConfig fields, got None",
        ),
    ],
)
def test_the_old_band_keys_are_refused_naming_the_new_ones(tasks_file, overrides, message):
    with pytest.raises(ValueError, match=message):
        validate(compose(tasks_file, *overrides))


def test_the_band_section_is_the_engines_entropy_band_config(tasks_file):
    off = validate(compose(tasks_file, "openvlthinker.entropy_band.enable=false"))
    assert off.entropy_band == EntropyBandConfig(enable=False, estimator="sampled")
    # the shipped configs name the band the new way (each is validated elsewhere)
    for name in ("g2rpo_qwen3vl_8b", "g2rpo_qwen3vl_8b_lora", "g2rpo_qwen3vl_2b_1gpu"):
        doc = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
        assert doc["openvlthinker"]["entropy_band"] == {"enable": True, "estimator": "sampled"}


def test_settings_are_built_once_per_section(tasks_file):
    from openvlthinker.verl_plugin.settings import load_settings

    cfg = compose(tasks_file)
    first = load_settings(cfg)
    assert load_settings(compose(tasks_file)) is first  # same section: the cached object
    other = load_settings(compose(tasks_file, "openvlthinker.export_dir=/tmp/elsewhere"))
    assert other is not first and other.export_dir == "/tmp/elsewhere"
    with pytest.raises(AttributeError):
        first.tasks = "changed.yaml"  # frozen: a cached object nobody can change
    assert first.reward.prompt_options == {
        "think_tag": "think",
        "answer_tag": "answer",
        "coordinate_frame": "qwen_1000",
    }


def test_check_only_refuses_remax_before_ray_naming_the_reason(tasks_file):
    out = run_cli(
        f"openvlthinker.tasks={tasks_file}",
        "openvlthinker.check_only=true",
        "algorithm.adv_estimator=remax",
    )
    assert out.returncode != 0
    assert "'remax' needs greedy-response reward baselines" in out.stderr
    assert "openvlthinker train" in out.stderr


def test_verls_own_keys_reach_our_estimators(tasks_file):
    from openvlthinker.verl_plugin.config import estimator_call_options

    cfg = compose(
        tasks_file, "algorithm.adv_estimator=grpo", "algorithm.norm_adv_by_std_in_grpo=false"
    )
    assert estimator_call_options(cfg, validate(cfg)) == {"norm_adv_by_std_in_grpo": False}
    cfg = compose(tasks_file, "algorithm.adv_estimator=gs_gdpo")
    assert estimator_call_options(cfg, validate(cfg)) == {}


def test_auto_bounds_are_refused_with_the_calibrate_command_to_run(tmp_path):
    auto = tmp_path / "tasks_auto.yaml"
    auto.write_text(
        f"extends: {REPO / 'configs' / 'tasks.yaml'}\n"
        "tasks:\n  math: {length_envelope: auto}\n"
        "  ocr: {entropy_band: {h_min: auto, h_max: auto, coef: 0.02}}\n"
    )
    cfg = compose_config(CONFIG, [f"openvlthinker.tasks={auto}"])
    with pytest.raises(
        ValueError,
        match=rf"openvlthinker.tasks: {auto} sets shaping bounds to 'auto' \(math: "
        r"length_envelope; ocr: h_min, h_max\); openvlthinker-verl does not calibrate inside "
        r"the Ray job: run `openvlthinker calibrate --config ENGINE_CONFIG --out "
        r"TASKS_OUT.yaml` first .* openvlthinker.tasks=TASKS_OUT.yaml",
    ):
        validate(cfg)
