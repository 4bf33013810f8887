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
