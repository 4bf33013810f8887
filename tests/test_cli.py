"""Command-line contracts: JSON keys, round trips, and user errors without tracebacks."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cimjax.cli.main import app
from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN
from cimjax.results import EVALUATE_KEYS, SEARCH_KEYS

runner = CliRunner()


def run_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # exactly one JSON object on stdout


def test_models_lists_the_twelve_ids():
    ids = [m["id"] for m in run_json("models")["models"]]
    assert len(ids) == 12 and "llama3.2-3b" in ids and "qwen3-4b" in ids


def test_search_config_round_trips_through_evaluate(tmp_path):
    found = run_json("search", "--model", "qwen2.5-0.5b", "--precision", "int4", "--alpha", "1", "--method",
                     "exhaustive")  # fmt: skip
    assert list(found) == [*SEARCH_KEYS[""], *SEARCH_KEYS["exhaustive"]]  # the declared keys, in order
    assert found["evaluations"] == 1_075_200 and found["space_designs"] == 3_136_000  # distinct: mirrors folded
    assert found["objective"] == pytest.approx(found["latency_s"], rel=1e-5)  # alpha = 1: latency only
    path = tmp_path / "best.json"
    path.write_text(json.dumps({"config": found["config"]}))
    again = run_json("evaluate", "--model", "qwen2.5-0.5b", "--precision", "int4", "--config", str(path))
    assert list(again) == list(EVALUATE_KEYS)
    assert again["config"] == found["config"]
    assert again["tokens_per_s"] == pytest.approx(found["tokens_per_s"], rel=1e-6)
    for report in (found, again):  # both reports split the energy into DRAM and on-chip
        assert report["dram_energy_j"] == report["energy_by_component_j"]["dram"]
        assert report["dram_energy_j"] + report["on_chip_energy_j"] == pytest.approx(report["energy_j"], rel=1e-6)
        assert report["system"]["tokens_per_j"] < report["tokens_per_j"]  # 4 pJ/bit DRAM costs more than the fit


def test_evaluate_table_shows_the_energy_split():
    result = runner.invoke(app, ["evaluate", "--model", "qwen2.5-0.5b", "--precision", "int8", "--generate", "4"])
    assert result.exit_code == 0, result.output
    for row in ("dram_energy_j", "on_chip_energy_j", "system", "dram_energy_per_bit="):
        assert row in result.output


def test_evaluate_flags_override_the_default_design():
    report = run_json("evaluate", "--model", "qwen2.5-0.5b", "--precision", "int8", "--m", "2", "--generate", "16",
                      "--prefill", "0")  # fmt: skip
    assert report["config"]["m"] == 2 and report["config"]["c_h"] == 3
    assert list(report) == [k for k in EVALUATE_KEYS if k != "prefill_beyond_paper"]  # no prompt, no prefill


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["evaluate", "--model", "gpt-9"], "known ids: tinyllama-1.1b"),
        (["evaluate", "--model", "qwen2.5-0.5b", "--c-v", "7"], "'c_v' = 7 is not allowed; allowed values: [1, 2, 3"),
        (["evaluate", "--model", "qwen2.5-0.5b", "--pes-per-tile", "8"], "'pes_per_tile' = 8"),
        (["evaluate", "--model", "qwen2.5-0.5b", "--precision", "int3"], "precision 'int3' is not known"),
        (["search", "--model", "qwen2.5-0.5b", "--alpha", "1.5"], "alpha = 1.5 is outside the allowed range"),
        (["search", "--model", "qwen2.5-0.5b", "--method", "annealing"], "search method 'annealing' is not known"),
        (["evaluate", "--model", "qwen2.5-0.5b", "--generate", "0"], "'generate' = 0 is not allowed"),
    ],
)
def test_user_errors_exit_2_with_a_clear_message(args, expected):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert expected in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_malformed_inputs_files(tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    result = runner.invoke(app, ["evaluate", "--model", "qwen2.5-0.5b", "--config", str(bad_json)])
    assert result.exit_code == 2 and "not valid JSON" in result.stderr
    missing = tmp_path / "partial.json"
    missing.write_text(json.dumps({"c_v": 1}))
    result = runner.invoke(app, ["evaluate", "--model", "qwen2.5-0.5b", "--config", str(missing), "--json"])
    assert result.exit_code == 0  # missing fields come from the paper's design, as in the Python API
    assert json.loads(result.stdout)["config"] == EDGECIM_ALPHA05_DESIGN | {"c_v": 1}
    hf = tmp_path / "hf" / "config.json"
    hf.parent.mkdir()
    hf.write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    result = runner.invoke(app, ["evaluate", "--model", str(hf)])
    assert result.exit_code == 2 and "hidden_size" in result.stderr


@pytest.mark.parametrize("method", ["ga", "gradient"])
def test_search_methods_report_an_exact_valid_design(method):
    from cimjax.hardware.config import PAPER_SPACE

    found = run_json("search", "--model", "qwen2.5-0.5b", "--precision", "int8", "--alpha", "0.5", "--method", method,
                     "--seed", "1")  # fmt: skip
    assert list(found) == [*SEARCH_KEYS[""], *SEARCH_KEYS[method]]  # the declared keys, in order
    PAPER_SPACE.validate(found["config"])
    assert found["objective"] == pytest.approx((found["latency_s"] * found["energy_j"]) ** 0.5, rel=1e-4)
    assert 0 < found["evaluations"] <= 1000


def test_search_limits_need_the_exhaustive_method():
    result = runner.invoke(app, ["search", "--model", "qwen2.5-0.5b", "--method", "ga", "--tolerance", "0.1"])
    assert result.exit_code == 2 and "need method 'exhaustive'" in result.stderr


def test_models_shows_whole_ids_on_an_80_column_terminal():
    import os
    import subprocess
    import sys

    from cimjax.workload.models import MODELS

    env = {**os.environ, "COLUMNS": "80"}
    code = "from cimjax.cli.main import app; app(['models'])"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
    assert max(map(len, shown.splitlines())) <= 80
    assert all(f" {model_id} " in shown for model_id in MODELS)


def test_terminal_table_leaves_lists_to_the_json(capsys, monkeypatch):
    """Bit tables and round histories, top-level or inside a nested result (``iso_area``), are not dumped
    into the two-column table; the nested result's scalars are."""
    from rich.console import Console

    from cimjax.cli import common

    report = {"gain": 1.23456, "history": [{"round": 1}], "iso_area": {"gain": 1.5, "bits": [{"layer": 0}]}}
    monkeypatch.setattr(common, "out", Console(width=200))  # reads sys.stdout when it prints: capsys sees it
    common.emit(report, False, "t")
    text = capsys.readouterr().out
    assert "1.235" in text and "gain=1.5" in text
    assert "layer" not in text and "round" not in text and "history" not in text


def test_bit_table_headers_are_whole_at_80_columns():
    """The optimiser's per-layer bit heat-map shows all 17 column labels whole at 80 columns (rich cut
    ``w.gate`` and ``w.down`` to ``w.g…`` and ``w.d…`` before) and every label is distinct."""
    import numpy as np
    from rich.console import Console

    from cimjax.cli.bits import COLUMN_LABELS, heatmap_table
    from cimjax.workload.precision import N_POINTS, bits_report

    console = Console(width=80, record=True)
    console.print(heatmap_table({"bits": bits_report(np.full((3, N_POINTS), 8))}))
    lines = console.export_text().splitlines()
    header = next(line for line in lines if "┃layer" in line).replace("┃", " ").split()
    assert header == ["layer", *COLUMN_LABELS]
    assert max(map(len, lines)) <= 80 and len(set(COLUMN_LABELS)) == N_POINTS


def test_sweep_table_shows_every_design_field_whole_at_80_columns():
    """The sweep's alpha-optima table printed bus widths as ``4096/4096/1…`` at 80 columns."""
    from rich.console import Console

    from cimjax.cli.sweep import _optima_table

    config = {"c_v": 2, "c_h": 4, "t_v_act": 2, "t_h_act": 8, "m": 16, "pes_per_tile": 16}
    config |= {"bus_inter_cluster": 4096, "bus_inter_tile": 2048, "bus_intra_tile": 1024}
    row = {"alpha": 0.75, "tokens_per_s": 69.36, "tokens_per_j": 30.39, "area_mm2": 127.46, "config": config}
    console = Console(width=80, record=True)
    console.print(_optima_table({"alpha_optima": [row]}, "LLaMA3.2-3B"))
    text = console.export_text()
    assert "…" not in text and "4096/2048/1024" in text and "127.5" in text


def test_reproduce_summary_fits_80_columns_and_shows_the_paper_beside_each_row():
    """``cimjax reproduce`` printed two 13-column Markdown tables that wrapped into unreadable lines at 80
    columns; its terminal summary is now one table that fits, the paper's calibration numbers beside ours."""
    from rich.console import Console

    from cimjax.cli.paper_table import reproduce_table

    config = {"c_v": 2, "c_h": 4, "t_v_act": 2, "t_h_act": 8, "m": 2, "pes_per_tile": 4}
    record = {"tokens_per_s": 401.84, "fraction_of_roofline": 0.958, "tokens_per_j": 180.98, "area_mm2": 27.3}
    records = [record | {"model": "llama3.2-1b", "precision": "int4", "config": config},
               record | {"model": "tinyllama-1.1b", "precision": "int8", "config": config}]  # fmt: skip
    console = Console(width=80, record=True)
    console.print(reproduce_table(records, "EdgeCIM reproduced"))
    lines = console.export_text().splitlines()
    assert max(map(len, lines)) <= 80 and "…" not in "".join(lines)
    llama = next(line for line in lines if "llama3.2-1b" in line).split()
    assert llama == ["llama3.2-1b", "int4", "401.8", "(400)", "181.0", "(181)", "27.3", "2x4/2x8/2/4"]
    tiny = next(line for line in lines if "tinyllama" in line).split()
    assert tiny == ["tinyllama-1.1b", "int8", "401.8", "181.0", "27.3", "2x4/2x8/2/4"]  # paper held out
    assert "95.8-95.8 % of the DRAM roofline" in " ".join(" ".join(lines).split())


def test_progress_updates_show_a_bar_only_while_work_is_under_way(monkeypatch):
    """``proxy validate``'s measurement (minutes) reports through this bar; it disappears once complete."""
    import contextlib

    from rich.progress import Progress

    from cimjax.cli import common

    bars = []
    monkeypatch.setattr(common, "progress_bar", lambda description: bars.append(Progress(disable=True)) or bars[-1])
    with contextlib.ExitStack() as stack:
        update = common.progress_updates(stack, "measuring")
        (task,) = bars[0].tasks
        assert not task.visible
        update(2, 6)
        assert task.visible and task.completed == 2 and task.total == 6
        update(6, 6)
        assert not task.visible and task.finished


def test_tech_listing_keeps_every_source_whole_on_a_narrow_terminal():
    """At 80 columns ``cimjax tech``'s five-column table squeezed the sources to 11 characters (524 lines, 47
    words cut with '…'); below 120 columns each constant is a block, every word of its source kept."""
    from rich.console import Console
    from rich.table import Table

    from cimjax.cli.info import WIDE_TABLE_COLUMNS, technology_view
    from cimjax.hardware.technology import constants_table

    rows = constants_table()
    console = Console(width=80, record=True)
    console.print(technology_view(rows, 80))
    text = console.export_text()
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    words = text.split()
    for r in rows:
        assert r["name"] in words and all(word in words for word in r["source"].split()), r["name"]
    assert isinstance(technology_view(rows, WIDE_TABLE_COLUMNS), Table)
