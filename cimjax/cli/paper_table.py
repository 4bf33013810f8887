"""The terminal summary of ``cimjax reproduce``: one row per model and precision that fits 80 columns
(the full Markdown tables, with bus widths, the energy split, the knee and the GA runs, go to ``fig9.md``)."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.table import Table

CAPTION = (
    "(paper): its published number where it is a calibration point, none where held out; design: clusters C "
    "/ active tiles T_A / tile sets M / PEs per tile P^2; decode reaches {low:.1f}-{high:.1f} % of the DRAM "
    "roofline"
)


def _beside_paper(ours: float, paper: float | None) -> str:
    return f"{ours:.1f}" + ("" if paper is None else f" ({paper:g})")


def reproduce_table(records: Sequence[dict], title: str) -> Table:
    """Tokens/s and tokens/J beside the paper's, area and design per row of ``records`` (``reproduce_paper``'s),
    the share of the DRAM roofline as a range in the caption."""
    from cimjax.report.paper import paper_values

    paper = paper_values()
    roofline = [100 * r["fraction_of_roofline"] for r in records]
    caption = CAPTION.format(low=min(roofline), high=max(roofline))
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    table.add_column("model", min_width=max(len(r["model"]) for r in records))
    table.add_column("bits")
    for name in ("tokens/s (paper)", "tokens/J (paper)", "mm²"):
        table.add_column(name, justify="right")
    table.add_column("design C/T_A/M/P^2")
    for r in records:
        published = paper.get((r["model"], r["precision"]), {})
        c = r["config"]
        table.add_row(
            r["model"],
            r["precision"],
            _beside_paper(r["tokens_per_s"], published.get("tokens_per_s")),
            _beside_paper(r["tokens_per_j"], published.get("tokens_per_j")),
            f"{r['area_mm2']:.1f}",
            f"{c['c_v']}x{c['c_h']}/{c['t_v_act']}x{c['t_h_act']}/{c['m']}/{c['pes_per_tile']}",
        )
    return table
