"""The MSE clip search of the weight quantiser (a hand-computed case, a numpy brute force, properties) and the
quantiser carried and keyed by measured checkpoints."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cimjax.lm.checkpoint import save_checkpoint
from cimjax.lm.model import functional, token_nll
from cimjax.quant.measured import Calibration, MeasuredFileError, cache_path, for_checkpoint, load
from cimjax.quant.quantizers import (
    CLIP_RATIOS,
    CLIPPED_SCHEME,
    DEFAULT_SCHEME,
    QuantHooks,
    TensorScheme,
    fake_quant,
    fake_quant_scheme,
)
from cimjax.quant.train import TINY, train
from cimjax.workload.precision import Precision


def _brute_force(x: np.ndarray, bits: float, symmetric: bool) -> np.ndarray:
    """Per row of ``x``, the least squared error over every clip ratio, in float64 loops (independent of
    the scan): codes ``-(2^(b-1)-1)..2^(b-1)-1`` around zero, or ``0..2^b-1`` with the zero point of the
    unclipped range."""
    best = []
    for row in x.astype(np.float64):
        if symmetric:
            qmax = max(2.0 ** (bits - 1) - 1, 1.0)
            lower, full, zero = -qmax, np.abs(row).max() / qmax, 0.0
        else:
            qmax, lower = 2.0**bits - 1, 0.0
            full = (row.max() - row.min()) / qmax
            zero = np.round(-row.min() / full)
        errors = []
        for r in CLIP_RATIOS:
            s = full * r
            y = s * (np.clip(np.round(row / s) + zero, lower, qmax) - zero)
            errors.append(np.sum((y - row) ** 2))
        best.append(min(errors))
    return np.array(best)


def _row_errors(x, y) -> np.ndarray:
    return np.sum((np.asarray(y, np.float64) - np.asarray(x, np.float64)) ** 2, axis=-1)


def test_clip_search_by_hand():
    # 2 bits, symmetric: codes -1, 0, 1. With scale r, 1.0 -> r and each 0.4 -> r once 0.4 / r > 0.5, so the
    # error is (1 - r)^2 + 3 (0.4 - r)^2 below r = 0.8, least at r = 0.55 (0.27); the max scale (r = 1)
    # rounds the 0.4s to 0 (error 0.48).
    x = jnp.array([[1.0, 0.4, 0.4, 0.4]])
    np.testing.assert_allclose(fake_quant(x, 2, clip="max"), [[1.0, 0.0, 0.0, 0.0]])
    y = fake_quant(x, 2, clip="mse")
    np.testing.assert_allclose(y, [[0.55] * 4], rtol=1e-6)
    np.testing.assert_allclose(_row_errors(x, y), [0.27], rtol=1e-5)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits", [2, 3, 4, 6])
def test_clip_search_matches_numpy_brute_force(bits, symmetric):
    rng = np.random.default_rng(bits)
    x = rng.standard_t(3, size=(6, 64)).astype(np.float32)  # heavy tails: clipping pays
    y = fake_quant(jnp.asarray(x), bits, symmetric=symmetric, clip="mse")
    np.testing.assert_allclose(_row_errors(x, y), _brute_force(x, bits, symmetric), rtol=1e-4)


def test_clip_jit_equals_eager_with_traced_non_integer_bits():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((5, 32)), jnp.float32)
    scheme = CLIPPED_SCHEME.weight
    for bits in (2.0, 2.5, 3.7, 8.0):
        eager = fake_quant_scheme(x, bits, scheme)
        jitted = jax.jit(lambda x, b: fake_quant_scheme(x, b, scheme))(x, jnp.float32(bits))
        np.testing.assert_allclose(np.asarray(eager), np.asarray(jitted), rtol=1e-6)  # XLA fuses: ulps
    assert jnp.array_equal(fake_quant_scheme(x, 24.0, scheme), x)  # full precision: unchanged


def test_clip_gradients_are_finite_and_straight_through():
    x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 16)), jnp.float32)
    g = jax.grad(lambda x: jnp.sum(fake_quant(x, 2.5, clip="mse", ste=False) ** 2))(x)
    assert np.all(np.isfinite(np.asarray(g)))
    g_ste = jax.grad(lambda x: jnp.sum(fake_quant(x, 3, clip="mse")))(x)
    np.testing.assert_array_equal(np.asarray(g_ste), np.ones_like(x))


def test_unknown_clip_is_named():
    with pytest.raises(ValueError, match="clip='l1' is not known"):
        TensorScheme(clip="l1")


@settings(max_examples=25, deadline=None)
@given(
    bits=st.floats(2.0, 8.0),
    symmetric=st.booleans(),
    granularity=st.sampled_from(["channel", "tensor", "group"]),
    seed=st.integers(0, 10_000),
)
def test_clipping_never_increases_the_error_of_any_scale_group(bits, symmetric, granularity, seed):
    x = jnp.asarray(np.random.default_rng(seed).standard_t(2, size=(3, 16)), jnp.float32)
    kwargs = {"bits": bits, "symmetric": symmetric, "granularity": granularity, "group_size": 8}
    clipped, plain = fake_quant(x, clip="mse", **kwargs), fake_quant(x, clip="max", **kwargs)
    shape = {"channel": (3, 16), "tensor": (1, 48), "group": (6, 8)}[granularity]  # one row per scale
    x, clipped, plain = (np.reshape(a, shape) for a in (x, clipped, plain))
    assert np.all(_row_errors(x, clipped) <= _row_errors(x, plain) * (1 + 1e-6) + 1e-12)


@pytest.fixture(scope="module")
def tiny_checkpoint(module_cache, tmp_path_factory):
    trained = train(TINY, log=lambda msg: None)
    return save_checkpoint(trained.model, tmp_path_factory.mktemp("ckpt") / "tiny"), trained.model


def _loss_increase(model, windows, table, scheme) -> float:
    """Oracle: the mean token loss with ``table`` fake-quantised by ``scheme`` minus the full-precision loss."""
    build, params = functional(model)
    x, y = jnp.asarray(windows[:, :-1]), jnp.asarray(windows[:, 1:])
    hooks = QuantHooks(Precision.from_table(jnp.asarray(table, jnp.float32)), scheme)
    return float(token_nll(build(params)(x, hooks), y)) - float(token_nll(build(params)(x), y))


def test_measured_checkpoints_carry_and_key_their_quantiser(tiny_checkpoint, tmp_path):
    directory, model = tiny_checkpoint
    calibration = Calibration(windows=2, seq_len=32, samples=1, check_windows=4)
    measured = for_checkpoint(directory, calibration, n_fit=2, scheme=CLIPPED_SCHEME)
    assert measured.scheme == CLIPPED_SCHEME
    digest = measured.checkpoint_hash
    assert cache_path(digest, calibration, CLIPPED_SCHEME) != cache_path(digest, calibration, DEFAULT_SCHEME)
    assert cache_path(digest, calibration, CLIPPED_SCHEME).is_file()
    # The budgets were measured with the clipped weights (not the max-scaled ones): an independent forward pass.
    table = np.full((model.spec.n_layers, 17), 3.0)
    clipped = _loss_increase(model, calibration.check_tokens(), table, CLIPPED_SCHEME)
    plain = _loss_increase(model, calibration.check_tokens(), table, DEFAULT_SCHEME)
    assert measured.uniform_loss[3] == pytest.approx(clipped, abs=2e-5)
    assert abs(clipped - plain) > 1e-4
    # The file round-trips the quantiser; a file without one was measured with the default; a bad one is named.
    path = measured.save(tmp_path / "m.json")
    assert load(path).scheme == CLIPPED_SCHEME
    payload = json.loads(path.read_text())
    del payload["scheme"]
    path.write_text(json.dumps(payload))
    assert load(path).scheme == DEFAULT_SCHEME
    scheme = dataclasses.asdict(CLIPPED_SCHEME)
    payload["scheme"] = scheme | {"weight": scheme["weight"] | {"clip": "l1"}}
    path.write_text(json.dumps(payload))
    with pytest.raises(MeasuredFileError, match="'scheme' is malformed"):
        load(path)
