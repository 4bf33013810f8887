"""Reading user-supplied JSON files with errors that name the file and what it was for."""

from __future__ import annotations

import json
from pathlib import Path


def read_json(path: str | Path, what: str):
    """Parsed contents of ``path``; ValueError naming the ``what`` file if it cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as err:
        raise ValueError(f"cannot read {what} file {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} file {path} is not valid JSON: {err}") from None
