"""The overrides every engine benchmark trains under: only the steps being timed run."""

from __future__ import annotations


def timed_run_overrides(out_dir: str) -> list[str]:
    """No validation, checkpoints, resume, plot or progress bar; metrics to ``out_dir`` as
    JSONL (the benchmarks read their timings from the returned history)."""
    return [
        f"trainer.out_dir={out_dir}",
        "trainer.test_freq=0",
        "trainer.val_before_train=false",
        "trainer.save_freq=0",
        "trainer.resume_mode=disable",
        "trainer.logger=[jsonl]",
        "trainer.progress_bar=false",
        "trainer.plot=false",
    ]
