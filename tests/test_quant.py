"""Quantisers against hand-computed cases and error bounds; the proxy's interpolation, gradients, monotonicity."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from cimjax.quant.default_proxy import default_proxy
from cimjax.quant.proxy import VARIANTS, make_proxy, uniform_budgets
from cimjax.quant.quantizers import QuantScheme, TensorScheme, fake_quant, levels, noise_constant
from cimjax.quant.sensitivity import BIT_GRID, Sensitivities, log_interp
from cimjax.workload.models import MODELS
from cimjax.workload.precision import N_POINTS, Precision

# Jitted once per static setting: eager dispatch of many small ops is slow on a 2-core CI machine.
fq = jax.jit(fake_quant, static_argnames=("symmetric", "granularity", "group_size", "ste"))
interp = jax.jit(log_interp, static_argnames="floor")

X = jnp.array([[-1.0, 0.2, 0.5, 1.0], [0.1, 0.3, -0.2, 0.0]])


def test_symmetric_per_channel_by_hand():
    # 2 bits: codes -1, 0, 1; row scales 1.0 and 0.3. 0.5 / 1.0 rounds half to even -> 0.
    np.testing.assert_allclose(fake_quant(X, 2), [[-1, 0, 0, 1], [0, 0.3, -0.3, 0]], atol=1e-6)
    # 3 bits: codes -3..3; scale 1/3 for row 0, 0.1 for row 1.
    np.testing.assert_allclose(fake_quant(X, 3)[0], [-1, 1 / 3, 2 / 3, 1], atol=1e-6)
    np.testing.assert_allclose(fake_quant(X, 3)[1], [0.1, 0.3, -0.2, 0.0], atol=1e-6)


def test_asymmetric_per_tensor_by_hand():
    # 2 bits: S = (1 - (-1)) / 3, Z = round(1.5) = 2; codes 0..3 dequantise to S * (q - 2).
    s = 2 / 3
    expected = [[-2 * s, 0, s, s], [0, 0, 0, 0]]
    np.testing.assert_allclose(fake_quant(X, 2, symmetric=False, granularity="tensor"), expected, atol=1e-6)


def test_per_group_by_hand():
    # groups of 2: [-1, .2] [.5, 1] [.1, .3] [-.2, 0]; 3 bits symmetric: scale max/3.
    got = fake_quant(X, 3, granularity="group", group_size=2)
    expected = [[-1, 1 / 3, 2 / 3, 1], [0.1, 0.3, -0.2, 0.0]]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert float(levels(4, True)) == 7 and float(levels(4, False)) == 15


def test_full_precision_and_straight_through():
    np.testing.assert_array_equal(fake_quant(X, 24.0), X)
    grad = jax.grad(lambda x: jnp.sum(fake_quant(x, 3) * jnp.arange(4.0)))(X)
    np.testing.assert_array_equal(grad, jnp.broadcast_to(jnp.arange(4.0), X.shape))
    # Without STE rounding passes no gradient; only the entries that set a row's scale (max |x|) get one.
    raw = jax.grad(lambda x: jnp.sum(fake_quant(x, 3, ste=False)))(X)
    sets_scale = jnp.abs(X) == jnp.max(jnp.abs(X), axis=-1, keepdims=True)
    assert float(jnp.abs(jnp.where(sets_scale, 0.0, raw)).max()) == 0.0


def test_quantizer_errors_name_the_problem():
    with pytest.raises(ValueError, match="granularity='row'"):
        fake_quant(X, 4, granularity="row")
    with pytest.raises(ValueError, match="group_size=3 does not divide"):
        fake_quant(X, 4, granularity="group", group_size=3)
    with pytest.raises(ValueError, match="at least 2 bits"):
        fake_quant(X, 1)
    with pytest.raises(ValueError, match="group_size=0"):
        TensorScheme(True, "group", 0)


@settings(max_examples=20, deadline=None)
@given(
    bits=st.integers(2, 8),
    symmetric=st.booleans(),
    granularity=st.sampled_from(["tensor", "channel", "group"]),
    seed=st.integers(0, 2**16),
)
def test_round_trip_error_is_at_most_half_a_step(bits, symmetric, granularity, seed):
    x = np.random.default_rng(seed).standard_normal((6, 16)).astype(np.float32) * 3.0
    y = np.asarray(fq(jnp.asarray(x), bits, symmetric=symmetric, granularity=granularity, group_size=4))
    g = x.reshape(1, -1) if granularity == "tensor" else x.reshape(6, -1, 4) if granularity == "group" else x
    span = np.abs(g).max(-1) if symmetric else g.max(-1) - g.min(-1)
    step = span / (2.0 ** (bits - 1) - 1 if symmetric else 2.0**bits - 1)
    assert np.all(np.abs(y - x).reshape(g.shape) <= step[..., None] / 2 + 1e-5)
    # every group uses at most 2^b distinct values
    rows = y.reshape(g.shape).reshape(-1, g.shape[-1]) if granularity != "tensor" else y.reshape(1, -1)
    assert max(len(np.unique(r)) for r in rows) <= 2**bits


def test_uniform_noise_model_matches_measured_error():
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (64, 512)), jnp.float32)
    for scheme in (TensorScheme(True, "channel"), TensorScheme(False, "tensor")):
        for bits in (4, 6, 8):
            measured = float(
                jnp.sum((fake_quant(x, bits, symmetric=scheme.symmetric, granularity=scheme.granularity) - x) ** 2)
            )
            model = float(noise_constant(x, scheme) / levels(bits, scheme.symmetric) ** 2)
            assert measured == pytest.approx(model, rel=0.1)


def test_log_interp_hits_knots_is_monotone_and_smooth():
    curve = jnp.array([3.0, 0.5, 0.6, 0.02, 4e-3, 1e-3, -1e-4])  # non-monotone and negative on purpose
    knots = interp(jnp.asarray(BIT_GRID, jnp.float32), jnp.broadcast_to(curve, (7, 7)), 1e-6)
    np.testing.assert_allclose(knots, [3.0, 0.5, 0.5, 0.02, 4e-3, 1e-3, 1e-6], rtol=1e-5)
    b = jnp.linspace(1.0, 12.0, 400)
    y = interp(b, jnp.broadcast_to(curve, (400, 7)), 1e-6)
    assert bool(jnp.all(jnp.diff(y) <= 1e-12))
    dy = jax.jit(jax.vmap(jax.grad(lambda t: jnp.log(log_interp(t, curve, 1e-6)))))(jnp.array([3.999, 4.0, 4.001]))
    assert float(jnp.ptp(dy)) < 0.05  # continuous derivative across a knot
    above = interp(jnp.array([9.0, 10.0]), jnp.broadcast_to(curve, (2, 7)), 1e-9)
    assert float(above[0] / above[1]) >= 4.0 - 1e-4


def synthetic_sensitivities(n_layers: int, seed: int = 0) -> Sensitivities:
    """Positive random tables with error curves that fall like 4^-b (a stand-in for :func:`estimate`)."""
    rng = np.random.default_rng(seed)
    shape = (n_layers, N_POINTS)
    err = rng.uniform(0.5, 2.0, shape)[..., None] * 4.0 ** -(BIT_GRID - 2.0)
    return Sensitivities(
        numel=jnp.asarray(rng.integers(100, 1000, shape), jnp.float32),
        hessian=jnp.asarray(rng.uniform(-0.1, 1.0, shape), jnp.float32),
        fisher=jnp.asarray(rng.uniform(0.0, 1.0, shape), jnp.float32),
        outmse=jnp.asarray(rng.uniform(0.0, 1.0, shape), jnp.float32),
        noise_c=jnp.asarray(rng.uniform(0.1, 1.0, shape), jnp.float32),
        energy=jnp.asarray(rng.uniform(1.0, 10.0, shape), jnp.float32),
        symmetric=jnp.asarray(np.ones(shape) * (np.arange(N_POINTS) != 15), jnp.float32),
        err=jnp.asarray(err, jnp.float32),
        loss=jnp.asarray(err * 0.1 * rng.uniform(0.5, 2.0, shape)[..., None], jnp.float32),
        base_loss=jnp.asarray(1.0),
        kl=jnp.asarray(err * 0.1 * rng.uniform(0.5, 2.0, shape)[..., None], jnp.float32),
    )


def synthetic_pairs(n_layers: int, seed: int = 0) -> np.ndarray:
    """Symmetric non-negative pair coefficients ``(17 L, 17 L)``, zero diagonal (a stand-in for measured ones)."""
    w = np.triu(np.random.default_rng(seed).uniform(0.0, 1.0, (n_layers * N_POINTS,) * 2), 1)
    return w + w.T


def all_proxies(n_layers: int):
    sens = synthetic_sensitivities(n_layers)
    proxies = [make_proxy(name, sens, synthetic_pairs(n_layers)) for name in VARIANTS]
    proxies = [dataclasses.replace(p, coef=p.coef * 0.7) if p.kind.fitted else p for p in proxies]
    return proxies + [default_proxy(MODELS["qwen3-0.6b"])]


def interaction_setup(n_layers: int, n: int, rng_seed: int):
    """Synthetic sensitivities (seed 3), ``n`` random 2-8-bit tables and their ``interaction`` features."""
    from cimjax.quant.proxy import batch_features

    sens = synthetic_sensitivities(n_layers, seed=3)
    tables = np.random.default_rng(rng_seed).integers(2, 9, size=(n, n_layers, N_POINTS)).astype(np.float32)
    proxy = make_proxy("interaction", sens)
    return sens, tables, proxy, np.asarray(batch_features(proxy, jnp.asarray(tables)), np.float64)


def random_precision(rng, n_layers, low=2.0, high=8.0) -> Precision:
    return Precision.from_table(jnp.asarray(rng.uniform(low, high, (n_layers, N_POINTS)), jnp.float32))


def test_proxy_is_differentiable_and_monotone_in_bits():
    """Finite, non-positive gradients (also outside the measured 2..8 range); more bits never predict more loss."""
    rng = np.random.default_rng(1)
    for proxy in all_proxies(3):
        value_and_grad = jax.jit(jax.value_and_grad(proxy))
        for _ in range(6):
            p = random_precision(rng, 3, 1.0, 12.0)
            more = jax.tree.map(lambda b: b + jnp.asarray(rng.uniform(0, 2, b.shape), jnp.float32), p)
            value, grad = value_and_grad(p)
            for leaf in jax.tree.leaves(grad):
                assert bool(jnp.all(jnp.isfinite(leaf))) and bool(jnp.all(leaf <= 0.0)), proxy.name
            assert float(jnp.sum(grad.to_table())) < 0.0, proxy.name
            assert float(value_and_grad(more)[0]) <= float(value) * (1 + 1e-6), proxy.name
        b = uniform_budgets(lambda p, f=value_and_grad: f(p)[0], 3)
        assert b["int8"] < b["int6"] < b["int4"], proxy.name


def test_default_proxy_is_labelled_an_assumption():
    spec = MODELS["qwen2.5-0.5b"]
    proxy = default_proxy(spec)
    assert "ASSUMPTION" in proxy.assumption
    assert float(proxy(Precision.uniform(spec.n_layers, 8))) > 0.0
    with pytest.raises(ValueError, match="kappa"):
        default_proxy(spec, kappa=-1.0)
    with pytest.raises(ValueError, match="variant 'nope'"):
        make_proxy("nope", synthetic_sensitivities(1))


def test_quant_scheme_kinds():
    scheme = QuantScheme()
    assert not scheme.of("act", "pv").symmetric and scheme.of("act", "q").symmetric
    assert scheme.of("weight", "q").granularity == "channel" and scheme.of("kv", "kv").granularity == "token"


def test_interaction_proxy_terms_by_hand_and_fit_recovers_them():
    """The interaction features against a direct numpy computation, and a relative NNLS fit that recovers
    known coefficients from losses generated by them (an exact, consistent system)."""
    from cimjax.quant.proxy import fit_proxy, saturate

    n_layers = 2
    sens, tables, proxy, feats = interaction_setup(n_layers, 24, 0)
    kl = np.asarray(sens.kl, np.float64)
    for t, f in zip(tables[:3], feats[:3], strict=True):
        curve = np.maximum(np.minimum.accumulate(kl, axis=-1), 1e-10)  # made non-increasing, floored
        d = curve[np.arange(n_layers)[:, None], np.arange(N_POINTS)[None], t.astype(int) - 2]
        r = np.sqrt(d)
        mlp = [4, 5, 6, 11, 12, 13]  # gate, up, down: weights and inputs; the rest is the attention block
        attention = [c for c in range(N_POINTS) if c not in mlp]
        blocks = [*(r[:, attention].sum(axis=1) ** 2), *(r[:, mlp].sum(axis=1) ** 2)]
        expected = [d.sum(), *blocks, r.sum() ** 2, (r[:, :7] * r[:, 7:14]).sum()]
        np.testing.assert_allclose(f, expected, rtol=2e-4)
    true = np.array([1.0, 0.0, 0.5, 2.0, 0.0, 0.7, 0.3])
    fitted = fit_proxy(proxy, tables, feats @ true)
    np.testing.assert_allclose(np.asarray(fitted.coef), true, rtol=1e-3, atol=1e-3)
    assert np.isinf(float(fitted.saturation))  # a linear system: cross-validation keeps it linear
    # Losses that saturate as s log(1 + true . features / s), s their median: the fit chooses that
    # scale and recovers the coefficients; the proxy is that formula, and linear far below s.
    linear, scale = feats @ true, 1.0
    for _ in range(200):  # the scale that is the median of the losses it produces (a fixed point)
        scale = np.median(scale * np.log1p(linear / scale))
    losses = scale * np.log1p(linear / scale)
    assert scale == pytest.approx(np.median(losses), rel=1e-9) and losses.max() > 1.5 * scale
    fitted = fit_proxy(proxy, tables, losses)
    assert float(fitted.saturation) == pytest.approx(scale, rel=1e-6)
    np.testing.assert_allclose(np.asarray(fitted.coef), true, rtol=1e-3, atol=1e-3)
    precision = Precision.from_table(jnp.asarray(tables[0]))
    assert float(fitted(precision)) == pytest.approx(losses[0], rel=1e-4)
    assert float(saturate(jnp.float32(1e-3), jnp.float32(scale))) == pytest.approx(1e-3, rel=1e-3)


def test_pairwise_features_by_hand():
    """``[sum d, sum_{t<u in group} w_tu sqrt(d_t d_u)]`` per group, against a loop over pairs in numpy."""
    from cimjax.quant.proxy import batch_features

    n_layers = 2
    sens = synthetic_sensitivities(n_layers, seed=4)
    rng = np.random.default_rng(2)
    w = synthetic_pairs(n_layers, seed=5)
    proxy = make_proxy("pairwise", sens, w)
    tables = rng.integers(2, 9, size=(3, n_layers, N_POINTS)).astype(np.float32)
    feats = np.asarray(batch_features(proxy, jnp.asarray(tables)), np.float64)
    kl = np.maximum(np.minimum.accumulate(np.asarray(sens.kl, np.float64), axis=-1), 1e-10)
    mlp = {4, 5, 6, 11, 12, 13}
    for t, f in zip(tables, feats, strict=True):
        d = kl[np.arange(n_layers)[:, None], np.arange(N_POINTS)[None], t.astype(int) - 2].reshape(-1)
        expected = [d.sum(), 0.0, 0.0, 0.0, 0.0]
        for i in range(34):
            for j in range(i + 1, 34):
                (li, ci), (lj, cj) = divmod(i, N_POINTS), divmod(j, N_POINTS)
                group = 3 if li != lj else 2 if (ci in mlp) != (cj in mlp) else int(ci in mlp)
                expected[1 + group] += w[i, j] * np.sqrt(d[i] * d[j])
        np.testing.assert_allclose(f, expected, rtol=2e-4)
    with pytest.raises(ValueError, match="needs measured pairs"):
        batch_features(make_proxy("pairwise", sens), jnp.asarray(tables))


def test_optimizer_proxy_variants():
    """``optimizer_proxy`` fits the chosen variant (``pairwise`` with the given pairs: its features times its fitted
    coefficients, checked against :func:`test_pairwise_features_by_hand`'s features) and keeps the default's."""
    from cimjax.quant.proxy import batch_features, fit_proxy, optimizer_proxy

    n_layers = 2
    sens, w = synthetic_sensitivities(n_layers, seed=4), synthetic_pairs(n_layers, seed=5)
    tables = np.random.default_rng(3).integers(2, 9, size=(40, n_layers, N_POINTS)).astype(np.float32)
    feats = np.asarray(batch_features(make_proxy("pairwise", sens, w), jnp.asarray(tables)), np.float64)
    measured = feats @ np.array([1.0, 0.5, 2.0, 0.0, 0.3])  # a pairwise-shaped target, linear
    proxy = optimizer_proxy(sens, tables, measured, "kl", "pairwise", w)
    assert proxy.name == "pairwise" and np.allclose(np.asarray(proxy.pairs), w)
    np.testing.assert_allclose(np.asarray(proxy.coef), [1.0, 0.5, 2.0, 0.0, 0.3], rtol=1e-3, atol=1e-3)
    default, interaction = optimizer_proxy(sens, tables, measured, "kl"), fit_proxy(make_proxy("interaction", sens),
                                                                                   tables, measured)  # fmt: skip
    assert default.name == "interaction" and np.array_equal(np.asarray(default.coef), np.asarray(interaction.coef))
    allowed = "allowed: interaction, pairwise, interaction_spline, interaction_envelope"
    with pytest.raises(ValueError, match=f"variant = 'higgs' cannot drive the optimiser; {allowed}"):
        optimizer_proxy(sens, tables, measured, "kl", "higgs")
    with pytest.raises(ValueError, match="needs measured pairs"):
        optimizer_proxy(sens, tables, measured, "kl", "pairwise")


def test_least_squares_with_a_lower_bound_by_hand():
    """``coef >= lower``: the bound binds where the data want less (hand-solved: c0 = 1, c1 = 1.75)."""
    from cimjax.quant.fitting import fit_coefficients

    feats, measured = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([0.5, 2.0, 2.5])
    np.testing.assert_allclose(fit_coefficients(feats, measured, lower=np.array([1.0, 0.0])), [1.0, 1.75])
    np.testing.assert_allclose(fit_coefficients(feats, measured), [0.5, 2.0], atol=1e-12)  # exact without it


def test_interaction_fit_floors_its_additive_coefficient_and_its_saturation():
    """The optimiser's proxy never prices the sum of single-point effects below itself (additive coefficient
    >= 1, even when the fit set wants 0.2) and never saturates below 4x that sum at uniform INT4 (computed
    here from the synthetic curves by hand), even on losses that saturate far below it."""
    from cimjax.quant.proxy import SATURATION_MARGIN, fit_proxy, saturation_floor

    n_layers = 2
    sens, tables, proxy, feats = interaction_setup(n_layers, 30, 0)
    curve = np.maximum(np.minimum.accumulate(np.asarray(sens.kl, np.float64), axis=-1), 1e-10)
    floor = SATURATION_MARGIN * curve[..., list(BIT_GRID).index(4)].sum()
    assert saturation_floor(proxy) == pytest.approx(floor, rel=1e-5)
    true = np.array([0.2, 0.0, 0.5, 2.0, 0.0, 0.7, 0.3])
    fitted = fit_proxy(proxy, tables, feats @ true)
    assert float(fitted.coef[0]) == pytest.approx(1.0) and bool(jnp.all(fitted.coef >= 0))
    assert np.isinf(float(fitted.saturation))
    scale = floor / 10  # losses that saturate well inside the optimiser's range
    fitted = fit_proxy(proxy, tables, scale * np.log1p(feats @ np.array([1.0, 0, 0.5, 2.0, 0, 0.7, 0.3]) / scale))
    assert float(fitted.saturation) >= floor * (1 - 1e-6)


def test_spline_basis_by_hand():
    """Ramps between knots, the first and last continued linearly beyond them (knots 0, 1, 3)."""
    from cimjax.quant.fitting import spline_basis

    knots = jnp.array([[0.0, 1.0, 3.0]])
    u = jnp.array([[-1.0], [0.5], [2.0], [5.0]])
    expected = [[-1.0, 0.0], [0.5, 0.0], [1.0, 0.5], [1.0, 2.0]]
    np.testing.assert_allclose(spline_basis(u, knots), expected, atol=1e-7)


def test_spline_fit_recovers_a_product_of_powers_and_extrapolates_it():
    """``C f1^a f2^b`` is linear in the log features, which the spline spans exactly (its tails included): the
    fit reproduces it on the fit set and beyond its range, and its coefficients are >= 0 (monotone)."""
    from cimjax.quant.fitting import fit_spline, spline_value

    rng = np.random.default_rng(0)
    feats = np.exp(rng.uniform(-6.0, 0.0, (40, 2)))
    truth = lambda f: 0.3 * f[:, 0] ** 0.8 * f[:, 1] ** 0.25  # noqa: E731
    coef, knots = fit_spline(feats, truth(feats), segments=4)
    assert knots.shape == (2, 5) and np.all(np.diff(knots, axis=1) > 0) and np.all(coef[:-1] >= 0)
    beyond = np.exp(rng.uniform(-9.0, 2.0, (20, 2)))
    for f in (feats, beyond):
        np.testing.assert_allclose(spline_value(jnp.asarray(f), coef, jnp.asarray(knots)), truth(f), rtol=2e-3)


def test_spline_fit_falls_at_least_in_proportion_below_its_knots():
    """Losses flat at the low end (a constant plus a term that only grows at high error) give a free fit no lowest
    slope; the fit's lowest slopes then sum to :data:`TAIL_SLOPE` (hand check: scaling every feature by ``x``
    below the knots scales the prediction by ``x`` or less), and it still ranks its fit set (less well than a
    free fit: the constraint is against these data)."""
    from cimjax.quant.fitting import LOG_FLOOR, TAIL_SLOPE, fit_spline, spline_value

    rng = np.random.default_rng(1)
    feats = np.exp(rng.uniform(-6.0, 0.0, (60, 2)))
    measured = 0.05 + feats[:, 0] ** 2
    coef, knots = fit_spline(feats, measured, segments=3)
    slopes = coef[:-1:3] / (knots[:, 1] - knots[:, 0])
    assert np.sum(slopes) == pytest.approx(TAIL_SLOPE, rel=1e-6) and np.all(coef[:-1] >= -1e-12)

    def predict(f):
        return np.asarray(spline_value(jnp.asarray(f), coef, jnp.asarray(knots)))

    low = np.exp(knots[:, 0] - 1.0)[None]  # below every knot
    assert predict(low * 1e-3)[0] <= 1e-3 * predict(low)[0] * (1 + 1e-6)
    assert stats.kendalltau(predict(feats), measured).statistic > 0.7
    assert LOG_FLOOR * np.median(measured) < measured.min()  # no measured value was floored here


@pytest.mark.parametrize("name", ["interaction_spline", "interaction_envelope"])
def test_fitted_spline_proxy_is_monotone_the_same_with_and_without_jit(name):
    """A fitted ``interaction_spline`` or ``interaction_envelope`` (on losses it cannot represent exactly) never
    predicts more loss for more bits, and predicts its fit set as its batch prediction does, eager and jitted
    alike; the envelope is the larger of ``interaction`` and the spline, each fitted on its own."""
    from cimjax.quant.proxy import fit_proxy

    n_layers = 2
    sens, tables, _, feats = interaction_setup(n_layers, 40, 4)
    noise = np.random.default_rng(5).uniform(0.8, 1.2, len(feats))
    measured = np.sqrt(feats[:, 0]) + 0.3 * feats[:, -2] * noise
    proxy = fit_proxy(make_proxy(name, sens), tables, measured)
    assert proxy.knots.shape == (feats.shape[1], 5) and bool(jnp.all(proxy.coef[:-1] >= 0))
    if name == "interaction_envelope":
        parts = [fit_proxy(make_proxy(part, sens), tables, measured) for part in ("interaction", "interaction_spline")]
        each = np.stack([np.asarray(part.predict(jnp.asarray(feats, jnp.float32))) for part in parts])
        envelope = np.asarray(proxy.predict(jnp.asarray(feats, jnp.float32)))
        np.testing.assert_allclose(envelope, each.max(axis=0), rtol=1e-5)
        assert np.any(each[0] > each[1]) and np.any(each[1] > each[0])  # both parts set it somewhere
    batch = np.asarray(proxy.predict(jnp.asarray(feats, jnp.float32)))
    grad, jitted = jax.jit(jax.grad(lambda p: proxy(p))), jax.jit(lambda q, p: q(p))
    for k in range(5):
        p = Precision.from_table(jnp.asarray(tables[k]))
        assert float(proxy(p)) == pytest.approx(float(jitted(proxy, p)), rel=1e-5)
        assert float(proxy(p)) == pytest.approx(batch[k], rel=1e-4)
        assert all(bool(jnp.all(g <= 0)) for g in jax.tree.leaves(grad(p)))
    assert stats.kendalltau(batch, measured).statistic > 0.8  # it follows the losses it was fitted to
