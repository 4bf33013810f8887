"""The files of a ``cimjax optimize --out DIR`` run: ``optimize.json``, the per-layer bit table as
``bits.csv`` (with its ``bits.meta.json`` side-car) and ``bits.png``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_outputs(out_dir: Path, report: Mapping, title: str) -> list[Path]:
    """``optimize.json``, ``bits.csv`` (one row per layer, one column per point), its side-car and
    ``bits.png`` (captioned with the report's ``gain_cap`` when the weight-less default proxy was used);
    returns their paths."""
    from cimjax.report.plots import bit_heatmap, save
    from cimjax.results import write_csv, write_json
    from cimjax.workload.precision import POINT_NAMES, table_from_bits

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = table_from_bits(report["bits"])
    rows = [{"layer": layer} | dict(zip(POINT_NAMES, map(int, row), strict=True)) for layer, row in enumerate(table)]
    files = [out_dir / "optimize.json"]
    write_json(files[0], report)
    files += write_csv(out_dir / "bits.csv", rows, report["meta"])
    save(bit_heatmap(table, title, caption=report.get("gain_cap")), out_dir / "bits.png")
    return [*files, out_dir / "bits.png"]
