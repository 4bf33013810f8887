"""GPTQ weight quantisation (cimjax/quant/gptq.py): layer output error against round to nearest, codes on the
scheme's grid, hand-computed cases, the hooks' selection by width, and the measured data's keys."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cimjax.cli.main import app
from cimjax.lm import DecoderLM, load_weights, model_tensors, save_checkpoint
from cimjax.lm.model import functional, token_nll
from cimjax.quant import gptq
from cimjax.quant.calibration import gptq_starts
from cimjax.quant.measured import (
    CHECKPOINT_SCHEME,
    Calibration,
    MeasuredFileError,
    cache_path,
    gptq_errors,
    load,
    memory_bytes,
)
from cimjax.quant.measured_file import read_scheme
from cimjax.quant.quantizers import (
    CLIPPED_SCHEME,
    DEFAULT_SCHEME,
    FULL_PRECISION_BITS,
    GPTQ_WIDTHS,
    QuantHooks,
    QuantScheme,
    TensorScheme,
    entry_grid,
    fake_quant_scheme,
)
from cimjax.quant.sensitivity import Sensitivities
from cimjax.quant.train import TINY, train
from cimjax.workload.precision import LINEAR_OPS, N_POINTS, Precision, table_from_bits
from cimjax.workload.spec import ModelSpec

SCHEMES = (TensorScheme(True, "channel"), TensorScheme(True, "channel", clip="mse"), TensorScheme(False, "tensor"))
GPTQ_SCHEME = dataclasses.replace(CLIPPED_SCHEME, gptq=True)


def rtn(w: np.ndarray, bits: int, scheme: TensorScheme) -> np.ndarray:
    return np.asarray(fake_quant_scheme(jnp.asarray(w, jnp.float32), bits, scheme, ste=False), np.float64)


def random_layer(seed: int, n_out: int = 8, n_in: int = 24, n_tokens: int = 192):
    """A Gaussian weight and correlated Gaussian inputs (a random mixing of the channels)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_tokens, n_in)) @ rng.standard_normal((n_in, n_in))
    return rng.standard_normal((n_out, n_in)), x


def output_error(x: np.ndarray, w: np.ndarray, q: np.ndarray) -> float:
    return float(np.linalg.norm(x @ w.T - x @ np.asarray(q, np.float64).T))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), scheme=st.sampled_from(SCHEMES), act_order=st.booleans())
def test_output_error_never_above_round_to_nearest(seed, scheme, act_order):
    w, x = random_layer(seed)
    q = gptq.quantise(w, 2.0 * x.T @ x / len(x), GPTQ_WIDTHS, scheme, act_order)
    for i, bits in enumerate(GPTQ_WIDTHS):
        ours, nearest = output_error(x, w, q[i]), output_error(x, w, rtn(w, bits, scheme))
        assert ours <= nearest * (1 + 1e-9), (bits, ours, nearest)
        if bits in (3, 4):
            assert ours < 0.95 * nearest, (bits, ours, nearest)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_codes_on_the_schemes_grid(scheme):
    w, x = random_layer(3)
    q = gptq.quantise(w, 2.0 * x.T @ x / len(x), GPTQ_WIDTHS, scheme)
    for i, bits in enumerate(GPTQ_WIDTHS):
        scale, zero, lower, top = entry_grid(w, bits, scheme)
        codes = q[i] / scale + zero
        np.testing.assert_allclose(codes, np.round(codes), atol=1e-3)
        assert codes.min() >= lower - 1e-3 and codes.max() <= top + 1e-3
        assert top == (2 ** (bits - 1) - 1 if scheme.symmetric else 2**bits - 1)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_one_column_and_uncorrelated_inputs_round_to_nearest(scheme):
    # One column has no later column to take its error; a diagonal H couples no columns: round to nearest.
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 1))
    q = gptq.quantise(w, np.array([[2.5]]), GPTQ_WIDTHS, scheme)
    w2 = rng.standard_normal((6, 5))
    q2 = gptq.quantise(w2, np.diag(rng.uniform(0.5, 2.0, 5)), GPTQ_WIDTHS, scheme)
    for i, bits in enumerate(GPTQ_WIDTHS):
        np.testing.assert_allclose(q[i], rtn(w, bits, scheme), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(q2[i], rtn(w2, bits, scheme), rtol=1e-6, atol=1e-7)


def test_error_feedback_hand_computed():
    # 3 bits symmetric, max scale: codes -3..3, S = max|w| / 3 = 1. H couples columns 0 and 1 only.
    # Column 0: 0.4 -> 0, error 0.4. With damping H_00 = H_11 = 1 + 0.01 (1 % of the mean diagonal, 1),
    # the update moves w_1 by 0.4 * H_01 / H_11 = 0.4 * 0.5 / 1.01 = 0.19802: 2.4 -> 2.598 -> 3 (nearest: 2).
    # Column 1's error reaches no later column (H_12 = 0); column 2 rounds to 3 as before.
    w = np.array([[0.4, 2.4, 3.0]])
    h = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    q = gptq.quantise(w, h, (3,), TensorScheme(True, "channel"))[0]
    np.testing.assert_allclose(q, [[0.0, 3.0, 3.0]])
    np.testing.assert_allclose(rtn(w, 3, TensorScheme(True, "channel")), [[0.0, 2.0, 3.0]])


def test_act_order_hand_computed():
    # As above, but the first column's weight 2.4 (code 2, error 0.4) sits on the input with the smaller energy
    # (H_00 = 1 < H_11 = 2). In index order its error moves w_1 by 0.4 * 0.5 / H_11: 0.4 -> 0.30 -> 0, so
    # [2, 0, 3] (round to nearest's). Act-order quantises column 1 first (0.4 -> 0, error 0.4) and moves w_0
    # by 0.4 * 0.5 / (1 + 0.01 * 4 / 3) = 0.197: 2.4 -> 2.597 -> 3. Its error 0.44 (w - q)H(w - q)^T is
    # below round to nearest's 0.64, so the guard keeps it.
    w = np.array([[2.4, 0.4, 3.0]])
    h = np.array([[1.0, 0.5, 0.0], [0.5, 2.0, 0.0], [0.0, 0.0, 1.0]])
    channel = TensorScheme(True, "channel")
    np.testing.assert_array_equal(gptq.column_order(h), [1, 0, 2])
    np.testing.assert_allclose(gptq.quantise(w, h, (3,), channel)[0], [[2.0, 0.0, 3.0]])
    np.testing.assert_allclose(gptq.quantise(w, h, (3,), channel, act_order=True)[0], [[3.0, 0.0, 3.0]])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_act_order_is_index_order_of_the_permuted_layer(scheme):
    # Oracle: GPTQ in index order on the layer with its inputs sorted by descending energy, un-permuted (the
    # grid is the per-channel (or per-tensor) one of the unpermuted weights, which sorting columns keeps).
    w, x = random_layer(7)
    h = 2.0 * x.T @ x / len(x)
    order = np.argsort(-np.diag(h), kind="stable")
    want = np.empty((len(GPTQ_WIDTHS), *w.shape), np.float32)
    want[:, :, order] = gptq.quantise(w[:, order], h[np.ix_(order, order)], GPTQ_WIDTHS, scheme)
    got = gptq.quantise(w, h, GPTQ_WIDTHS, scheme, act_order=True)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert not np.allclose(got, gptq.quantise(w, h, GPTQ_WIDTHS, scheme))  # the order matters here


def test_dead_inputs_get_zero_weights():
    w, x = random_layer(5)
    x[:, 2] = 0.0
    q = gptq.quantise(w, 2.0 * x.T @ x / len(x), (4,), TensorScheme(True, "channel"))[0]
    assert np.all(q[:, 2] == 0.0) and np.all(np.isfinite(q))


SPEC = ModelSpec("tiny-llama", "tiny", 2, 24, 4, 2, 6, 40, 37, False)


def random_model(seed: int = 0) -> DecoderLM:
    model = DecoderLM(SPEC, rope_theta=500.0, rms_eps=1e-5, rngs=nnx.Rngs(seed))
    rng = np.random.default_rng(seed)
    tensors = {
        name: (1.0 + 0.1 * rng.standard_normal(t.shape) if "norm" in name else 0.25 * rng.standard_normal(t.shape))
        for name, t in model_tensors(model).items()
    }
    return load_weights(model, {k: v.astype(np.float32) for k, v in tensors.items()})


def test_prepared_model_selects_gptq_copies_by_width():
    model = random_model()
    windows = np.random.default_rng(1).integers(0, SPEC.vocab, size=(4, 17))
    prepared = gptq.prepare(model, windows, GPTQ_SCHEME.weight)
    x = jnp.asarray(windows[:, :-1])
    h = gptq.hessians(model, windows)
    full = np.full((SPEC.n_layers, N_POINTS), FULL_PRECISION_BITS, np.float32)
    # Full precision: the prepared model is the model, with and without the GPTQ scheme.
    np.testing.assert_array_equal(np.asarray(prepared(x)), np.asarray(model(x)))
    for scheme in (GPTQ_SCHEME, CLIPPED_SCHEME):
        hooks = QuantHooks(Precision.from_table(jnp.asarray(full)), scheme)
        np.testing.assert_array_equal(np.asarray(prepared(x, hooks)), np.asarray(model(x)))
    layer, op = 1, "down"
    w = np.asarray(model.linear(layer, op).weight[...])
    stored = jnp.asarray(prepared.linear(layer, op).quantised[...])
    assert stored.shape == (len(GPTQ_WIDTHS), *w.shape)
    np.testing.assert_allclose(stored[2], gptq.quantise(w, h[(layer, op)], (4,), GPTQ_SCHEME.weight)[0], rtol=1e-6)
    column = LINEAR_OPS.index(op)
    for bits, want in [(b, stored[b - 2]) for b in GPTQ_WIDTHS] + [(b, rtn(w, b, GPTQ_SCHEME.weight)) for b in
                                                                     (5.5, 12.0, 16.0)]:  # fmt: skip
        table = full.copy()
        table[layer, column] = bits
        hooks = QuantHooks(Precision.from_table(jnp.asarray(table)), GPTQ_SCHEME)
        np.testing.assert_allclose(np.asarray(hooks.stored_weight(layer, op, jnp.asarray(w), stored)), want, atol=1e-6)
    # The measured error energies of the weights are the copies': ||Q_b(W) - W||^2 at b = 2..8.
    zeros = np.zeros((SPEC.n_layers, N_POINTS, len(GPTQ_WIDTHS)))
    sens = Sensitivities(*[jnp.zeros((SPEC.n_layers, N_POINTS))] * 7, zeros, zeros, jnp.zeros(()), zeros)
    err = np.asarray(gptq_errors(sens, prepared).err)
    want = [np.sum((np.asarray(stored[i], np.float64) - w) ** 2) for i in range(len(GPTQ_WIDTHS))]
    np.testing.assert_allclose(err[layer, column], want, rtol=1e-5)
    assert np.all(err[:, : len(LINEAR_OPS)] > 0) and np.all(err[:, len(LINEAR_OPS) :] == 0)
    # Without gptq the copies are ignored: round to nearest, as for a model without them.
    table = np.full_like(full, 4.0)
    rtn_hooks = QuantHooks(Precision.from_table(jnp.asarray(table)), CLIPPED_SCHEME)
    np.testing.assert_array_equal(np.asarray(prepared(x, rtn_hooks)), np.asarray(model(x, rtn_hooks)))


def test_prepared_copies_are_cached_by_content(monkeypatch, tmp_path):
    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))
    model, scheme = random_model(), GPTQ_SCHEME.weight
    windows = np.random.default_rng(1).integers(0, SPEC.vocab, size=(4, 17))
    params = functional(model)[1]

    def copies(prepared):
        return {(layer, op): np.asarray(prepared.linear(layer, op).quantised[...])
                for layer in range(SPEC.n_layers) for op in LINEAR_OPS}  # fmt: skip

    computed = copies(gptq.prepare(model, windows, scheme, act_order=True))
    path = gptq.cache_file(params, windows, scheme, True)
    assert path.is_file() and list(path.parent.iterdir()) == [path]
    # What the copies depend on keys them: the windows, the order, the grid, the weights.
    other = functional(random_model(seed=1))[1]
    keys = {gptq.cache_file(params, windows[:3], scheme, True), gptq.cache_file(params, windows, scheme, False),
            gptq.cache_file(params, windows, TensorScheme(True, "channel"), True),
            gptq.cache_file(other, windows, scheme, True)}  # fmt: skip
    assert path not in keys and len(keys) == 4
    # A second preparation reads the file (the quantiser is not called) and gets the same copies.
    with monkeypatch.context() as m:
        m.setattr(gptq, "quantise", lambda *args: pytest.fail("quantised again"))
        for key, value in copies(gptq.prepare(model, windows, scheme, act_order=True)).items():
            np.testing.assert_array_equal(value, computed[key])
    # A damaged file is computed again (and rewritten); cache=False neither reads nor writes.
    path.write_bytes(b"not an npz file")
    for key, value in copies(gptq.prepare(model, windows, scheme, act_order=True)).items():
        np.testing.assert_array_equal(value, computed[key])
    assert np.load(path)["1.down"].shape == computed[(1, "down")].shape
    path.unlink()
    gptq.prepare(model, windows, scheme, act_order=True, cache=False)
    assert not path.exists()


def test_gptq_scheme_without_copies_is_refused():
    model = random_model()
    hooks = QuantHooks(Precision.from_table(jnp.full((SPEC.n_layers, N_POINTS), 4.0)), GPTQ_SCHEME)
    with pytest.raises(ValueError, match="gptq=True.*GPTQ weights.*layer 0, q"):
        model(jnp.zeros((1, 4), jnp.int32), hooks)


def test_gptq_keys_the_measured_data():
    digest, calibration = "0" * 64, Calibration()
    # Keys without gptq are those from before it existed (names computed at commit 2c2790e).
    assert cache_path(digest, calibration, DEFAULT_SCHEME).name == f"{'0' * 32}-b8492f93eac0-v4.json"
    assert cache_path(digest, calibration, CLIPPED_SCHEME).name == f"{'0' * 32}-6dfc4d197ef7-v4.json"
    assert CHECKPOINT_SCHEME == GPTQ_SCHEME  # measured checkpoints' quantiser: GPTQ on the clipped grid
    assert cache_path(digest, calibration, GPTQ_SCHEME) != cache_path(digest, calibration, CLIPPED_SCHEME)
    # The fields GPTQ gained are left out at their values from before them: index order on the sensitivity
    # windows keeps the GPTQ key computed at commit 1565e08; others key apart.
    legacy = dataclasses.replace(calibration, gptq_windows=None), dataclasses.replace(GPTQ_SCHEME, gptq_act_order=False)
    assert cache_path(digest, *legacy).name == f"{'0' * 32}-7d6eb4dc0402-v4.json"
    paths = {cache_path(digest, dataclasses.replace(calibration, gptq_windows=n), dataclasses.replace(GPTQ_SCHEME,
             gptq_act_order=a)) for n in (None, 32, 128) for a in (False, True)}  # fmt: skip
    assert len(paths) == 6
    # Without GPTQ neither field keys anything.
    rtn = {cache_path(digest, dataclasses.replace(calibration, gptq_windows=n), dataclasses.replace(CLIPPED_SCHEME,
           gptq_act_order=a)) for n in (None, 32) for a in (False, True)}  # fmt: skip
    assert rtn == {cache_path(digest, calibration, CLIPPED_SCHEME)}
    assert read_scheme(dataclasses.asdict(GPTQ_SCHEME), "f") == GPTQ_SCHEME
    payload = dataclasses.asdict(CLIPPED_SCHEME)
    del payload["gptq"], payload["gptq_act_order"]
    assert read_scheme(payload, "f") == CLIPPED_SCHEME  # a file from before: round to nearest
    assert read_scheme(payload | {"gptq": True}, "f") == legacy[1]  # a GPTQ file from before: index order
    with pytest.raises(MeasuredFileError, match="gptq='yes' must be true or false"):
        read_scheme(payload | {"gptq": "yes"}, "f")
    with pytest.raises(ValueError, match="gptq=1 must be true or false"):
        QuantScheme(gptq=1)
    with pytest.raises(ValueError, match="gptq_act_order=None must be true or false"):
        QuantScheme(gptq_act_order=None)


def test_gptq_windows_are_evenly_spaced_and_seed_independent():
    calibration = Calibration(seq_len=64, gptq_windows=40)
    train_tokens, _ = calibration.split()
    windows = calibration.gptq_tokens()
    assert windows.shape == (40, 65)
    np.testing.assert_array_equal(windows, dataclasses.replace(calibration, seed=5).gptq_tokens())
    starts = gptq_starts(len(train_tokens), 64, 40)
    assert np.all(np.abs(starts - np.arange(40) * (len(train_tokens) - 65) / 39) < 1)  # first at 0, last at the end
    np.testing.assert_array_equal(windows, train_tokens[starts[:, None] + np.arange(65)])
    np.testing.assert_array_equal(windows[-1], train_tokens[-65:])
    gaps = np.diff(starts)
    assert gaps.min() >= 65 and gaps.max() - gaps.min() <= 1  # no overlap, even spacing
    np.testing.assert_array_equal(dataclasses.replace(calibration, gptq_windows=None).gptq_tokens(),
                                  calibration.tokens())  # fmt: skip
    with pytest.raises(ValueError, match="calibration gptq_windows=0 must be a positive integer"):
        Calibration(gptq_windows=0)
    with pytest.raises(ValueError, match="gptq_windows=100000 x 65 tokens do not fit"):
        dataclasses.replace(calibration, gptq_windows=100_000).gptq_tokens()


def test_cli_sensitivities_gptq_measures_the_gptq_model(module_cache, tmp_path):
    trained = train(TINY, log=lambda msg: None)
    directory = save_checkpoint(trained.model, tmp_path / "tiny")
    path = tmp_path / "sens.json"
    # 8 Hessian windows, not the default 128 (that the default reaches the measurement: the test below)
    calib = ["--windows", "2", "--seq-len", "32", "--samples", "1", "--check-windows", "4", "--gptq-windows", "8"]
    args = ["proxy", "sensitivities", "--checkpoint", str(directory), *calib, "--out", str(path), "--json"]  # GPTQ
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scheme"]["gptq"] is True
    measured = load(path)
    assert measured.scheme == GPTQ_SCHEME
    # A file from before gptq_windows: its Hessians came from the sensitivity windows (None), as it says.
    payload = json.loads(path.read_text())
    del payload["calibration"]["gptq_windows"]
    (tmp_path / "old.json").write_text(json.dumps(payload))
    assert load(tmp_path / "old.json").calibration.gptq_windows is None
    # Oracle: uniform 3 bits measured on the check windows with an independent forward pass of the model
    # prepared from the evenly spaced Hessian windows, in act-order.
    assert measured.calibration.gptq_windows == 8 and GPTQ_SCHEME.gptq_act_order
    model = gptq.prepare(trained.model, measured.calibration.gptq_tokens(), GPTQ_SCHEME.weight, True, cache=False)
    check = measured.calibration.check_tokens()
    x, y = jnp.asarray(check[:, :-1]), jnp.asarray(check[:, 1:])
    build, params = functional(model)

    @jax.jit  # one program for both tables (op by op, every operation compiles on its own)
    def loss_and_kl_of(params, table):
        model = build(params)
        hooks = QuantHooks(Precision.from_table(table), GPTQ_SCHEME)
        full, quantised = jax.nn.log_softmax(model(x), axis=-1), jax.nn.log_softmax(model(x, hooks), axis=-1)
        kl = jnp.mean(jnp.sum(jnp.exp(full) * (full - quantised), axis=-1))
        return token_nll(model(x, hooks), y), token_nll(model(x), y), kl

    def loss_and_kl(table) -> tuple[float, float]:
        quantised, full, kl = map(float, loss_and_kl_of(params, jnp.asarray(table, jnp.float32)))
        return quantised - full, kl

    loss, kl = loss_and_kl(np.full((TINY.n_layers, N_POINTS), 3.0))
    assert measured.uniform_loss[3] == pytest.approx(loss, abs=2e-5)
    assert measured.uniform_kl[3] == pytest.approx(kl, rel=1e-3, abs=1e-9)
    # optimize --sensitivities FILE --checkpoint DIR --verify measures its design with GPTQ weights too (KL: the
    # tiny model's loss increases are at its noise level).
    budget = str(measured.uniform_kl[2])
    args = ["optimize", "--checkpoint", str(directory), "--sensitivities", str(path), "--budget", budget, "--target",
            "kl", "--verify", "--verify-rounds", "1", "--starts", "2", "--rounds", "2", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["scheme"]["gptq"] is True
    assert report["measured_kl"] == pytest.approx(loss_and_kl(table_from_bits(report["bits"]))[1], rel=1e-3, abs=1e-9)
    # ... and refuses to read it as a round-to-nearest measurement.
    result = CliRunner().invoke(app, ["optimize", "--sensitivities", str(path), "--budget", "int8", "--no-gptq"])
    assert result.exit_code == 2 and "--no-gptq: --sensitivities" in result.output
    assert "was measured with GPTQ weights" in " ".join(result.output.split())


def test_optimize_checkpoint_gptq_measures_with_the_gptq_quantiser(monkeypatch, tmp_path):
    """``optimize --checkpoint DIR --gptq`` measures the checkpoint with GPTQ weights (the measurement itself is
    checked above; here it is stopped once the quantiser is chosen), as it does by default; with --no-gptq it
    rounds to nearest."""
    import cimjax.quant.measured as measured_module

    chosen = []

    def stop(directory, calibration, log=None, scheme=None, progress=None):
        chosen.append(scheme)
        raise ValueError("stopped once the quantiser was chosen")

    monkeypatch.setattr(measured_module, "for_checkpoint", stop)
    model = DecoderLM(dataclasses.replace(SPEC, vocab=256), rope_theta=500.0, rms_eps=1e-5, rngs=nnx.Rngs(0))
    directory = str(save_checkpoint(model, tmp_path / "byte-vocab"))  # its options are checked before measuring
    for flags in (["--gptq"], [], ["--no-gptq"]):
        result = CliRunner().invoke(app, ["optimize", "--checkpoint", directory, "--budget", "int8", *flags])
        assert result.exit_code == 2 and "stopped once the quantiser was chosen" in result.output
    assert chosen == [GPTQ_SCHEME, GPTQ_SCHEME, CLIPPED_SCHEME]


def test_memory_estimate_counts_the_gptq_copies():
    linear = sum(t.size for name, t in model_tensors(random_model()).items() if name.endswith("_proj.weight"))
    extra = memory_bytes(SPEC, 4, 16, gptq=True) - memory_bytes(SPEC, 4, 16)
    assert extra == 4 * len(GPTQ_WIDTHS) * linear  # float32 copies at 2..8 bits of every decoder linear


def test_gptq_windows_option_reaches_the_measurement_and_is_checked(monkeypatch, tmp_path):
    """``--gptq-windows N`` sets GPTQ's Hessian windows of what ``optimize --checkpoint`` and ``proxy
    sensitivities`` measure (stopped here once the calibration is chosen); 0, more than the training split
    holds, or with --no-gptq is a one-line error before anything is measured."""
    import cimjax.quant.measured as measured_module

    chosen = []

    def stop(directory, calibration, log=None, scheme=None, progress=None):
        chosen.append(calibration.gptq_windows)
        raise ValueError("stopped once the calibration was chosen")

    monkeypatch.setattr(measured_module, "for_checkpoint", stop)
    model = DecoderLM(dataclasses.replace(SPEC, vocab=256), rope_theta=500.0, rms_eps=1e-5, rngs=nnx.Rngs(0))
    directory = str(save_checkpoint(model, tmp_path / "byte-vocab"))
    commands = (
        ["optimize", "--checkpoint", directory, "--budget", "int8"],
        ["proxy", "sensitivities", "--checkpoint", directory],
    )
    cases = (
        (["--gptq-windows", "32"], "stopped once the calibration was chosen"),
        ([], "stopped once the calibration was chosen"),
        (["--gptq-windows", "0"], "--gptq-windows"),
        (["--gptq-windows", "8", "--no-gptq"], "does not go with --no-gptq"),
    )
    for command in commands:
        for flags, message in cases:
            result = CliRunner().invoke(app, [*command, *flags])
            assert result.exit_code == 2 and message in " ".join(result.output.split()), (command, flags, result.output)
    assert chosen == [32, 128, 32, 128]
    result = CliRunner().invoke(app, [*commands[1], "--gptq-windows", "100000"])
    assert result.exit_code == 2 and "do not fit" in result.output and chosen == [32, 128, 32, 128]
    result = CliRunner().invoke(
        app, ["optimize", "--sensitivities", "f.json", "--budget", "int8", "--gptq-windows", "8"]
    )
    assert result.exit_code == 2 and "a --sensitivities file keeps the GPTQ windows" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["optimize", "--model", "qwen2.5-0.5b", "--budget", "int8", "--gptq-windows", "8"])
    assert result.exit_code == 2 and "it needs --checkpoint DIR" in " ".join(result.output.split())
