"""trainer.save_best: the best checkpoint by val/score is recorded and never rotated out."""

import json

import torch

from openvlthinker.engine import checkpoint as ckpt
from openvlthinker.engine.trainer import Trainer


class _Saves:
    """Stands in for a model and a processor: save_pretrained writes one file."""

    def save_pretrained(self, folder):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text("{}")


def _save(out, step, score=None, keep=0):
    return ckpt.save_checkpoint(
        out, step, _Saves(), _Saves(), {"step": step}, keep=keep, best_score=score
    )


def _steps(out):
    return [step for step, _ in ckpt.list_checkpoints(out)]


def test_the_best_checkpoint_survives_rotation_and_is_named(tmp_path):
    for step, score in zip([1, 2, 3, 4], [0.5, 0.9, 0.3, 0.4], strict=True):
        _save(tmp_path, step, score, keep=1)
    assert _steps(tmp_path) == [2, 4]  # the newest one, and the best besides it
    best = json.loads((tmp_path / "checkpoints" / ckpt.BEST_FILE).read_text())
    assert best == {"step": 2, "score": 0.9, "metric": "val/score", "path": "global_step_2"}
    _save(tmp_path, 5, 0.95, keep=1)  # a new best: the old one may go now
    assert _steps(tmp_path) == [5]
    assert ckpt.best_checkpoint(tmp_path)["step"] == 5


def test_a_tie_keeps_the_earlier_checkpoint(tmp_path):
    _save(tmp_path, 1, 0.5, keep=1)
    _save(tmp_path, 2, 0.5, keep=1)
    assert ckpt.best_checkpoint(tmp_path)["step"] == 1 and _steps(tmp_path) == [1, 2]


def test_without_scores_rotation_is_unchanged(tmp_path):
    for step in (1, 2, 3):
        _save(tmp_path, step, keep=2)
    assert _steps(tmp_path) == [2, 3] and ckpt.best_checkpoint(tmp_path) is None


def test_a_fresh_run_in_the_same_folder_replaces_the_old_record(tmp_path):
    _save(tmp_path, 4, 0.9)
    _save(tmp_path, 1, 0.1)  # a new run: the record of step 4 belongs to the run it replaces
    assert ckpt.best_checkpoint(tmp_path) == {
        "step": 1,
        "score": 0.1,
        "metric": "val/score",
        "path": "global_step_1",
    }


def test_a_run_with_save_best_keeps_its_best_validated_checkpoint(engine_config, tmp_path):
    cfg = engine_config(
        "trainer.total_steps=3",
        "trainer.save_freq=1",
        "trainer.test_freq=1",
        "trainer.save_limit=1",
        "trainer.save_best=true",
        "actor.lr=0.05",
    )
    history = Trainer(cfg).fit()
    scores = {row["step"]: row["val/score"] for row in history}
    best_step = max(scores, key=lambda s: (scores[s], -s))
    best = ckpt.best_checkpoint(tmp_path / "run")
    assert (best["step"], best["score"]) == (best_step, scores[best_step])
    assert _steps(tmp_path / "run") == sorted({best_step, 3})
    state = ckpt.load_trainer_state(tmp_path / "run" / "checkpoints" / best["path"])
    assert state["step"] == best_step and torch.is_tensor(state["rng"]["torch"])
