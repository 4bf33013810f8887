#!/usr/bin/env bash
# The GPU measurements, as one short script (run from the repo root on a machine whose python3 has JAX with
# CUDA; pymoo is needed only by the GA cases). Writes JSON under $OUT; the figures go beside the CPU ones in
# docs/benchmarks.md. Time to result runs each command as a fresh process, cold (empty cache) and warm.
set -uo pipefail
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
# Sized for a 10-minute call: one cold and one warm run per case, then the sweep's speed.
timeout 420 python3 benchmarks/time_to_result.py --repeats 1 --timeout 120 --out "$OUT/time_to_result.json" \
  --cases help,evaluate,search_exhaustive,search_gradient,sweep,optimize_small,python
timeout 120 python3 benchmarks/sweep_speed.py --reference-sample 20 --repeats 3 --out "$OUT/sweep_speed.json"
