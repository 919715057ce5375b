"""openvlthinker-verl's preparation step: export from the task file, plugin variable set."""

from __future__ import annotations

import os
from pathlib import Path

import datasets

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
