#!/usr/bin/env bash
# The GPU checks, from a fresh checkout on a GPU machine, in a few minutes:
#   1. nvidia-smi
#   2. fp32 vs bf16 training throughput of perceiver and wav2vec2 at their published sizes
#   3. the input-pipeline ratio (whole path / batch already on the device) of the same models
#   4. what writing last.pt of wav2vec2 with Adam costs
#   5. a 2-trial sweep with --gpus-per-trial 1 (one worker per GPU, each its own CUDA_VISIBLE_DEVICES)
# and a summary at the end. The venv comes from `make install` when there is none.
#
#   bash benchmarks/gpu_check.sh            # on a GPU machine
#   bash benchmarks/gpu_check.sh --cpu      # the same Python parts on CPU, tiny presets and fake GPU ids
set -euo pipefail
cd "$(dirname "$0")/.."

CPU=0
[[ "${1:-}" == "--cpu" ]] && CPU=1
PY=${PYTHON:-.venv/bin/python}
if [[ ! -x "$PY" ]]; then
  make install
  PY=.venv/bin/python
fi
OUT=$(mktemp -d)
export AVBENCH_RESULTS="$OUT/results" AVBENCH_DATA="$OUT/data"
MODELS=(perceiver wav2vec2)
SIZE=()
SWEEP_GPUS=()
STEPS=30
if [[ $CPU == 1 ]]; then
  SIZE=(--tiny)
  STEPS=3
  SWEEP_GPUS=(--gpus 0,1 --allow-fake-gpus)
  echo "== --cpu: tiny presets, fake GPU ids; the figures say nothing about a GPU"
else
  echo "== nvidia-smi"
  nvidia-smi
  GPUS=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
  # Two trials at once need two GPUs; on one GPU the two trials run one after the other.
  ((GPUS >= 2)) && SWEEP_GPUS=(--gpus 0,1) || SWEEP_GPUS=(--gpus 0)
fi
uptime

bench() { # label, then extra arguments for input_pipeline.py
  local label=$1
  shift
  echo "== $label"
  "$PY" benchmarks/input_pipeline.py --models "${MODELS[@]}" "${SIZE[@]}" --steps "$STEPS" \
    --results "$OUT/results" "$@" | tee "$OUT/$label.txt"
}
bench fp32 --set 'train.mixed_precision="no"'  # quoted: YAML reads a bare no as false
bench bf16 --set train.mixed_precision=bf16

echo "== what writing last.pt costs (the stall train.checkpoint_every spreads out)"
CKPT_PRESET=()
[[ $CPU == 1 ]] && CKPT_PRESET=(tiny)
"$PY" - "${CKPT_PRESET[@]}" <<'PYTHON' | tee "$OUT/checkpoint.txt"
import sys, tempfile, time
from pathlib import Path
import torch
from avbench.catalog import load_experiment
from avbench.models import create_model
from avbench.preflight import check_model_args, spec_without_data, with_model_inputs
from avbench.sweep.space import representative, resolve_space
from avbench.train.checkpoint import save_checkpoint

preset = sys.argv[1] if len(sys.argv) > 1 else None
loaded = load_experiment("wav2vec2-cremad", preset=preset)
values = {k: representative(p) for k, p in resolve_space(loaded).params.items()}
experiment = with_model_inputs(loaded.resolve(values))
model = create_model(experiment, spec_without_data(experiment), checked_args=check_model_args(experiment))
optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
for p in model.parameters():
    p.grad = torch.zeros_like(p)
optimizer.step()  # Adam's two moments exist now, as in last.pt after an epoch
state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
with tempfile.TemporaryDirectory(dir=sys.argv[2] if len(sys.argv) > 2 else None) as tmp:
    started = time.perf_counter()
    save_checkpoint(Path(tmp) / "last.pt", state)
    seconds = time.perf_counter() - started
    size = (Path(tmp) / "last.pt").stat().st_size / 2**20
params = sum(p.numel() for p in model.parameters()) / 1e6
print(f"last.pt of wav2vec2-cremad{' --preset ' + preset if preset else ''} with Adam: {params:.2f}M parameters, {size:.0f} MiB, written in {seconds:.2f} s")
PYTHON

echo "== a 2-trial sweep, --gpus-per-trial 1 ${SWEEP_GPUS[*]}"
SWEEP_STARTED=$(date +%s)
"$PY" -m avbench sweep mel-stats-mlp-cremad --preset tiny --synthetic --no-wandb --trials 2 \
  --set train.epochs=2 "${SWEEP_GPUS[@]}" --gpus-per-trial 1 | tee "$OUT/sweep.txt"
SWEEP_S=$(($(date +%s) - SWEEP_STARTED))
"$PY" - "$AVBENCH_RESULTS" > "$OUT/devices.txt" <<'PYTHON'
import json, sys
from pathlib import Path
for path in sorted(Path(sys.argv[1]).glob("runs/*/*/record.json")):
    record = json.loads(path.read_text())
    print(f"  {record['run_id']}: {record['status']}, devices {record['devices']}, "
          f"processes {record['processes']}, precision {record['precision']}")
PYTHON

echo
echo "== summary ($(uptime | sed 's/.*load/load/'))"
echo "samples/s per model (pipeline | whole | on-device | ratio):"
for label in fp32 bf16; do
  grep -E "^($(IFS='|'; echo "${MODELS[*]}")) " "$OUT/$label.txt" | awk -v l="$label" '{printf "  %-5s %-10s %10s %10s %10s %7s\n", l, $1, $2, $3, $4, $5}'
done
for model in "${MODELS[@]}"; do
  fp32=$(awk -v m="$model" '$1 == m {print $4}' "$OUT/fp32.txt")
  bf16=$(awk -v m="$model" '$1 == m {print $4}' "$OUT/bf16.txt")
  awk -v m="$model" -v a="$fp32" -v b="$bf16" 'BEGIN {if (a > 0) printf "  %s: bf16 / fp32 on-device = %.2fx\n", m, b / a}'
done
echo "sweep: $(grep -E 'finished, [0-9]+ failed' "$OUT/sweep.txt" | tail -1) in ${SWEEP_S}s; workers: $(grep -E '^worker 0' "$OUT/sweep.txt" | head -1)"
cat "$OUT/devices.txt"
cat "$OUT/checkpoint.txt"
echo "(everything is under $OUT)"
