#!/usr/bin/env bash
# GPU check: train a random-init Qwen3-VL of about 0.5B parameters (real-size 151,936-row
# LM head) for a few steps in bf16 on one GPU with the single-process engine, then print
# generation and update tokens/s and peak GPU memory; then full fine-tuning against a frozen
# vision tower, LoRA r=16 and LoRA + frozen tower at the same sizes (bench/e2e.py
# --finetuning: step time, peak GPU memory, trainable parameters; SKIP_FINETUNING=1 skips it).
#
#   bash bench/gpu_check.sh            # on a GPU machine
#   bash bench/gpu_check.sh --tiny     # CPU smoke test of the same path (tiny sizes, bf16)
#
# Extra arguments are passed on as config overrides (e.g. trainer.total_steps=5).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
OUT="${OUT_DIR:-$(mktemp -d)}"

if [[ "${1:-}" == "--tiny" ]]; then
    shift
    SIZE=(model.device=cpu trainer.total_steps=2 rollout.max_new_tokens=8)
else
    # ~0.5B: 24 layers x hidden 1024 (16 heads x 64, 8 KV heads), MLP 4096, vision 8 x 512.
    SIZE=(
        model.device=cuda
        model.tiny.hidden_size=1024
        model.tiny.num_layers=24
        model.tiny.num_heads=16
        model.tiny.num_kv_heads=8
        model.tiny.intermediate_size=4096
        model.tiny.vision_depth=8
        model.tiny.vision_hidden_size=512
        model.tiny.vision_heads=8
        model.tiny.vocab_size=151936
        model.max_pixels=200704
        data.rollout_batch_size=8
        rollout.n=8
        rollout.max_new_tokens=256
        actor.mini_batch_size=8
        actor.micro_batch_size=16
        actor.lr=1e-5
        trainer.total_steps=4
    )
fi

HF_HUB_OFFLINE=1 "$PYTHON" -m openvlthinker.cli train --config configs/tiny_cpu.yaml \
    model.dtype=bfloat16 \
    "model.cache_dir=$OUT/cache" \
    "trainer.out_dir=$OUT/run" \
    trainer.resume_mode=disable \
    trainer.test_freq=0 \
    trainer.save_freq=0 \
    trainer.plot=false \
    "trainer.logger=[jsonl]" \
    "${SIZE[@]}" "$@"

"$PYTHON" - "$OUT" <<'PY'
import json
import math
import sys
from pathlib import Path

from safetensors import safe_open

out = Path(sys.argv[1])
rows = [json.loads(line) for line in (out / "run/metrics.jsonl").read_text().splitlines()]
model_dir = next((out / "cache").iterdir())
params = 0
for shard in model_dir.glob("*.safetensors"):
    with safe_open(str(shard), "pt") as f:
        for key in f.keys():
            params += math.prod(f.get_slice(key).get_shape())
timed = rows[1:] or rows  # step 1 pays compilation and allocator warm-up
mean = lambda key: sum(r[key] for r in timed) / len(timed)  # noqa: E731
print(f"parameters:               {params / 1e6:.1f} M")
print(f"steps timed:              {len(timed)} (of {len(rows)})")
print(f"step time:                {mean('timing/step'):.2f} s")
print(f"generate tokens/s:        {mean('perf/generate_tokens_per_s'):.0f}")
print(f"update tokens/s:          {mean('perf/update_tokens_per_s'):.0f}")
print(f"peak memory:              {max(r['perf/peak_memory_mb'] for r in rows):.0f} MiB")
print(f"mean reward (last step):  {rows[-1]['train/reward']:.3f}")
PY

if [[ "${SKIP_FINETUNING:-0}" != "1" ]]; then
    echo "== full fine-tuning vs frozen vision tower vs LoRA (same sizes, bf16) =="
    HF_HUB_OFFLINE=1 "$PYTHON" bench/e2e.py --finetuning --steps 2 \
        model.dtype=bfloat16 "model.cache_dir=$OUT/cache" "${SIZE[@]}" "$@"
fi
