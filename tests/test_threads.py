"""Work done in threads gives the answers of work done one at a time: the joint optimiser's concurrent
allocations, concurrent MILP solves (stdout restored), compiled programs loaded by several threads."""

from __future__ import annotations

import dataclasses
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cimjax.cache as cache
from cimjax.hardware.config import FIELDS, PAPER_SPACE, DesignSpace
from cimjax.joint import allocation, discrete
from cimjax.joint.problem import BitSpace, ExactEvaluator, make_problem
from cimjax.joint.settings import JointSettings
from cimjax.quant.train import TINY
from cimjax.workload.operators import Workload

SPEC = dataclasses.replace(TINY.spec(), n_layers=2)
WORKLOAD = Workload(prefill=0, generate=5, attention_block=16)
SETTINGS = JointSettings(beam=3, polish_rounds=3, exchange=3)
AREA_MAX = 13.0  # mm^2: about half the designs of the test's small space


@pytest.fixture(scope="module")
def problem():
    return make_problem(SPEC, "int6", workload=WORKLOAD, bits=BitSpace(weight=(2, 8), act=(2, 8), kv=(2, 8)))


@pytest.fixture(scope="module")
def candidates(problem):
    """Four designs meeting the budget: random hardware, random bits repaired to the budget."""
    rng = np.random.default_rng(1)
    evaluator = ExactEvaluator(problem)
    choices = np.stack([rng.integers(0, r, size=4) for r in PAPER_SPACE.radices], axis=1)
    tables = rng.integers(2, 7, size=(4, SPEC.n_layers, 17)).astype(float)
    return [(c, discrete.repair(problem, evaluator, c, t)) for c, t in zip(choices, tables, strict=True)]


def _refine(problem, candidates, monkeypatch, cpus: int):
    monkeypatch.setattr(discrete.os, "cpu_count", lambda: cpus)
    evaluator, calls = ExactEvaluator(problem), []
    design = discrete.refine(problem, evaluator, candidates, SETTINGS, lambda d, t: calls.append((d, t)))
    return design, evaluator.evaluations, calls


def test_refine_in_threads_equals_refine_one_at_a_time(problem, candidates, monkeypatch):
    (choice, table), evaluations, calls = _refine(problem, candidates, monkeypatch, cpus=1)
    (choice_t, table_t), evaluations_t, calls_t = _refine(problem, candidates, monkeypatch, cpus=4)
    np.testing.assert_array_equal(choice_t, choice)
    np.testing.assert_array_equal(table_t, table)
    assert evaluations_t == evaluations > 0  # every evaluation counted once, none lost between threads
    assert calls == calls_t == [(i + 1, 4) for i in range(4)]
    assert problem.within_budget(ExactEvaluator(problem)(choice[None], table[None]).proxy[0])


def test_sweep_hardware_in_threads_equals_one_at_a_time(monkeypatch):
    space = DesignSpace({**{f: PAPER_SPACE.values[f][:2] for f in FIELDS}, "pes_per_tile": (4, 16, 36)})
    problem = make_problem(SPEC, "int6", workload=WORKLOAD, area_max=AREA_MAX, space=space)
    design = (np.zeros(len(FIELDS), int), np.full((SPEC.n_layers, 17), 7.0))
    fallback = problem.uniform_table(problem.smallest_uniform_width())
    answers = []
    for cpus in (1, 2):
        monkeypatch.setattr(discrete.os, "cpu_count", lambda n=cpus: n)
        evaluator = ExactEvaluator(problem)
        (choice, table), swept = discrete.sweep_hardware(problem, evaluator, design, fallback, SETTINGS)
        answers.append((choice, table, swept, evaluator.evaluations))
    (c1, t1, s1, e1), (c2, t2, s2, e2) = answers
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(t1, t2)
    assert (s1, e1) == (s2, e2)


def test_concurrent_solves_agree_and_give_stdout_back(problem, candidates):
    """HiGHS's output goes to stderr while any solve runs; file descriptor 1 is the process's, so it must
    come back to stdout when the last of several overlapping solves ends (not to another's saved copy)."""
    evaluator = ExactEvaluator(problem)
    models = [allocation.linearise(problem, c, t, evaluator) for c, t in candidates]
    alone = [allocation.allocate_bits(m) for m in models]
    before = os.fstat(1)
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(allocation.allocate_bits, models * 3))
    after = os.fstat(1)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    for i, table in enumerate(together):
        np.testing.assert_array_equal(table, alone[i % len(models)])


@pytest.fixture
def disk_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(cache, "_enabled", None)
    before = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
    jax.config.update("jax_compilation_cache_dir", None)
    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    yield tmp_path
    jax.config.update("jax_compilation_cache_dir", before[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])


def test_threads_asking_for_one_program_compile_it_once(disk_cache):
    jitted, traces, go = jax.jit(lambda v: 2.0 * v), [], threading.Barrier(4)

    def trace(*args):
        traces.append(1)
        return jitted.trace(*args)

    program = cache.CompiledProgram("shared", (), SimpleNamespace(trace=trace))
    x = jnp.arange(3.0)

    def call(_):
        go.wait()
        return program(x)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(call, range(4)))
    assert len(traces) == 1
    for result in results:
        assert jnp.array_equal(result, 2.0 * x)


def test_another_threads_jax_cache_hit_does_not_stop_a_program_being_kept(disk_cache):
    """A program is kept unless JAX read it back from its own cache in the thread that compiled it."""
    jitted, hit, compiling = jax.jit(lambda v: v + 1.0), threading.Event(), threading.Event()
    real = jitted.trace(jnp.zeros(2)).lower()

    def compile_beside_a_hit(compiler_options=None):
        compiling.set()
        assert hit.wait(10)  # another thread reports a hit while this one compiles
        return real.compile(compiler_options=compiler_options)

    def other_thread():
        assert compiling.wait(10)
        jax.monitoring.record_event("/jax/compilation_cache/cache_hits")  # as JAX reports one
        hit.set()

    lowered = SimpleNamespace(
        in_tree=real.in_tree, out_tree=real.out_tree, as_text=real.as_text, compile=compile_beside_a_hit
    )
    traced = SimpleNamespace(lower=lambda: lowered)
    program = cache.CompiledProgram("kept", (), SimpleNamespace(trace=lambda *_: traced))
    helper = threading.Thread(target=other_thread)
    helper.start()
    assert jnp.array_equal(program(jnp.zeros(2)), jnp.ones(2))
    helper.join()
    assert len(list((disk_cache / "aot").glob("kept-*.bin"))) == 2  # by key and by lowered program


def test_solver_output_goes_to_stderr_less_highs_debug_trace(capfd):
    """What C code writes to file descriptor 1 during a solve reaches stderr, not stdout, except HiGHS's
    meaningless debug line."""
    with allocation._stdout_to_stderr:
        os.write(1, allocation.HIGHS_TRACE + b" tmpSolver.run();\n")
        os.write(1, b"a solver message\n")
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == "a solver message\n"
