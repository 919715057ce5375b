"""Time the advantage estimators against the loop oracle, a single sort (the floor) and,
for the estimators verl 0.9.1 also has, verl's own function on the same batch.

    python bench/advantage.py [--repeats 30]

Batches of P prompts x 8 samples over 6 tasks, binary-ish rewards with heavy ties, ragged
response lengths. Goals (issue 2): >= 50x faster than the loop oracle at B = 4096; within
5x of one ``torch.sort`` of the batch. The ``verl`` columns time
``verl.trainer.ppo.core_algos`` and give the largest |ours - verl| over the batch's tokens
(our defaults are verl's numbers; "-" where verl has no such estimator or is not installed).
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
MAX_LEN = 32


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
    lengths = torch.randint(1, MAX_LEN + 1, (n,), generator=g)
    return rewards, group, task, components, lengths


def verl_cases(rewards, group, components, lengths) -> tuple[dict, torch.Tensor | None]:
    """(name -> call of verl's own function, the (B, T) token mask): verl's estimators on
    our batch, reward on each response's last token; ({}, None) without verl."""
    try:
        import numpy as np
        from omegaconf import OmegaConf
        from verl.trainer.ppo import core_algos
    except ImportError:
        return {}, None
    n = rewards.numel()
    mask = (torch.arange(MAX_LEN) < lengths.unsqueeze(1)).float()
    token = torch.zeros(n, MAX_LEN)
    token[torch.arange(n), lengths - 1] = rewards.float()
    uid = np.array([f"p{i}" for i in group.tolist()], dtype=object)
    keys = list(components)
    config = OmegaConf.create({"gdpo_reward_keys": keys, "gamma": 1.0})
    gdpo_batch = {
        "prompts": torch.zeros(n, 1, dtype=torch.long),
        "attention_mask": torch.cat([torch.ones(n, 1), mask], 1).long(),
    }
    non_tensor = {"uid": uid, **{k: v.numpy() for k, v in components.items()}}
    return {
        "grpo": lambda: core_algos.compute_grpo_outcome_advantage(token, mask, uid)[0],
        "rloo": lambda: core_algos.compute_rloo_outcome_advantage(token, mask, uid)[0],
        "reinforce_plus_plus": lambda: core_algos.compute_reinforce_plus_plus_outcome_advantage(
            token, mask, config=config
        )[0],
        "gdpo": lambda: core_algos.compute_gdpo_outcome_advantage(
            token, mask, uid, config=config, non_tensor_batch=non_tensor, batch=gdpo_batch
        )[0],
    }, mask


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
    rows: list[tuple[int, str, float, float, float, float]] = []
    torch.set_num_threads(1)

    header = (
        f"{'B':>6} {'estimator':<19} {'ours ms':>9} {'oracle ms':>10} {'x oracle':>9} "
        f"{'sort ms':>8} {'/ sort':>7} {'verl ms':>8} {'|ours-verl|':>12}"
    )
    print(header)
    print("-" * len(header))
    for prompts in args.sizes:
        rewards, group, task, comps, lengths = make_batch(prompts)
        glist, clist = group.tolist(), {k: v.tolist() for k, v in comps.items()}
        lens = lengths.tolist()
        sort_s = median_seconds(lambda: torch.sort(rewards), args.repeats * 10)
        verl, mask = verl_cases(rewards, group, comps, lengths)
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
            "gdpo": (
                lambda: compute_advantage("gdpo", rewards, group, task, comps, lengths=lengths),
                lambda: oracle.gdpo(clist, glist, lengths=lens),
            ),
            "rloo": (
                lambda: compute_advantage("rloo", rewards, group, task),
                lambda: oracle.rloo(rewards.tolist(), glist),
            ),
            "reinforce_plus_plus": (
                lambda: compute_advantage("reinforce_plus_plus", rewards, group, lengths=lengths),
                lambda: oracle.reinforce_plus_plus(rewards.tolist(), glist, lengths=lens),
            ),
        }
        for name, (ours, slow) in cases.items():
            ours_s = median_seconds(ours, args.repeats)
            start = time.perf_counter()
            slow()
            oracle_s = time.perf_counter() - start
            verl_col, diff_col, verl_s = f"{'-':>8}", f"{'-':>12}", float("nan")
            if name in verl:
                verl_s = median_seconds(verl[name], max(1, args.repeats // 10))
                diff = float((ours().double().unsqueeze(-1) * mask - verl[name]()).abs().max())
                verl_col, diff_col = f"{verl_s * 1e3:>8.1f}", f"{diff:>12.1e}"
            rows.append((rewards.numel(), name, ours_s, oracle_s, sort_s, verl_s))
            print(
                f"{rewards.numel():>6} {name:<19} {ours_s * 1e3:>9.3f} {oracle_s * 1e3:>10.1f} "
                f"{oracle_s / ours_s:>8.0f}x {sort_s * 1e3:>8.3f} {ours_s / sort_s:>6.1f}x "
                f"{verl_col} {diff_col}"
            )
    plot(rows, args.plot)


def plot(rows: list[tuple[int, str, float, float, float, float]], path: Path) -> None:
    """Bars of median time per estimator and batch size, log scale, with oracle, sort and
    verl's own function (where verl has the estimator)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{name}\nB={b}" for b, name, *_ in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(1.4 * len(rows) + 2, 4))
    width = 0.21
    for offset, column, label in (
        (-1.5 * width, 3, "loop oracle"),
        (-0.5 * width, 2, "ours"),
        (0.5 * width, 4, "one torch.sort"),
        (1.5 * width, 5, "verl core_algos"),
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
