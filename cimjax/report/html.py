"""Self-contained HTML pages of finished studies (``cimjax report --html DIR STUDY...``).

One page per study directory, plus ``index.html`` linking them:

* a sweep (``cimjax sweep --out``: ``pareto.json`` + ``summary.json``): an interactive Pareto front, an
  inline SVG with log axes, one point per distinct front design coloured by chip area, the alpha optima
  and the paper's design marked; hovering a point shows its design, metrics and stacked latency and
  energy breakdowns (evaluated exactly here, with the study's workload and technology overrides);
* a reproduction (``cimjax reproduce --out``: ``fig9.json``): the reproduction table and the comparison
  with published devices.

Pages carry their CSS, JavaScript and data inline and load nothing from the network.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from cimjax.files import atomic_write
from cimjax.results import rounded
from cimjax.validation import InputError, read_json

WIDTH, HEIGHT, PAD = 760, 480, 64
_VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
            "#fde725")  # fmt: skip

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.wrap{display:flex;gap:18px;align-items:flex-start}.wrap svg{flex-shrink:0}
#tip{min-width:330px;font-size:13px;border:1px solid #bbb;border-radius:6px;padding:10px;background:#fafafa}
.bar{display:flex;height:16px;margin:3px 0 8px 0;border:1px solid #999}.bar div{height:100%}
.key{display:inline-block;width:10px;height:10px;margin-right:4px}
svg text{font-size:11px;fill:#333}circle.pt{cursor:pointer}circle.pt:hover{stroke:#e4002b;stroke-width:3}
.meta{font-size:12px;color:#555}
"""

_JS = """
const data = JSON.parse(document.getElementById('data').textContent);
const tip = document.getElementById('tip');
const colours = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf'];
function bar(all, unit) {
  const parts = Object.fromEntries(Object.entries(all).filter(([k]) => k !== 'total'));
  const total = Object.values(parts).reduce((a, b) => a + b, 0);
  let cells = '', keys = '';
  Object.entries(parts).forEach(([k, v], i) => {
    const c = colours[i % colours.length];
    cells += `<div title="${k}: ${v.toPrecision(3)} ${unit}" style="width:${100 * v / total}%;background:${c}"></div>`;
    keys += `<span><span class="key" style="background:${c}"></span>${k} ${v.toPrecision(3)}</span> `;
  });
  return `<div class="bar">${cells}</div><div>${keys}</div>`;
}
function show(i) {
  const d = data.designs[i];
  const cfg = Object.entries(d.config).map(([k, v]) => `${k}=${v}`).join(', ');
  tip.innerHTML = `<b>${d.label}</b><br>${d.tokens_per_s.toPrecision(4)} tokens/s, ` +
    `${d.tokens_per_j.toPrecision(4)} tokens/J, ${d.area_mm2.toPrecision(4)} mm&sup2;<br><small>${cfg}</small>` +
    `<p><b>latency per token: ${d.latency_ms.total.toPrecision(4)} ms</b> (by operator)${bar(d.latency_ms, 'ms')}</p>` +
    `<p><b>energy per token: ${d.energy_mj.total.toPrecision(4)} mJ</b> (by component)${bar(d.energy_mj, 'mJ')}</p>`;
}
document.querySelectorAll('circle.pt').forEach(c => {
  c.addEventListener('mouseenter', () => show(+c.dataset.i));
  c.addEventListener('focus', () => show(+c.dataset.i));
});
show(data.initial);
"""


def _page(title: str, body: str, meta: Mapping | None) -> str:
    meta_html = ""
    if meta:
        items = "".join(
            f"<li>{html.escape(k)}: {html.escape(json.dumps(v) if not isinstance(v, str) else v)}</li>"
            for k, v in meta.items()
            if k != "assumptions"
        )
        assumptions = "".join(f"<li>{html.escape(a)}</li>" for a in meta.get("assumptions", []))
        meta_html = (
            f"<h2>How these numbers were made</h2><ul class='meta'>{items}</ul>"
            f"<h2>Assumptions</h2><ul class='meta'>{assumptions}</ul>"
        )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}{meta_html}</body></html>\n"
    )


def _ticks(low: float, high: float) -> list[float]:
    """Plain 1-2-5 (or 1..9 within a narrow range) tick values of a log axis over ``[low, high]``."""
    span = high / low
    subs = (1,) if span > 300 else (1, 2, 5) if span > 4 else tuple(range(1, 10))
    out = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        out += [s * 10.0**exponent for s in subs if low <= s * 10.0**exponent <= high]
    return out


def _colour(value: float, low: float, high: float) -> str:
    t = 0.0 if high <= low else (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return _VIRIDIS[min(len(_VIRIDIS) - 1, int(t * len(_VIRIDIS)))]


def pareto_svg(designs: Sequence[Mapping], marks: Mapping[int, str]) -> str:
    """An SVG of energy vs latency per token (log axes) with one focusable point per design (``data-i``);
    ``marks``: design index -> label drawn next to the point (alpha optima, the paper's design)."""
    xs = [d["latency_ms"]["total"] for d in designs]
    ys = [d["energy_mj"]["total"] for d in designs]
    areas = [d["area_mm2"] for d in designs]
    x0, x1 = min(xs) / 1.1, max(xs) * 1.1
    y0, y1 = min(ys) / 1.1, max(ys) * 1.1

    def px(x):
        return PAD + (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0)) * (WIDTH - 1.5 * PAD)

    def py(y):
        return HEIGHT - PAD - (math.log(y) - math.log(y0)) / (math.log(y1) - math.log(y0)) * (HEIGHT - 1.5 * PAD)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' role='img'>",
             f"<rect x='{PAD}' y='{PAD / 2}' width='{WIDTH - 1.5 * PAD}' height='{HEIGHT - 1.5 * PAD}' "
             "fill='none' stroke='#888'/>"]  # fmt: skip
    for t in _ticks(x0, x1):
        parts.append(f"<line x1='{px(t):.1f}' x2='{px(t):.1f}' y1='{PAD / 2}' y2='{HEIGHT - PAD}' stroke='#eee'/>")
        parts.append(f"<text x='{px(t):.1f}' y='{HEIGHT - PAD + 16}' text-anchor='middle'>{t:g}</text>")
    for t in _ticks(y0, y1):
        parts.append(f"<line x1='{PAD}' x2='{WIDTH - PAD / 2}' y1='{py(t):.1f}' y2='{py(t):.1f}' stroke='#eee'/>")
        parts.append(f"<text x='{PAD - 6}' y='{py(t) + 4:.1f}' text-anchor='end'>{t:g}</text>")
    parts.append(f"<text x='{WIDTH / 2}' y='{HEIGHT - 18}' text-anchor='middle'>decode latency per token (ms)</text>")
    parts.append(f"<text transform='translate(16,{HEIGHT / 2}) rotate(-90)' text-anchor='middle'>"
                 "decode energy per token (mJ)</text>")  # fmt: skip
    front = sorted((i for i, d in enumerate(designs) if d["on_front"]), key=lambda i: xs[i])
    if front:
        path = " ".join(f"{px(xs[i]):.1f},{py(ys[i]):.1f}" for i in front)
        parts.append(f"<polyline points='{path}' fill='none' stroke='#333' stroke-width='1'/>")
    for i, d in enumerate(designs):
        colour = "#e4002b" if not d["on_front"] else _colour(areas[i], min(areas), max(areas))
        radius = 8 if not d["on_front"] else 5
        title = f"<title>{html.escape(d['label'])}</title>"
        parts.append(f"<circle class='pt' data-i='{i}' tabindex='0' cx='{px(xs[i]):.1f}' cy='{py(ys[i]):.1f}' "
                     f"r='{radius}' fill='{colour}' stroke='#222'>{title}</circle>")  # fmt: skip
        if i in marks:
            parts.append(f"<text x='{px(xs[i]) + 9:.1f}' y='{py(ys[i]) - 7:.1f}'>{html.escape(marks[i])}</text>")
    low, high = min(areas), max(areas)
    for k, c in enumerate(_VIRIDIS):
        parts.append(f"<rect x='{WIDTH - PAD / 2 - 150 + 15 * k}' y='{PAD / 2 + 6}' width='15' height='8' fill='{c}'/>")
    parts.append(f"<text x='{WIDTH - PAD / 2 - 150}' y='{PAD / 2 + 26}'>area {low:.3g}</text>")
    parts.append(f"<text x='{WIDTH - PAD / 2}' y='{PAD / 2 + 26}' text-anchor='end'>{high:.3g} mm²</text>")
    parts.append("</svg>")
    return "".join(parts)


def _design(report: Mapping, label: str, on_front: bool) -> dict:
    """A hover record: the design, its metrics and its breakdowns per token (ms, mJ)."""
    tokens = report["meta"]["workload"]["generate_tokens"]
    latency = {k: 1e3 * v / tokens for k, v in report["latency_by_operator_s"].items()}
    energy = {k: 1e3 * v / tokens for k, v in report["energy_by_component_j"].items()}
    return {
        "label": label,
        "on_front": on_front,
        "config": report["config"],
        "tokens_per_s": report["tokens_per_s"],
        "tokens_per_j": report["tokens_per_j"],
        "area_mm2": report["area_mm2"],
        "latency_ms": latency | {"total": 1e3 * report["latency_s"] / tokens},
        "energy_mj": energy | {"total": 1e3 * report["energy_j"] / tokens},
    }


def sweep_page(study: Path) -> str:
    """The page of a ``cimjax sweep`` output directory (front designs re-evaluated for their breakdowns)."""
    from cimjax.evaluation import design_report
    from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, FIELDS
    from cimjax.hardware.technology import default_technology
    from cimjax.workload.models import resolve_model
    from cimjax.workload.operators import Workload
    from cimjax.workload.precision import resolve_precision

    summary = read_json(study / "summary.json", "study summary")
    front = read_json(study / "pareto.json", "study front")["front"]
    meta = summary.get("meta") or {}
    w = meta.get("workload", {})
    workload = Workload(prefill=w.get("prefill_tokens", 128), generate=w.get("generate_tokens", 128),
                        attention_block=w.get("attention_block", 32))  # fmt: skip
    tech = default_technology().replace(**meta.get("technology_overrides", {}))

    spec = resolve_model(summary["model"])
    prec = resolve_precision(summary["precision"], spec)

    def evaluate(config):
        return design_report(spec, prec, summary["precision"], config, workload, tech, _space(front))

    seen, designs, marks = {}, [], {}
    for row in front:
        key = (row["latency_s"], row["energy_j"], row["area_mm2"])  # mirror designs cost the same: draw one
        if key not in seen:
            seen[key] = len(designs)
            label = f"front design {len(designs) + 1}"
            designs.append(_design(evaluate(row["config"]), label, True))
    for optimum in summary["alpha_optima"]:
        index = seen.get((optimum["latency_s"], optimum["energy_j"], optimum["area_mm2"]))
        if index is None:  # a near-tie choice off the front
            index = len(designs)
            designs.append(_design(evaluate(optimum["config"]), f"alpha = {optimum['alpha']:g}", False))
        marks[index] = (marks[index] + ", " if index in marks else "α=") + f"{optimum['alpha']:g}"
    paper = design_report(spec, prec, summary["precision"], EDGECIM_ALPHA05_DESIGN, workload, tech)
    marks[len(designs)] = "EdgeCIM paper design"
    designs.append(_design(paper, "EdgeCIM paper design (alpha = 0.5, LLaMA3.2-3B INT8 optimum)", False))
    for d in designs:
        d["config"] = {f: d["config"][f] for f in FIELDS}
    optima_rows = "".join(
        f"<tr><td>{o['alpha']:g}</td><td>{o['tokens_per_s']:.4g}</td><td>{o['tokens_per_j']:.4g}</td>"
        f"<td>{o['area_mm2']:.4g}</td><td class='l'>{_config_text(o['config'])}</td></tr>"
        for o in summary["alpha_optima"]
    )
    n_front = sum(d["on_front"] for d in designs)
    body = (
        f"<p>{summary['designs']:,} designs swept; the exact latency-energy Pareto front has {n_front} distinct "
        f"designs ({len(front)} with mirror designs such as c_v &harr; c_h). Colour: chip area. Hover or focus a "
        "point for its design and breakdown; red points are designs off the front.</p>"
        f"<div class='wrap'>{pareto_svg(designs, marks)}<div id='tip'></div></div>"
        "<h2>alpha optima</h2><table><tr><th>alpha</th><th>tokens/s</th><th>tokens/J</th><th>area mm²</th>"
        f"<th class='l'>design</th></tr>{optima_rows}</table>"
        f"<script type='application/json' id='data'>{_json({'designs': designs, 'initial': 0})}</script>"
        f"<script>{_JS}</script>"
    )
    return _page(f"Sweep: {summary['model']} {summary['precision']}", body, meta)


def _space(front: Sequence[Mapping]):
    """A design space holding the paper's values and every design of ``front`` (custom spaces too)."""
    from cimjax.hardware.config import FIELDS, PAPER_SPACE, DesignSpace

    return DesignSpace({f: tuple(sorted({*PAPER_SPACE.values[f], *(r["config"][f] for r in front)})) for f in FIELDS})


def _config_text(c: Mapping) -> str:
    return (
        f"C={c['c_v']}x{c['c_h']} T_A={c['t_v_act']}x{c['t_h_act']} m={c['m']} P²={c['pes_per_tile']} "
        f"bus={c['bus_inter_cluster']}/{c['bus_inter_tile']}/{c['bus_intra_tile']}"
    )


def reproduction_page(study: Path) -> str:
    """The page of a ``cimjax reproduce`` output directory: the reproduction and device tables."""
    records = read_json(study / "fig9.json", "study table")
    rows = "".join(
        f"<tr><td class='l'>{html.escape(r['model'])}</td><td class='l'>{r['precision']}</td>"
        f"<td>{r['tokens_per_s']:.1f}</td><td>{r['roofline_tokens_per_s']:.1f}</td>"
        f"<td>{100 * r['tokens_per_s'] / r['roofline_tokens_per_s']:.1f}</td><td>{r['tokens_per_j']:.1f}</td>"
        f"<td>{r['area_mm2']:.2f}</td><td class='l'>{_config_text(r['config'])}</td></tr>"
        for r in records
    )
    selection = records[0].get("selection", {}).get("description", "the exact alpha = 1 optimum")
    body = (
        f"<p>Per model and precision, the design put beside the paper: {html.escape(selection)} (decode of 128 "
        "tokens after a 128-token prompt).</p><table id='reproduction'><tr><th class='l'>model</th>"
        "<th class='l'>precision</th><th>tokens/s</th><th>roofline tokens/s</th><th>% of roofline</th>"
        f"<th>tokens/J</th><th>area mm²</th><th class='l'>design</th></tr>{rows}</table>"
    )
    devices_file = study / "devices.json"
    if devices_file.exists():
        devices = read_json(devices_file, "study devices")
        rows = "".join(
            f"<tr><td class='l'>{html.escape(d['model'])}</td><td class='l'>{html.escape(d['device'])}</td>"
            f"<td>{d['device_tokens_per_s']:g}</td><td>{d['model_over_device']:.2f}</td></tr>"
            for d in devices
        )
        body += (
            "<h2>Against published devices (INT4, vendor measurements quoted by the paper)</h2>"
            "<table id='devices'><tr><th class='l'>model</th><th class='l'>device</th><th>device tokens/s</th>"
            f"<th>modelled / device</th></tr>{rows}</table>"
        )
    meta_file = study / "meta.json"
    meta = read_json(meta_file, "study meta").get("meta") if meta_file.exists() else None
    return _page("Reproduction of the EdgeCIM paper (Bazzi et al., arXiv 2604.11512)", body, meta)


def _json(value) -> str:
    """JSON for an inline script (``</`` escaped so no string can close the tag)."""
    return json.dumps(rounded(value)).replace("</", "<\\/")


def write_report(out_dir: str | Path, studies: Sequence[str | Path]) -> list[Path]:
    """Writes one page per study directory and ``index.html``; returns the written paths.

    Raises:
      ValueError: a directory that is neither a sweep nor a reproduction output.
    """
    out_dir = Path(out_dir)
    if not studies:
        raise ValueError("give at least one study directory (a `cimjax sweep --out` or `cimjax reproduce --out`)")
    pages = []
    for study in map(Path, studies):
        if (study / "pareto.json").exists() and (study / "summary.json").exists():
            page = sweep_page
        elif (study / "fig9.json").exists():
            page = reproduction_page
        else:
            raise ValueError(
                f"study directory {study} holds neither pareto.json + summary.json (`cimjax sweep --out`) "
                "nor fig9.json (`cimjax reproduce --out`)"
            )
        try:
            text = page(study)
        except InputError:
            raise  # an unreadable file: the reader's message names it
        except (KeyError, TypeError, IndexError, AttributeError, ValueError) as e:  # files edited or not cimjax's
            # (a string where a number was written fails a format spec with a ValueError)
            raise ValueError(f"study directory {study} holds files cimjax did not write ({e!r})") from None
        pages.append((f"{len(pages) + 1:02d}-{study.resolve().name}.html", study, text))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, _, text in pages:
        atomic_write(out_dir / name, text)
        written.append(out_dir / name)
    links = "".join(f"<li><a href='{html.escape(n)}'>{html.escape(str(s))}</a></li>" for n, s, _ in pages)
    atomic_write(out_dir / "index.html", _page("cimjax report", f"<ul>{links}</ul>", None))
    return [out_dir / "index.html", *written]
