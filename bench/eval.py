"""Examples/s of ``openvlthinker eval`` against the validation inside training.

    python bench/eval.py [--repeats 2] [key=value overrides]

One process, one model (the tiny config's), the same validation sets and settings (greedy,
the config's max_new_tokens, ``eval.batch_size = rollout.val_batch_size``, ``eval.max_records
= data.max_val_records``): the baseline is ``Trainer.validate`` (what a training run does
every ``test_freq`` steps), measured in the same run. Eval is timed twice: end to end (plan,
weights hash, model load, generation, scoring, samples and tables written) and its
generation + scoring alone (the ``seconds`` results.json records per set). A warm-up pass
of each runs first.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config", default=str(ROOT / "configs/tiny_cpu.yaml"))
    parser.add_argument("--repeats", type=int, default=2, help="timed passes of each (median)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)

    from openvlthinker.engine.config import load_config
    from openvlthinker.engine.trainer import Trainer
    from openvlthinker.evaluation.runner import plan_eval, run_eval

    with tempfile.TemporaryDirectory() as tmp:
        base = [f"trainer.out_dir={tmp}/run", "trainer.logger=[jsonl]", *args.overrides]
        cfg = load_config(args.config, base)
        same = [
            f"eval.batch_size={cfg.rollout.val_batch_size}",
            f"eval.max_records={cfg.data.max_val_records or 'null'}",
            f"eval.temperature={cfg.rollout.val_temperature}",
            f"eval.n={cfg.rollout.val_n}",
            "trainer.progress_bar=false",
        ]
        cfg = load_config(args.config, base + same)
        trainer = Trainer(cfg)
        sets = list(trainer.val_sets)
        examples = sum(len(r) for r in trainer.val_sets.values()) * cfg.rollout.val_n

        def timed(fn) -> float:
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0

        def one_eval(i: int) -> tuple[float, float]:
            out = Path(tmp) / f"eval{i}"
            t0 = time.perf_counter()
            run_eval(plan_eval(cfg, [trainer.model_path], out, sets), progress=False)
            total = time.perf_counter() - t0
            runs = json.loads((out / "results.json").read_text())["runs"]
            return total, sum(r["seconds"] for r in runs)

        trainer.validate()  # warm-up
        one_eval(-1)
        val_s = sorted(timed(trainer.validate) for _ in range(args.repeats))
        evals = [one_eval(i) for i in range(args.repeats)]
        ev_total = sorted(t for t, _ in evals)
        ev_gen = sorted(g for _, g in evals)

    def med(xs: list[float]) -> float:
        return xs[len(xs) // 2]

    rows = [
        ("validation inside training (baseline)", med(val_s)),
        ("openvlthinker eval, generation + scoring", med(ev_gen)),
        ("openvlthinker eval, end to end", med(ev_total)),
    ]
    sys.stdout.write(
        f"{len(sets)} sets, {examples} responses each pass, greedy, "
        f"max_new_tokens={cfg.rollout.max_new_tokens}, batch {cfg.rollout.val_batch_size}, "
        f"median of {args.repeats}\n\n"
    )
    sys.stdout.write(f"| {'path':42s} | {'seconds':>8s} | {'examples/s':>10s} | vs baseline |\n")
    sys.stdout.write(f"|{'-' * 44}|{'-' * 10}|{'-' * 12}|{'-' * 13}|\n")
    for label, seconds in rows:
        rate = examples / seconds
        ratio = rate / (examples / rows[0][1])
        sys.stdout.write(f"| {label:42s} | {seconds:8.2f} | {rate:10.2f} | {ratio:10.2f}x |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
