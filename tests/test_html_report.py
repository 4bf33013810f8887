"""`cimjax report --html`: self-contained pages, one interactive point per distinct front design, tables."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from cimjax.cli.main import app
from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, PAPER_SPACE, DesignSpace
from cimjax.hardware.technology import default_technology
from cimjax.report.study import sweep_study
from cimjax.workload.models import get_model
from cimjax.workload.operators import Workload
from cimjax.workload.precision import preset

runner = CliRunner()


class Elements(HTMLParser):
    """Tags with their attributes, and the text of <script> elements by id."""

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.scripts, self._script = [], {}, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs).get("id", "")
            self.scripts[self._script] = ""

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self.scripts[self._script] += data


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("studies")
    spec = get_model("qwen3-0.6b")
    space = DesignSpace({name: values[:3] for name, values in PAPER_SPACE.values.items()})
    sweep_study(spec, preset("int4", spec.n_layers), "int4", Workload(prefill=37, generate=5), default_technology(),
                [0.0, 1.0], root / "sweep", space)  # fmt: skip
    repro = root / "repro"
    repro.mkdir()
    record = {"model": "llama3.2-1b", "precision": "int4", "tokens_per_s": 400.0, "roofline_tokens_per_s": 450.0,
              "tokens_per_j": 181.0, "area_mm2": 20.0, "config": EDGECIM_ALPHA05_DESIGN}  # fmt: skip
    (repro / "fig9.json").write_text(json.dumps([record, record | {"precision": "int8"}]))
    device = {"model": "llama3.2-1b", "device": "Jetson Orin Nano", "device_tokens_per_s": 54.8}
    device["model_over_device"] = 7.3
    (repro / "devices.json").write_text(json.dumps([device]))
    out = root / "html"
    result = runner.invoke(app, ["report", str(root / "sweep"), str(repro), "--html", str(out)])
    assert result.exit_code == 0, result.output
    return root, out


def test_pages_are_self_contained_and_linked(studies):
    _, out = studies
    pages = sorted(p.name for p in out.glob("*.html"))
    assert pages == ["01-sweep.html", "02-repro.html", "index.html"]
    index = Elements((out / "index.html").read_text())
    assert [a["href"] for t, a in index.tags if t == "a"] == ["01-sweep.html", "02-repro.html"]
    for page in pages:
        text = (out / page).read_text()
        assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", text), page  # nothing from the network
        assert "<link" not in text and "@import" not in text


def test_sweep_page_has_one_point_per_distinct_design_with_its_breakdown(studies):
    root, out = studies
    page = Elements((out / "01-sweep.html").read_text())
    data = json.loads(page.scripts["data"])
    points = [a for t, a in page.tags if t == "circle" and a.get("class") == "pt"]
    assert [int(a["data-i"]) for a in points] == list(range(len(data["designs"])))
    front = json.loads((root / "sweep" / "pareto.json").read_text())["front"]
    distinct = {(d["latency_s"], d["energy_j"], d["area_mm2"]) for d in front}
    assert sum(d["on_front"] for d in data["designs"]) == len(distinct)
    assert data["designs"][-1]["config"] == EDGECIM_ALPHA05_DESIGN  # the paper's design is marked
    for d in data["designs"]:  # the breakdowns add up to the totals
        parts = {k: v for k, v in d["latency_ms"].items() if k != "total"}
        assert sum(parts.values()) == pytest.approx(d["latency_ms"]["total"], rel=1e-4)
        energy = {k: v for k, v in d["energy_mj"].items() if k != "total"}
        assert sum(energy.values()) == pytest.approx(d["energy_mj"]["total"], rel=1e-4)
        assert d["tokens_per_s"] == pytest.approx(1e3 / d["latency_ms"]["total"], rel=1e-5)


def test_reproduction_page_holds_the_tables(studies):
    _, out = studies
    text = (out / "02-repro.html").read_text()
    table = text[text.index("id='reproduction'") : text.index("</table>")]
    assert table.count("<tr>") == 3 and "88.9" in table  # header + 2 records; 400 / 450 = 88.9 % of roofline
    assert "Jetson Orin Nano" in text and "7.30" in text


def test_unknown_study_directories_are_refused(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path), "--html", str(tmp_path / "out")])
    assert result.exit_code == 2 and "neither pareto.json" in result.stderr


@pytest.mark.parametrize(
    ("file", "edit"),
    [
        ("fig9.json", lambda rows: [rows[0] | {"tokens_per_s": "400"}]),  # was "Unknown format code 'f' ..."
        ("devices.json", lambda rows: [rows[0] | {"model_over_device": "7.3"}]),
        ("fig9.json", lambda rows: [rows[0] | {"area_mm2": [20.0]}]),
    ],
)
def test_hand_edited_study_files_are_refused_naming_the_study(studies, tmp_path, file, edit):
    """A string or a list where cimjax wrote a number failed a format spec with a message that named neither
    the file nor the study; now the study directory is named, in one line."""
    import shutil

    repro = tmp_path / "repro"
    shutil.copytree(studies[0] / "repro", repro)
    (repro / file).write_text(json.dumps(edit(json.loads((repro / file).read_text()))))
    result = runner.invoke(app, ["report", str(repro), "--html", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"study directory {repro} holds files cimjax did not write" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
