"""The one batched evaluator (cimjax.cost.batched) against the scalar reference, padding, and the value
hashing of DesignSpace and Technology that lets caches key on them, with and without jit."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cimjax.cost.batched import in_batches, make_evaluator, pad_rows
from cimjax.cost.model import evaluate
from cimjax.cost.reference import reference_costs
from cimjax.hardware.config import FIELDS, PAPER_SPACE, DesignSpace, HardwareConfig
from cimjax.hardware.technology import default_technology
from cimjax.quant.train import TINY
from cimjax.search.symmetry import MirrorFolding
from cimjax.workload.operators import Workload
from cimjax.workload.precision import Precision

SPEC = dataclasses.replace(TINY.spec(), n_layers=2)
WORKLOAD = Workload(prefill=8, generate=5, attention_block=16)
SMALL = DesignSpace({name: values[:2] for name, values in PAPER_SPACE.values.items()})  # 512 designs
TECH = default_technology()


def random_choices(rng, n, space=PAPER_SPACE):
    return np.stack([rng.integers(0, r, size=n) for r in space.radices], axis=1).astype(np.int32)


def random_bits(rng, n):
    """``n`` per-design precisions (leading batch axis) and the same bits as plain lists."""
    w, a = rng.integers(2, 9, (n, SPEC.n_layers, 7)), rng.integers(2, 9, (n, SPEC.n_layers, 9))
    kv = rng.integers(2, 9, (n, SPEC.n_layers))
    return Precision(*(np.asarray(x, np.float32) for x in (w, a, kv))), (w.tolist(), a.tolist(), kv.tolist())


def reference(space, choice, w, a, kv):
    config = {name: space.values[name][int(choice[i])] for i, name in enumerate(FIELDS)}
    return reference_costs(config, w, a, kv, SPEC, WORKLOAD, TECH.to_dict())


def test_choice_evaluator_matches_the_scalar_reference_on_random_designs():
    rng = np.random.default_rng(0)
    choices = random_choices(rng, 6)
    prec, (w, a, kv) = random_bits(rng, 6)
    run = make_evaluator(SPEC, WORKLOAD, PAPER_SPACE, "choice", per_design_precision=True)
    latency, energy, area = (np.asarray(x) for x in run(choices, prec, TECH))
    for i in range(len(choices)):
        ref = reference(PAPER_SPACE, choices[i], w[i], a[i], kv[i])
        assert latency[i] == pytest.approx(ref["latency_s"], rel=1e-5)
        assert energy[i] == pytest.approx(ref["energy_j"], rel=1e-5)
        assert area[i] == pytest.approx(ref["area_mm2"], rel=1e-5)


def test_shared_precision_range_and_config_evaluators_agree_with_choice_and_reference():
    """One precision for the batch: the ``range`` evaluators (flat indices and distinct designs) cost the
    same designs identically, so do the ``choice`` and ``config`` ones, all as the reference does."""
    prec = Precision.uniform(SPEC.n_layers, 4, 8, 6)
    w, a, kv = ([[4] * 7] * 2, [[8] * 9] * 2, [6] * 2)
    flat = make_evaluator(SPEC, WORKLOAD, SMALL, "range", size=SMALL.size)
    by_index = [np.asarray(x) for x in flat(jnp.asarray(0), prec, TECH)]
    choices = np.stack(np.unravel_index(np.arange(SMALL.size), SMALL.radices), axis=1).astype(np.int32)
    by_choice = make_evaluator(SPEC, WORKLOAD, SMALL, "choice")(choices, prec, TECH)
    by_config = make_evaluator(SPEC, WORKLOAD, designs="config")(SMALL.from_choice_indices(choices), prec, TECH)
    folding = MirrorFolding(SMALL)
    distinct = make_evaluator(SPEC, WORKLOAD, folding, "range", size=folding.size)(jnp.asarray(0), prec, TECH)
    for k in range(3):  # 'range' programs are compiled with XLA's full optimisation, the others fast: 1e-7 apart
        np.testing.assert_array_equal(by_index[k], folding.expand(np.asarray(distinct[k])))
        np.testing.assert_array_equal(np.asarray(by_choice[k]), np.asarray(by_config[k]))
        np.testing.assert_allclose(by_index[k], np.asarray(by_choice[k]), rtol=1e-6)
    for i in np.random.default_rng(1).choice(SMALL.size, 4, replace=False):
        ref = reference(SMALL, choices[i], w, a, kv)
        assert by_index[0][i] == pytest.approx(ref["latency_s"], rel=1e-5)
        assert by_index[1][i] == pytest.approx(ref["energy_j"], rel=1e-5)


def test_ranks_evaluator_costs_chosen_designs_as_the_range_evaluator_does_bit_for_bit():
    """Per-layer bits; 100 distinct designs in any order, padded to a batch of 128 (the joint sweep's exact
    re-evaluation of its near front relies on this)."""
    rng = np.random.default_rng(2)
    prec = Precision(*(jnp.asarray(rng.integers(2, 9, shape), jnp.float32) for shape in ((2, 7), (2, 9), (2,))))
    folding = MirrorFolding(SMALL)
    every = make_evaluator(SPEC, WORKLOAD, folding, "range", size=folding.size)(jnp.asarray(0), prec, TECH)
    ranks = rng.choice(folding.size, 100, replace=False)
    chosen = in_batches(make_evaluator(SPEC, WORKLOAD, folding, "ranks"), 128, (ranks,), prec, TECH)
    for k in range(3):
        np.testing.assert_array_equal(chosen[k], np.asarray(every[k], np.float64)[ranks])


def test_range_evaluator_repeats_the_last_design_past_the_end():
    prec = Precision.uniform(SPEC.n_layers, 8)
    run = make_evaluator(SPEC, WORKLOAD, SMALL, "range", size=8)
    latency = np.asarray(run(jnp.asarray(SMALL.size - 3), prec, TECH)[0])
    np.testing.assert_array_equal(latency[2:], np.full(6, latency[2]))


def test_full_costs_of_one_design_and_of_a_batch_of_one_equal_the_model_with_and_without_jit():
    hw = HardwareConfig.from_dict({name: values[1] for name, values in PAPER_SPACE.values.items()})
    prec = Precision.uniform(SPEC.n_layers, 4)
    single = make_evaluator(SPEC, WORKLOAD, designs="design", full=True)(hw, prec, TECH)
    batch = make_evaluator(SPEC, WORKLOAD, designs="config", full=True)(jax.tree.map(lambda x: x[None], hw), prec, TECH)
    assert single.prefill is not None and batch.prefill is not None  # full=True keeps the prefill phase
    eager = evaluate(hw, prec, SPEC, WORKLOAD, TECH)
    jitted = jax.jit(lambda h: evaluate(h, prec, SPEC, WORKLOAD, TECH))(hw)
    for other in (eager, jitted):
        for mine, mine_batched, theirs in zip(
            jax.tree.leaves(single), jax.tree.leaves(batch), jax.tree.leaves(other), strict=True
        ):
            np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-6)
            np.testing.assert_allclose(np.asarray(mine_batched)[0], np.asarray(theirs), rtol=1e-6)


def test_padded_batches_equal_one_unpadded_call():
    rng = np.random.default_rng(2)
    choices = random_choices(rng, 7)
    prec, _ = random_bits(rng, 7)
    run = make_evaluator(SPEC, WORKLOAD, PAPER_SPACE, "choice", per_design_precision=True)
    whole = [np.asarray(x, np.float64) for x in run(choices, prec, TECH)]
    padded = in_batches(run, 3, (choices, prec), TECH)  # blocks of 3, 3 and 1 (padded to 3)
    for a, b in zip(whole, padded, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pad_rows(choices[:2], 4), choices[[0, 1, 1, 1]])
    with pytest.raises(ValueError, match="cannot be padded"):
        pad_rows(choices, 4)
    with pytest.raises(ValueError, match="no designs"):
        in_batches(run, 3, (choices[:0], prec), TECH)


def test_bad_evaluator_requests_name_the_argument():
    with pytest.raises(ValueError, match="designs = 'flat'"):
        make_evaluator(SPEC, WORKLOAD, SMALL, "flat")
    with pytest.raises(ValueError, match="size"):
        make_evaluator(SPEC, WORKLOAD, SMALL, "range")
    with pytest.raises(ValueError, match="size"):
        make_evaluator(SPEC, WORKLOAD, SMALL, "choice", size=4)
    with pytest.raises(ValueError, match="per_design_precision"):
        make_evaluator(SPEC, WORKLOAD, SMALL, "design", per_design_precision=True)
    with pytest.raises(ValueError, match="devices"):
        make_evaluator(SPEC, WORKLOAD, SMALL, "choice", devices=tuple(jax.devices()))


def test_equal_spaces_are_equal_hash_alike_and_share_one_evaluator():
    as_lists = DesignSpace({name: list(values) for name, values in reversed(SMALL.values.items())})
    assert as_lists == SMALL and hash(as_lists) == hash(SMALL)
    assert list(as_lists.values) == list(FIELDS)  # kept in FIELDS order, whatever order it was given in
    folded, folded_again = MirrorFolding(as_lists), MirrorFolding(SMALL)
    assert folded == folded_again and hash(folded) == hash(folded_again)
    assert repr(MirrorFolding(SMALL)) == repr(MirrorFolding(as_lists))  # on-disk program keys use the repr
    other = DesignSpace(dict(SMALL.values) | {"m": (1, 3)})
    assert other != SMALL
    assert make_evaluator(SPEC, WORKLOAD, as_lists, "choice") is make_evaluator(SPEC, WORKLOAD, SMALL, "choice")
    with pytest.raises(TypeError):
        SMALL.values["m"] = (1,)  # read-only
    with pytest.raises(ValueError, match="unknown hardware field"):
        DesignSpace(dict(SMALL.values) | {"rows": (16,)})


def test_equal_technologies_are_equal_and_hash_alike_and_stay_differentiable():
    same = default_technology()
    assert same == TECH and hash(same) == hash(TECH)
    faster = TECH.replace(clock_hz=500e6)
    assert faster != TECH and hash(faster) != hash(TECH)
    cached = functools.lru_cache(lambda tech: object())
    assert cached(same) is cached(TECH) and cached(faster) is not cached(TECH)

    hw = SMALL.decode(jnp.asarray(5))
    prec = Precision.uniform(SPEC.n_layers, 8)
    grad = jax.grad(lambda t: evaluate(hw, prec, SPEC, WORKLOAD, t, with_prefill=False).latency_s)(TECH)
    assert float(grad.clock_hz) < 0  # a faster clock lowers latency: gradients flow into Technology
    with pytest.raises(jax.errors.TracerArrayConversionError):  # a traced Technology has no value to hash
        jax.jit(lambda t: hash(t) and t.clock_hz)(TECH)


def test_choice_decoding_is_the_same_with_and_without_jit():
    choices = random_choices(np.random.default_rng(3), 5)
    eager = PAPER_SPACE.from_choice_indices(choices)
    jitted = jax.jit(PAPER_SPACE.from_choice_indices)(choices)
    for name in FIELDS:
        expected = np.asarray(PAPER_SPACE.values[name], np.float32)[choices[:, FIELDS.index(name)]]
        np.testing.assert_array_equal(np.asarray(getattr(eager, name)), expected)
        np.testing.assert_array_equal(np.asarray(getattr(jitted, name)), expected)
    flat = np.ravel_multi_index(tuple(choices.T), PAPER_SPACE.radices)
    decoded = PAPER_SPACE.decode(flat)
    for name in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(decoded, name)), np.asarray(getattr(eager, name)))
