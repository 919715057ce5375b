"""Step-time breakdown of the tiny CPU config: generation, scoring, advantage, update.

    python bench/e2e.py [--steps 5] [key=value overrides]
    python bench/e2e.py --finetuning [--steps 3] [key=value overrides]

Trains the tiny config for a few steps (no validation, no checkpoints) and prints a
table of the mean time per phase, its share of the step, and peak memory, plus the
projected time of the default 20-step run against its 5-minute goal, and the
advantage + shaping share against its 1 % goal (the baseline is the whole step,
measured in the same run).

``--finetuning`` instead compares full fine-tuning with a frozen vision tower, LoRA and
LoRA + frozen tower on the same config: step and update time, peak memory and trainable
parameters, each variant in a fresh process (peak RSS never resets inside one) of the
same run, full fine-tuning first as the baseline.
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
    parser.add_argument(
        "--finetuning",
        action="store_true",
        help="compare full fine-tuning, frozen vision tower and LoRA (rows of their own)",
    )
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    if args.finetuning:
        return finetuning_rows(args.config, args.steps, args.overrides)

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
    val_runs = (default_steps // freq + int(default.trainer.val_before_train)) if freq else 0
    projected = setup + default_steps * step + val_runs * val_time
    print(
        f"projected default run ({default_steps} steps, {val_runs} validations): "
        f"{projected:.0f} s = {projected / 300:.2f} x the 5-minute goal"
    )
    return 0


FINETUNING = (
    ("full fine-tuning (baseline)", []),
    ("frozen vision tower", ["model.freeze_vision_tower=true"]),
    ("LoRA r=16", ["model.lora_rank=16", "model.lora_alpha=32"]),
    (
        "LoRA r=16 + frozen tower",
        ["model.lora_rank=16", "model.lora_alpha=32", "model.freeze_vision_tower=true"],
    ),
)


def _time_variant(config: str, steps: int, overrides: list[str]) -> dict[str, float]:
    """Train ``steps + 1`` steps in this (fresh) process; means over all but the first."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    from openvlthinker.engine import lora
    from openvlthinker.engine.config import load_config
    from openvlthinker.engine.trainer import Trainer

    with tempfile.TemporaryDirectory() as out:
        # the bench's own loop keys last: they win over a size list's trainer.total_steps
        cfg = load_config(
            config,
            [
                *overrides,
                f"trainer.out_dir={out}",
                f"trainer.total_steps={steps + 1}",
                "trainer.val_freq=0",
                "trainer.val_before_train=false",
                "trainer.save_freq=0",
                "trainer.resume=disable",
                "trainer.logger=[jsonl]",
                "trainer.progress_bar=false",
                "trainer.plot=false",
            ],
        )
        trainer = Trainer(cfg)
        trainable, total = lora.parameter_counts(trainer.policy)
        rows = trainer.fit()[1:]
    mean = lambda key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    return {
        "step": mean("timing/step"),
        "update": mean("timing/update"),
        "peak": max(r["perf/peak_memory_mb"] for r in rows),
        "trainable": trainable,
        "total": total,
    }


def finetuning_rows(config: str, steps: int, overrides: list[str]) -> int:
    """Full fine-tuning vs frozen vision tower vs LoRA: one table, one run."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    results = []
    for name, extra in FINETUNING:
        with ctx.Pool(1) as pool:
            results.append((name, pool.apply(_time_variant, (config, steps, [*overrides, *extra]))))
    base = results[0][1]
    print(f"{steps} timed steps per variant (after 1 warm-up), config {Path(config).name}")
    print(
        f"{'variant':<28}{'trainable':>12}{'share':>9}{'s/step':>9}{'x base':>8}"
        f"{'update s':>10}{'x base':>8}{'peak MiB':>10}{'x base':>8}"
    )
    for name, r in results:
        print(
            f"{name:<28}{r['trainable']:>12,}{r['trainable'] / r['total']:>9.2%}"
            f"{r['step']:>9.3f}{r['step'] / base['step']:>8.2f}"
            f"{r['update']:>10.3f}{r['update'] / base['update']:>8.2f}"
            f"{r['peak']:>10.0f}{r['peak'] / base['peak']:>8.2f}"
        )
    print("peak memory: process peak RSS on CPU, torch.cuda.max_memory_allocated on a GPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
