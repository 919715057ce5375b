"""openvlthinker-verl's preparation step: export from the task file, plugin variable set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from openvlthinker.verl_plugin.config import compose_config
from openvlthinker.verl_plugin.main import prepare

REPO = Path(__file__).resolve().parents[2]


def test_prepare_exports_the_task_file_and_sets_the_plugin_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("VERL_USE_EXTERNAL_MODULES", "my_org.plugin")
    cfg = compose_config(
        REPO / "configs" / "g2rpo_qwen3vl_8b.yaml",
        [
            f"openvlthinker.tasks={REPO / 'configs' / 'tasks.yaml'}",
            f"openvlthinker.export_dir={tmp_path}",
        ],
    )
    assert cfg.data.train_files is None
    monkeypatch.chdir(tmp_path)
    prepare(cfg)
    assert (
        Path(cfg.openvlthinker.tasks).is_absolute()
        and Path(cfg.openvlthinker.export_dir).is_absolute()
    )
    assert list(cfg.data.train_files) == [str(tmp_path / "train.parquet")]
    assert len(cfg.data.val_files) == 6
    rows = datasets.load_dataset("parquet", data_files=cfg.data.train_files[0])["train"]
    assert set(rows["data_source"]) == {"grounding", "spatial", "science", "math", "chart", "ocr"}
    expected = "my_org.plugin,openvlthinker.verl_plugin"
    assert os.environ["VERL_USE_EXTERNAL_MODULES"] == expected
    assert cfg.ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES == expected


def test_a_relative_config_path_is_read_from_the_working_directory(tmp_path):
    from openvlthinker.verl_plugin.main import absolute_config_path

    configs = str(tmp_path / "configs")
    assert absolute_config_path(["--config-path", "configs", "a=1"], cwd=tmp_path) == [
        "--config-path",
        configs,
        "a=1",
    ]
    assert absolute_config_path(["--config-path=configs"], cwd=tmp_path) == [
        f"--config-path={configs}"
    ]
    assert absolute_config_path(["-cp", "./configs", "--cfg", "job"], cwd=tmp_path) == [
        "-cp",
        configs,
        "--cfg",
        "job",
    ]
    kept = ["--config-path", "/abs/configs", "-cp=pkg://openvlthinker.x", "configs=1"]
    assert absolute_config_path(kept, cwd=tmp_path) == kept


def test_help_shows_usage_examples_and_every_key_of_our_section(capsys):
    from dataclasses import fields

    from openvlthinker.verl_plugin.main import main
    from openvlthinker.verl_plugin.settings import PluginSettings

    main(["--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: openvlthinker-verl --config-path DIR --config-name NAME")
    assert "openvlthinker.check_only=true" in text and "--cfg job" in text
    for f in fields(PluginSettings):
        assert f"  openvlthinker.{f.name} " in text


@pytest.mark.slow
def test_the_console_script_composes_a_relative_config_path_from_the_repo_root():
    # What the openvlthinker-verl console script runs, on this checkout's code.
    script = "import sys; from openvlthinker.verl_plugin.main import main; sys.exit(main())"
    args = ["-cp", "configs", "--config-name", "g2rpo_qwen3vl_8b", "--cfg", "job"]
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "adv_estimator: gs_grpo" in done.stdout and "openvlthinker:" in done.stdout
