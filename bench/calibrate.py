"""Hand-set vs calibrated shaping bounds on the tiny CPU config, a few seeds each.

    python bench/calibrate.py [--seeds 1 2 3] [--steps 10] [--plot outputs/bench/calibrate.png]
                              [key=value overrides]

Arm "hand-set" trains on configs/tasks_tiny.yaml (its envelopes and the released band
0.2 / 0.6). Arm "calibrated" trains on the same file with every envelope and band set to
`auto`, so each run measures the initial policy before step 1 (method.md section 7). For
every training response the script records whether its length lies on its arm's plateau
[L_low, L_high] and whether it earns any length reward (L_min < length < L_max), and for
every step whether the task's token-mean entropy H_t lies inside its arm's band. It prints
the per-task shares over the run (mean and spread over seeds) and plots them.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from timed_run import timed_run_overrides  # bench/, the script's own folder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HAND = ROOT / "configs" / "tasks_tiny.yaml"
AUTO = """extends: {base}
defaults:
  entropy_band: {{h_min: auto, h_max: auto, coef: 0.02}}
tasks:
{tasks}
"""


def auto_file(folder: Path, tasks: list[str]) -> Path:
    path = folder / "tasks_auto.yaml"
    body = "\n".join(f"  {t}: {{length_envelope: auto}}" for t in tasks)
    path.write_text(AUTO.format(base=HAND, tasks=body))
    return path


def run(config: str, overrides: list[str], out: Path) -> dict:
    """One training run; per task: plateau / any-length-reward / band counts and the bounds."""
    import torch

    from openvlthinker.engine.config import load_config
    from openvlthinker.engine.trainer import Trainer

    cfg = load_config(
        config,
        [
            *timed_run_overrides(out),
            "trainer.num_threads=1",
            *overrides,
        ],
    )
    trainer = Trainer(cfg)
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    measure = trainer.batch_metrics

    def batch_metrics(batch, advantages, token_entropy):
        lengths = batch.rollout.response_mask.sum(-1).cpu()
        entropy = (token_entropy.double().cpu() * batch.rollout.response_mask.cpu()).sum(-1)
        tasks = [r.task for r in batch.records]
        for task in set(tasks):
            rows = torch.tensor([t == task for t in tasks])
            spec = trainer.registry[task]
            l_min, l_low, l_high, l_max = spec.length_envelope
            h_min, h_max, _ = spec.entropy_band
            x = lengths[rows]
            h_t = float(entropy[rows].sum() / x.sum().clamp_min(1))
            c = counts[task]
            c["responses"] += x.numel()
            c["plateau"] += int(((x >= l_low) & (x <= l_high)).sum())
            c["rewarded"] += int(((x > l_min) & (x < l_max)).sum())
            c["steps"] += 1
            c["band"] += int(h_min <= h_t <= h_max)
            c["last_entropy"] = h_t
        return measure(batch, advantages, token_entropy)

    trainer.batch_metrics = batch_metrics
    trainer.fit()
    bounds = {
        t: (trainer.registry[t].length_envelope, trainer.registry[t].entropy_band[:2])
        for t in trainer.registry
    }
    return {"counts": {t: dict(c) for t, c in counts.items()}, "bounds": bounds}


def share(values: list[float]) -> str:
    mean = statistics.fmean(values)
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:5.1f} ± {100 * spread:4.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config", default=str(ROOT / "configs/tiny_cpu.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--plot", type=Path, default=Path("outputs/bench/calibrate.png"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error(f"--steps {args.steps}: need at least 2 (the shares are over a run's steps)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING)

    from openvlthinker.tasks import load_tasks

    tasks = list(load_tasks(HAND, check_files=False))
    results: dict[str, list[dict]] = {"hand-set": [], "calibrated": []}
    with tempfile.TemporaryDirectory() as tmp:
        files = {"hand-set": HAND, "calibrated": auto_file(Path(tmp), tasks)}
        for seed in args.seeds:
            for arm, task_file in files.items():
                overrides = [
                    f"data.tasks={task_file}",
                    f"trainer.seed={seed}",
                    f"trainer.total_steps={args.steps}",
                    *args.overrides,
                ]
                out = Path(tmp) / f"{arm}-{seed}"
                results[arm].append(run(args.config, overrides, out))
                sys.stdout.write(f"seed {seed} {arm}: done\n")

    sys.stdout.write(
        f"\n{len(args.seeds)} seeds x {args.steps} steps, {args.config}; shares in %, "
        "mean ± spread over seeds\n\n"
    )
    header = (
        f"{'task':10s} {'arm':11s} {'on plateau':>13s} {'length reward>0':>15s} "
        f"{'H_t in band':>13s} {'last H_t':>8s}   bounds (seed {args.seeds[0]})\n"
    )
    sys.stdout.write(header + "-" * (len(header) + 30) + "\n")
    table: dict[tuple[str, str], tuple[float, float]] = {}
    for task in tasks:
        for arm, runs in results.items():
            per_seed = [r["counts"][task] for r in runs if task in r["counts"]]
            if not per_seed:  # a short run may never draw a task's records
                sys.stdout.write(f"{task:10s} {arm:11s} not drawn in any run\n")
                table[task, arm] = (math.nan, math.nan)
                continue
            plateau = [c["plateau"] / c["responses"] for c in per_seed]
            rewarded = [c["rewarded"] / c["responses"] for c in per_seed]
            band = [c["band"] / c["steps"] for c in per_seed]
            last = statistics.fmean(c["last_entropy"] for c in per_seed)
            envelope, (h_min, h_max) = runs[0]["bounds"][task]
            table[task, arm] = (statistics.fmean(plateau), statistics.fmean(band))
            sys.stdout.write(
                f"{task:10s} {arm:11s} {share(plateau):>13s} {share(rewarded):>15s} "
                f"{share(band):>13s} {last:8.3f}   {list(envelope)} [{h_min}, {h_max}]\n"
            )
    plot(table, tasks, args.plot)
    sys.stdout.write(f"\nplot: {args.plot}\n")
    return 0


def plot(table: dict[tuple[str, str], tuple[float, float]], tasks: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    x = np.arange(len(tasks))
    for ax, k, title in zip(axes, (0, 1), ("responses on the plateau", "steps with H_t in band")):
        for i, arm in enumerate(("hand-set", "calibrated")):
            ax.bar(x + (i - 0.5) * 0.4, [100 * table[t, arm][k] for t in tasks], 0.4, label=arm)
        ax.set_xticks(x, tasks, fontsize=8)
        ax.set_ylabel("%")
        ax.set_title(title)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
