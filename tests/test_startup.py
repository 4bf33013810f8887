"""Start-up and the on-disk compilation cache: the CLI imports JAX only for commands that compute, and the
cache is on for library users, off on request, and never required (a cache that cannot be written)."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import jax
import pytest

import cimjax.cache as cache


def test_cli_help_and_models_do_not_import_jax_or_numpy():
    code = (
        "import sys\n"
        "from cimjax.cli.main import app\n"
        "try:\n"
        "    app(['models', '--json'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('jax', 'numpy', 'cimjax.cost.model') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert '"llama3.2-1b"' in result.stdout


@pytest.fixture
def fresh_cache_state(monkeypatch):
    """Forget whether the cache was enabled and give JAX no cache directory; both restored afterwards."""
    monkeypatch.setattr(cache, "_enabled", None)
    before = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
    jax.config.update("jax_compilation_cache_dir", None)
    yield
    jax.config.update("jax_compilation_cache_dir", before[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])


def test_compilation_cache_goes_to_the_cimjax_cache(fresh_cache_state, monkeypatch, tmp_path):
    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    assert cache.enable_compilation_cache()
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xla")
    assert (tmp_path / "xla").is_dir()


def test_compilation_cache_opt_out(fresh_cache_state, monkeypatch, tmp_path):
    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))
    monkeypatch.setenv(cache.NO_CACHE_ENV, "1")
    assert not cache.enable_compilation_cache()
    assert jax.config.jax_compilation_cache_dir is None and not (tmp_path / "xla").exists()


def test_unwritable_cache_is_skipped_not_an_error(fresh_cache_state, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CIMJAX_CACHE", str(blocker / "cache"))  # cannot be created, even by root
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    assert not cache.enable_compilation_cache()
    assert jax.config.jax_compilation_cache_dir is None


def test_users_own_jax_cache_directory_is_kept(fresh_cache_state, monkeypatch, tmp_path):
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "mine"))
    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path / "ours"))
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    assert cache.enable_compilation_cache()
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "mine")


class _NoTrace:
    """Stands for a jitted function that must not be traced (the program should come from disk)."""

    def trace(self, *args):
        raise AssertionError("traced although a compiled program was on disk")


def test_compiled_program_is_kept_on_disk_and_reloaded(fresh_cache_state, monkeypatch, tmp_path):
    import jax.numpy as jnp

    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    x = jnp.arange(5.0)
    first = cache.CompiledProgram("double", ("v1",), jax.jit(lambda v: 2.0 * v))
    assert jnp.array_equal(first(x), 2.0 * x)
    stored = list((tmp_path / "aot").glob("double-[0-9a-f]*.bin"))  # by key (also kept by lowered program)
    assert len(stored) == 1

    again = cache.CompiledProgram("double", ("v1",), _NoTrace())  # as a new process would
    assert jnp.array_equal(again(x), 2.0 * x)
    other_static = cache.CompiledProgram("double", ("v2",), jax.jit(lambda v: 3.0 * v))
    assert jnp.array_equal(other_static(x), 3.0 * x)  # other settings: another program
    first(jnp.arange(3.0))  # another argument shape: another program
    assert len(list((tmp_path / "aot").glob("double-[0-9a-f]*.bin"))) == 3

    stored[0].write_bytes(b"truncated")  # a damaged file is compiled afresh, not an error
    damaged = cache.CompiledProgram("double", ("v1",), jax.jit(lambda v: 2.0 * v))
    assert jnp.array_equal(damaged(x), 2.0 * x)


def test_compiled_program_without_a_cache_runs_in_memory(fresh_cache_state, monkeypatch, tmp_path):
    import jax.numpy as jnp

    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))
    monkeypatch.setenv(cache.NO_CACHE_ENV, "1")
    program = cache.CompiledProgram("square", (), jax.jit(lambda v: v * v))
    assert jnp.array_equal(program(jnp.arange(4.0)), jnp.arange(4.0) ** 2)
    assert not (tmp_path / "aot").exists()


def test_a_program_read_back_from_jaxs_cache_is_not_kept(fresh_cache_state, monkeypatch, tmp_path):
    """Re-serialising an executable JAX loaded from its own cache gives a copy that fails to run (CPU), so
    CompiledProgram keeps only programs it compiled itself."""
    import jax.numpy as jnp

    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    jitted = jax.jit(lambda v: v + 1.0)

    def compile_hit(compiler_options=None):
        jax.monitoring.record_event("/jax/compilation_cache/cache_hits")  # as JAX reports a cache hit
        return jitted.trace(jnp.zeros(2)).lower().compile()

    real = jitted.trace(jnp.zeros(2)).lower()
    lowered = SimpleNamespace(in_tree=real.in_tree, out_tree=real.out_tree, as_text=real.as_text, compile=compile_hit)
    from_jax_cache = SimpleNamespace(trace=lambda *_: SimpleNamespace(lower=lambda: lowered))
    program = cache.CompiledProgram("inc", (), from_jax_cache)
    assert jnp.array_equal(program(jnp.zeros(2)), jnp.ones(2))
    assert not list((tmp_path / "aot").glob("inc-*.bin"))  # neither by key nor by lowered program


def test_a_program_unchanged_by_an_upgrade_is_found_by_its_lowered_form(fresh_cache_state, monkeypatch, tmp_path):
    """Other sources (another key) but the same lowered program: loaded from disk, not compiled again."""
    import jax.numpy as jnp

    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    x = jnp.arange(3.0)
    jitted = jax.jit(lambda v: 2.0 * v)
    assert jnp.array_equal(cache.CompiledProgram("twice", ("old sources",), jitted)(x), 2.0 * x)

    def no_compile(**_):
        raise AssertionError("compiled although the same lowered program was on disk")

    def lower(*args):
        lowered = jitted.trace(*args).lower()
        return SimpleNamespace(in_tree=lowered.in_tree, out_tree=lowered.out_tree, as_text=lowered.as_text,
                               compile=no_compile)  # fmt: skip

    upgraded = cache.CompiledProgram("twice", ("new sources",), SimpleNamespace(trace=lambda *a: SimpleNamespace(
        lower=lambda: lower(*a))))  # fmt: skip
    assert jnp.array_equal(upgraded(x), 2.0 * x)
    assert len(list((tmp_path / "aot").glob("twice-*.bin"))) == 3  # two keys by sources, one by program
