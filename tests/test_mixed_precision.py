"""Per-layer mixed precision in the cost model: the relaxed (continuous-bit) form against the exact one,
finite gradients in the bits, and monotonicity in the bits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cimjax.cost.model import evaluate
from cimjax.cost.relaxed import relaxed_ops
from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, HardwareConfig
from cimjax.hardware.technology import default_technology
from cimjax.workload.models import MODELS
from cimjax.workload.precision import Precision

SPEC = MODELS["qwen2.5-0.5b"]
HW = HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN)
TECH = default_technology()


def random_precision(rng, low=2, high=8, integer=True) -> Precision:
    draw = (lambda shape: rng.integers(low, high + 1, shape)) if integer else (lambda s: rng.uniform(low, high, s))
    n = SPEC.n_layers
    return Precision(*(jnp.asarray(draw(shape), jnp.float32) for shape in ((n, 7), (n, 9), (n,))))


def log_latency_energy(prec: Precision, temperature, workload):
    costs = evaluate(HW, prec, SPEC, workload, TECH, ops=relaxed_ops(temperature), with_prefill=False)
    return jnp.log(costs.latency_s) + jnp.log(costs.energy_j)


def test_relaxed_equals_exact_at_whole_bits(small_workload):
    rng = np.random.default_rng(1)
    for _ in range(3):
        prec = random_precision(rng)
        exact = evaluate(HW, prec, SPEC, small_workload, TECH, with_prefill=False)
        relaxed = evaluate(HW, prec, SPEC, small_workload, TECH, ops=relaxed_ops(1e-6), with_prefill=False)
        assert float(relaxed.latency_s) == pytest.approx(float(exact.latency_s), rel=1e-4)
        assert float(relaxed.energy_j) == pytest.approx(float(exact.energy_j), rel=1e-4)


def test_gradients_in_continuous_bits_are_finite(small_workload):
    grad = jax.jit(jax.grad(log_latency_energy), static_argnums=2)
    rng = np.random.default_rng(2)
    for temperature in (0.3, 0.01):
        prec = random_precision(rng, integer=False)
        g = grad(prec, temperature, small_workload)
        for field in ("weight_bits", "act_bits", "kv_bits"):
            values = np.asarray(getattr(g, field))
            assert np.all(np.isfinite(values)), field
        assert np.any(np.asarray(g.weight_bits) > 0), "more weight bits must cost something"


def test_more_bits_in_one_layer_never_costs_less(small_workload):
    rng = np.random.default_rng(3)
    prec = random_precision(rng, high=7)
    base = evaluate(HW, prec, SPEC, small_workload, TECH, with_prefill=False)
    for field, index in (("weight_bits", (3, 5)), ("act_bits", (7, 0)), ("kv_bits", (11,))):
        more = Precision(**{**prec.__dict__, field: getattr(prec, field).at[index].add(1.0)})
        bigger = evaluate(HW, more, SPEC, small_workload, TECH, with_prefill=False)
        assert float(bigger.latency_s) >= float(base.latency_s) * (1 - 1e-6), field
        assert float(bigger.energy_j) >= float(base.energy_j) * (1 - 1e-6), field
