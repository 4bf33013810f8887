"""What the cache directory holds, and clearing it: ``cimjax cache info`` and ``cimjax cache clear``.

Nothing in cimjax deletes cache files itself: GPTQ copies, pair measurements and compiled programs are keyed
by cimjax's sources too, so every upgrade adds entries beside the old ones. The entries are read from the
directory (``proxy-lm``, ``gptq``, ``xla``, ... whatever exists), never from a list that could go stale.
Symbolic links are never followed: a link counts as one file of its own size and clearing removes the
link, not its target; an entry whose resolved path lies outside the cache directory is refused.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cimjax.validation import InputError, fail

PROTECTED = "proxy-lm"
"""The trained proxy LMs (minutes each to retrain): cleared only when named, never by ``all``."""
MB = 1e6
"""Sizes are reported in MB = 10^6 bytes."""
DAY_S = 86_400.0


@dataclass(frozen=True)
class Usage:
    """Files (links included, directories not) and their bytes (``lstat`` sizes) under one path."""

    files: int
    bytes: int

    @property
    def mb(self) -> float:
        return self.bytes / MB

    def row(self) -> dict:
        return {"files": self.files, "bytes": self.bytes, "mb": round(self.mb, 3)}


def entry_names(root: Path) -> list[str]:
    """The cache's top-level entries, sorted; none if the directory does not exist."""
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def files_under(path: Path) -> list[Path]:
    """Every file under ``path`` (``path`` itself if it is a file or a link), links not followed."""
    if path.is_symlink() or not path.is_dir():
        return [path]
    found = []
    for directory, subdirectories, names in os.walk(path):  # os.walk does not descend into linked directories
        here = Path(directory)
        found += [here / name for name in names]
        found += [here / name for name in subdirectories if (here / name).is_symlink()]
    return found


def usage(paths: list[Path]) -> Usage:
    return Usage(len(paths), sum(p.lstat().st_size for p in paths))


def info(root: Path) -> dict:
    """The cache directory, each top-level entry's file count and size, and the totals."""
    entries = {name: usage(files_under(root / name)) for name in entry_names(root)}
    total = Usage(sum(u.files for u in entries.values()), sum(u.bytes for u in entries.values()))
    return {
        "cache_dir": str(root),
        "exists": root.is_dir(),
        "entries": [{"name": name, **u.row()} for name, u in entries.items()],
        "total": total.row(),
    }


def _entry(root: Path, kind: str, names: list[str]) -> Path:
    """``root / kind`` for a plain entry name of the cache whose resolved path stays inside the cache."""
    allowed = f"allowed: 'all' or an entry of the cache ({', '.join(names) or 'none: the cache is empty'})"
    if kind not in names:  # names are read from the directory: never '', '.', '..' or a path such as '../x'
        raise fail("KIND", kind, allowed)
    path = root / kind
    if path.resolve().parent != root.resolve():  # a link to elsewhere
        raise fail("KIND", kind, "allowed: an entry that resolves inside the cache directory")
    return path


def plan(root: Path, kinds: list[str], older_than_days: float | None = None) -> dict:
    """The files ``clear`` would delete, per entry: every file of each named entry (``all``: every entry but
    :data:`PROTECTED`), or with ``older_than_days`` only those last modified more than that many days ago."""
    if older_than_days is not None and not (math.isfinite(older_than_days) and older_than_days >= 0):
        raise fail("--older-than", older_than_days, "allowed: a finite number of days >= 0")
    names = entry_names(root)
    chosen: list[str] = []
    for kind in kinds:
        selected = [n for n in names if n != PROTECTED] if kind == "all" else [_entry(root, kind, names).name]
        chosen += [n for n in selected if n not in chosen]
    cutoff = None if older_than_days is None else time.time() - older_than_days * DAY_S
    return {
        name: [p for p in files_under(root / name) if cutoff is None or p.lstat().st_mtime < cutoff] for name in chosen
    }


def clear(root: Path, planned: dict[str, list[Path]]) -> None:
    """Deletes the planned files, then the directories they leave empty (the entry's own included; one another
    process has just written to is kept). A file that cannot be deleted stops it with an :class:`InputError`
    naming the file."""
    for name, paths in planned.items():
        for path in paths:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:  # e.g. no permission: one line, not a traceback
                raise InputError(f"KIND = {name!r}: could not delete {path}: {error.strerror}") from None
        entry = root / name
        if entry.is_symlink() or not entry.is_dir():
            continue
        for directory, _, _ in os.walk(entry, topdown=False):  # children before their parents
            with contextlib.suppress(OSError):  # not empty: it holds files not planned, or new ones
                Path(directory).rmdir()
