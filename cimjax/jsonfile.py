"""Reading user-supplied JSON or YAML files with errors that name the file and what it was for."""

from __future__ import annotations

from pathlib import Path

import cimjax.validation as validation


def read_json(path: str | Path, what: str):
    """Parsed contents of ``path`` (YAML when it ends in .yaml/.yml, else JSON); ValueError naming the
    ``what`` file if it cannot be read or parsed, is too deep or too large, or holds NaN/infinity (limits:
    :mod:`cimjax.validation`)."""
    return validation.read_json(path, what)
