"""Shared test fixtures: small workloads that keep the plain-Python reference fast."""

from __future__ import annotations

import os

import pytest

# Trained proxy models and compiled functions go to a per-session temporary cache, never the user's.
os.environ.setdefault("CIMJAX_CACHE", os.path.join(os.environ.get("TMPDIR", "/tmp"), "cimjax-test-cache"))


def pytest_configure(config):
    """Share compiled programs between test processes (xdist workers) and runs through JAX's disk cache.

    Every program is kept, however fast it compiled: the suite compiles about 2,000 (most of them eager
    operations taking tens of milliseconds each), and reading them back made a warm run of test_quant.py and
    test_cost_model.py take 14 s of CPU instead of 37 s (a threshold of 1 s kept almost none of them)."""
    import jax

    from cimjax.cache import cache_dir

    jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


SHARED_WORKER = ("test_checkpoint_optimize.py", "test_clip.py", "test_gptq.py", "test_smoothing.py")
"""Files that measure the tiny trained LM's checkpoint with one calibration (and so compile the same LM,
sensitivity and cost-model programs): with ``--dist loadfile`` (`make test`) they are one unit of work, run
in one xdist worker one after another, so the later ones read the programs the first compiled instead of
both workers compiling them at once (test_checkpoint_optimize.py then test_gptq.py in one process: 136 s
of CPU; 168 s in two workers of a whole run)."""


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest without xdist (-p no:xdist) must not refuse it
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with the :data:`SHARED_WORKER` files as one scope (xdist's ``loadgroup`` cannot
    group them: with pytest 9 its ``xdist_group`` marks no longer reach the scheduler)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedLoadFile(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "tiny-checkpoint" if os.path.basename(scope) in SHARED_WORKER else scope

    return SharedLoadFile(config, log)


@pytest.fixture(scope="session")
def small_workload():
    from cimjax.workload.operators import Workload

    return Workload(prefill=37, generate=5, attention_block=16)


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory):
    """A two-layer LLaMA-style config.json: the cost model and optimiser stay fast."""
    import json

    path = tmp_path_factory.mktemp("tiny") / "config.json"
    path.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "_name_or_path": "tiny-llama",
                "num_hidden_layers": 2,
                "hidden_size": 64,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "intermediate_size": 128,
                "vocab_size": 256,
                "tie_word_embeddings": False,
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """A per-module ``$CIMJAX_CACHE``: a tiny trained model is trained once per module, never in the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("cimjax-cache")
        mp.setenv("CIMJAX_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def exported(module_cache, tmp_path_factory):
    """The tiny trained LM exported by ``cimjax proxy export --size tiny`` (trained in ``module_cache``)."""
    from typer.testing import CliRunner

    from cimjax.cli.main import app

    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    res = CliRunner().invoke(app, ["proxy", "export", "--size", "tiny", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="session")
def halving_problem():
    """The measured searches' test problem (test_refine.py, test_evolve.py): the tiny LM's shape on 512
    designs, a short workload and a stand-in proxy, the sum of ``2^-bits`` over the bit table."""
    import jax.numpy as jnp

    from cimjax.hardware.config import PAPER_SPACE, DesignSpace
    from cimjax.joint.problem import make_problem
    from cimjax.quant.proxy import Proxy, ProxyKind
    from cimjax.quant.train import TINY
    from cimjax.workload.operators import Workload

    kind = ProxyKind("halving", lambda p, table: jnp.sum(2.0**-table)[None])
    proxy = Proxy(sens=None, coef=jnp.ones((1,), jnp.float32), kind=kind)
    space = DesignSpace({name: values[:2] for name, values in PAPER_SPACE.values.items()})
    return make_problem(TINY.spec(), 1.0, proxy=proxy, space=space, workload=Workload(prefill=16, generate=4))


@pytest.fixture(scope="session")
def uniform_start(halving_problem):
    """``start(bits)``: the design report of uniform ``bits`` at their best hardware on ``halving_problem``."""
    from cimjax.joint.allocation import best_hardware
    from cimjax.joint.problem import ExactEvaluator, design_report

    def start(bits: float) -> dict:
        table = halving_problem.uniform_table(bits)
        choice, _ = best_hardware(halving_problem, table)
        return design_report(halving_problem, choice, table, ExactEvaluator(halving_problem))

    return start
