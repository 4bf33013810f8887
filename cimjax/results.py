"""Self-describing results: a dict with attribute access, notebook display, JSON/DataFrame export and a
``meta`` object saying how the numbers were produced (versions, device, workload, technology overrides,
modelling assumptions), so a result file can be read and compared long after it was written.

Every JSON file the CLI writes goes through :func:`to_json` (floats rounded to :data:`SIGNIFICANT_DIGITS`
significant digits) and every CSV through :func:`write_csv` (hardware configs flattened to one column per
field, the same ``meta`` in a ``<name>.meta.json`` side-car).
"""

from __future__ import annotations

import csv
import functools
import html
import io
import json
import math
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from cimjax.files import atomic_write

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


def technology_overrides(tech) -> dict[str, float]:
    """The technology parameters of ``tech`` that differ from the default (calibrated) set."""
    if tech is None:
        return {}
    from cimjax.hardware.technology import default_technology

    default = default_technology().to_dict()
    return {k: v for k, v in tech.to_dict().items() if v != default[k]}


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
