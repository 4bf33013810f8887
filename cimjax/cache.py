"""Where cimjax keeps caches (compiled models, trained proxy models): $CIMJAX_CACHE or ~/.cache/cimjax."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    path = Path(os.environ.get("CIMJAX_CACHE", Path.home() / ".cache" / "cimjax"))
    path.mkdir(parents=True, exist_ok=True)
    return path
