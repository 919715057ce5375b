"""Reward throughput: a mixed batch of 4096 responses of every problem type.

Prints responses/s per core serially (the baseline) and with the worker pool, their ratio,
and the slowest 1% of calls (p99 and max latency); saves a latency histogram PNG.
Goal (issue 3): >= 2,000 responses/s on 2 cores, no call above 2 s.

    python bench/rewards.py [--n 4096] [--workers 2] [--out outputs/bench]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openvlthinker.problem_types import BUILTIN_PROBLEM_TYPES
from openvlthinker.rewards import RewardConfig, ScorerPool, score_batch
from openvlthinker.rewards.score import score_item
from openvlthinker.rewards.symbolic import math_equal, parse_math

GROUP = 8  # responses per prompt, as in a rollout


def _wrap(answer: str, rng: random.Random) -> str:
    thought = " ".join(
        rng.choice(["so", "the", "image", "shows", "we", "compute", "hence"])
        for _ in range(rng.randint(20, 200))
    )
    roll = rng.random()
    if roll < 0.05:
        return answer  # no tags
    if roll < 0.08:
        return f"<think>{thought}</think>"  # no answer
    return f"<think>{thought}</think>\n<answer>{answer}</answer>"


def _prompt(kind: str, rng: random.Random) -> tuple[object, list[str], dict]:
    """(ground truth, GROUP candidate answers, extra item fields) for one prompt."""
    if kind == "multiple_choice":
        key = rng.choice("ABCD")
        opts = [f"{c}. option {c.lower()} text" for c in "ABCD"]
        answers = [
            rng.choice(
                [
                    key,
                    f"({key})",
                    f"{key}. option",
                    rng.choice("ABCD"),
                    "option b text",
                    "I am not sure",
                ]
            )
            for _ in range(GROUP)
        ]
        return key, answers, {"options": opts}
    if kind in ("numerical", "counting", "regression"):
        key = rng.randint(0, 500) if kind == "counting" else round(rng.uniform(-100, 1000), 2)
        answers = [
            rng.choice(
                [
                    str(key),
                    f"{key} cm",
                    f"{key * rng.uniform(0.8, 1.2):.2f}",
                    "twelve",
                    "about 3 or 4",
                ]
            )
            for _ in range(GROUP)
        ]
        return str(key), answers, {}
    if kind == "math":
        a, b = rng.randint(1, 50), rng.randint(2, 60)
        forms = [
            f"\\frac{{{a}}}{{{b}}}",
            f"{a}/{b}",
            f"{a / b:.6f}",
            f"\\frac{{{a + 1}}}{{{b}}}",
            f"x^{a}+{b}",
            f"\\sqrt{{{a}}}",
        ]
        return f"\\frac{{{a}}}{{{b}}}", [rng.choice(forms) for _ in range(GROUP)], {}
    if kind in ("ocr", "open_ended"):
        words = [
            rng.choice(["total", "invoice", "the", "cat", "sat", "on", "mat", "2024", "paid"])
            for _ in range(rng.randint(3, 40))
        ]
        ref = " ".join(words)
        answers = [" ".join(w for w in words if rng.random() > 0.2) for _ in range(GROUP)]
        return ref, answers, {}
    if kind == "spatial_grounding":
        x, y = rng.randint(0, 400), rng.randint(0, 300)
        gt = {"boxes": [x, y, x + rng.randint(20, 200), y + rng.randint(20, 200)]}
        answers = []
        for _ in range(GROUP):
            j = [round(v * 1000 / 640 + rng.uniform(-20, 20)) for v in gt["boxes"]]
            answers.append(
                rng.choice(
                    [
                        json.dumps({"boxes": j}),
                        json.dumps({"boxes": [j, j]}),
                        "{boxes: [1,2",
                        f"```json\n{json.dumps({'boxes': j})}\n```",
                    ]
                )
            )
        return json.dumps(gt), answers, {"image_size": (640, 480)}
    if kind == "temporal_grounding":
        s = round(rng.uniform(0, 50), 1)
        gt = {"time": [s, s + 10]}
        answers = [
            json.dumps({"time": [s + rng.uniform(-5, 5), s + 10 + rng.uniform(-5, 5)]})
            for _ in range(GROUP)
        ]
        return json.dumps(gt), answers, {}
    if kind in ("tracking", "spatial_temporal_grounding"):
        frames = {str(f): [10 * f, 10, 10 * f + 100, 120] for f in range(rng.randint(3, 16))}
        gt = {"boxes": frames, "time": [0.0, 8.0]}
        answers = []
        for _ in range(GROUP):
            pred = {
                k: [v + rng.uniform(-10, 10) for v in b]
                for k, b in frames.items()
                if rng.random() > 0.2
            }
            answers.append(json.dumps({"boxes": pred, "time": [0.5, 7.0]}))
        return json.dumps(gt), answers, {"coordinate_frame_note": None}
    if kind == "segmentation":
        gt = {
            "boxes": [10, 10, 200, 200],
            "positive_points": [[50, 50], [60, 60], [70, 70]],
            "negative_points": [[5, 5], [300, 300], [250, 10]],
        }
        answers = [
            json.dumps({**gt, "boxes": [10 + rng.randint(-9, 9), 10, 200, 200]})
            for _ in range(GROUP)
        ]
        return json.dumps(gt), answers, {}
    raise ValueError(kind)


def make_batch(n: int, seed: int = 0) -> list[dict]:
    """n items cycling over every built-in problem type, GROUP responses per prompt."""
    rng = random.Random(seed)
    kinds = list(BUILTIN_PROBLEM_TYPES)
    items: list[dict] = []
    while len(items) < n:
        kind = kinds[(len(items) // GROUP) % len(kinds)]
        gt, answers, extra = _prompt(kind, rng)
        extra.pop("coordinate_frame_note", None)
        for answer in answers:
            response = _wrap(answer, rng)
            items.append(
                {
                    "response": response,
                    "ground_truth": gt,
                    "problem_type": kind,
                    "response_tokens": len(response) // 4,
                    "length_envelope": (16, 64, 512, 2048),
                    **extra,
                }
            )
    return items[:n]


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of processes (Linux /proc)."""
    import os

    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    args = parser.parse_args()
    config = RewardConfig(workers=args.workers)
    items = make_batch(args.n)

    t0 = time.perf_counter()
    pool = ScorerPool(args.workers, config.start_method)
    pool.map(items[:8], config)  # wait until every worker is up
    startup = time.perf_counter() - t0
    cpu0 = _cpu_seconds(pool.pids()) + time.process_time()
    t0 = time.perf_counter()
    pooled = pool.map(items, config)
    pool_s = time.perf_counter() - t0
    pool_cpu = _cpu_seconds(pool.pids()) + time.process_time() - cpu0
    pool.close()

    # Same start as a worker: LaTeX grammar built (once per process), caches empty.
    math_equal("1", "1")
    parse_math.cache_clear()
    math_equal.cache_clear()
    latencies = np.empty(len(items))
    serial = []
    t_all, cpu0 = time.perf_counter(), time.process_time()
    for i, item in enumerate(items):
        t0 = time.perf_counter()
        serial.append(score_item(item, config))
        latencies[i] = time.perf_counter() - t0
    serial_s = time.perf_counter() - t_all
    serial_cpu = time.process_time() - cpu0
    assert [r["overall"] for r in serial] == [r["overall"] for r in pooled], (
        "pool and serial disagree"
    )
    assert score_batch(items[:64], workers=0, config=config) == serial[:64]

    serial_rate, pool_rate = len(items) / serial_s, len(items) / pool_s
    p99, worst = np.percentile(latencies, 99) * 1e3, latencies.max() * 1e3
    errors = sum(r["error"] is not None for r in serial)
    print(
        f"{len(items)} responses, 12 problem types, {errors} with an error (malformed on purpose)"
    )
    print("responses/s from wall time; per CPU-s: responses per CPU-second of every process")
    print("involved (parent + workers), which does not depend on what else shares the cores")
    rows = [
        ("serial (baseline)", serial_s, serial_rate, serial_rate, serial_cpu),
        (f"pool, {args.workers} workers", pool_s, pool_rate, pool_rate / args.workers, pool_cpu),
    ]
    print(
        f"{'mode':<20}{'wall s':>8}{'resp/s':>9}{'per core':>10}{'vs serial':>11}{'per CPU-s':>11}"
    )
    for name, wall, rate, per_core, cpu in rows:
        ratio = rate / serial_rate
        print(
            f"{name:<20}{wall:>8.3f}{rate:>9.0f}{per_core:>10.0f}{ratio:>10.2f}x{len(items) / cpu:>11.0f}"
        )
    print(f"pool start-up (not timed above): {startup:.2f} s")
    print(
        f"latency per call: median {np.median(latencies) * 1e3:.3f} ms, p99 {p99:.2f} ms, max {worst:.2f} ms"
    )
    print(
        f"goal >= 2000 responses/s on 2 cores: {'met' if pool_rate >= 2000 else 'NOT met'}; max call <= 2 s: {'met' if worst <= 2000 else 'NOT met'}"
    )
    by_type: dict[str, list[float]] = {}
    for item, lat in zip(items, latencies):
        by_type.setdefault(item["problem_type"], []).append(lat * 1e3)
    print(f"{'problem type':<28}{'mean ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind, values in by_type.items():
        print(
            f"{kind:<28}{np.mean(values):>9.3f}{np.percentile(values, 99):>9.2f}{np.max(values):>9.2f}"
        )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(latencies * 1e3, bins=np.logspace(-2, np.log10(max(worst, 1.0)), 60))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axvline(p99, color="red", label=f"p99 {p99:.2f} ms")
    ax.set_xlabel("serial latency per call (ms)")
    ax.set_ylabel("calls")
    ax.set_title(f"reward latency, {len(items)} mixed responses")
    ax.legend()
    fig.tight_layout()
    path = args.out / "rewards_latency.png"
    fig.savefig(path, dpi=120)
    print(f"latency histogram: {path}")


if __name__ == "__main__":
    main()
