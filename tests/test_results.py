"""Self-describing results: meta, rounding, flattening, attribute access, exports, precision names."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import cimjax
from cimjax.cli.main import app
from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, FIELDS
from cimjax.results import (
    ASSUMPTIONS,
    EVALUATE_KEYS,
    FORMS,
    Accuracy,
    Breakdowns,
    DesignReport,
    Metrics,
    Result,
    flat_row,
    rounded,
    write_csv,
)
from cimjax.workload.precision import Precision, parse_precision, preset

META_KEYS = {"cimjax_version", "jax_version", "git_commit", "device", "workload", "technology_overrides",
             "assumptions"}  # fmt: skip


def test_rounding_drops_float32_noise_and_keeps_seven_digits():
    assert rounded(float(np.float32(0.3))) == 0.3
    assert rounded(0.30000001192092896) == 0.3
    assert rounded(123456789.0) == 123456800.0
    assert rounded(-1.23456789e-12) == -1.234568e-12
    assert rounded({"a": [np.float32(0.1), 7, True, None, "x", float("inf")]}) == {
        "a": [0.1, 7, True, None, "x", float("inf")]
    }


def test_import_cimjax_does_not_import_jax():
    code = "import sys, cimjax; print(cimjax.__version__); print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "False" and out[0]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cimjax.nope  # noqa: B018


def test_cimjax_search_is_the_search_function_in_any_import_order():
    """Importing anything under ``cimjax.search`` first (``optimize_report`` does) bound the package to the
    name, and ``cimjax.search(...)`` raised "'module' object is not callable"."""
    code = (
        "import cimjax; cimjax.optimize_report; "
        "r = cimjax.search('qwen2.5-0.5b', 'int8', 0.5, 'ga', pop_size=4, n_gen=1, "
        "workload=cimjax.Workload(prefill=4, generate=4)); print(r['method'], r['config']['c_v'] >= 1)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["ga", "True"]


def test_missing_fields_default_to_the_paper_design_like_the_cli(small_workload):
    partial = cimjax.evaluate_design("qwen2.5-0.5b", "int8", {"c_v": 3}, small_workload)
    full = cimjax.evaluate_design("qwen2.5-0.5b", "int8", EDGECIM_ALPHA05_DESIGN | {"c_v": 3}, small_workload)
    assert partial.config == EDGECIM_ALPHA05_DESIGN | {"c_v": 3}
    assert partial.tokens_per_s == full["tokens_per_s"]
    with pytest.raises(ValueError, match="'m' = 99 is not allowed"):
        cimjax.evaluate_design("qwen2.5-0.5b", "int8", {"m": 99}, small_workload)


def test_results_carry_meta_with_workload_and_overrides(small_workload):
    tech = cimjax.default_technology().replace(leakage_w_per_mm2=0.005)
    r = cimjax.evaluate_design("qwen2.5-0.5b", "int4", {}, small_workload, tech)
    assert isinstance(r, Result) and set(r.meta) == META_KEYS
    assert r.meta["workload"] == {"prefill_tokens": 37, "generate_tokens": 5, "attention_block": 16}
    assert r.meta["technology_overrides"] == {"leakage_w_per_mm2": pytest.approx(0.005)}
    assert r.meta["assumptions"] == list(ASSUMPTIONS)
    assert r.meta["jax_version"] and r.meta["cimjax_version"] == cimjax.__version__
    plain = cimjax.evaluate_design("qwen2.5-0.5b", "int4", {}, small_workload)
    assert plain.meta["technology_overrides"] == {}
    # attribute access mirrors the dict; JSON and DataFrame exports hold the same, rounded numbers
    assert r.tokens_per_s == r["tokens_per_s"] and r.config.c_v == EDGECIM_ALPHA05_DESIGN["c_v"]
    data = json.loads(r.to_json())
    assert data["tokens_per_s"] == rounded(r["tokens_per_s"]) and data["meta"]["workload"]["generate_tokens"] == 5
    assert "tokens_per_s=" in repr(r) and "<table>" in r._repr_html_()
    pd = pytest.importorskip("pandas")
    frame = r.to_dataframe()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 1
    assert frame["c_v"][0] == EDGECIM_ALPHA05_DESIGN["c_v"] and frame["area_breakdown_mm2.pes"][0] > 0


def test_csv_rows_flatten_configs_and_carry_a_meta_side_car(tmp_path):
    rows = [{"alpha": 0.5, "config": EDGECIM_ALPHA05_DESIGN, "objective": float(np.float32(0.3)), "history": [1]}]
    csv_path, side = write_csv(tmp_path / "x.csv", rows, {"note": "m"})
    read = list(csv.DictReader(csv_path.read_text().splitlines()))
    assert list(read[0]) == ["alpha", *FIELDS, "objective"]
    assert read[0]["objective"] == "0.3" and read[0]["c_h"] == str(EDGECIM_ALPHA05_DESIGN["c_h"])
    assert json.loads(side.read_text()) == {"describes": "x.csv", "meta": {"note": "m"}}
    assert flat_row({"a": {"b": 1, "config": {f: 0 for f in FIELDS}}}) == {"a.b": 1} | {f"a.{f}": 0 for f in FIELDS}


@pytest.mark.parametrize(
    ("name", "bits"),
    [("int4", (4, 4, 4)), ("int6", (6, 6, 6)), ("INT8", (8, 8, 8)), ("w4a8kv8", (4, 8, 8)), ("w4a16kv8", (4, 16, 8)),
     ("w3a5", (3, 5, 5))],
)  # fmt: skip
def test_precision_names(name, bits):
    assert parse_precision(name) == bits
    prec = preset(name, 2)
    expected = Precision.uniform(2, *bits)
    for field in ("weight_bits", "act_bits", "kv_bits"):
        np.testing.assert_array_equal(getattr(prec, field), getattr(expected, field))


@pytest.mark.parametrize("name", ["int5", "w4", "w0a8kv8", "w4a17kv8", "fp16", ""])
def test_bad_precision_names_say_what_is_allowed(name):
    with pytest.raises(ValueError, match="precision .*(allowed|must lie)"):
        parse_precision(name)


def test_cli_evaluate_json_carries_meta_and_accepts_int6(tmp_path):
    args = ["evaluate", "--model", "qwen2.5-0.5b", "--precision", "w4a16kv8", "--generate", "8", "--prefill", "4"]
    result = CliRunner().invoke(app, [*args, "--json", "--plot", str(tmp_path / "b.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"  # the breakdown chart
    data = json.loads(result.stdout)
    assert set(data["meta"]) == META_KEYS and data["precision"] == "w4a16kv8"
    assert list(data) == list(EVALUATE_KEYS)  # the declared keys, in order
    assert data["meta"]["workload"]["generate_tokens"] == 8 and data["meta"]["workload"]["prefill_tokens"] == 4
    bad = CliRunner().invoke(app, ["evaluate", "--model", "qwen2.5-0.5b", "--precision", "int5"])
    assert bad.exit_code == 2 and "int6" in bad.stderr


def test_importing_the_report_keeps_the_notebook_backend():
    code = "import matplotlib, cimjax.report.paper; print(matplotlib.get_backend())"
    env = {**os.environ, "MPLBACKEND": "svg"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "svg"


def test_reproduce_writes_a_meta_side_car(tmp_path, monkeypatch):
    import cimjax.report.paper

    def fake(out_dir, ids, tech, progress=None, **options):  # the searches themselves are tested elsewhere
        config = {"c_v": 2, "c_h": 3, "t_v_act": 4, "t_h_act": 2, "m": 1, "pes_per_tile": 4}
        record = {"model": "llama3.2-1b", "precision": "int4", "tokens_per_s": 400.0, "tokens_per_j": 181.0}
        record |= {"area_mm2": 12.0, "fraction_of_roofline": 0.95, "config": config}
        return {"records": [record], "files": ["fig9.json", "fig9.csv"]}

    monkeypatch.setattr(cimjax.report.paper, "reproduce_paper", fake)
    (tmp_path / "tech.json").write_text(json.dumps({"clock_hz": 5e8}))
    result = CliRunner().invoke(app, ["reproduce", "--out", str(tmp_path), "--tech", str(tmp_path / "tech.json")])
    assert result.exit_code == 0, result.output
    side = json.loads((tmp_path / "meta.json").read_text())
    assert side["describes"] == ["fig9.csv", "fig9.json"] and set(side["meta"]) == META_KEYS
    assert side["meta"]["technology_overrides"] == {"clock_hz": 5e8}


def test_version_and_new_commands_are_listed():
    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith(f"cimjax {cimjax.__version__}")
    listed = runner.invoke(app, ["--help"]).stdout
    assert all(name in listed for name in ("tech", "schema", "report", "cache", "--version"))


def _breakdowns(prefill: Metrics | None = None) -> Breakdowns:
    return Breakdowns(
        latency_by_operator_s={"ffn": 1.5, "qkv": 0.5},
        energy_by_component_j={"dram": 3.0, "compute": 1.0},
        energy_by_operator_j={"ffn": 4.0},
        area_mm2={"pes": 9.0, "buses": 1.0},
        dram_bits=8e9,
        roofline_tokens_per_s=250.0,
        figure_of_merit={"peak_tops": 0.5},
        sustained_dram_gb_per_s=200.0,
        system_dram_energy_per_bit=4e-12,
        prefill=prefill,
        prefill_latency_by_operator_s=None if prefill is None else {"ffn": 0.25},
    )


def test_design_report_forms_by_hand():
    """100 tokens in 2 s and 4 J on 10 mm^2, 8e9 DRAM bits: every derived number worked out by hand."""
    metrics = Metrics(tokens=100, latency_s=2.0, energy_j=4.0, area_mm2=10.0)
    assert (metrics.tokens_per_s, metrics.tokens_per_j) == (50.0, 25.0)
    prefill = Metrics(tokens=64, latency_s=0.5, energy_j=0.75, area_mm2=10.0)
    report = DesignReport({"c_v": 2}, metrics, model="m", precision="int4", breakdowns=_breakdowns(prefill))
    out = report.to_json("evaluate")
    assert list(out) == list(FORMS["evaluate"])
    assert out["dram_bytes_per_token"] == 1e7  # 8e9 bits / 8 / 100 tokens
    assert (out["dram_energy_j"], out["on_chip_energy_j"]) == (3.0, 1.0)
    system_dram = 8e9 * 4e-12  # the same DRAM bits at the system price: 0.032 J
    assert out["system"] == pytest.approx(
        {
            "dram_energy_per_bit": 4e-12,
            "dram_energy_j": system_dram,
            "energy_j": 1.0 + system_dram,
            "tokens_per_j": 100 / (1.0 + system_dram),
        }  # fmt: skip
    )
    assert out["prefill_beyond_paper"]["tokens_per_s"] == 128.0
    assert out["area_breakdown_mm2"] == {"pes": 9.0, "buses": 1.0} and out["config"] == {"c_v": 2}
    no_prefill = DesignReport({"c_v": 2}, metrics, model="m", precision="int4", breakdowns=_breakdowns())
    assert list(no_prefill.to_json("evaluate")) == [k for k in FORMS["evaluate"] if k != "prefill_beyond_paper"]

    table = np.array([[4.0] * 7 + [8.0] * 9 + [16.0], [2.0] * 7 + [8.0] * 9 + [4.0]])
    joint = DesignReport({"c_v": 2}, metrics, bits=table, accuracy=Accuracy(0.01, 0.02, True)).to_json("joint")
    assert list(joint) == list(FORMS["joint"])
    assert joint["mean_bits"] == {"weight": 3.0, "act": 8.0, "kv": 10.0}
    assert joint["bits"][1]["kv"] == 4 and joint["bits"][0]["weight"]["down"] == 4
    assert (joint["proxy"], joint["budget"], joint["feasible"]) == (0.01, 0.02, True)

    row = DesignReport({"c_v": 2}, metrics, index=np.int64(7)).to_json("sweep")
    assert row == {"index": 7, "config": {"c_v": 2}, "latency_s": 2.0, "energy_j": 4.0, "tokens_per_s": 50.0,
                   "tokens_per_j": 25.0, "area_mm2": 10.0}  # fmt: skip
    assert type(row["index"]) is int
    with pytest.raises(ValueError, match=r"form = 'csv' is not known; allowed: \['evaluate', 'joint', 'sweep'\]"):
        report.to_json("csv")
