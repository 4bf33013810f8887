"""cimjax: a differentiable JAX cost model of the EdgeCIM compute-in-memory accelerator for small-language-
model decoding, with design-space search and joint per-layer bits + hardware co-optimisation.

The names below are imported on first use (``import cimjax`` itself does not import JAX)::

    import cimjax
    r = cimjax.evaluate_design("llama3.2-1b", "int4", {"c_v": 4})   # missing fields: the paper's design
    r.tokens_per_s, r.meta["workload"], r.to_dataframe()
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "evaluate_design": "cimjax.api",
    "search": "cimjax.search.runner",
    "optimize_report": "cimjax.joint.runner",
    "Result": "cimjax.results",
    "get_model": "cimjax.workload.models",
    "MODELS": "cimjax.workload.models",
    "Precision": "cimjax.workload.precision",
    "parse_precision": "cimjax.workload.precision",
    "Workload": "cimjax.workload.operators",
    "HardwareConfig": "cimjax.hardware.config",
    "DesignSpace": "cimjax.hardware.config",
    "PAPER_SPACE": "cimjax.hardware.config",
    "EDGECIM_ALPHA05_DESIGN": "cimjax.hardware.config",
    "Technology": "cimjax.hardware.technology",
    "default_technology": "cimjax.hardware.technology",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name == "__version__":
        from cimjax.results import version

        return version()
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cimjax' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
