"""The engine's key vocabulary: renamed and removed keys refused naming the replacement,
section checks naming the full key wherever a section is built, the typed reward section,
resume-free keys read from field metadata, and a config-help that needs no transformers."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from openvlthinker.engine.config import (
    RENAMED,
    ConfigError,
    RolloutConfig,
    TinySpec,
    TrainConfig,
    TrainerConfig,
    help_table,
    load_config,
    resume_conflicts,
    resume_free_keys,
    to_dict,
)
from openvlthinker.rewards.config import RewardConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("algorithm.kl_penalty=kl", "actor.kl_loss_type"),
        ("algorithm.kl_coef=0.1", "actor.kl_loss_coef"),
        ("algorithm.use_kl_loss=true", "actor.use_kl_loss"),
        ("algorithm.dynamic_sampling.enable=true", "algorithm.filter_groups"),
        ("algorithm.dynamic_sampling.max_num_gen_batches=2", "algorithm.filter_groups"),
        ("actor.clip_ratio_dual=2.0", "actor.clip_ratio_c"),
        ("trainer.val_freq=5", "trainer.test_freq"),
        ("trainer.resume=auto", "trainer.resume_mode"),
    ],
)
def test_an_old_key_is_refused_in_one_line_naming_the_new_one(old, new):
    key = old.split("=")[0]
    section = next(k for k in RENAMED if key == k or key.startswith(k + "."))
    with pytest.raises(
        ConfigError, match=rf"^{section} was renamed {new} \(.*\); see CHANGELOG.md$"
    ):
        load_config(ROOT / "configs/tiny_cpu.yaml", [old])


def test_an_old_key_in_a_yaml_file_names_the_file(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("algorithm:\n  dynamic_sampling:\n    enable: true\n")
    with pytest.raises(ConfigError, match=rf"^{path}: algorithm.dynamic_sampling was renamed "):
        load_config(path)


def test_the_old_resume_folder_form_says_how_to_write_it_now(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"trainer.resume={tmp_path}"])
    assert "resume_path with trainer.resume_from_path=<folder>" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("override", "key", "points_to"),
    [
        ("data.on_error=skip", "data.on_error", r"the task file \(data.tasks\) .* data.on_error"),
        ("model.tiny.tokenizer=tiny", "model.tiny.tokenizer", r"tokenizer_vocab_size sets"),
        ("reward.weights.format=0.5", "reward.weights", r"task file's reward_weights"),
        ("reward.numeric_rel_tol=0.1", "reward.numeric_rel_tol", r"scorer_options"),
    ],
)
def test_a_removed_key_is_refused_naming_what_replaced_it(override, key, points_to):
    with pytest.raises(ConfigError, match=rf"^{key} was removed: .*{points_to}"):
        load_config(None, [override])


def test_removed_keys_are_gone_from_the_schema_and_the_help():
    keys = [k for k, _, _ in help_table()]
    assert "data.on_error" not in keys and "model.tiny.tokenizer" not in keys
    assert "reward.weights" not in keys
    assert not any(k.startswith(("algorithm.dynamic_sampling", "algorithm.kl")) for k in keys)
    assert {"actor.kl_loss_type", "trainer.test_freq", "trainer.resume_from_path"} <= set(keys)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # each of these used to be reported under another key
        ("rollout.val_batch_size=0", r"^rollout.val_batch_size=0: must be >= 1$"),
        ("trainer.save_freq=-1", r"^trainer.save_freq=-1: must be >= 0"),
        ("trainer.test_freq=-1", r"^trainer.test_freq=-1: must be >= 0"),
        ("rollout.val_n=0", r"^rollout.val_n=0: must be >= 1$"),
        ("algorithm.filter_groups.metric=reward", r"^algorithm.filter_groups.metric='reward'"),
        ("actor.kl_loss_type=k9", r"^actor.kl_loss_type='k9': known: low_var_kl"),
        ("trainer.save_limit=-1", r"^trainer.save_limit=-1: must be >= 0"),
    ],
)
def test_a_bad_field_is_blamed_on_its_own_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_sections_check_themselves_when_built_directly():
    with pytest.raises(ConfigError, match=r"^rollout.val_batch_size=0: must be >= 1$"):
        RolloutConfig(val_batch_size=0)
    with pytest.raises(ConfigError, match=r"^model.tiny.architecture='llava': known: qwen3_vl"):
        TinySpec(architecture="llava")
    with pytest.raises(ConfigError, match=r"^trainer.resume_mode='latest': use auto, disable"):
        TrainerConfig(resume_mode="latest")


def test_resume_path_takes_the_folder_from_resume_from_path(tmp_path):
    cfg = load_config(
        None, ["trainer.resume_mode=resume_path", f"trainer.resume_from_path={tmp_path}"]
    )
    assert (cfg.trainer.resume_mode, cfg.trainer.resume_from_path) == ("resume_path", str(tmp_path))
    with pytest.raises(ConfigError, match=r"^trainer.resume_from_path=None: .*needs an existing"):
        load_config(None, ["trainer.resume_mode=resume_path"])
    with pytest.raises(ConfigError, match=r"read only with trainer.resume_mode=resume_path"):
        load_config(None, [f"trainer.resume_from_path={tmp_path}"])


def test_save_best_needs_every_checkpoint_to_be_a_validation_step():
    assert load_config(None, ["trainer.save_best=true"]).trainer.save_best  # 10 and 10
    for bad in (["trainer.test_freq=0"], ["trainer.save_freq=4", "trainer.test_freq=3"]):
        with pytest.raises(ConfigError, match=r"^trainer.save_best=True: needs trainer.save_freq"):
            load_config(None, ["trainer.save_best=true", *bad])


def test_reward_is_a_typed_section_built_once():
    cfg = load_config(None, ["reward.workers=2", "reward.think_tag=thinking"])
    assert isinstance(cfg.reward, RewardConfig)
    assert (cfg.reward.workers, cfg.reward.think_tag) == (2, "thinking")
    assert isinstance(TrainConfig().reward, RewardConfig)
    assert to_dict(cfg)["reward"]["workers"] == 2
    with pytest.raises(
        ConfigError, match=r"key 'reward.think_tagg'.*did you mean reward.think_tag"
    ):
        load_config(None, ["reward.think_tagg=x"])


def test_the_tiny_model_has_one_definition():
    from openvlthinker.engine import modeling

    assert modeling.TinySpec is TinySpec
    assert isinstance(TrainConfig().model.tiny, TinySpec)
    assert modeling.known_architectures() == tuple(modeling._ARCH)
    cfg = load_config(None, ["model.tiny.hidden_size=128"])
    assert cfg.model.tiny == TinySpec(hidden_size=128)


def test_resume_free_keys_come_from_field_metadata():
    assert resume_free_keys() == {
        "trainer.total_steps",
        "trainer.test_freq",
        "trainer.save_freq",
        "trainer.save_limit",
        "trainer.save_best",
        "trainer.logger",
        "trainer.progress_bar",
        "trainer.plot",
        "trainer.num_threads",
        "trainer.resume_mode",
        "trainer.resume_from_path",
        "trainer.out_dir",
        "trainer.experiment_name",
        "model.cache_dir",
        "eval.n",
        "eval.temperature",
        "eval.batch_size",
        "eval.max_records",
    }


def test_a_checkpoint_written_under_old_names_resumes_under_the_new_ones():
    saved = json.loads(json.dumps(to_dict(TrainConfig())))
    saved["algorithm"]["kl_coef"] = saved["actor"].pop("kl_loss_coef")
    saved["algorithm"]["dynamic_sampling"] = saved["algorithm"].pop("filter_groups")
    saved["trainer"]["resume"] = saved["trainer"].pop("resume_mode")
    saved["data"]["on_error"] = "fail"
    saved["model"]["tiny"]["tokenizer"] = "tiny"
    cfg = TrainConfig()
    assert resume_conflicts(saved, cfg) == []
    cfg.actor.kl_loss_coef = 0.5
    cfg.algorithm.filter_groups.enable = True
    assert resume_conflicts(saved, cfg) == [
        "actor.kl_loss_coef: 0.01 -> 0.5",
        "algorithm.filter_groups.enable: False -> True",
    ]


def test_config_help_does_not_import_transformers():
    code = (
        "import sys\n"
        "from openvlthinker.cli import main\n"
        "assert main(['config-help']) == 0\n"
        "print('transformers' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stderr.strip().splitlines()[-1] == "False"
    assert "actor.kl_loss_type" in done.stdout and "reward.think_tag" in done.stdout


def test_the_trainer_loads_the_policy_with_the_configured_attention(engine_config):
    from openvlthinker.engine.trainer import Trainer

    trainer = Trainer(engine_config("model.attn_implementation=eager"))
    assert trainer.policy.config._attn_implementation == "eager"


def test_the_video_refusal_names_what_is_true():
    from openvlthinker.data.records import Record
    from openvlthinker.engine.data import encode_records

    record = Record(
        id="v-0",
        problem="<video>What happens?",
        answer="A",
        problem_type="multiple choice",
        task="video",
        data_type="video",
        videos=("/clips/0.mp4",),
        source="v.jsonl:1",
    )
    with pytest.raises(ValueError) as info:
        encode_records(
            [record],
            None,
            template=None,
            min_pixels=1,
            max_pixels=4,
            factor=28,
            max_prompt_length=8,
            message_options={},
        )
    message = str(info.value)
    assert "verl plugin does not export video records either" in message
    assert "data.only_tasks" in message and "verl adapter" not in message
