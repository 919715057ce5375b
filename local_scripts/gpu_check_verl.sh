#!/usr/bin/env bash
# GPU smoke check of the verl path (not run in CI: needs GPUs and a `.[gpu]` install).
#
#   MODEL_PATH=/models/Qwen3-VL-2B-Instruct local_scripts/gpu_check_verl.sh [key=value ...]
#
# 1. versions: torch/CUDA, vllm, flash-attn, verl, and that the plugin registers;
# 2. two G2RPO steps (gs_grpo, entropy band on) on the shipped task file with a small model,
#    checkpoint every step, into a scratch directory;
# 3. a third step after a restart: it must resume from global_step_2 (the requeue path);
# 4. the per-task metrics (train/<task>/...) and actor/entropy_band_loss are in the log.
# Settings (environment): MODEL_PATH (required, a local checkpoint), NGPUS (default: all
# visible), WORK_DIR (default: a new temp dir), ESTIMATOR (default gs_grpo).
set -euo pipefail

: "${MODEL_PATH:?set MODEL_PATH to a local Qwen-VL checkpoint directory}"
NGPUS=${NGPUS:-$(nvidia-smi --list-gpus | wc -l)}
WORK_DIR=${WORK_DIR:-$(mktemp -d -t ovt-gpu-check-XXXXXX)}
ESTIMATOR=${ESTIMATOR:-gs_grpo}
LOG=$WORK_DIR/train.log
export VERL_USE_EXTERNAL_MODULES=openvlthinker.verl_plugin
export HF_HUB_OFFLINE=1
echo "work dir: $WORK_DIR, GPUs: $NGPUS"

python - <<'PY'
import torch, vllm, flash_attn, verl
from verl.trainer.ppo import core_algos
import openvlthinker.verl_plugin  # noqa: F401
assert torch.cuda.is_available(), "no CUDA device visible"
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), vllm {vllm.__version__}, "
      f"flash-attn {flash_attn.__version__}, verl {verl.__version__}")
assert {"gs_grpo", "gs_gdpo"} <= set(core_algos.ADV_ESTIMATOR_REGISTRY)
assert core_algos.ADV_ESTIMATOR_REGISTRY["gdpo"] is core_algos.compute_gdpo_outcome_advantage
PY

train() {
    openvlthinker-verl --config-path "$PWD/configs" --config-name g2rpo_qwen3vl_8b \
        "actor_rollout_ref.model.path=$MODEL_PATH" \
        "algorithm.adv_estimator=$ESTIMATOR" \
        "openvlthinker.export_dir=$WORK_DIR/data" \
        "trainer.default_local_dir=$WORK_DIR/ckpt" \
        "trainer.n_gpus_per_node=$NGPUS" \
        trainer.nnodes=1 \
        algorithm.filter_groups.enable=false \
        'trainer.logger=[console]' \
        trainer.val_before_train=false \
        trainer.test_freq=-1 \
        trainer.save_freq=1 \
        data.train_batch_size=8 \
        data.max_prompt_length=2048 \
        data.max_response_length=256 \
        actor_rollout_ref.rollout.n=4 \
        actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
        actor_rollout_ref.rollout.gpu_memory_utilization=0.4 \
        actor_rollout_ref.actor.ppo_mini_batch_size=4 \
        actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2 \
        actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2 \
        reward.num_workers=2 \
        "$@"
}

train trainer.total_training_steps=2 "$@" 2>&1 | tee "$LOG"
train trainer.total_training_steps=3 "$@" 2>&1 | tee "$LOG.resume"

grep -q "global_step_2" "$LOG.resume" || { echo "FAIL: the restart did not resume from global_step_2" >&2; exit 1; }
for metric in "train/[a-z_]*/reward" "train/[a-z_]*/entropy" "train/[a-z_]*/advantage_std" "actor/entropy_band_loss"; do
    grep -q "$metric" "$LOG" || { echo "FAIL: no $metric in the training log" >&2; exit 1; }
done
echo "PASS: versions, 2 steps, resume, per-task metrics ($WORK_DIR)"
