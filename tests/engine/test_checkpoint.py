"""engine/checkpoint.py: the checkpoint layout, the latest one, rotation, and the trainer state
read with weights_only=True (RNG states included)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from openvlthinker.engine import checkpoint as ckpt


class Saves:
    """Stands in for a model or processor: ``save_pretrained`` writes one small file."""

    def __init__(self, name: str):
        self.name = name

    def save_pretrained(self, folder: Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{self.name}.json").write_text(json.dumps({"name": self.name}))


def save(out: Path, step: int, keep: int = 0, **kwargs) -> Path:
    state = {"step": step, "weights": torch.arange(3.0) * step}
    return ckpt.save_checkpoint(
        out, step, Saves("model"), Saves("processor"), state, keep, **kwargs
    )


def steps(out: Path) -> list[int]:
    return [step for step, _ in ckpt.list_checkpoints(out)]


def test_a_checkpoint_holds_the_model_folder_the_state_and_the_extra_files(tmp_path):
    folder = save(tmp_path, 3, files={"calibration.json": '{"a": 1}'})
    assert folder == tmp_path / "checkpoints" / "global_step_3"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "calibration.json",
        "model",
        "model/model.json",
        "model/processor.json",
        "trainer_state.pt",
    ]
    assert (folder / "calibration.json").read_text() == '{"a": 1}'
    state = ckpt.load_trainer_state(folder)
    assert state["step"] == 3 and torch.equal(state["weights"], torch.tensor([0.0, 3.0, 6.0]))
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["global_step_3"]  # no tmp


def test_latest_is_the_highest_complete_step_by_number(tmp_path):
    assert ckpt.latest_checkpoint(tmp_path) is None and ckpt.list_checkpoints(tmp_path) == []
    for step in (9, 10, 2):
        save(tmp_path, step)
    root = tmp_path / "checkpoints"
    (root / "global_step_50").mkdir()  # no trainer_state.pt: not complete
    (root / ".tmp_global_step_60").mkdir()  # a save killed before its rename
    (root / "global_step_x").mkdir()
    assert steps(tmp_path) == [2, 9, 10]  # 10 after 9: numbers, not strings
    assert ckpt.latest_checkpoint(tmp_path) == root / "global_step_10"


@pytest.mark.parametrize(("keep", "kept"), [(0, [1, 2, 3, 4]), (1, [4]), (2, [3, 4])])
def test_save_limit_keeps_the_newest(tmp_path, keep, kept):
    for step in (1, 2, 3, 4):
        save(tmp_path, step, keep=keep)
    assert steps(tmp_path) == kept
    remaining = {p.name for p in (tmp_path / "checkpoints").iterdir()}
    assert remaining == {f"global_step_{s}" for s in kept}


def test_saving_a_step_again_replaces_it_and_a_leftover_tmp_folder(tmp_path):
    save(tmp_path, 2)
    leftover = tmp_path / "checkpoints" / ".tmp_global_step_2"
    (leftover / "model").mkdir(parents=True)
    (leftover / "model" / "stale.bin").write_text("half written")
    folder = save(tmp_path, 2, files={"note.txt": "second"})
    assert not leftover.exists() and not (folder / "model" / "stale.bin").exists()
    assert (folder / "note.txt").read_text() == "second"
    assert steps(tmp_path) == [2]


def test_a_folder_without_trainer_state_is_a_named_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} holds no trainer_state.pt"):
        ckpt.load_trainer_state(tmp_path)


def test_trainer_state_round_trips_with_weights_only(tmp_path):
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    np.random.standard_normal()  # leaves a cached gaussian in NumPy's state
    state = {"step": 7, "rng": ckpt.rng_state(), "config": {"a": [1, 2], "b": None}}
    (tmp_path / "global_step_7").mkdir()
    torch.save(state, tmp_path / "global_step_7/trainer_state.pt")
    expected = (random.random(), np.random.standard_normal(2).tolist(), torch.rand(2))
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    loaded = ckpt.load_trainer_state(tmp_path / "global_step_7")
    assert loaded["step"] == 7 and loaded["config"] == {"a": [1, 2], "b": None}
    ckpt.set_rng_state(loaded["rng"])
    again = (random.random(), np.random.standard_normal(2).tolist(), torch.rand(2))
    assert again[:2] == expected[:2] and torch.equal(again[2], expected[2])


def test_rng_state_is_tensors_and_plain_values_only():
    state = ckpt.rng_state()
    assert set(state) >= {"python", "numpy", "torch"}
    assert state["numpy"]["bit_generator"] == "MT19937"
    assert state["numpy"]["key"].dtype == torch.int64 and state["numpy"]["key"].numel() == 624
    assert isinstance(state["torch"], torch.Tensor)


class _RunsCode:
    """Unpickling this calls Path.touch: a stand-in for any code a pickle may run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).touch, (self.marker,))


def test_a_crafted_trainer_state_is_refused_without_running_its_code(tmp_path):
    folder = tmp_path / "global_step_1"
    folder.mkdir()
    marker = tmp_path / "code_ran"
    torch.save({"step": 1, "rng": _RunsCode(marker)}, folder / "trainer_state.pt")
    with pytest.raises(ValueError, match=r"trainer_state\.pt holds objects other than tensors"):
        ckpt.load_trainer_state(folder)
    assert not marker.exists()
    # What the old loader did: the same file runs its code.
    torch.load(folder / "trainer_state.pt", weights_only=False)
    assert marker.exists()
