"""Show G2RPO against GRPO on example multi-task rewards: a table and a PNG.

python -m openvlthinker.advantage.demo [--out outputs/advantage_demo.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from openvlthinker.advantage import compute_advantage

# One prompt group of 5 rollouts per task, with the reward shape typical of each domain.
EXAMPLE = {
    "math": [0.0, 0.0, 1.0, 1.0, 1.0],
    "grounding": [0.12, 0.55, 0.61, 0.74, 0.93],
    "ocr": [0.98, 0.97, 0.99, 0.2, 0.96],
    "chart": [1.0, 1.0, 1.0, 1.0, 1.0],
}
ESTIMATORS = ("grpo", "gs_grpo")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/advantage_demo.png"))
    args = parser.parse_args(argv)

    tasks = [t for t, rs in EXAMPLE.items() for _ in rs]
    rewards = torch.tensor([r for rs in EXAMPLE.values() for r in rs], dtype=torch.float64)
    group = [f"{t}-prompt" for t in tasks]
    advantages = {name: compute_advantage(name, rewards, group, tasks) for name in ESTIMATORS}

    table = Table(title="Advantages per response (one prompt group of 5 per task)")
    for column in ("task", "reward", *ESTIMATORS):
        table.add_column(column, justify="right")
    for i, task in enumerate(tasks):
        table.add_row(task, f"{rewards[i]:.2f}", *(f"{advantages[n][i]:+.3f}" for n in ESTIMATORS))
    Console().print(table)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(EXAMPLE), figsize=(4 * len(EXAMPLE), 3.2), sharey=True)
    for ax, task in zip(axes, EXAMPLE):
        rows = [i for i, t in enumerate(tasks) if t == task]
        for name, marker in zip(ESTIMATORS, ("o", "s")):
            ax.plot(rewards[rows], advantages[name][rows], marker, label=name, alpha=0.8)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(task)
        ax.set_xlabel("reward")
    axes[0].set_ylabel("advantage")
    axes[0].legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    Console().print(f"plot saved to {args.out}")


if __name__ == "__main__":
    main()
