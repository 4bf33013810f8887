"""Where cimjax keeps caches (compiled programs, trained proxy models): $CIMJAX_CACHE or ~/.cache/cimjax.

Compiled programs: :func:`enable_compilation_cache` points JAX's persistent compilation cache at
``<cache>/xla``, so a second process (a CLI command, a new notebook kernel) loads the compiled cost model
instead of compiling it again. It is called when :mod:`cimjax.api` or :mod:`cimjax.search.exhaustive`
is imported, so library users get it as well as the CLI. It does nothing when ``CIMJAX_NO_CACHE`` is set
to anything but ``0`` or empty, when the user already chose a JAX cache directory, or when the cache
directory cannot be created or written (a read-only home): then programs are simply compiled in memory.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from cimjax.validation import InputError

NO_CACHE_ENV = "CIMJAX_NO_CACHE"
MIN_COMPILE_S = 0.2
"""Programs compiling faster than this are not written to disk (reading them back would save little)."""

_enabled: bool | None = None


def cache_root() -> Path:
    """The cache directory, not created: $CIMJAX_CACHE (if set and not empty), else ~/.cache/cimjax, else
    (no home directory at all) a per-user directory in the system's temporary directory."""
    if os.environ.get("CIMJAX_CACHE", "").strip():
        return Path(os.environ["CIMJAX_CACHE"])
    try:
        return Path.home() / ".cache" / "cimjax"
    except RuntimeError:
        return Path(tempfile.gettempdir()) / f"cimjax-cache-{os.getuid()}"


def cache_dir() -> Path:
    """The cache directory, created if missing (for callers that write to it); an InputError saying how to
    set CIMJAX_CACHE if it cannot be created or written (a file, under a file, a read-only home)."""
    path = cache_root()
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "not writable")
    except OSError as err:
        raise InputError(
            f"cache directory {str(path)!r} is not usable ({err.strerror}); allowed: a writable directory "
            "(set CIMJAX_CACHE to one, e.g. export CIMJAX_CACHE=/tmp/cimjax-cache)"
        ) from None
    return path


def compilation_cache_disabled() -> bool:
    return os.environ.get(NO_CACHE_ENV, "") not in ("", "0")


def enable_compilation_cache() -> bool:
    """Turns on JAX's on-disk compilation cache in ``<cache>/xla`` (once per process); returns whether it is on."""
    global _enabled
    if _enabled is not None:
        return _enabled
    import jax

    _enabled = False
    if compilation_cache_disabled():
        return False
    if jax.config.jax_compilation_cache_dir:  # the user's own choice wins
        _enabled = True
        return True
    path = cache_root() / "xla"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    if not os.access(path, os.W_OK | os.X_OK):
        return False
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_S)
    _enabled = True
    return True
