"""Configuration files: YAML as well as JSON, their JSON Schemas, `cimjax tech`."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from cimjax.cli.main import app
from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, FIELDS, PAPER_SPACE
from cimjax.hardware.technology import ALL_PARAMETERS, PARAMETERS, Technology
from cimjax.jsonfile import read_json
from cimjax.report.study import load_space
from cimjax.schema import NAMES, schema

jsonschema = pytest.importorskip("jsonschema")
runner = CliRunner()


def test_yaml_and_json_files_mean_the_same(tmp_path):
    (tmp_path / "space.yaml").write_text("m: [1, 2]\npes_per_tile:\n  - 4\n  - 9\n")
    space = load_space(tmp_path / "space.yaml")
    assert space.values["m"] == (1, 2) and space.values["pes_per_tile"] == (4, 9)
    assert space.values["c_v"] == PAPER_SPACE.values["c_v"]
    (tmp_path / "tech.yml").write_text("clock_hz: 5.0e+8\n")
    assert float(Technology.from_json(tmp_path / "tech.yml").clock_hz) == 5e8
    (tmp_path / "config.yaml").write_text("config:\n  c_v: 4\n  m: 2\n")
    (tmp_path / "config.json").write_text(json.dumps({"c_v": 4, "m": 2}))
    reports = []
    for name in ("config.yaml", "config.json"):
        result = runner.invoke(app, ["evaluate", "--model", "qwen2.5-0.5b", "--config", str(tmp_path / name),
                                     "--prefill", "4", "--generate", "4", "--json"])  # fmt: skip
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.stdout))
    assert reports[0]["config"] == reports[1]["config"] == EDGECIM_ALPHA05_DESIGN | {"c_v": 4, "m": 2}
    assert reports[0]["tokens_per_s"] == reports[1]["tokens_per_s"]


def test_bad_yaml_is_a_one_line_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("c_v: [1,\n")
    result = runner.invoke(app, ["evaluate", "--model", "qwen2.5-0.5b", "--config", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 2 and "is not valid YAML" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("text", "suffix", "where"),
    [
        ('{"c_v": [1, Infinity]}', ".json", "field 'c_v[1]' = inf"),
        ('{"dram_efficiency": NaN}', ".json", "field 'dram_efficiency' = nan"),
        ('{"a": {"b": [-Infinity]}}', ".json", "field 'a.b[0]' = -inf"),
        ("c_v: [1, .inf]", ".yaml", "field 'c_v[1]' = inf"),
        ("[.nan]", ".yaml", "field '[0]' = nan"),
    ],
)
def test_non_finite_numbers_are_refused_where_they_are(tmp_path, text, suffix, where):
    """JSON's NaN/Infinity (which Python writes for float('inf')) and YAML's .nan/.inf: the error names the field."""
    path = tmp_path / f"space{suffix}"
    path.write_text(text)
    with pytest.raises(ValueError) as refused:
        read_json(path, "space")
    assert str(refused.value) == f"space file {path} holds {where}; allowed: finite numbers only"


def test_schemas_match_what_the_loaders_accept():
    config, space, tech = (schema(n) for n in NAMES)
    for s in (config, space, tech):
        jsonschema.Draft202012Validator.check_schema(s)
    assert list(config["anyOf"][0]["properties"]) == list(FIELDS) == list(space["properties"])
    assert list(tech["properties"]) == [*ALL_PARAMETERS, "macro"]
    jsonschema.validate(EDGECIM_ALPHA05_DESIGN, config)
    jsonschema.validate({"config": {"c_v": 5}}, config)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"c_v": 6}, config)  # not in the paper's space, as HardwareConfig.from_dict says
    jsonschema.validate({"m": [1, 2]}, space)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"m": []}, space)
    jsonschema.validate({"clock_hz": 5e8}, tech)
    for bad in ({"clock_hz": -1}, {"dram_efficiency": 1.5}, {"nope": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, tech)
        with pytest.raises(ValueError):
            Technology.from_values(bad)


def test_schema_and_tech_commands():
    result = runner.invoke(app, ["schema", "space"])
    assert result.exit_code == 0 and json.loads(result.stdout)["title"] == "cimjax design space"
    bad = runner.invoke(app, ["schema", "hardware"])
    assert bad.exit_code == 2 and "allowed: ['config', 'space', 'tech']" in bad.stderr
    rows = json.loads(runner.invoke(app, ["tech", "--json"]).stdout)["technology"]
    by_name = {r["name"]: r for r in rows}
    for name, param in PARAMETERS.items():
        assert by_name[name]["value"] == param.value and by_name[name]["unit"] == param.unit
        assert by_name[name]["source"] and by_name[name]["overridable"]
    assert by_name["MACRO_ROWS"]["value"] == 16 and not by_name["MACRO_ROWS"]["overridable"]


def test_every_key_the_tech_loader_accepts_is_in_the_schema_and_in_cimjax_tech(tmp_path):
    accepted = [f.name for f in dataclasses.fields(Technology) if f.name != "macro"]  # what the loader takes
    tech = schema("tech")
    rows = {r["name"]: r for r in json.loads(runner.invoke(app, ["tech", "--json"]).stdout)["technology"]}
    for name in accepted:
        assert name in tech["properties"] and rows[name]["overridable"], name
    switches = [n for n in accepted if "enum" in tech["properties"][n]]
    assert {"fu_overlap", "global_buffer_overlap"} <= set(switches)
    for name in switches:  # schema, loader and `cimjax tech` agree on the allowed values
        assert tech["properties"][name]["enum"] == rows[name]["allowed"] == [0, 1]
        for value in (0, 1):
            path = tmp_path / "tech.json"
            path.write_text(json.dumps({name: value}))
            jsonschema.validate({name: value}, tech)
            assert float(getattr(Technology.from_json(path), name)) == value
        for bad in (2, 0.5, True):
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate({name: bad}, tech)
            with pytest.raises(ValueError, match=f"technology switch '{name}'"):
                Technology.from_values({name: bad})
    for name in accepted:  # the other constants: the ranges shown are those the loader enforces
        if name not in switches:
            low, high = rows[name]["minimum"], rows[name]["maximum"]
            assert (tech["properties"][name]["minimum"], tech["properties"][name]["maximum"]) == (low, high)
            Technology.from_values({name: high})
            with pytest.raises(ValueError):
                Technology.from_values({name: high * 1.01})
