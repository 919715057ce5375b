"""The verl path end to end on a CPU: verl 0.9.1's ``run_ppo`` with our task runner.

Three real runs of ``configs/tiny_cpu_verl.yaml`` (tiny Qwen3-VL, six tasks, CPU backend):
``gs_grpo`` for 2 steps with a checkpoint, then resumed to step 3; ``gs_gdpo`` on two ranks
(FSDP2 over two gloo processes); the SLURM launcher itself on two local Ray "nodes". What
verl trained on is read back from TransferQueue inside the run (``verl_run.py``) and compared
with :func:`compute_advantage` on that step's rewards, tasks and groups.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from openvlthinker.advantage import compute_advantage
from openvlthinker.step import SCORE_KEYS
from openvlthinker.tasks import load_tasks

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "tiny_cpu_verl.yaml"
TASKS = ("grounding", "spatial", "science", "math", "chart", "ocr")
RUN_TIMEOUT_S = 900
pytestmark = pytest.mark.slow


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        HYDRA_FULL_ERROR="1",
        RAY_DEDUP_LOGS="0",
        **extra,
    )
    env.pop("VERL_USE_EXTERNAL_MODULES", None)
    return env


ANSI = re.compile(r"\x1b\[[0-9;]*m")
# "(WorkerDict pid=123) KeyError: ..." or "KeyError: ..." (the driver)
EXCEPTION = re.compile(
    r"^(?:\((?P<actor>[^)]*?)(?: pid=\d+)?\)\s*)?(?P<error>[\w.]*(?:Error|Exception)\b.*)"
)


WRAPPERS = ("ray.exceptions.", "RayTaskError", "hydra.errors.")
RAY_CALL = re.compile(r"ray::(?P<call>[\w.]+)\(\)")


def _first_error(log: str) -> str:
    """The first root exception of a run log (not Ray's re-raising wrapper), with the Ray
    actor and method that raised it."""
    lines = [ANSI.sub("", line) for line in log.splitlines()]
    where = None
    for line in lines:
        call = RAY_CALL.search(line)
        if call:
            where = call["call"]
        match = EXCEPTION.match(line.strip())
        if match and ":" in match["error"] and not match["error"].startswith(WRAPPERS):
            return f"{where or match['actor'] or 'driver'}: {match['error'][:400]}"
    return "(no exception line) " + "\n".join(lines[-20:])


def _stop_session(pgid: int, grace_s: float = 15.0) -> None:
    """SIGTERM the run's process group (Ray's processes clean up), SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + grace_s
        while time.time() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)


def run(cmd: list[str], tmp: Path, name: str, **env: str) -> str:
    """Run ``cmd`` in its own session (the local Ray it starts dies with it); fail naming
    the actor and the error when it does not exit 0."""
    log_path = tmp / f"{name}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=tmp,
            env=_env(tmp, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            _stop_session(proc.pid)
    text = log_path.read_text(errors="replace")
    if rc != 0:
        what = "timed out" if rc is None else f"exited {rc}"
        pytest.fail(f"{name}: verl run {what} ({log_path}); first error in {_first_error(text)}")
    return text


def overrides(tmp: Path, *extra: str) -> list[str]:
    return [
        f"openvlthinker.tasks={REPO / 'configs' / 'tasks_tiny.yaml'}",
        f"openvlthinker.export_dir={tmp / 'data'}",
        f"openvlthinker.tiny_model_cache={tmp / 'models'}",
        f"trainer.default_local_dir={tmp / 'ckpt'}",
        "trainer.logger=[console,file]",
        # dense rewards: a random tiny model never writes an answer tag
        "++openvlthinker.reward.require_answer_tag=false",
        "++openvlthinker.reward.ocr_metric=cer",
        *extra,
    ]


def verl_run(tmp: Path, name: str, *extra: str) -> tuple[dict[int, dict], list[dict]]:
    """One run through ``tests.verl_plugin.verl_run``: (records by step, file-logger rows)."""
    record = tmp / f"{name}_record"
    metrics = tmp / f"{name}_metrics.jsonl"
    run(
        [sys.executable, "-m", "tests.verl_plugin.verl_run", str(CONFIG), *overrides(tmp, *extra)],
        tmp,
        name,
        OVT_VERL_RECORD=str(record),
        VERL_FILE_LOGGER_PATH=str(metrics),
    )
    steps = {
        int(p.stem.split("_")[1]): torch.load(p, weights_only=False)
        for p in record.glob("step_*.pt")
    }
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return steps, rows


def row_values(rec: dict, key: str) -> torch.Tensor:
    """(B,) one value per trajectory of a per-token field, checked constant over the
    response tokens (an outcome advantage, a task's band weight)."""
    out = []
    for row, (values, mask) in enumerate(zip(rec[key], rec["response_mask"], strict=True)):
        on = [v for v, m in zip(values, mask, strict=True) if m]
        assert on, f"step {rec['step']} row {row}: no response tokens"
        assert max(on) - min(on) < 1e-6, f"step {rec['step']} row {row}: {key} varies over tokens"
        out.append(on[0])
    return torch.tensor(out, dtype=torch.float64)


def check_reward_manager(rec: dict) -> None:
    """Our reward manager scored every response: all components present, verl's reward =
    the suite's overall score (a random policy's unparsable answers score with
    ``reward_error`` 1, never a crash)."""
    rewards = torch.tensor([sum(r) for r in rec["rm_scores"]], dtype=torch.float64)
    for row, info in enumerate(rec["reward_extra_info"]):
        missing = [k for k in SCORE_KEYS if k not in info]
        assert not missing, f"step {rec['step']} row {row}: reward_extra_info lacks {missing}"
        assert info["reward_error"] in (0.0, 1.0), f"step {rec['step']} row {row}: {info}"
        assert info["overall"] == pytest.approx(float(rewards[row]), abs=1e-6), (
            f"step {rec['step']} row {row}: rm_scores {float(rewards[row])} != overall "
            f"{info['overall']}"
        )


def expected_advantage(rec: dict, components: tuple[str, ...] = ()) -> tuple[torch.Tensor, list]:
    """compute_advantage on the step's own rewards, tasks and groups (padding rows out)."""
    real = [i for i, pad in enumerate(rec["padding"]) if not pad]
    rewards = torch.tensor([sum(rec["rm_scores"][i]) for i in real], dtype=torch.float64)
    tasks = [rec["task"][i] for i in real]
    comps = weights = None
    if components:
        registry = load_tasks(REPO / "configs" / "tasks_tiny.yaml")
        length_on = registry.length_enabled()
        # gs_gdpo weighs each normalised component by the row's task reward weights
        index = torch.tensor([registry.index(t) for t in tasks])
        weights = {n: w[index] for n, w in registry.reward_weight_tensors(components).items()}
        comps = {
            c: torch.tensor(
                [
                    rec["reward_extra_info"][i][c]
                    * (float(length_on[registry.index(rec["task"][i])]) if c == "length" else 1.0)
                    for i in real
                ],
                dtype=torch.float64,
            )
            for c in components
        }
    adv = compute_advantage(
        rec["estimator"],
        rewards,
        group=[rec["uid"][i] for i in real],
        task=tasks,
        components=comps,
        reward_weights=weights,
    )
    return adv, real


def check_advantages(rec: dict, components: tuple[str, ...] = ()) -> None:
    got = row_values(rec, "advantages")
    want, real = expected_advantage(rec, components)
    torch.testing.assert_close(
        got[real],
        want,
        rtol=1e-5,
        atol=1e-5,
        msg=lambda m: f"step {rec['step']}: advantages verl trained on != compute_advantage: {m}",
    )
    pad = [i for i, p in enumerate(rec["padding"]) if p]
    assert all(got[i] == 0 for i in pad), f"step {rec['step']}: padding rows carry advantages"


def sampler_batches(n_records: int, batch: int, seed: int) -> list[list[int]]:
    """The train dataloader's order (verl's create_rl_sampler: torchdata RandomSampler with
    a generator seeded by data.seed), in batches."""
    from torchdata.stateful_dataloader.sampler import RandomSampler

    gen = torch.Generator()
    gen.manual_seed(seed)
    order = list(RandomSampler(range(n_records), generator=gen))
    return [order[i : i + batch] for i in range(0, len(order) - batch + 1, batch)]


def logged(rows: list[dict]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for r in rows:
        out.setdefault(r["step"], {}).update(r["data"])
    return out


def test_gs_grpo_two_steps_checkpoint_then_resume_at_step_3(tmp_path):
    first, rows = verl_run(
        tmp_path,
        "gs_grpo",
        "algorithm.adv_estimator=gs_grpo",
        "trainer.total_training_steps=2",
        "trainer.save_freq=2",
        "trainer.test_freq=2",
    )
    assert sorted(first) == [1, 2], f"advantage steps recorded: {sorted(first)}"
    assert (tmp_path / "ckpt" / "global_step_2").is_dir(), "no checkpoint at step 2"
    metrics = logged(rows)
    batches = sampler_batches(288, 6, seed=42)
    for step, rec in first.items():
        check_advantages(rec)
        check_reward_manager(rec)
        assert rec["band_weight"] is not None, f"step {step}: no entropy_band_weight written"
        # step k's rollout runs on the weights synced after step k-1's update
        served = [s["global_steps"] for s in rec["servers"]]
        assert served == [step - 1], f"step {step}: hf rollout weights are from step {served}"
        assert rec["servers"][0]["requests"] == 24 * step, f"step {step}: {rec['servers']}"
        got = sorted({info["index"] for info in rec["extra_info"]})
        assert got == sorted(batches[step - 1]), f"step {step}: trained on records {got}"
        m = metrics[step]
        assert "actor/entropy_band_surrogate" in m, f"step {step}: the band is not on the actor"
        assert m["actor/entropy_band_loss"] >= 0, f"step {step}: no band loss logged"
        for task in set(rec["task"]):
            for key in ("reward", "entropy", "advantage_std", "response_length"):
                assert f"train/{task}/{key}" in m, f"step {step}: no train/{task}/{key}"
    # verl groups validation by data_source, which is the validation set's name; our
    # aggregates come per set and per task
    registry = load_tasks(REPO / "configs" / "tasks_tiny.yaml")
    for task in TASKS:
        assert f"val/{task}/reward" in metrics[2], f"validation has no val/{task}/reward"
        for vset in registry[task].validation:
            for key in (f"val-core/{vset.name}/acc/mean@1", f"val/{vset.name}/reward"):
                assert key in metrics[2], f"validation has no {key}"

    resumed, rows = verl_run(
        tmp_path,
        "gs_grpo_resumed",
        "algorithm.adv_estimator=gs_grpo",
        "trainer.total_training_steps=3",
        "trainer.save_freq=-1",
        "trainer.test_freq=-1",
    )
    assert sorted(resumed) == [3], f"the resumed run trained steps {sorted(resumed)}, not [3]"
    got = sorted({info["index"] for info in resumed[3]["extra_info"]})
    assert got == sorted(batches[2]), f"resumed step 3 trained on records {got}"
    check_advantages(resumed[3])
    assert sorted(logged(rows)) == [3]


def test_gs_gdpo_on_two_ranks_shards_fsdp_over_two_gloo_processes(tmp_path):
    steps, rows = verl_run(
        tmp_path,
        "gs_gdpo",
        "algorithm.adv_estimator=gs_gdpo",
        "trainer.n_gpus_per_node=2",
        "trainer.total_training_steps=2",
        "trainer.save_freq=-1",
        "trainer.test_freq=-1",
    )
    workers = torch.load(tmp_path / "gs_gdpo_record" / "workers.pt", weights_only=False)["workers"]
    assert len({w["pid"] for w in workers}) == 2, f"actor workers: {workers}"
    assert sorted(w["rank"] for w in workers) == [0, 1]
    for w in workers:
        assert w["world_size"] == 2 and "gloo" in w["backend"], f"worker {w}"
        assert w["sharded_params"] == w["params"] > 0, f"worker {w}: unsharded parameters"
        assert w["local_numel"] * 2 == w["full_numel"], f"worker {w}: not split in two"
    metrics = logged(rows)
    components = ("correctness", "format", "structure", "length")
    for step, rec in steps.items():
        check_advantages(rec, components)
        check_reward_manager(rec)
        served = [s["global_steps"] for s in rec["servers"]]
        assert served == [step - 1] * 2, f"step {step}: replica weights from steps {served}"
        assert "actor/entropy_band_loss" in metrics[step]
    assert sorted(steps) == [1, 2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STANDINS = {
    # srun [options] command...: run the command here (every "node" is this machine); a
    # container's `hostname --ip-address` is 127.0.0.1, a node's is its address
    "srun": """#!/usr/bin/env bash
while [ $# -gt 0 ]; do
    case "$1" in
        -w) shift 2 ;;
        -*) shift ;;
        *) break ;;
    esac
done
if [ "$*" = "hostname --ip-address" ]; then hostname -I | awk '{print $1}'; exit 0; fi
exec "$@"
""",
    # scontrol show hostnames a,b -> one name a line; scontrol requeue -> recorded
    "scontrol": """#!/usr/bin/env bash
if [ "$1" = show ] && [ "$2" = hostnames ]; then tr ',' '\\n' <<< "$3"; exit 0; fi
echo "scontrol $*" >> "$STANDIN_LOG"
""",
}


def test_slurm_script_starts_two_ray_nodes_and_trains_two_steps(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STANDINS.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    metrics = tmp_path / "metrics.jsonl"
    port = _free_port()
    log = run(
        [
            "bash",
            str(REPO / "local_scripts" / "run_g2rpo_rl_slurm.sh"),
            *overrides(tmp_path, "trainer.total_training_steps=2", "trainer.test_freq=-1"),
        ],
        tmp_path,
        "slurm",
        PATH=f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        SLURM_JOB_NODELIST="node-a,node-b",
        SLURM_NNODES="2",
        SLURM_JOB_ID="4242",
        SLURM_CPUS_PER_TASK="8",
        GPUS_PER_NODE="1",
        CONFIG_PATH=str(REPO / "configs"),
        CONFIG_NAME="tiny_cpu_verl",
        CKPT_DIR=str(tmp_path / "ckpt"),
        RAY_PORT=str(port),
        RAY_WAIT_S="180",
        STANDIN_LOG=str(tmp_path / "standin.log"),
        # `ray start` clusters here reject Ray 2.60's token auth even on one host
        RAY_AUTH_MODE="disabled",
        VERL_FILE_LOGGER_PATH=str(metrics),
    )
    # a `ray start` head records itself for later ray.init() calls on the machine; ours is gone
    current = Path("/tmp/ray/ray_current_cluster")
    if current.is_file() and current.read_text().strip().endswith(f":{port}"):
        current.unlink()
    assert "2 GPUs in the Ray cluster" in log, "the worker node never joined the Ray head"
    assert "trainer.nnodes=2" in log
    steps = logged([json.loads(x) for x in metrics.read_text().splitlines() if x.strip()])
    assert sorted(steps) == [1, 2], f"logged steps {sorted(steps)}"
    for step, m in steps.items():
        assert any(k.startswith("train/") and k.endswith("/reward") for k in m), (
            f"step {step}: no per-task reward metric"
        )
        assert "actor/entropy_band_loss" in m
