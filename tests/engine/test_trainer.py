"""The task file's scorer options reach the engine's reward calls."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from openvlthinker.engine.trainer import Trainer


@pytest.mark.parametrize(("case_sensitive", "expected"), [(False, 1.0), (True, 0.2)])
def test_the_engine_scores_with_the_tasks_scorer_options(engine_config, case_sensitive, expected):
    cfg = engine_config()
    tasks = Path(cfg.data.tasks)
    option = "true" if case_sensitive else "false"
    tasks.write_text(
        tasks.read_text().replace(
            "defaults:\n", f"defaults:\n  scorer_options: {{ocr: {{case_sensitive: {option}}}}}\n"
        )
    )
    trainer = Trainer(cfg)
    assert trainer.registry["alpha"].scorer_options == {"ocr": {"case_sensitive": case_sensitive}}
    text = "<think>x</think><answer>THE THE THE THE</answer>"
    ids = torch.tensor([trainer.tokenizer(text)["input_ids"]])
    rollout = SimpleNamespace(responses=ids, response_lengths=lambda: torch.tensor([ids.shape[1]]))
    record = trainer.train_records[0]
    (result,) = trainer.score(rollout, [record], [(32, 32)])
    # the test reward is 1 - CER against "the the the the": 12 of 15 characters differ in case
    assert result["correctness"] == pytest.approx(expected)
