"""Activation smoothing (SmoothQuant) folded into the weights: exact in full precision, the factors of the
paper's formula, and smaller activation quantisation error where a channel has outliers."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from cimjax.lm import DecoderLM, functional, load_weights, model_tensors, save_checkpoint
from cimjax.lm.model import token_nll
from cimjax.quant import smoothing
from cimjax.quant.measured import Calibration, cache_path, for_checkpoint, load
from cimjax.quant.quantizers import CLIPPED_SCHEME, QuantHooks, QuantScheme
from cimjax.quant.train import TINY, train
from cimjax.workload.precision import POINTS, Precision
from cimjax.workload.spec import ModelSpec

SPECS = {
    "llama": ModelSpec("tiny-llama", "tiny", 2, 24, 4, 2, 6, 40, 37, False),
    "qwen2": ModelSpec("tiny-qwen2", "tiny", 2, 24, 4, 1, 6, 40, 37, True, qkv_bias=True),
    "qwen3": ModelSpec("tiny-qwen3", "tiny", 2, 24, 2, 2, 8, 40, 37, True, qk_norm=True),
}


def random_model(spec: ModelSpec, seed: int = 0, outlier: float = 1.0) -> DecoderLM:
    """Random parameters (norms and biases included); ``outlier`` multiplies channel 0 of every norm gain
    and up_proj's first row, giving the q/k/v, gate/up and down inputs one outlier channel."""
    model = DecoderLM(spec, rope_theta=500.0, rms_eps=1e-5, rngs=nnx.Rngs(seed))
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, t in model_tensors(model).items():
        a = 1.0 + 0.2 * rng.standard_normal(t.shape) if "norm" in name else 0.25 * rng.standard_normal(t.shape)
        if name.endswith(("layernorm.weight", "up_proj.weight")):
            a[0] *= outlier
        tensors[name] = a.astype(np.float32)
    return load_weights(model, tensors)


def windows(spec: ModelSpec, n: int = 3, length: int = 9, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, spec.vocab, size=(n, length))


def test_factor_hand_computed():
    # s_j = max|x_j|^a / max|W_j|^(1-a): act maxima (4, 1), weight maxima (1, 4)
    np.testing.assert_allclose(smoothing.smoothing_factor([4.0, 1.0], [1.0, 4.0], 0.5), [2.0, 0.5])
    np.testing.assert_allclose(smoothing.smoothing_factor([4.0, 1.0], [1.0, 4.0], 1.0), [4.0, 1.0])
    np.testing.assert_allclose(smoothing.smoothing_factor([4.0, 1.0], [1.0, 4.0], 0.0), [1.0, 0.25])
    np.testing.assert_allclose(smoothing.smoothing_factor([0.0, 9.0], [3.0, 0.0], 0.5), [1.0, 1.0])  # nothing to move


def test_alpha_out_of_range_is_refused():
    spec = SPECS["llama"]
    with pytest.raises(ValueError, match="alpha=1.5"):
        smoothing.factors(random_model(spec), windows(spec), 1.5)


@pytest.mark.parametrize("family", sorted(SPECS))
def test_smoothed_model_equals_original(family):
    spec = SPECS[family]
    model = random_model(spec, outlier=20.0)
    smoothed = smoothing.smooth(model, windows(spec))
    tokens = jnp.asarray(windows(spec, seed=2)[:, :-1])  # other tokens than the calibration ones
    want = np.asarray(model(tokens))
    np.testing.assert_allclose(np.asarray(smoothed(tokens)), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    build, params = functional(smoothed)
    jitted = jax.jit(lambda p, t: build(p)(t))(params, tokens)
    np.testing.assert_allclose(np.asarray(jitted), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    _, before = functional(model)
    assert any(not np.allclose(before[k], params[k]) for k in params)  # the weights did change


@pytest.mark.parametrize("fold", ["qkv", "down"])
def test_half_alpha_balances_activation_and_weight_ranges(fold):
    # after one fold at a = 0.5: max|x'_j| = max|x_j| / s_j = sqrt(max|x_j| max|W_j|) = max|W'_j|
    spec = SPECS["llama"]
    model, calib = random_model(spec, outlier=20.0), windows(spec)
    scales = {k: v if k[1] == fold else np.ones_like(v) for k, v in smoothing.factors(model, calib, 0.5).items()}
    smoothed = smoothing.fold(model, scales)
    maxima = smoothing.channel_maxima(smoothed, calib)
    _, p = functional(smoothed)
    op, names = smoothing.FOLDS[fold]
    for layer in range(spec.n_layers):
        w = np.max([np.abs(np.asarray(p[smoothing._param(layer, n)])).max(axis=0) for n in names], axis=0)
        np.testing.assert_allclose(maxima[(layer, op)], w, rtol=1e-4)
        assert not np.allclose(scales[(layer, fold)], 1.0)


def test_smoothing_lowers_activation_error_with_an_outlier_channel():
    spec = SPECS["llama"]
    model, calib = random_model(spec, outlier=30.0), windows(spec, n=4, length=17)
    assert min(smoothing.outlier_ratios(model, calib)["q"]) > 5.0
    table = np.full((spec.n_layers, len(POINTS)), 16.0)
    table[:, [i for i, (kind, op) in enumerate(POINTS) if kind == "act" and op in ("q", "k", "v", "gate", "up")]] = 4.0
    hooks = QuantHooks(Precision.from_table(jnp.asarray(table)))
    tokens = jnp.asarray(windows(spec, seed=3)[:, :-1])
    full = model(tokens)
    errors = [float(jnp.mean((m(tokens, hooks) - full) ** 2)) for m in (model, smoothing.smooth(model, calib))]
    assert errors[1] < 0.75 * errors[0]  # 0.36 vs 0.60 when written


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_scheme_smooth_out_of_range_is_named(bad):
    with pytest.raises(ValueError, match="smooth="):
        QuantScheme(smooth=bad)


def _loss_increase(model, windows, table, scheme) -> float:
    """Oracle: mean token loss with ``table`` fake-quantised by ``scheme`` minus the full-precision loss."""
    x, y = jnp.asarray(windows[:, :-1]), jnp.asarray(windows[:, 1:])
    hooks = QuantHooks(Precision.from_table(jnp.asarray(table, jnp.float32)), scheme)
    return float(token_nll(model(x, hooks), y)) - float(token_nll(model(x), y))


def test_measured_checkpoints_smooth_and_key_it(module_cache, tmp_path):
    trained = train(TINY, log=lambda msg: None)
    directory = save_checkpoint(trained.model, tmp_path / "tiny")
    scheme = dataclasses.replace(CLIPPED_SCHEME, smooth=0.5)
    calibration = Calibration(windows=2, seq_len=32, samples=1, check_windows=4)
    measured = for_checkpoint(directory, calibration, n_fit=2, scheme=scheme)
    digest = measured.checkpoint_hash
    assert cache_path(digest, calibration, scheme) != cache_path(digest, calibration, CLIPPED_SCHEME)
    assert cache_path(digest, calibration, scheme).is_file()
    # Measured.model is the checkpoint smoothed with the calibration windows' factors: equal in full precision.
    model = measured.model(trained.model)
    want = smoothing.smooth(trained.model, calibration.tokens(), 0.5)
    _, got_params = functional(model)
    _, want_params = functional(want)
    assert all(np.array_equal(got_params[k], want_params[k]) for k in want_params)
    check = calibration.check_tokens()
    x = jnp.asarray(check[:, :-1])
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(trained.model(x)), rtol=1e-4, atol=1e-4)
    # The budgets were measured on the smoothed model, not the plain one (independent forward passes).
    table = np.full((TINY.n_layers, len(POINTS)), 3.0)
    smoothed = _loss_increase(model, check, table, scheme)
    assert measured.uniform_loss[3] == pytest.approx(smoothed, abs=2e-5)
    assert abs(smoothed - _loss_increase(trained.model, check, table, scheme)) > 1e-4
    # The file round-trips the strength; a file without it was not smoothed.
    path = measured.save(tmp_path / "m.json")
    assert load(path).scheme == scheme
    payload = json.loads(path.read_text())
    del payload["scheme"]["smooth"]
    path.write_text(json.dumps(payload))
    assert load(path).scheme == CLIPPED_SCHEME


def test_end_to_end_smooth_flag_is_checked(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "experiments" / "end_to_end.py"
    spec = importlib.util.spec_from_file_location("end_to_end", path)
    end_to_end = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(end_to_end)
    assert end_to_end._alpha("none") is None and end_to_end._alpha("0.5") == 0.5
    for bad in ("2", "-0.1", "nan", "half"):
        with pytest.raises(SystemExit) as exit_info:
            end_to_end.main(["--smooth", bad])
        assert exit_info.value.code == 2
        assert f"--smooth {bad!r}: allowed: a number in [0, 1] or none" in capsys.readouterr().err
