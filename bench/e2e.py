"""Step-time breakdown of the tiny CPU config: generation, scoring, advantage, update.

    python bench/e2e.py [--steps 5] [key=value overrides]

Trains the tiny config for a few steps (no validation, no checkpoints) and prints a
table of the mean time per phase, its share of the step, and peak memory, plus the
projected time of the default 20-step run against its 5-minute goal, and the
advantage + shaping share against its 1 % goal (the baseline is the whole step,
measured in the same run).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHASES = (
    ("generate", "timing/generate"),
    ("reward", "timing/reward"),
    ("advantage", "timing/advantage"),
    ("old log-prob", "timing/old_log_prob"),
    ("update", "timing/update"),
    ("  band (in update)", "timing/entropy_band"),
    ("  band pre-pass", "timing/entropy_band_prepass"),
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config", default=str(ROOT / "configs/tiny_cpu.yaml"))
    parser.add_argument("--steps", type=int, default=5, help="steps to time (after 1 warm-up)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)

    from openvlthinker.engine.config import load_config
    from openvlthinker.engine.trainer import Trainer

    default = load_config(args.config, args.overrides)  # the run being projected
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(
            args.config,
            [
                f"trainer.out_dir={out}",
                f"trainer.total_steps={args.steps + 1}",
                "trainer.val_freq=0",
                "trainer.val_before_train=false",
                "trainer.save_freq=0",
                "trainer.resume=disable",
                "trainer.logger=[jsonl]",
                "trainer.progress_bar=false",
                "trainer.plot=false",
                *args.overrides,
            ],
        )
        t0 = time.perf_counter()
        trainer = Trainer(cfg)
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        val = trainer.validate()
        val_time = time.perf_counter() - t0 if val else 0.0
        history = trainer.fit()
    rows = history[1:]  # the first step pays one-off warm-up costs
    step = sum(r["timing/step"] for r in rows) / len(rows)
    print(
        f"tiny CPU config: {cfg.data.rollout_batch_size} prompts x {cfg.rollout.n} responses, "
        f"<= {cfg.rollout.max_new_tokens} new tokens, torch threads {__import__('torch').get_num_threads()}"
    )
    print(f"{'phase':<18}{'s/step':>10}{'share':>9}")
    for name, key in PHASES:
        value = sum(r.get(key, 0.0) for r in rows) / len(rows)
        print(f"{name:<18}{value:>10.3f}{value / step:>9.1%}")
    print(f"{'step (baseline)':<18}{step:>10.3f}{1:>9.0%}")
    peak = max(r["perf/peak_memory_mb"] for r in rows)
    print(f"peak memory (RSS / GPU allocated): {peak:.0f} MiB")
    shaping = sum(r["timing/advantage"] + r.get("timing/entropy_band", 0.0) for r in rows) / len(
        rows
    )
    print(
        f"advantage + entropy-band arithmetic share of step: {shaping / step:.3%} (goal < 1%; "
        "the length trapezoid is inside reward, the band's backward inside update)"
    )
    default_steps = default.trainer.total_steps
    freq = default.trainer.val_freq
    val_runs = (default_steps // freq if freq else 0) + int(default.trainer.val_before_train)
    projected = setup + default_steps * step + val_runs * val_time
    print(
        f"projected default run ({default_steps} steps, {val_runs} validations): "
        f"{projected:.0f} s = {projected / 300:.2f} x the 5-minute goal"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
