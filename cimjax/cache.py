"""Where cimjax keeps caches (compiled programs, trained proxy models): $CIMJAX_CACHE or ~/.cache/cimjax.

Compiled programs: :func:`enable_compilation_cache` points JAX's persistent compilation cache at
``<cache>/xla``, so a second process (a CLI command, a new notebook kernel) loads the compiled cost model
instead of compiling it again. It is called when :mod:`cimjax.cost.batched` (the batched evaluator every
sweep, search and the API use) is imported, so library users get it as well as the CLI. It does nothing
when ``CIMJAX_NO_CACHE`` is set to anything but ``0`` or empty, when the user already chose a JAX cache
directory, or when the cache directory cannot be created or written (a read-only home): then programs are
simply compiled in memory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

from cimjax.files import OutputError
from cimjax.validation import InputError

NO_CACHE_ENV = "CIMJAX_NO_CACHE"
MIN_COMPILE_S = 0.02
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


@contextlib.contextmanager
def kept_if_possible() -> Iterator[None]:
    """Writes a cache entry: when the file system refuses it (full, over quota, read-only), the entry is not
    kept and the run goes on with a warning. A cache saves time; it never fails a run that has its result."""
    try:
        yield
    except OutputError as error:
        warnings.warn(f"{error}; the cache entry is not kept and the run goes on", stacklevel=3)


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


def _source_fingerprint() -> str:
    """Hash of every cimjax source file: a compiled program on disk is reused only by the code that made it."""
    import hashlib

    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


_FINGERPRINT: str | None = None


def source_fingerprint() -> str:
    """:func:`_source_fingerprint`, computed once per process."""
    global _FINGERPRINT
    _FINGERPRINT = _FINGERPRINT or _source_fingerprint()
    return _FINGERPRINT


def program_key(name: str, static: object, args: tuple) -> str:
    """A file name for a compiled program: its name, static settings, argument types and the environment
    (cimjax sources, JAX and jaxlib versions, devices, XLA flags)."""
    import hashlib

    import jax
    import jaxlib

    leaves, tree = jax.tree.flatten(args)
    parts = [
        source_fingerprint(),
        jax.__version__,
        jaxlib.__version__,
        repr([(d.platform, d.device_kind) for d in jax.local_devices()]),
        os.environ.get("XLA_FLAGS", ""),
        name,
        repr(static),
        str(tree),
        repr([str(jax.typeof(x)) for x in leaves]),
    ]
    return f"{name}-{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:32]}"


def lowered_key(name: str, lowered, options: dict) -> str:
    """A file name for a compiled program by its lowered form (and argument and result structure, compile
    options, JAX versions, devices, XLA flags), independent of cimjax's sources: a program that an upgrade
    or an edit left unchanged is found again without compiling it."""
    import hashlib

    import jax
    import jaxlib

    parts = [
        jax.__version__,
        jaxlib.__version__,
        repr([(d.platform, d.device_kind) for d in jax.local_devices()]),
        os.environ.get("XLA_FLAGS", ""),
        repr(sorted(options.items())),
        str(lowered.in_tree),
        str(lowered.out_tree),
        lowered.as_text(),
    ]
    return f"{name}-lowered-{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:32]}"


FAST_COMPILE = {"xla_backend_optimization_level": 0}
"""XLA options for programs whose run time is negligible next to their compile time, on CPUs: about a third
less compile time (benchmarks/compile_time.py); their code runs up to 3x slower, which is why the sweep's
chunk evaluator (run 66 times per sweep of the paper's space) keeps the default."""


_jax_cache_hits = threading.local()
"""``.count``: programs JAX read back from its persistent cache in this thread (JAX reports a hit in the
thread that compiles), so another thread's hit does not stop this thread's program from being kept."""
_listener_lock = threading.Lock()
_listening = False


def _count_jax_cache_hit(event: str, **_) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _jax_cache_hits.count = getattr(_jax_cache_hits, "count", 0) + 1


def _jax_cache_hits_so_far() -> int:
    global _listening
    with _listener_lock:
        if not _listening:
            import jax

            jax.monitoring.register_event_listener(_count_jax_cache_hit)
            _listening = True
    return getattr(_jax_cache_hits, "count", 0)


class CompiledProgram:
    """``jitted(*args)``, compiled ahead of time once per argument types and kept on disk between processes.

    A new process (a CLI command, a notebook kernel) loads the executable instead of tracing, lowering
    and compiling the cost model again; JAX's own persistent cache would still trace and lower it. The
    program is found by :func:`program_key`: ``name`` and ``static`` must identify everything ``jitted``
    closes over (model, workload, space, sizes). Without a usable cache (see the module docstring) it
    compiles in memory only, and so does a process with several devices. Keyword arguments are not
    supported; every argument is a traced pytree.
    A program is also kept under :func:`lowered_key`, so one unchanged by an edit of cimjax is not compiled again.
    ``fast_compile``: compile with :data:`FAST_COMPILE` on the CPU backend.
    """

    def __init__(self, name: str, static: object, jitted, fast_compile: bool = False):
        self.name, self.static, self._jitted = name, static, jitted
        self._fast_compile = fast_compile
        self._compiled: dict[object, object] = {}
        self._loading = threading.Lock()  # threads (an optimiser and its baseline) load or compile it once

    def __call__(self, *args):
        return self.compiled(*args)(*args)

    def compiled(self, *args):
        """The executable for these argument types: in memory, else from disk, else compiled."""
        import jax

        leaves, tree = jax.tree.flatten(args)
        signature = (tree, tuple(jax.typeof(x) for x in leaves))  # cheaper than hashing the static settings
        if signature not in self._compiled:
            with self._loading:
                if signature not in self._compiled:
                    key = program_key(self.name, (self.static, self._options()), args)
                    self._compiled[signature] = self._load(key) or self._compile(key, args)
        return self._compiled[signature]

    def _options(self) -> dict:
        import jax

        return FAST_COMPILE if self._fast_compile and jax.default_backend() == "cpu" else {}

    def _directory(self) -> Path | None:
        """Where programs are kept; None (compile in memory) without a usable cache or with several local
        devices: an executable read back from disk there expects one shard per device and refuses the
        single-device arguments of an unsharded program (seen with 4 forced host devices)."""
        import jax

        if not enable_compilation_cache() or jax.local_device_count() > 1:
            return None
        return cache_root() / "aot"

    def _load(self, key: str):
        directory = self._directory()
        path = directory / f"{key}.bin" if directory else None
        if path is None or not path.is_file():
            return None
        import pickle

        from jax.experimental.serialize_executable import deserialize_and_load

        try:
            return deserialize_and_load(*pickle.loads(path.read_bytes()))
        except Exception:  # a truncated or foreign file: compile afresh (and overwrite it)
            return None

    def _compile(self, key: str, args: tuple):
        lowered = self._jitted.trace(*args).lower()
        by_program = lowered_key(self.name, lowered, self._options())
        compiled = self._load(by_program)  # the same program, kept under an older key (e.g. before an upgrade)
        directory = self._directory()
        if compiled is not None:
            if directory is not None:
                self._write(directory, key, (directory / f"{by_program}.bin").read_bytes())
            return compiled
        hits = _jax_cache_hits_so_far()
        compiled = lowered.compile(compiler_options=self._options())
        # An executable JAX read back from its own cache serialises incompletely on CPUs (running the copy
        # fails with "Function ... not found"), so only freshly compiled programs are kept.
        if directory is not None and _jax_cache_hits_so_far() == hits:
            self._store(directory, (key, by_program), compiled)
        return compiled

    def _store(self, directory: Path, keys: tuple[str, ...], compiled) -> None:
        import pickle

        from jax.experimental.serialize_executable import serialize

        try:
            blob = pickle.dumps(serialize(compiled))
        except (ValueError, TypeError, pickle.PicklingError):
            return  # a program that cannot be serialised: it still runs, it is not kept
        for key in keys:
            self._write(directory, key, blob)

    @staticmethod
    def _write(directory: Path, key: str, blob: bytes) -> None:
        import tempfile

        temporary = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=directory, suffix=".tmp", delete=False) as f:
                temporary = Path(f.name)
                f.write(blob)
            os.replace(temporary, directory / f"{key}.bin")  # atomic: readers never see half a file
        except OSError:  # a full or read-only disk: the program still runs, it is not kept
            if temporary is not None:
                temporary.unlink(missing_ok=True)
