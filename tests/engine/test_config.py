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
        ("actor.clip_ratio_c=0.5", r"actor.clip_ratio_c=0.5: must be > 1 or null"),
        ("trainer.logger=[console,mlflow]", r"trainer.logger=.*unknown \['mlflow'\]"),
        (
            "trainer.resume_mode=resume_path trainer.resume_from_path=/no/such/dir",
            r"trainer.resume_from_path='/no/such/dir': trainer.resume_mode=resume_path needs an "
            "existing checkpoint folder",
        ),
        (
            "algorithm.components=[correctness,acc]",
            r"algorithm.components=\['correctness', 'acc'\]: unknown \['acc'\]; known: correctness",
        ),
        (
            "algorithm.adv_estimator=gs_gdpo algorithm.components=[]",
            r"algorithm.components=\[\]: gs_gdpo needs the reward components",
        ),
        ("reward.think_tagg=x", r"key 'reward.think_tagg': Key 'think_tagg' not in 'RewardConfig'"),
        ("reward.coordinate_frame=pixels", r"^reward.coordinate_frame: 'pixels' is unknown"),
        ("data.template=fancy", r"data.template='fancy': prompt template 'fancy' not found"),
        (
            "reward.weights.correctness=1.0",
            r"^reward.weights was removed: .*task file's reward_weights",
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


@pytest.mark.parametrize(
    ("estimator", "options"),
    [
        ("gs_grpo", None),
        ("gs_gdpo", None),
        # verl's grpo / gdpo / rloo keep a lone response's raw reward; ours (singleton: zero)
        # gives it 0, so one response per prompt trains nothing
        ("grpo", "{singleton: zero}"),
        ("gdpo", "{singleton: zero}"),
        ("rloo", "{singleton: zero}"),
    ],
)
def test_one_response_per_prompt_under_a_group_estimator_is_refused(estimator, options):
    message = (
        rf"rollout.n=1: algorithm.adv_estimator='{estimator}' compares the responses to one "
        r"prompt, so one response per prompt gives every advantage 0 and nothing trains; use "
        r"rollout.n >= 2, or an estimator that needs no group: gdpo, grpo, reinforce_plus_plus, "
        r"remax, rloo$"
    )
    extra = [] if options is None else [f"algorithm.estimator_options={options}"]
    with pytest.raises(ConfigError, match=message):
        load_config(None, ["rollout.n=1", f"algorithm.adv_estimator={estimator}", *extra])


@pytest.mark.parametrize(
    "overrides",
    [
        ["algorithm.adv_estimator=remax"],
        ["algorithm.adv_estimator=reinforce_plus_plus"],
        ["algorithm.adv_estimator=grpo"],  # verl's default: a lone response keeps its reward
        ["algorithm.adv_estimator=rloo"],
        ["algorithm.estimator_options={stages: [task]}"],  # G2RPO stage 2 alone ranks the task
    ],
)
def test_one_response_per_prompt_is_fine_where_it_trains(overrides):
    assert load_config(None, ["rollout.n=1", *overrides]).rollout.n == 1


def test_the_run_folder_is_named_by_the_experiment():
    cfg = load_config(ROOT / "configs/tiny_cpu.yaml")
    assert (cfg.trainer.experiment_name, cfg.trainer.out_dir) == ("tiny_cpu", "outputs/tiny_cpu")
    cfg = load_config(ROOT / "configs/tiny_cpu.yaml", ["trainer.experiment_name=tiny_grpo"])
    assert cfg.trainer.out_dir == "outputs/tiny_grpo"
    cfg = load_config(ROOT / "configs/tiny_cpu.yaml", ["trainer.out_dir=/runs/x"])
    assert cfg.trainer.out_dir == "/runs/x"


@pytest.mark.parametrize(
    ("key", "nearest"),
    [
        ("algorithm.adv_estimater", "algorithm.adv_estimator"),
        ("trainer.num_thread", "trainer.num_threads"),
        ("rolout.n", "rollout.n"),
        ("algoritm", "algorithm"),
    ],
)
def test_a_misspelt_key_suggests_the_nearest_valid_one(key, nearest):
    # OmegaConf names the first unknown level; the hint corrects the whole key typed
    with pytest.raises(ConfigError, match=rf"key '{key[:7]}.*; did you mean {nearest}\?$"):
        load_config(None, [f"{key}=1"])


def test_a_far_off_key_gets_no_guess():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["zzz.qqq=1"])
    assert "did you mean" not in str(info.value)


def test_a_yaml_syntax_error_names_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  dtype: float32\n   device: cpu\n")
    with pytest.raises(ConfigError, match=rf"^config file {bad}: YAML syntax error at line 3, "):
        load_config(bad)


def test_thread_default_is_the_usable_cores_less_the_busy_ones(monkeypatch):
    from openvlthinker.engine.setup import default_num_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_num_threads(cores=8, load=0.7) == 8
    assert default_num_threads(cores=8, load=2.5) == 6
    assert default_num_threads(cores=2, load=8.4) == 1  # an overloaded machine: one thread
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 2, 5})  # e.g. taskset -c 0,2,5
    monkeypatch.setattr("os.getloadavg", lambda: (0.2, 0.0, 0.0))
    assert default_num_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's own choice wins
    assert default_num_threads(cores=8, load=0.0) == 1
    with pytest.raises(ConfigError, match=r"trainer.num_threads=0: must be >= 1 or null"):
        load_config(None, ["trainer.num_threads=0"])
