from pathlib import Path

import pytest

from openvlthinker.engine.config import ConfigError, help_table, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_cpu_yaml_loads_and_overrides_apply():
    cfg = load_config(
        ROOT / "configs/tiny_cpu.yaml",
        ["actor.lr=0.5", "algorithm.adv_estimator=grpo", "rollout.n=2"],
    )
    assert cfg.actor.lr == 0.5 and cfg.algorithm.adv_estimator == "grpo" and cfg.rollout.n == 2
    assert cfg.model.path is None and cfg.model.tiny.architecture == "qwen3_vl"
    assert cfg.trainer.total_steps == 20


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "algorithm.adv_estimator=gs_grp",
            r"algorithm.adv_estimator='gs_grp': unknown; known: .*gs_grpo",
        ),
        (
            "actor.mini_batch_size=4",
            r"actor.mini_batch_size=4: must divide data.rollout_batch_size=6",
        ),
        ("actor.micro_batch_size=0", r"actor.micro_batch_size=0: must be >= 1"),
        ("actor.loss_agg_mode=mean", r"actor.loss_agg_mode='mean': known: token-mean"),
        ("model.tiny.architecture=llava", r"model.tiny.architecture='llava': known: qwen3_vl"),
        ("rollout.temperature=0", r"rollout.temperature=0.0: must be > 0"),
        (
            "algorithm.estimator_options.foo=1",
            r"algorithm.estimator_options=.*gs_grpo does not accept \['foo'\]",
        ),
        ("actor.clip_ratio_dual=0.5", r"actor.clip_ratio_dual=0.5: must be > 1 or null"),
        ("trainer.logger=[console,mlflow]", r"trainer.logger=.*unknown \['mlflow'\]"),
        ("trainer.resume=/no/such/dir", r"trainer.resume='/no/such/dir'"),
        (
            "algorithm.components=[correctness,acc]",
            r"algorithm.components=\['correctness', 'acc'\]: unknown \['acc'\]; known: correctness",
        ),
        (
            "algorithm.adv_estimator=gs_gdpo algorithm.components=[]",
            r"algorithm.components=\[\]: gs_gdpo needs the reward components",
        ),
        ("reward.think_tagg=x", r"reward=\{'think_tagg': 'x'\}: .*unknown key\(s\) think_tagg"),
        ("reward.coordinate_frame=pixels", r"reward=.*coordinate_frame: 'pixels' is unknown"),
        ("data.template=fancy", r"data.template='fancy': prompt template 'fancy' not found"),
        (
            "reward.weights.correctness=1.0",
            r"reward.weights=\{'correctness': 1.0\}: .*task file's reward_weights",
        ),
    ],
)
def test_bad_values_name_the_key_and_the_fix(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(ROOT / "configs/tiny_cpu.yaml", override.split(" "))


def test_unknown_and_mistyped_keys_are_errors_naming_the_key():
    with pytest.raises(ConfigError, match=r"key 'actor.lrr'"):
        load_config(None, ["actor.lrr=1"])
    with pytest.raises(ConfigError, match=r"key 'actor.lr'.*could not be converted"):
        load_config(None, ["actor.lr=fast"])
    with pytest.raises(ConfigError, match="not found"):
        load_config("/no/such.yaml")


def test_every_field_has_help():
    rows = help_table()
    assert len(rows) > 50
    missing = [key for key, _, text in rows if not text]
    assert missing == []
    assert ("actor.clip_ratio_high", "0.3") == rows[
        [r[0] for r in rows].index("actor.clip_ratio_high")
    ][:2]


def test_docs_reference_table_lists_every_key_with_its_default():
    text = (ROOT / "docs/engine.md").read_text()
    for key, default, _ in help_table():
        assert f"| `{key}` | `{default}` |" in text, key
