"""The per-layer bit table of ``cimjax optimize``: a compact coloured heat-map for the terminal, and
``bits.csv`` (with its ``bits.meta.json`` side-car) + ``bits.png`` + ``optimize.json`` for ``--out DIR``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rich.table import Table
from rich.text import Text

_SHADES = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")  # viridis, 1..16 bits


def _shade(bits: float) -> str:
    return _SHADES[min(len(_SHADES) - 1, int((bits - 1) / 16 * len(_SHADES)))]


def heatmap_table(report: Mapping) -> Table:
    """Layers down, the 17 quantisation points across (w = weight, a = bit-serial input), bits as
    coloured numbers."""
    from cimjax.workload.precision import POINT_NAMES, table_from_bits

    names = [n.replace("weight.", "w.").replace("act.", "a.") for n in POINT_NAMES]
    table = Table(title="bits per layer (w = weight, a = activation input, kv = KV cache)", padding=(0, 0))
    table.add_column("layer", justify="right")
    for name in names:
        table.add_column(name, justify="right", min_width=3)
    for layer, row in enumerate(table_from_bits(report["bits"])):
        cells = [Text(f"{b:>3.0f}", style=f"bold {'black' if b > 8 else 'white'} on {_shade(b)}") for b in row]
        table.add_row(str(layer), *cells)
    return table


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
