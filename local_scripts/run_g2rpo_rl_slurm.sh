#!/usr/bin/env bash
#SBATCH --job-name=g2rpo-qwen3vl-8b
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --mem=0
#SBATCH --exclusive
#SBATCH --time=72:00:00
#SBATCH --requeue
#SBATCH --signal=B:USR1@600
#SBATCH --output=logs/%x-%j.out
#
# G2RPO on verl across SLURM nodes: a Ray head on the first node, one Ray worker per other
# node (srun), a wait until every GPU has joined, then openvlthinker-verl on the head.
#
#   sbatch --nodes=4 local_scripts/run_g2rpo_rl_slurm.sh [key=value ...]
#   local_scripts/run_g2rpo_rl_slurm.sh --dry-run [key=value ...]   # print, run nothing
#
# --dry-run outside SLURM: SLURM_NNODES=2 SLURM_JOB_NODELIST='gpu[01-02]' ... --dry-run
# (the node list is expanded without scontrol when it is absent).
#
# key=value arguments are Hydra overrides for the training command. Requeue-safe: the
# checkpoint directory does not depend on the job id and verl resumes from its latest
# checkpoint (trainer.resume_mode=auto); SIGUSR1 (600 s before the time limit) requeues.
# Settings (environment): CONFIG_PATH, CONFIG_NAME, EXPERIMENT, CKPT_DIR, RAY_PORT,
# RAY_WAIT_S, GPUS_PER_NODE. No credentials are read or written here.
set -euo pipefail

DRY_RUN=0
OVERRIDES=()
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed -n 's/^# \{0,1\}//p'
            exit 0
            ;;
        *) OVERRIDES+=("$arg") ;;
    esac
done

: "${SLURM_JOB_NODELIST:?run under sbatch, or export SLURM_JOB_NODELIST/SLURM_NNODES for --dry-run}"
: "${SLURM_NNODES:?run under sbatch, or export SLURM_NNODES for --dry-run}"

CONFIG_PATH=${CONFIG_PATH:-$PWD/configs}
CONFIG_NAME=${CONFIG_NAME:-g2rpo_qwen3vl_8b}
EXPERIMENT=${EXPERIMENT:-$CONFIG_NAME}
CKPT_DIR=${CKPT_DIR:-$PWD/checkpoints/openvlthinker/$EXPERIMENT}
RAY_PORT=${RAY_PORT:-6379}
RAY_WAIT_S=${RAY_WAIT_S:-900}
GPUS_PER_NODE=${GPUS_PER_NODE:-${SLURM_GPUS_ON_NODE:-8}}
CPUS_PER_NODE=${SLURM_CPUS_PER_TASK:-64}
EXPECTED_GPUS=$((SLURM_NNODES * GPUS_PER_NODE))

# Every Ray process (started by `ray start` below) imports the plugin: our estimators and
# reward manager are registered wherever verl is imported.
export VERL_USE_EXTERNAL_MODULES="${VERL_USE_EXTERNAL_MODULES:+$VERL_USE_EXTERNAL_MODULES,}openvlthinker.verl_plugin"
export TOKENIZERS_PARALLELISM=false
export HYDRA_FULL_ERROR=1
printf '+ export VERL_USE_EXTERNAL_MODULES=%q\n' "$VERL_USE_EXTERNAL_MODULES"

# Print a command (shell-quoted), and run it unless --dry-run.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if [ "$DRY_RUN" -eq 0 ]; then
        "$@"
    fi
}

# Same, in the background; the pid is appended to BACKGROUND.
BACKGROUND=()
run_bg() {
    printf '+'
    printf ' %q' "$@"
    printf ' &\n'
    if [ "$DRY_RUN" -eq 0 ]; then
        "$@" &
        BACKGROUND+=("$!")
    fi
}

cleanup() {
    local pid
    for pid in "${BACKGROUND[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

requeue() {
    echo "caught SIGUSR1 near the time limit: requeueing ${SLURM_JOB_ID:-?} (resumes from $CKPT_DIR)"
    run scontrol requeue "${SLURM_JOB_ID:?}"
}
trap requeue USR1

# SLURM's compressed host list (gpu[01-03,07],cpu5) -> one host per line, without scontrol:
# the --dry-run preview works on a machine outside the cluster. Every bracket range expands
# in order, keeping its zero padding (rack[1-2]-gpu[01-02] gives four hosts).
expand_hostlist() {
    local list=$1 item="" depth=0 char i
    for ((i = 0; i < ${#list}; i++)); do
        char=${list:i:1}
        case "$char" in
            "[") depth=$((depth + 1)) ;;
            "]") depth=$((depth - 1)) ;;
        esac
        if [ "$char" = "," ] && [ "$depth" -eq 0 ]; then
            expand_host "$item"
            item=""
        else
            item+=$char
        fi
    done
    if [ -n "$item" ]; then
        expand_host "$item"
    fi
}

expand_host() {
    local host=$1 prefix ranges rest range lo hi n
    if [[ "$host" != *"["* ]]; then
        echo "$host"
        return
    fi
    prefix=${host%%\[*}
    ranges=${host#*\[}
    rest=${ranges#*\]}
    ranges=${ranges%%\]*}
    local IFS=,
    for range in $ranges; do
        lo=${range%-*}
        hi=${range#*-}
        if ! [[ "$lo" =~ ^[0-9]+$ && "$hi" =~ ^[0-9]+$ ]]; then
            echo "SLURM_JOB_NODELIST: cannot expand '$host' (range '$range')" >&2
            return 1
        fi
        for ((n = 10#$lo; n <= 10#$hi; n++)); do
            expand_host "$prefix$(printf '%0*d' "${#lo}" "$n")$rest"
        done
    done
}

if command -v scontrol >/dev/null; then
    mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
elif [ "$DRY_RUN" -eq 1 ]; then
    HOSTS=$(expand_hostlist "$SLURM_JOB_NODELIST") || exit 1
    mapfile -t NODES <<<"$HOSTS"
else
    echo "scontrol not found: run under sbatch (or preview with --dry-run)" >&2
    exit 1
fi
if [ "${#NODES[@]}" -ne "$SLURM_NNODES" ]; then
    echo "SLURM_JOB_NODELIST expands to ${#NODES[@]} nodes (${NODES[*]}), SLURM_NNODES is $SLURM_NNODES" >&2
    exit 1
fi
HEAD=${NODES[0]}
if [ "$DRY_RUN" -eq 1 ]; then
    run srun --nodes=1 --ntasks=1 -w "$HEAD" hostname --ip-address
    HEAD_IP="<ip-of-$HEAD>"
else
    HEAD_IP=$(srun --nodes=1 --ntasks=1 -w "$HEAD" hostname --ip-address | awk '{print $1}')
fi
RAY_ADDRESS_HEAD="$HEAD_IP:$RAY_PORT"
echo "nodes: ${NODES[*]}; Ray head $HEAD ($RAY_ADDRESS_HEAD); expecting $EXPECTED_GPUS GPUs"

run_bg srun --nodes=1 --ntasks=1 -w "$HEAD" --export=ALL \
    ray start --head --node-ip-address="$HEAD_IP" --port="$RAY_PORT" \
    --num-gpus="$GPUS_PER_NODE" --num-cpus="$CPUS_PER_NODE" --disable-usage-stats --block
run sleep 10
for node in "${NODES[@]:1}"; do
    run_bg srun --nodes=1 --ntasks=1 -w "$node" --export=ALL \
        ray start --address="$RAY_ADDRESS_HEAD" \
        --num-gpus="$GPUS_PER_NODE" --num-cpus="$CPUS_PER_NODE" --disable-usage-stats --block
done

# Wait until every node's GPUs are in the cluster, or give up after RAY_WAIT_S seconds.
WAIT_PY="import ray, sys, time
ray.init(address='$RAY_ADDRESS_HEAD', logging_level='ERROR')
deadline = time.time() + $RAY_WAIT_S
while (gpus := int(ray.cluster_resources().get('GPU', 0))) < $EXPECTED_GPUS:
    if time.time() > deadline:
        sys.exit(f'only {gpus} of $EXPECTED_GPUS GPUs joined the Ray cluster')
    time.sleep(5)
print(f'{gpus} GPUs in the Ray cluster')"
run python -c "$WAIT_PY"

run mkdir -p "$CKPT_DIR" logs
TRAIN=(
    openvlthinker-verl
    --config-path "$CONFIG_PATH"
    --config-name "$CONFIG_NAME"
    "trainer.nnodes=$SLURM_NNODES"
    "trainer.n_gpus_per_node=$GPUS_PER_NODE"
    "trainer.experiment_name=$EXPERIMENT"
    "trainer.default_local_dir=$CKPT_DIR"
    trainer.resume_mode=auto
    "+ray_kwargs.ray_init.address=$RAY_ADDRESS_HEAD"
    "${OVERRIDES[@]}"
)
# In the background so the USR1 trap runs while training.
run_bg "${TRAIN[@]}"
if [ "$DRY_RUN" -eq 0 ]; then
    status=0
    wait "${BACKGROUND[-1]}" || status=$?
    exit "$status"
fi
