"""The validated boundary, the façade users call: evaluate a design from plain values (a model id or
``config.json`` path, a precision name, a mapping of hardware fields), and read config files.

Everything here checks its inputs (clear ``ValueError`` naming field, value and allowed set) and then
calls the library below; nothing in the library imports this module. The report builders and resolvers
it re-exports live on their own floors (:mod:`cimjax.evaluation`, :mod:`cimjax.workload.models`,
:mod:`cimjax.workload.precision`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cimjax import validation
from cimjax.evaluation import costs_report, design_report, peak_figure_of_merit, roofline_tokens_per_s
from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, FIELDS, PAPER_SPACE, DesignSpace, HardwareConfig
from cimjax.hardware.technology import Technology, technology_argument
from cimjax.jsonfile import read_json
from cimjax.results import ENERGY_ACCOUNT_KEYS
from cimjax.workload.models import resolve_model
from cimjax.workload.operators import Workload
from cimjax.workload.precision import Precision, resolve_precision
from cimjax.workload.spec import ModelSpec

__all__ = [
    "ENERGY_ACCOUNT_KEYS",
    "complete_config",
    "costs_report",
    "evaluate_design",
    "load_config",
    "peak_figure_of_merit",
    "resolve_model",
    "resolve_precision",
    "roofline_tokens_per_s",
]


def load_config(path: str | Path) -> dict:
    """Reads a hardware config file (JSON, or YAML by suffix): the fields themselves or an object with a
    ``config`` key (``cimjax schema config``)."""
    data = read_json(path, "config")
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a JSON object with the fields {list(FIELDS)}")
    return data


def complete_config(values: Mapping[str, float]) -> dict:
    """``values`` with the fields it lacks taken from the paper's alpha = 0.5 design (as the CLI does)."""
    return dict(EDGECIM_ALPHA05_DESIGN) | dict(values)


def evaluate_design(
    model: str | ModelSpec,
    precision: str | Precision,
    config: Mapping[str, float] | HardwareConfig,
    workload: Workload | None = None,
    tech: Technology | None = None,
    space: DesignSpace = PAPER_SPACE,
) -> dict:
    """Validates the inputs, evaluates one design exactly and returns its report (a JSON-ready
    :class:`cimjax.results.Result` with ``meta``). Hardware fields missing from ``config`` come from the
    paper's alpha = 0.5 design (``EDGECIM_ALPHA05_DESIGN``), as on the command line; a ``HardwareConfig`` is
    checked against ``space`` as a mapping is, and ``tech`` as :meth:`Technology.from_values` checks one."""
    spec = resolve_model(model)
    prec = resolve_precision(precision, spec)
    space = validation.instance("space", space, DesignSpace, lambda: PAPER_SPACE)
    if not isinstance(config, Mapping | HardwareConfig):
        raise ValueError(
            f"config = {config!r} is not allowed; allowed: a mapping of {list(FIELDS)} or a HardwareConfig"
        )
    values = (
        {name: validation.plain(getattr(config, name)) for name in FIELDS}
        if isinstance(config, HardwareConfig)
        else complete_config(config)
    )
    hw = HardwareConfig.from_dict(values, space)
    workload = validation.instance("workload", workload, Workload, Workload)
    name = precision if isinstance(precision, str) else "mixed"
    return design_report(spec, prec, name, hw, workload, technology_argument(tech), space)
