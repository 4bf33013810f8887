"""Safe output: directories checked before any work, one writer at a time, whole files or none.

* :func:`output_dir` checks an output directory up front (empty name, an existing file or device, a path
  under a file, not writable), creates it, and locks it so a second run on the same directory is refused;
  if the run fails, directories it created and left empty are removed.
* :func:`check_output_file` checks an output file's path up front the same way (and its suffix where the
  format follows it), so hours of measuring never end in a path that cannot be written;
  :func:`output_file_argument` and :func:`output_dir_argument` are the two checks as argparse types, for the
  benchmark and experiment scripts.
* :func:`atomic_write` / :func:`atomic_path` write to a temporary file in the same directory and rename it
  into place, so an interrupted run never leaves a truncated result; :func:`atomic_savez` writes arrays so,
  and :data:`NPZ_UNREADABLE` is what reading back a damaged ``.npz`` file raises.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import warnings
import zipfile
from collections.abc import Collection, Iterator
from pathlib import Path

from cimjax.validation import FILE_SYSTEM_REFUSALS, InputError, file_system_refusal

LOCK_NAME = ".cimjax.lock"


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """``path`` as a directory cimjax may create and write; InputError naming ``flag`` otherwise."""
    allowed = "allowed: a directory path that is writable (it is created if missing)"
    text = path_text(path)
    if text is None or not text.strip():
        raise InputError(f"{flag} = {path!r} is not allowed; {allowed}")
    target = Path(text)
    with _long_names_refused(flag, text, allowed):
        if target.exists() and not target.is_dir():
            raise InputError(f"{flag} = {text!r} is not allowed: it exists and is not a directory; {allowed}")
        _check_creatable(target, flag, allowed, text)
    return target


@contextlib.contextmanager
def _long_names_refused(flag: str, text: str, allowed: str) -> Iterator[None]:
    """A path with a name longer than the file system takes (ENAMETOOLONG from looking at it) is an InputError
    naming ``flag``, not a traceback."""
    try:
        yield
    except OSError as err:
        if err.errno != errno.ENAMETOOLONG:
            raise
        reason = "a name in it is longer than the file system allows"
        raise InputError(f"{flag} = {text!r} is not allowed: {reason}; {allowed}") from None


def check_output_file(path: str | os.PathLike, flag: str, formats: Collection[str] | None = None) -> Path:
    """``path`` as a file cimjax may create or replace (missing directories above it are created when it is
    written); ``formats``, if given, are the allowed suffixes (without the dot). InputError naming ``flag``
    otherwise."""
    endings = f" ending in {', '.join('.' + f for f in sorted(formats))}" if formats else ""
    allowed = f"allowed: a file path{endings} in a writable directory (missing directories are created)"
    text = path_text(path)
    if text is None or not text.strip():
        raise InputError(f"{flag} = {path!r} is not allowed; {allowed}")
    target = Path(text)
    with _long_names_refused(flag, text, allowed):
        if target.is_dir():
            raise InputError(f"{flag} = {text!r} is not allowed: it is a directory; {allowed}")
        if target.exists() and not target.is_file():  # a device or pipe: renaming onto it would replace it
            raise InputError(f"{flag} = {text!r} is not allowed: it exists and is not a regular file; {allowed}")
        if formats is not None and target.suffix.lower().lstrip(".") not in formats:
            raise InputError(f"{flag} = {text!r} is not allowed: no known format for its suffix; {allowed}")
        _check_creatable(target.parent, flag, allowed, text)
    return target


def output_file_argument(text: str) -> Path:
    """argparse ``type=`` of an option naming an output file: refused when parsed, before any work."""
    return _argument(check_output_file, text)


def output_dir_argument(text: str) -> Path:
    """argparse ``type=`` of an option naming an output directory: refused when parsed, before any work."""
    return _argument(check_output_dir, text)


def _argument(check, text: str) -> Path:
    import argparse

    try:
        return check(text, "value")
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def path_text(path) -> str | None:
    """A path's text, or None when ``path`` is no path (None, a number, bytes, a dict): the entry points refuse
    those by name instead of meeting pathlib's TypeError."""
    text = os.fspath(path) if isinstance(path, str | os.PathLike) else None
    return text if isinstance(text, str) else None


def _check_creatable(target: Path, flag: str, allowed: str, text: str) -> None:
    """InputError (naming ``flag`` and its value ``text``) unless ``target`` is a directory or can be created:
    its nearest existing ancestor is a writable directory."""
    ancestor = target
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{flag} = {text!r} is not allowed: {ancestor} is a file, not a directory; {allowed}")
    try:  # try it: permission bits do not bind root, and a read-only file system ignores them
        probe = Path(tempfile.mkdtemp(prefix=".cimjax-probe-", dir=ancestor))
        probe.rmdir()
    except OSError as err:
        reason = f"{ancestor} is not writable ({err.strerror})"
        raise InputError(f"{flag} = {text!r} is not allowed: {reason}; {allowed}") from None


def _make_dirs(target: Path, flag: str) -> list[Path]:
    """Creates ``target`` and missing parents; returns those created (outermost first)."""
    missing = []
    probe = target
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    created = []
    try:
        for directory in reversed(missing):
            directory.mkdir()
            created.append(directory)
    except OSError as err:
        _remove_empty(created)
        raise InputError(f"{flag} = {str(target)!r} is not allowed: cannot create it ({err.strerror})") from None
    return created


def _remove_empty(created: list[Path]) -> None:
    for directory in reversed(created):
        with contextlib.suppress(OSError):
            directory.rmdir()


@contextlib.contextmanager
def lock(directory: Path, flag: str, wait: bool = False) -> Iterator[None]:
    """Holds an exclusive lock on ``directory`` (a lock file inside it) while the block runs.

    A second process asking for the same directory is refused at once, or with ``wait`` waits its turn (a
    cache entry: the second one then finds the first one's finished result); the lock is released when the
    block ends or the process dies (an ``flock``, so a killed run never leaves a stale lock behind).
    """
    path = directory / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise InputError(f"{flag} = {str(directory)!r} is not allowed: cannot write ({err.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EACCES):
                raise InputError(
                    f"{flag} = {str(directory)!r} is in use by another cimjax run; allowed: a directory no other "
                    "run is writing (wait for it to finish or choose another)"
                ) from None
            raise
        try:  # the file we locked may have been removed by its previous holder: lock the current one
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


@contextlib.contextmanager
def output_dir(path: str | os.PathLike, flag: str) -> Iterator[Path]:
    """Checks, creates and locks an output directory for the duration of a run (see the module docstring).

    If the block raises (or is interrupted), directories created here are removed again when empty.
    """
    target = check_output_dir(path, flag)
    created = _make_dirs(target, flag)
    try:
        with lock(target, flag):
            yield target
    except BaseException:
        _remove_empty(created)
        raise


class OutputError(ValueError):
    """An output the file system would not take (full, over quota, read-only, failing): one line naming the
    file, as a refused input gets, instead of a traceback from inside the writer."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to ``path`` (missing directories above it are created); renamed onto ``path`` when
    the block succeeds, removed otherwise. The file gets the permissions a plain ``open(path, "w")`` gives: an
    existing file's, or else 0o666 less the umask."""
    path = Path(path)
    if path.exists() and not path.is_file():  # renaming onto a device (/dev/null) would replace the device
        raise InputError(f"{str(path)!r} exists and is not a regular file; cimjax writes only regular files")
    path.parent.mkdir(parents=True, exist_ok=True)
    short = f".{path.name[:64]}.{secrets.token_hex(8)}.tmp{path.suffix[:16]}"  # fits where path's own name fits
    tmp = path.parent / short
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # tempfile.mkstemp's would be 0o600
    try:
        if path.is_file():
            shutil.copymode(path, tmp)
        yield tmp
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if file_system_refusal(error) is not None:
            raise OutputError(f"cannot write {path}: {error.strerror}; nothing was written to it") from None
        raise


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Holds Ctrl-C (SIGINT) until the block ends, then raises KeyboardInterrupt: a checkpoint being saved is
    finished first, so the interrupted run can be resumed from it. Only the main thread receives signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    """Writes ``data`` to ``path`` all at once: a temporary file, flushed to disk, then renamed."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())


NPZ_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
"""What ``np.load`` of a truncated, damaged or foreign ``.npz`` file (or reading a key it lacks) raises."""


def atomic_savez(path: str | os.PathLike, **arrays) -> None:
    """``np.savez`` of ``arrays`` to ``path`` (under that exact name) through :func:`atomic_path`."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def restore_newest(manager, template):
    """The newest step an orbax ``CheckpointManager`` reads back into ``template``'s structure, or None if none does.

    A step that does not read back (left truncated by a killed run, damaged since) is deleted with a warning:
    orbax silently skips saving a step at or below its newest one, so a kept unreadable step would stop the run
    from ever saving its own again. Orbax's reports of the failure are held back (:func:`_orbax_quiet`)."""
    import orbax.checkpoint as ocp

    for step in sorted(manager.all_steps(), reverse=True):
        try:
            with _orbax_quiet():
                return manager.restore(step, args=ocp.args.StandardRestore(template))
        except Exception as error:  # noqa: BLE001 - whatever the damage, the step cannot be used
            manager.delete(step)
            reason = " ".join(str(error).split())[:100]
            warnings.warn(f"step {step} in {manager.directory} could not be read back ({reason}); it is deleted and "
                          "its work will be done again", stacklevel=2)  # fmt: skip
    return None


def save_step(manager, step: int, state) -> None:
    """Saves ``state`` as ``step`` of an orbax ``CheckpointManager`` and waits until it is on disk; Ctrl-C during
    the save lets it finish first (:func:`deferred_interrupt`). A write the file system refuses (full, over quota,
    read-only) is an :class:`OutputError` naming the directory, and orbax's own reports of it, a traceback from
    each of its background threads (386 lines for a tiny LM on a full disk), are held back (:func:`_orbax_quiet`).
    Close such a manager with :func:`close_steps`."""
    import orbax.checkpoint as ocp

    try:
        with _orbax_quiet(), deferred_interrupt():
            manager.save(step, args=ocp.args.StandardSave(state))
            manager.wait_until_finished()
    except Exception as error:
        if (refusal := _orbax_refusal(error)) is None:
            raise
        raise OutputError(f"cannot write {manager.directory}: {refusal}; step {step} was not saved") from None


def close_steps(manager) -> None:
    """Closes an orbax ``CheckpointManager``. Orbax raises a failed save's error again on closing; a refusal
    :func:`save_step` has reported already is not raised twice (every save is waited for, so no other is pending)."""
    try:
        with _orbax_quiet():
            manager.close()
    except Exception as error:
        if _orbax_refusal(error) is None:
            raise


def _orbax_refusal(error: Exception) -> str | None:
    """The file system's reason (e.g. "No space left on device") when orbax's ``error`` is a refused write: orbax
    and tensorstore give it as text inside their own ValueError, not as an OSError."""
    return next((os.strerror(code) for code in FILE_SYSTEM_REFUSALS if os.strerror(code) in str(error)), None)


@contextlib.contextmanager
def _orbax_quiet() -> Iterator[None]:
    """Holds back the reports orbax's background threads make of a failure that also reaches the caller: absl log
    records with tracebacks, and "Event loop is closed" from reads left behind (:func:`_drop_abandoned_reads`)."""
    _drop_abandoned_reads()
    absl = logging.getLogger("absl")
    disabled, absl.disabled = absl.disabled, True
    try:
        yield
    finally:
        absl.disabled = disabled


def _drop_abandoned_reads() -> None:
    """From now on, drops the unraisable RuntimeError("Event loop is closed") that a read abandoned by a failed
    orbax restore reports when it finishes on its closed event loop (a traceback each, and harmless)."""
    previous = sys.unraisablehook
    if getattr(previous, "drops_abandoned_reads", False):
        return

    def hook(report) -> None:
        abandoned = report.object is None and str(report.exc_value) == "Event loop is closed"
        if not (abandoned and isinstance(report.exc_value, RuntimeError)):
            previous(report)

    hook.drops_abandoned_reads = True
    sys.unraisablehook = hook
