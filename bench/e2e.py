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

    python bench/e2e.py --verl [--steps 3]

adds the verl rows (``configs/tiny_cpu_verl.yaml``, CPU backend, same tiny model and batch,
measured in the same run): stock verl (``grpo``, verl's ``naive`` reward manager scoring with
our rule suite, no band) against our plugin (``gs_grpo``, our reward manager with length
shaping, the entropy band), verl's time per phase and the plugin's overhead per phase
(goal: < 5 % of the step), with the single-process engine's step beside both.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from timed_run import timed_run_overrides  # bench/, the script's own folder

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
    parser.add_argument("--verl", action="store_true", help="also time verl: stock vs plugin")
    parser.add_argument("--verl-run", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.verl_run:
        return verl_run(*args.verl_run, steps=args.steps)
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
                *timed_run_overrides(out),
                f"trainer.total_steps={args.steps + 1}",
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
    freq = default.trainer.test_freq
    val_runs = (default_steps // freq if freq else 0) + int(default.trainer.val_before_train)
    projected = setup + default_steps * step + val_runs * val_time
    print(
        f"projected default run ({default_steps} steps, {val_runs} validations): "
        f"{projected:.0f} s = {projected / 300:.2f} x the 5-minute goal"
    )
    if args.verl:
        verl_rows(args.steps, engine_step=step)
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
                *timed_run_overrides(out),
                f"trainer.total_steps={steps + 1}",
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


# --- verl rows: stock verl vs our plugin on configs/tiny_cpu_verl.yaml -----------------

VERL_CONFIG = ROOT / "configs" / "tiny_cpu_verl.yaml"
#: verl's timing metrics (seconds per step) in the order of a step; the V1 trainer scores
#: each response in its agent loop, so reward time is inside generate.
VERL_PHASES = (
    ("generate+reward", "timing_s/gen"),
    ("old log-prob", "timing_s/old_log_prob"),
    ("advantage", "timing_s/adv"),
    ("update", "timing_s/update_actor"),
    ("weight sync", "timing_s/update_weights"),
)
VERL_MODES = {
    "stock": [
        "algorithm.adv_estimator=grpo",
        "openvlthinker.entropy_band.enable=false",
        "reward.reward_manager.name=naive",
        f"reward.custom_reward_function.path={Path(__file__).resolve()}",
        "reward.custom_reward_function.name=verl_score",
    ],
    "plugin": ["algorithm.adv_estimator=gs_grpo", "openvlthinker.entropy_band.enable=true"],
}


def verl_score(data_source: str, solution_str: str, ground_truth: str, extra_info=None) -> dict:
    """verl ``compute_score`` for the stock row: our rule suite on the decoded text, with
    no token lengths or task envelopes (what a plain verl reward function sees)."""
    from openvlthinker.rewards import score
    from openvlthinker.verl_plugin.reward import decode_ground_truth

    extra = extra_info or {}
    result = score(
        solution_str,
        decode_ground_truth(ground_truth),
        extra.get("problem_type") or "multiple_choice",
        options=list(extra["options"]) if extra.get("options") is not None else None,
    )
    return {"score": float(result["overall"]), "acc": float(result.get("correctness", 0.0))}


def verl_run(mode: str, out: str, steps: int) -> int:
    """One verl run (a child process of :func:`verl_rows`): ``stock`` through verl's own
    ``TaskRunnerV1``, ``plugin`` through ``G2RPOTaskRunner``."""
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo

    import openvlthinker.verl_plugin  # noqa: F401
    from openvlthinker.verl_plugin.config import compose_config
    from openvlthinker.verl_plugin.main import prepare
    from openvlthinker.verl_plugin.trainer import G2RPOTaskRunner

    cfg = compose_config(
        VERL_CONFIG,
        [
            *VERL_MODES[mode],
            f"openvlthinker.export_dir={out}/data",
            f"openvlthinker.tiny_model_cache={out}/models",
            f"trainer.default_local_dir={out}/ckpt_{mode}",
            f"trainer.total_training_steps={steps + 1}",
            "trainer.save_freq=-1",
            "trainer.test_freq=-1",
            "trainer.val_before_train=false",
            "trainer.logger=[console,file]",
        ],
    )
    prepare(cfg)
    run_ppo(cfg, task_runner_class=G2RPOTaskRunner if mode == "plugin" else TaskRunnerV1)
    return 0


def _verl_timings(mode: str, out: Path, steps: int) -> dict[str, float]:
    import json
    import subprocess

    log = out / f"{mode}.jsonl"
    env = {**os.environ, "VERL_FILE_LOGGER_PATH": str(log), "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, __file__, "--steps", str(steps), "--verl-run", mode, str(out)]
    with open(out / f"{mode}.log", "w") as f:
        subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, check=True)
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    rows = [r["data"] for r in rows if r["step"] > 1]  # step 1 pays one-off warm-up costs
    keys = [key for _, key in VERL_PHASES] + ["timing_s/step"]
    return {k: sum(r.get(k, 0.0) for r in rows) / len(rows) for k in keys}


def verl_rows(steps: int, engine_step: float) -> None:
    """Stock verl and our plugin on the same tiny config and batch, then the table."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        stock = _verl_timings("stock", out, steps)
        plugin = _verl_timings("plugin", out, steps)
    print(
        "\nverl 0.9.1 on the CPU backend, configs/tiny_cpu_verl.yaml (s/step, mean of "
        f"{steps} steps after 1 warm-up)"
    )
    print(f"{'phase':<16}{'stock':>9}{'plugin':>9}{'overhead':>10}{'of step':>9}")
    base = stock["timing_s/step"]
    for name, key in [*VERL_PHASES, ("step", "timing_s/step")]:
        extra = plugin[key] - stock[key]
        print(
            f"{name:<14}{stock[key]:>9.3f}{plugin[key]:>9.3f}{extra:>+10.3f}{extra / base:>+9.1%}"
        )
    print(
        f"plugin overhead per step: {(plugin['timing_s/step'] - base) / base:+.1%} (goal < 5 %); "
        f"single-process engine step: {engine_step:.3f} s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
