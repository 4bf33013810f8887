"""Self-describing results: a dict with attribute access, notebook display, JSON/DataFrame export and a
``meta`` object saying how the numbers were produced (versions, device, workload, technology overrides,
modelling assumptions), so a result file can be read and compared long after it was written.

Every JSON file the CLI writes goes through :func:`to_json` (floats rounded to :data:`SIGNIFICANT_DIGITS`
significant digits) and every CSV through :func:`write_csv` (hardware configs flattened to one column per
field, the same ``meta`` in a ``<name>.meta.json`` side-car). One design is reported as a typed
:class:`DesignReport` (hardware ``config``, exact :class:`Metrics`,
precision: a name, or a whole-bit table with its :class:`Accuracy`, :class:`Breakdowns`), whose
:meth:`DesignReport.to_json` writes one of the forms of :data:`FORMS`: ``evaluate`` (a design of
``cimjax evaluate``, ``search`` and ``reproduce``, with every breakdown), ``joint`` (a design of
``cimjax optimize`` and its baseline) or ``sweep`` (a row of ``cimjax sweep``'s front, optima and GA runs).
tokens/s and tokens/J are derived in :class:`Metrics` and nowhere else. The keys each command writes are
declared here once (:data:`FORMS`, :data:`EVALUATE_KEYS`, :data:`SEARCH_KEYS`, :data:`OPTIMIZE_KEYS`).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import html
import io
import json
import math
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cimjax.files import atomic_write

if TYPE_CHECKING:
    import numpy as np

SIGNIFICANT_DIGITS = 7
"""Floats in result files keep this many significant digits: the model computes in float32 (24-bit
mantissa, 7.2 decimal digits), so further digits are noise (``0.30000001192092896`` is written ``0.3``)."""

ASSUMPTIONS = (
    "Latency and energy cover the decode of the generated tokens only (workload.generate tokens after "
    "workload.prefill prompt tokens); tokens_per_s = generate / latency_s and tokens_per_j = generate / energy_j, "
    "as in the EdgeCIM paper.",
    "Decode step t attends to prefill + t keys, read from DRAM in K/V blocks of workload.attention_block tokens.",
    "The LM head is not streamed from DRAM (the paper's 400 tokens/s for LLaMA3.2-1B INT4 exceeds the DRAM "
    "roofline if it were); one embedding row per token is.",
    "int4/int8 mean W4A4KV4/W8A8KV8: weights, bit-serial activations and KV cache at that width.",
    "Prefill (reported under prefill_beyond_paper) is priced with the same equations but was not modelled by "
    "the EdgeCIM paper.",
    "Technology: 65 nm digital SRAM CIM and LPDDR5X at 204.8 GB/s peak; three constants are fitted to the "
    "paper's calibration points (see docs/model.md and `cimjax tech`).",
)


def rounded(value, digits: int = SIGNIFICANT_DIGITS):
    """``value`` with every float (in nested dicts, lists and tuples) rounded to ``digits`` significant digits."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        if value == 0.0 or not math.isfinite(value):
            return value
        return round(value, digits - 1 - math.floor(math.log10(abs(value))))
    if isinstance(value, Mapping):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / jax scalars
        return rounded(value.item(), digits)
    if hasattr(value, "tolist"):
        return rounded(value.tolist(), digits)
    return value


def to_json(value, indent: int | None = None) -> str:
    """JSON text of ``value`` with floats rounded (see :data:`SIGNIFICANT_DIGITS`); a NaN or infinity raises
    ValueError (never bare ``NaN``/``Infinity``, which is not JSON)."""
    return json.dumps(rounded(value), indent=indent, allow_nan=False)


def write_json(path: str | Path, value, indent: int | None = 1) -> None:
    """Writes the file whole or not at all (:func:`cimjax.files.atomic_write`)."""
    atomic_write(path, to_json(value, indent) + "\n")


def version() -> str:
    """The installed cimjax version (``0+unknown`` when run from a source tree that was never installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("cimjax")
    except PackageNotFoundError:
        return "0+unknown"


@functools.cache
def git_commit() -> str | None:
    """The commit of the source tree cimjax runs from, or None outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def technology_overrides(tech) -> dict:
    """The parameters of ``tech`` that differ from the default set; ``"macro"`` (name, geometry) if not EdgeCIM's."""
    if tech is None:
        return {}
    from cimjax.hardware.technology import default_technology

    default = default_technology()
    macro = {"macro": tech.macro.to_dict()} if tech.macro != default.macro else {}
    return {k: v for k, v in tech.to_dict().items() if v != default.to_dict()[k]} | macro


def make_meta(workload=None, tech=None, assumptions: Iterable[str] = ()) -> dict:
    """The ``meta`` object of a result: versions, device, workload, technology overrides, assumptions."""
    import jax

    from cimjax.workload.operators import Workload

    workload = workload or Workload()
    device = jax.devices()[0]
    return {
        "cimjax_version": version(),
        "jax_version": jax.__version__,
        "git_commit": git_commit(),
        "device": f"{device.platform}: {device.device_kind}",
        "workload": {
            "prefill_tokens": workload.prefill,
            "generate_tokens": workload.generate,
            "attention_block": workload.attention_block,
        },
        "technology_overrides": technology_overrides(tech),
        "assumptions": [*ASSUMPTIONS, *assumptions],
    }


def flat_row(row: Mapping) -> dict:
    """One CSV row: scalars as they are, the hardware ``config`` as one column per field (bare field names),
    other nested dicts as ``key.sub`` columns; lists are left out (they belong in the JSON files)."""
    from cimjax.hardware.config import FIELDS

    out = {}
    for key, value in row.items():
        if key == "config" and isinstance(value, Mapping):
            out |= {name: value[name] for name in FIELDS}
        elif isinstance(value, Mapping):
            out |= {f"{key}.{k}": v for k, v in flat_row(value).items()}
        elif not isinstance(value, list | tuple):
            out[key] = value
    return out


def write_csv(path: str | Path, rows: Sequence[Mapping], meta: Mapping) -> list[Path]:
    """Writes ``rows`` flattened by :func:`flat_row` (floats rounded) and ``meta`` to ``<stem>.meta.json``;
    returns both paths."""
    path = Path(path)
    flat = [rounded(flat_row(r)) for r in rows]
    columns = list(dict.fromkeys(k for r in flat for k in r))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    writer.writerows(flat)
    atomic_write(path, text.getvalue())
    side = path.with_name(path.stem + ".meta.json")
    write_json(side, {"describes": path.name, "meta": meta})
    return [path, side]


_HEADLINE = ("model", "precision", "tokens_per_s", "tokens_per_j", "latency_s", "energy_j", "area_mm2")


class Result(dict):
    """A result as a dict (JSON-ready, every existing key kept) with attribute access (``r.tokens_per_s``),
    a short ``repr``, an HTML table in Jupyter, :meth:`to_json` and :meth:`to_dataframe`."""

    def __getattr__(self, name: str):
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(f"result has no field {name!r}; fields: {list(self)}") from None
        return Result(value) if isinstance(value, dict) and not isinstance(value, Result) else value

    def __dir__(self):
        return [*super().__dir__(), *(k for k in self if k.isidentifier())]

    def __or__(self, other):
        return Result(dict.__or__(self, other))

    def to_json(self, indent: int | None = None) -> str:
        return to_json(self, indent)

    def to_dict(self) -> dict:
        """Plain nested dicts and lists with floats rounded (what the JSON file holds)."""
        return rounded(self)

    def to_dataframe(self):
        """A one-row pandas DataFrame of the flattened scalars (as in the CSV files; ``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_dataframe needs pandas: pip install pandas (or cimjax[notebook])") from None
        return pd.DataFrame([rounded(flat_row({k: v for k, v in self.items() if k != "meta"}))])

    def _headline(self) -> dict:
        return {k: self[k] for k in _HEADLINE if k in self}

    def __repr__(self) -> str:
        if not self._headline():
            return dict.__repr__(self)
        fields = ", ".join(f"{k}={_short(v)}" for k, v in self._headline().items())
        return f"Result({fields}, ... {len(self)} fields)"

    def _repr_html_(self) -> str:
        rows = [(k, v) for k, v in flat_row({k: v for k, v in self.items() if k != "meta"}).items()]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td>{html.escape(_short(v))}</td></tr>"
            for k, v in rows
        )
        meta = self.get("meta") or {}
        caption = html.escape(
            f"cimjax {meta.get('cimjax_version', '?')}, {meta.get('device', '?')}, workload {meta.get('workload', {})}"
        )
        return f"<table><caption>{caption}</caption>{body}</table>"


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


PREFILL_NOTE = "prefill phase: GEMM-shaped, not modelled by the EdgeCIM paper"


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Exact latency (s), energy (J) and chip area (mm^2) of ``tokens`` tokens (decode, or prefill)."""

    tokens: int
    latency_s: float
    energy_j: float
    area_mm2: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.latency_s

    @property
    def tokens_per_j(self) -> float:
        return self.tokens / self.energy_j


@dataclasses.dataclass(frozen=True)
class Breakdowns:
    """Where the decode time, energy and area go, the DRAM traffic, and the limits a design is judged by.

    ``roofline_tokens_per_s``: tokens/s if the DRAM streamed ``dram_bits`` at its peak rate;
    ``figure_of_merit``: peak TOPS, TOPS/W, TOPS/W/mm^2; ``system_dram_energy_per_bit``: the public
    LPDDR5X-class price of a DRAM bit of the *system* energy account (docs/model.md, "Energy accounting");
    ``prefill`` and ``prefill_latency_by_operator_s``: the prompt phase, when the workload has one.
    """

    latency_by_operator_s: Mapping[str, float]
    energy_by_component_j: Mapping[str, float]
    energy_by_operator_j: Mapping[str, float]
    area_mm2: Mapping[str, float]
    dram_bits: float
    roofline_tokens_per_s: float
    figure_of_merit: Mapping[str, float]
    sustained_dram_gb_per_s: float
    system_dram_energy_per_bit: float
    prefill: Metrics | None = None
    prefill_latency_by_operator_s: Mapping[str, float] | None = None


@dataclasses.dataclass(frozen=True)
class Accuracy:
    """The accuracy proxy's predicted loss increase of a bit assignment against its budget (nats/token)."""

    proxy: float
    budget: float
    feasible: bool


@dataclasses.dataclass(frozen=True)
class DesignReport:
    """One design and its exact metrics. ``bits``: the whole-bit ``(L, 17)`` table
    (:meth:`cimjax.workload.precision.Precision.to_table`) of a mixed assignment; ``index``: the design's
    flat index in a swept space. Parts a form does not write may be left None."""

    config: Mapping[str, float]
    metrics: Metrics
    model: str | None = None
    precision: str | None = None
    bits: np.ndarray | None = None
    accuracy: Accuracy | None = None
    breakdowns: Breakdowns | None = None
    index: int | None = None

    def to_json(self, form: str) -> dict:
        """The JSON object of this design in ``form`` (a key of :data:`FORMS`), keys in its order;
        ``prefill_beyond_paper`` only when there was a prefill phase."""
        if form not in FORMS:
            raise ValueError(f"form = {form!r} is not known; allowed: {list(FORMS)}")
        out = {key: _VALUES[key](self) for key in FORMS[form]}
        if out.get("prefill_beyond_paper", ...) is None:
            del out["prefill_beyond_paper"]
        return out


def _energy_accounts(d: DesignReport) -> dict:
    """Decode energy split into DRAM and on-chip, and the *system* account: the same on-chip energy with
    the DRAM bits priced at ``system_dram_energy_per_bit``."""
    b = d.breakdowns
    dram = b.energy_by_component_j["dram"]
    on_chip = d.metrics.energy_j - dram
    system_dram = _dram_bytes_per_token(d) * 8.0 * d.metrics.tokens * b.system_dram_energy_per_bit
    system = Metrics(d.metrics.tokens, d.metrics.latency_s, on_chip + system_dram, d.metrics.area_mm2)
    return {
        "dram_energy_j": dram,
        "on_chip_energy_j": on_chip,
        "system": {
            "dram_energy_per_bit": b.system_dram_energy_per_bit,
            "dram_energy_j": system_dram,
            "energy_j": system.energy_j,
            "tokens_per_j": system.tokens_per_j,
        },
    }


def _dram_bytes_per_token(d: DesignReport) -> float:
    return d.breakdowns.dram_bits / 8.0 / d.metrics.tokens


def _prefill(d: DesignReport) -> dict | None:
    p = d.breakdowns.prefill
    if p is None:
        return None
    return {
        "note": PREFILL_NOTE,
        "latency_s": p.latency_s,
        "energy_j": p.energy_j,
        "tokens_per_s": p.tokens_per_s,
        "latency_by_operator_s": dict(d.breakdowns.prefill_latency_by_operator_s),
    }


def _bits(d: DesignReport) -> list[dict]:
    from cimjax.workload.precision import bits_report

    return bits_report(d.bits)


def _mean_bits(d: DesignReport) -> dict[str, float]:
    import numpy as np

    from cimjax.workload.precision import POINTS

    table = np.asarray(d.bits)
    return {
        kind: float(np.mean(table[:, [i for i, (k, _) in enumerate(POINTS) if k == kind]]))
        for kind in ("weight", "act", "kv")
    }


_VALUES: dict[str, Callable[[DesignReport], object]] = {
    "index": lambda d: int(d.index),
    "model": lambda d: d.model,
    "precision": lambda d: d.precision,
    "bits": _bits,
    "config": lambda d: dict(d.config),
    "latency_s": lambda d: d.metrics.latency_s,
    "energy_j": lambda d: d.metrics.energy_j,
    "area_mm2": lambda d: d.metrics.area_mm2,
    "tokens_per_s": lambda d: d.metrics.tokens_per_s,
    "tokens_per_j": lambda d: d.metrics.tokens_per_j,
    "roofline_tokens_per_s": lambda d: d.breakdowns.roofline_tokens_per_s,
    "dram_bytes_per_token": _dram_bytes_per_token,
    "latency_by_operator_s": lambda d: dict(d.breakdowns.latency_by_operator_s),
    "energy_by_component_j": lambda d: dict(d.breakdowns.energy_by_component_j),
    "energy_by_operator_j": lambda d: dict(d.breakdowns.energy_by_operator_j),
    "area_breakdown_mm2": lambda d: dict(d.breakdowns.area_mm2),
    "dram_energy_j": lambda d: _energy_accounts(d)["dram_energy_j"],
    "on_chip_energy_j": lambda d: _energy_accounts(d)["on_chip_energy_j"],
    "system": lambda d: _energy_accounts(d)["system"],
    "figure_of_merit": lambda d: dict(d.breakdowns.figure_of_merit),
    "sustained_dram_gb_per_s": lambda d: d.breakdowns.sustained_dram_gb_per_s,
    "prefill_beyond_paper": _prefill,
    "proxy": lambda d: d.accuracy.proxy,
    "budget": lambda d: d.accuracy.budget,
    "feasible": lambda d: d.accuracy.feasible,
    "mean_bits": _mean_bits,
}
"""How each key of a design's JSON is read from a :class:`DesignReport`."""

ENERGY_ACCOUNT_KEYS = ("dram_energy_j", "on_chip_energy_j", "system")
"""Decode energy split into DRAM and on-chip, and the *system* account (``evaluate`` form)."""

FORMS: dict[str, tuple[str, ...]] = {
    "evaluate": (
        "model", "precision", "config", "latency_s", "energy_j", "area_mm2", "tokens_per_s", "tokens_per_j",
        "roofline_tokens_per_s", "dram_bytes_per_token", "latency_by_operator_s", "energy_by_component_j",
        "energy_by_operator_j", "area_breakdown_mm2", *ENERGY_ACCOUNT_KEYS, "figure_of_merit",
        "sustained_dram_gb_per_s", "prefill_beyond_paper",
    ),
    "joint": (
        "bits", "config", "tokens_per_s", "tokens_per_j", "latency_s", "energy_j", "area_mm2", "proxy", "budget",
        "feasible", "mean_bits",
    ),
    "sweep": ("index", "config", "latency_s", "energy_j", "tokens_per_s", "tokens_per_j", "area_mm2"),
}  # fmt: skip
"""The keys of a design's JSON in each form, in order (a contract for users' scripts)."""

BASELINE_KEYS = ("tokens_per_s", "tokens_per_j", "latency_s", "energy_j", "area_mm2", "proxy", "config", "mean_bits")
"""What ``cimjax optimize`` keeps of its baseline's ``joint`` form (under ``baseline``)."""

EVALUATE_KEYS = (*FORMS["evaluate"], "layer_operators", "meta")
"""``cimjax evaluate --json`` (``prefill_beyond_paper`` only with a prefill phase)."""

SEARCH_KEYS = {
    "": (*EVALUATE_KEYS, "method", "alpha", "objective", "evaluations", "wall_s"),
    "exhaustive": ("designs_per_s", "space_designs", "compile_s", "sweep_s", "tolerance", "area_max"),
    "gradient": ("seed", "starts", "gradient_steps", "history"),
    "ga": ("seed", "history"),
}
"""``cimjax search --json``: the keys of every method (``""``), then each method's own."""

OPTIMIZE_KEYS = (
    *FORMS["joint"], "gains", "ratios_to_baseline", "objective", "baseline_objective", "chosen", "objective_note",
    "tolerance", "area_rule", "optimiser_design", "baseline", "gain", "meta", "method", "model", "alpha", "area_max",
    "budget_label", "proxy_name", "assumption", "gain_cap", "seed", "evaluations", "wall_s",
)  # fmt: skip
"""``cimjax optimize --json`` (without ``--checkpoint``/``--sensitivities``)."""

MEASURED_KEYS = (
    "measured_budget", "measured_loss", "verified", "rounds", "verify_history", "verify_wall_s", "calibration",
    "checkpoint_hash", "target", "measured_kl", "refine", "scheme", "iso_area", "evolve", "pairs",
)  # fmt: skip
"""``optimize --checkpoint/--sensitivities`` writes :data:`OPTIMIZE_KEYS` but ``gain_cap``, then these (its
``baseline``, when a uniform width is within the budget, adds ``width``, ``measured_loss``, ``measured_kl``)."""
