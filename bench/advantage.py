"""Time the advantage estimators against the loop oracle and a single sort (the floor).

    python bench/advantage.py [--repeats 30]

Batches of P prompts x 8 samples over 6 tasks, binary-ish rewards with heavy ties.
Goals (issue 2): >= 50x faster than the loop oracle at B = 4096; within 5x of one
``torch.sort`` of the batch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openvlthinker.advantage import compute_advantage
from tests.advantage import oracle

TASKS = ("grounding", "spatial", "science", "math", "chart", "ocr")
SAMPLES = 8


def make_batch(prompts: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n = prompts * SAMPLES
    group = torch.arange(prompts).repeat_interleave(SAMPLES)
    task_of_prompt = torch.randint(len(TASKS), (prompts,), generator=g)
    task = [TASKS[i] for i in task_of_prompt.repeat_interleave(SAMPLES).tolist()]
    rewards = (torch.rand(n, generator=g, dtype=torch.float64) * 4).floor() / 4
    components = {
        "correctness": rewards,
        "format": (torch.rand(n, generator=g, dtype=torch.float64) > 0.2).double(),
        "structure": (torch.rand(n, generator=g, dtype=torch.float64) > 0.5).double() * 0.5,
    }
    return rewards, group, task, components


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[512, 2048], help="prompts per batch"
    )
    parser.add_argument("--plot", type=Path, default=Path("outputs/bench/advantage.png"))
    args = parser.parse_args()
    rows: list[tuple[int, str, float, float, float]] = []
    torch.set_num_threads(1)

    header = f"{'B':>6} {'estimator':<9} {'ours ms':>9} {'oracle ms':>10} {'x oracle':>9} {'sort ms':>8} {'/ sort':>7}"
    print(header)
    print("-" * len(header))
    for prompts in args.sizes:
        rewards, group, task, comps = make_batch(prompts)
        glist, clist = group.tolist(), {k: v.tolist() for k, v in comps.items()}
        sort_s = median_seconds(lambda: torch.sort(rewards), args.repeats * 10)
        cases = {
            "gs_grpo": (
                lambda: compute_advantage("gs_grpo", rewards, group, task),
                lambda: oracle.gs_grpo(rewards.tolist(), glist, task),
            ),
            "gs_gdpo": (
                lambda: compute_advantage("gs_gdpo", rewards, group, task, comps),
                lambda: oracle.gs_gdpo(clist, glist, task),
            ),
            "grpo": (
                lambda: compute_advantage("grpo", rewards, group, task),
                lambda: oracle.grpo(rewards.tolist(), glist),
            ),
        }
        for name, (ours, slow) in cases.items():
            ours_s = median_seconds(ours, args.repeats)
            start = time.perf_counter()
            slow()
            oracle_s = time.perf_counter() - start
            rows.append((rewards.numel(), name, ours_s, oracle_s, sort_s))
            print(
                f"{rewards.numel():>6} {name:<9} {ours_s * 1e3:>9.3f} {oracle_s * 1e3:>10.1f} "
                f"{oracle_s / ours_s:>8.0f}x {sort_s * 1e3:>8.3f} {ours_s / sort_s:>6.1f}x"
            )
    plot(rows, args.plot)


def plot(rows: list[tuple[int, str, float, float, float]], path: Path) -> None:
    """Bars of median time per estimator and batch size, log scale, with oracle and sort."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{name}\nB={b}" for b, name, *_ in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(1.4 * len(rows) + 2, 4))
    width = 0.28
    for offset, column, label in (
        (-width, 3, "loop oracle"),
        (0.0, 2, "ours"),
        (width, 4, "one torch.sort"),
    ):
        ax.bar([i + offset for i in x], [r[column] * 1e3 for r in rows], width, label=label)
    ax.set_yscale("log")
    ax.set_ylabel("median ms per call")
    ax.set_xticks(list(x), labels)
    ax.legend()
    ax.set_title("advantage estimators (1 thread)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
