"""The per-layer bit table of ``cimjax optimize`` as a compact coloured heat-map for the terminal (the
files of ``--out DIR`` are written by :func:`cimjax.report.optimize.write_outputs`)."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table
from rich.text import Text

_SHADES = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")  # viridis, 1..16 bits
COLUMN_LABELS = ("wq", "wk", "wv", "wo", "wg", "wu", "wd", "aq", "ak", "av", "ao", "ag", "au", "ad", "aqk", "apv", "kv")
"""Short labels of the 17 quantisation points (``POINT_NAMES`` order), so that 17 columns fit 80 characters."""
_CAPTION = (
    "w = weight, a = activation input of q, k, v, o, gate, up, down; aqk = queries into Q K^T, "
    "apv = probabilities into P V; kv = KV cache"
)


def _shade(bits: float) -> str:
    return _SHADES[min(len(_SHADES) - 1, int((bits - 1) / 16 * len(_SHADES)))]


def heatmap_table(report: Mapping) -> Table:
    """Layers down, the 17 quantisation points across (labels :data:`COLUMN_LABELS`), bits as coloured
    numbers."""
    from cimjax.workload.precision import table_from_bits

    table = Table(title="bits per layer", caption=_CAPTION, padding=(0, 0))
    table.add_column("layer", justify="right")
    for label in COLUMN_LABELS:
        table.add_column(label, justify="right", min_width=3)
    for layer, row in enumerate(table_from_bits(report["bits"])):
        cells = [Text(f"{b:>3.0f}", style=f"bold {'black' if b > 8 else 'white'} on {_shade(b)}") for b in row]
        table.add_row(str(layer), *cells)
    return table
