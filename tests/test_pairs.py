"""Measured pair interactions (cimjax.quant.pairs) against one-at-a-time measurements, hand-counted pair sets and
hand-computed coefficients (the pairwise proxy's features: tests/test_quant.py)."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from cimjax.lm import DecoderLM
from cimjax.lm.model import functional
from cimjax.quant import pairs as pairs_mod
from cimjax.quant.pairs import Pairs, cached, measure, pair_index
from cimjax.quant.quantizers import DEFAULT_SCHEME, FULL_PRECISION_BITS
from cimjax.quant.sensitivity import quantised_loss_and_kl, reference_logp
from cimjax.workload.precision import N_POINTS
from cimjax.workload.spec import ModelSpec

SPEC = ModelSpec("tiny-pairs", "tiny", 2, 16, 2, 1, 8, 32, 37, False)


@pytest.fixture(scope="module")
def model_and_windows():
    model = DecoderLM(SPEC, rope_theta=500.0, rms_eps=1e-5, rngs=nnx.Rngs(0), init_std=0.3)
    windows = np.random.default_rng(0).integers(0, SPEC.vocab, size=(2, 9))
    return model, windows


def test_pair_sets_counted_by_hand():
    # attention block: 4 weights + 6 inputs (q, k, v, o, qk, pv) + KV = 11 points; MLP: 3 weights + 3 inputs.
    assert len(pair_index(2, "block")) == 2 * (11 * 10 // 2 + 6 * 5 // 2)
    assert len(pair_index(2, "layer")) == 2 * (17 * 16 // 2)
    assert len(pair_index(2, "all")) == 34 * 33 // 2
    index = pair_index(3, "block")
    assert np.all(index[:, 0] < index[:, 1]) and np.all(index[:, 0] // N_POINTS == index[:, 1] // N_POINTS)
    with pytest.raises(ValueError, match="pair_set='pairs'"):
        pair_index(2, "pairs")


def test_measured_pairs_equal_one_at_a_time_measurements(model_and_windows, tmp_path, monkeypatch):
    """Batched singles and pairs equal quantised_loss_and_kl of the same tables one by one (the oracle); the
    cache returns the same values without measuring; another width is another entry."""
    model, windows = model_and_windows
    got = measure(model, windows, DEFAULT_SCHEME, 3, "block")
    build, params = functional(model)
    ref = reference_logp(build, params, jnp.asarray(windows))

    def kl(points):
        table = np.full((SPEC.n_layers, N_POINTS), FULL_PRECISION_BITS, np.float32)
        for p in points:
            table[divmod(int(p), N_POINTS)] = 3
        return float(quantised_loss_and_kl(build, DEFAULT_SCHEME, params, jnp.asarray(windows), table, ref)[1])

    for p in (0, 9, 16, 17 + 5):
        assert got.single.reshape(-1)[p] == pytest.approx(kl([p]), rel=1e-4, abs=1e-9)
    for row in (0, 37, len(got.index) - 1):
        i, j = got.index[row]
        assert got.joint[row] == pytest.approx(kl([i, j]), rel=1e-4, abs=1e-9)
        assert got.interaction()[row] == pytest.approx(kl([i, j]) - kl([i]) - kl([j]), abs=1e-6)
    assert got.cpu_seconds > 0 and np.all(got.single > 0)
    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))
    first = cached(model, windows, DEFAULT_SCHEME, 3, "block")
    monkeypatch.setattr(pairs_mod, "measure", lambda *a: pytest.fail("measured again"))
    again = cached(model, windows, DEFAULT_SCHEME, 3, "block")
    np.testing.assert_array_equal(again.joint, first.joint)
    assert again.width == 3 and again.pair_set == "block" and again.cpu_seconds == 0.0
    with pytest.raises(pytest.fail.Exception):
        cached(model, windows, DEFAULT_SCHEME, 4, "block")
    with pytest.raises(ValueError, match="width=9"):
        measure(model, windows, DEFAULT_SCHEME, 9)


def test_a_damaged_cache_entry_is_measured_again(model_and_windows, tmp_path, monkeypatch):
    """A truncated or foreign file under the pairs' cache key is measured again and rewritten, not a traceback."""
    model, windows = model_and_windows
    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))
    first = cached(model, windows, DEFAULT_SCHEME, 3, "block")
    (path,) = (tmp_path / "pairs").iterdir()
    for damage in (path.read_bytes()[:100], b"not an npz", b""):
        path.write_bytes(damage)
        again = cached(model, windows, DEFAULT_SCHEME, 3, "block")
        np.testing.assert_array_equal(again.joint, first.joint)
        assert again.cpu_seconds > 0  # measured, not read
    np.testing.assert_array_equal(np.load(path)["joint"], first.joint)


def test_coefficients_by_hand():
    single = np.zeros((1, N_POINTS))
    single[0, :3] = [0.01, 0.04, 0.09]
    index = np.array([[0, 1], [0, 2], [1, 2]])
    joint = np.array([0.05 + 0.002, 0.10 - 0.001, 0.13 + 0.012])  # interactions 0.002, -0.001, 0.012
    w = Pairs(3, "block", single, index, joint).coefficients()
    np.testing.assert_allclose(Pairs(3, "block", single, index, joint).interaction(), [0.002, -0.001, 0.012])
    assert w[0, 1] == w[1, 0] == pytest.approx(0.002 / np.sqrt(0.01 * 0.04))
    assert w[0, 2] == 0.0  # sub-additive: no interaction
    assert w[1, 2] == pytest.approx(0.012 / np.sqrt(0.04 * 0.09))
    assert np.count_nonzero(w) == 4

