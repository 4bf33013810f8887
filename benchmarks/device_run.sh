#!/usr/bin/env bash
# The GPU measurements of the sweep and the optimisers, as one short script (run from the repo root on a
# machine whose python3 has JAX with CUDA; pymoo is not needed). Writes JSON and plots under $OUT.
set -uo pipefail
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
python3 benchmarks/gradient_cost.py --out "$OUT/gradient_cost.json"
python3 benchmarks/optimizer_quality.py --methods gradient --models llama3.2-1b,llama3.2-3b,qwen3-4b \
  --precisions int4,int8 --seeds 3 --out "$OUT/optimizer_quality"
python3 benchmarks/sweep_speed.py --reference-sample 20 --repeats 3 --out "$OUT/sweep_speed.json"
