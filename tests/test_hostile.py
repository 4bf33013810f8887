"""Hostile input and hostile environments: a clear one-line error (exit 2) every time, never a traceback, a
NaN or lost work. The bad inputs are generated here (hypothesis where the space is large); the CLI runs
in-process with typer's CliRunner, except where a real signal must reach a real process."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cimjax import files, validation
from cimjax.cli.main import app
from cimjax.hardware.config import (
    EDGECIM_ALPHA05_DESIGN,
    FIELD_LIMITS,
    FIELDS,
    PAPER_SPACE,
    DesignSpace,
    HardwareConfig,
)
from cimjax.hardware.technology import PARAMETERS, Technology, allowed_range
from cimjax.validation import MAX_TOKENS, MODEL_LIMITS, InputError

runner = CliRunner()
MODEL = "qwen2.5-0.5b"
HYPOTHESIS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
UNWRITABLE = "/proc/cimjax-test/out"  # cannot be created, even by root (chmod tests would not bind root)


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def refused(args, cwd: Path | None = None, env=None) -> str:
    """Runs the CLI and checks the contract for bad input: exit 2, one line on stderr, no traceback, and
    nothing created under ``cwd``. Returns the line."""
    before = tree(cwd) if cwd else None
    result = runner.invoke(app, [str(a) for a in args], env=env)
    assert not (result.exception and not isinstance(result.exception, SystemExit)), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, (args, result.exit_code, result.output)
    assert len(lines) == 1 and lines[0].startswith("error:"), (args, result.stderr)
    assert "Traceback" not in result.output
    if cwd is not None:
        assert tree(cwd) == before, f"{args} wrote {tree(cwd) - before}"
    return lines[0]


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A scratch working directory (``--out ""`` would write here) holding a plain file to abuse as a path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file.txt").write_text("not a directory")
    return tmp_path


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# --- Bad values, per command and file type ----------------------------------------------------------

bad_tokens = st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_TOKENS + 1, max_value=10**30))
not_an_int = st.sampled_from(["1e9", "nan", "inf", "", "12abc", "0x10", "1.5"])


@HYPOTHESIS
@given(flag=st.sampled_from(["--prefill", "--generate"]), value=st.one_of(bad_tokens.map(str), not_an_int))
def test_evaluate_and_search_refuse_workload_sizes(flag, value):
    for command in (["evaluate", "--model", MODEL], ["search", "--model", MODEL, "--method", "ga"]):
        refused([*command, flag, value, "--json"])


def _bad_field_value():
    """A value no hardware field accepts: wrong type, bool, non-finite written as a literal, off the grid."""
    return st.one_of(
        st.booleans(),
        st.text(max_size=4),
        st.none(),
        st.lists(st.integers(1, 4), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
        st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not float(x).is_integer()),
        st.integers().filter(lambda x: x not in (1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 25, 36, 512, 1024, 2048, 4096)),
    )


@HYPOTHESIS
@given(field=st.sampled_from(FIELDS), value=_bad_field_value())
def test_evaluate_refuses_bad_config_fields(tmp_path, field, value):
    path = write(tmp_path / "config.json", json.dumps(EDGECIM_ALPHA05_DESIGN | {field: value}))
    line = refused(["evaluate", "--model", MODEL, "--config", path, "--json"])
    assert field in line


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # deep nesting: a RecursionError in json
        '{"config": ' + "{" * 200 + "}" * 200 + "}",
        '{"c_v": NaN}',
        '{"c_v": Infinity}',
        '{"c_v": 1e400}',
        "",
        "null",
        "[1, 2]",
    ],
)
def test_json_files_refused_before_any_work(tmp_path, text):
    path = write(tmp_path / "file.json", text)
    refused(["evaluate", "--model", MODEL, "--config", path, "--json"])
    refused(["evaluate", "--model", MODEL, "--tech", path, "--json"])
    refused(["evaluate", "--model", path, "--json"])


def test_yaml_and_binary_files_refused(tmp_path):
    for name, text in [("deep.yaml", "[" * 5000 + "]" * 5000), ("nan.yaml", "clock_hz: .nan"), ("x.json", None)]:
        path = tmp_path / name
        if text is None:
            path.write_bytes(b"\xff\xfe\x00")
        else:
            path.write_text(text)
        refused(["evaluate", "--model", MODEL, "--tech", str(path), "--json"])
    refused(["evaluate", "--model", MODEL, "--config", str(tmp_path), "--json"])  # a directory


@HYPOTHESIS
@given(data=st.data())
def test_sweep_refuses_bad_space_files(work, data):
    field = data.draw(st.sampled_from(FIELDS))
    bad_item = st.one_of(
        st.booleans(),
        st.integers(max_value=0),
        st.integers(min_value=FIELD_LIMITS[field] + 1),
        st.floats(allow_nan=False).filter(lambda x: not float(x).is_integer()),
        st.text(max_size=2),
    )
    values = data.draw(
        st.one_of(st.lists(bad_item, min_size=1, max_size=3), st.just([]), st.integers(1, 4), st.text(max_size=2))
    )
    path = write(work / "space.json", json.dumps({field: values}))
    assert field in refused(["sweep", "--model", MODEL, "--space", path, "--out", work / "out"], cwd=work)


def _bad_tech_value(name):
    low, high = allowed_range(name)
    return st.one_of(
        st.floats(min_value=0, max_value=low, exclude_max=True),
        st.floats(min_value=high, exclude_min=True, allow_infinity=False),
        st.floats(max_value=0),
        st.booleans(),
        st.text(max_size=3),
        st.none(),
    )


@HYPOTHESIS
@given(data=st.data())
def test_technology_files_refuse_absurd_constants(tmp_path, data):
    name = data.draw(st.sampled_from(sorted(PARAMETERS)))
    value = data.draw(_bad_tech_value(name))
    path = write(tmp_path / "tech.json", json.dumps({name: value}))
    line = refused(["evaluate", "--model", MODEL, "--tech", path, "--json"])
    assert name in line


@HYPOTHESIS
@given(data=st.data())
def test_hf_configs_refuse_absurd_and_mistyped_fields(tmp_path, data):
    cfg = {
        "model_type": "qwen2",
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
    }
    key = data.draw(st.sampled_from([*cfg, "architectures", "head_dim"]))
    if key == "model_type":
        value = data.draw(
            st.one_of(
                st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
                st.lists(st.text(max_size=3), max_size=2),
                st.integers(),
                st.booleans(),
            )
        )
    elif key == "architectures":
        del cfg["model_type"]
        value = data.draw(
            st.one_of(
                st.integers(),
                st.lists(st.lists(st.text(max_size=3), max_size=2), max_size=2),
                st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
            )
        )
    else:
        value = data.draw(
            st.one_of(
                st.integers(min_value=2**22 + 1, max_value=10**15),
                st.integers(max_value=0),
                st.booleans(),
                st.floats(allow_nan=False),
                st.text(max_size=3),
            )
        )
    path = write(tmp_path / "config.json", json.dumps(cfg | {key: value}))
    refused(["evaluate", "--model", path, "--json"])


def test_model_limits_are_the_documented_ones(tmp_path):
    cfg = {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 256,
    }
    for key, field in [
        ("num_hidden_layers", "n_layers"),
        ("hidden_size", "hidden"),
        ("vocab_size", "vocab"),
        ("intermediate_size", "ffn"),
    ]:
        path = write(tmp_path / "config.json", json.dumps(cfg | {key: MODEL_LIMITS[field] + 1, "head_dim": 16}))
        assert f"{field} = {MODEL_LIMITS[field] + 1}" in refused(["evaluate", "--model", path])
        assert f", {MODEL_LIMITS[field]}]" in refused(["evaluate", "--model", path])
    path = write(
        tmp_path / "config.json", json.dumps(cfg | {"hidden_size": 65536, "intermediate_size": 65536, "head_dim": 64})
    )
    assert "2^31 - 1" in refused(["evaluate", "--model", path])


@pytest.mark.parametrize("target", ["", "a_file.txt", "/dev/null", "a_file.txt/sub", UNWRITABLE])
def test_output_paths_refused_up_front(work, target):
    space = write(work / "space.json", json.dumps({k: [v] for k, v in EDGECIM_ALPHA05_DESIGN.items()}))
    commands = [
        ["sweep", "--model", MODEL, "--space", space, "--out", target],
        ["reproduce", "--models", MODEL, "--out", target],
        ["optimize", "--model", MODEL, "--budget", "int8", "--checkpoint-dir", target],
        ["optimize", "--model", MODEL, "--budget", "int8", "--out", target],
        ["proxy", "validate", "--size", "tiny", "--out", target],
        ["report", str(work), "--html", target],
    ]
    for args in commands:
        refused(args, cwd=work)


@pytest.mark.parametrize(
    "args",
    [
        ["optimize", "--model", MODEL, "--budget", "int8", "--starts", "1000000000"],
        ["optimize", "--model", MODEL, "--budget", "int8", "--rounds", "1000000000"],
        ["optimize", "--model", MODEL, "--budget", "int8", "--starts", "0"],
        ["optimize", "--model", MODEL, "--budget", "nan"],
        ["optimize", "--model", MODEL, "--budget", "int8", "--area-max", "nan"],
        ["optimize", "--model", MODEL, "--budget", "int8", "--alpha", "inf"],
        ["search", "--model", MODEL, "--alpha", "nan"],
        ["sweep", "--model", MODEL, "--ga-runs", "1000000000"],
        ["sweep", "--model", MODEL, "--alphas", "0,nan"],
        ["reproduce", "--models", ","],
        ["reproduce", "--models", MODEL, "--ga-seeds", "1000000000"],  # ran until killed
        ["proxy", "validate", "--size", "tiny", "--configs", "1000000000"],
        ["proxy", "validate", "--size", "tiny", "--configs", "0"],
        ["evaluate", "--model", MODEL, "--bogus-flag"],
    ],
)
def test_resource_limits_and_option_values(work, args):
    refused(args, cwd=work)


def test_proxy_validate_refuses_granularity_before_training(work, monkeypatch):
    import cimjax.quant.train

    def no_training(*args, **kwargs):
        raise AssertionError("the LM was trained before the options were checked")

    monkeypatch.setattr(cimjax.quant.train, "train", no_training)
    assert "--granularity" in refused(["proxy", "validate", "--size", "tiny", "--granularity", "foo"], cwd=work)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from flax import nnx

    from cimjax.lm import DecoderLM, save_checkpoint
    from cimjax.workload.spec import ModelSpec

    spec = ModelSpec("tiny", "tiny", 2, 24, 4, 2, 6, 40, 256, False)
    path = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(DecoderLM(spec, rope_theta=500.0, rms_eps=1e-5, rngs=nnx.Rngs(0)), path, max_shard_bytes=20_000)
    return path


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize("flag", ["--windows", "--seq-len", "--samples"])
def test_sensitivities_refuse_resource_limits(checkpoint, flag):
    refused(["proxy", "sensitivities", "--checkpoint", checkpoint, flag, "1000000000"])


@pytest.mark.parametrize("seed", ["-1", str(2**64)])
def test_sensitivities_refuse_seeds_by_name(checkpoint, seed):
    """Before: NumPy's "expected non-negative integer" for -1, an OverflowError traceback for 2^64."""
    assert "--seed" in refused(["proxy", "sensitivities", "--checkpoint", checkpoint, "--seed", seed])


WITH_CHECKPOINT = ["optimize", "--budget", "int8", "--checkpoint"]
WITH_MODEL = ["optimize", "--budget", "int8", "--model", MODEL]


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        # what only a checkpoint's measurement or --verify uses: a --model run ignored these silently
        ([*WITH_MODEL, "--calib-windows", "32"], "--calib-windows"),
        ([*WITH_MODEL, "--calib-seq-len", "-1"], "--calib-seq-len"),
        ([*WITH_MODEL, "--check-windows", "8"], "--check-windows"),
        ([*WITH_MODEL, "--refine", "5"], "--refine"),
        ([*WITH_MODEL, "--verify-rounds", "-1"], "--verify-rounds"),
        ([*WITH_CHECKPOINT, "CKPT", "--verify-rounds", "3"], "--verify-rounds"),
        (["optimize", "--budget", "int8", "--sensitivities", "f.json", "--check-windows", "8"], "--check-windows"),
        # windows beyond the corpus: a MemoryError after 30 s of measuring, NumPy's message, an unnamed one
        ([*WITH_CHECKPOINT, "CKPT", "--calib-windows", "1000000000"], "--calib-windows"),
        ([*WITH_CHECKPOINT, "CKPT", "--calib-windows", str(10**23)], "--calib-windows"),
        ([*WITH_CHECKPOINT, "CKPT", "--check-windows", "1000"], "--check-windows"),
        ([*WITH_CHECKPOINT, "CKPT", "--calib-seq-len", str(10**8)], "--calib-seq-len"),
        # --verify-rounds: 0 and -1 named max_rounds once measured; 10^23 was taken
        ([*WITH_CHECKPOINT, "CKPT", "--verify", "--verify-rounds", "0"], "--verify-rounds"),
        ([*WITH_CHECKPOINT, "CKPT", "--verify", "--verify-rounds", str(10**23)], "--verify-rounds"),
    ],
)
def test_optimize_refuses_measurement_options_by_name_before_measuring(checkpoint, monkeypatch, args, flag):
    import cimjax.quant.measured as measured_module

    def measuring(*args, **kwargs):
        raise AssertionError("measured before the options were checked")

    monkeypatch.setattr(measured_module, "for_checkpoint", measuring)
    line = refused([checkpoint if a == "CKPT" else a for a in args])
    assert line.startswith(f"error: {flag} = "), line


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rope_theta", "10000"),
        ("rope_theta", float("nan")),
        ("rope_theta", -1.0),
        ("rms_norm_eps", -1e-6),
        ("rms_norm_eps", True),
        ("rope_theta", [1]),
    ],
)
def test_sensitivities_refuse_bad_checkpoint_config(checkpoint, tmp_path, field, value):
    ckpt = _copy(checkpoint, tmp_path / "c")
    cfg = json.loads((ckpt / "config.json").read_text()) | {field: value}
    (ckpt / "config.json").write_text(json.dumps(cfg))
    line = refused(["proxy", "sensitivities", "--checkpoint", ckpt])
    assert field in line


def test_sensitivities_refuse_non_finite_weights(checkpoint, tmp_path):
    from safetensors.numpy import load_file, save_file

    ckpt = _copy(checkpoint, tmp_path / "c")
    shard = next(ckpt.glob("*.safetensors"))
    tensors = load_file(str(shard))
    name = next(iter(tensors))
    tensors[name][0] = np.nan
    save_file(tensors, str(shard), metadata={"format": "pt"})
    assert "NaN or infinite" in refused(["proxy", "sensitivities", "--checkpoint", ckpt])


@pytest.mark.parametrize(
    "weight_map",
    [
        [],
        "x",
        {"model.embed_tokens.weight": 3},
        {"model.embed_tokens.weight": "/etc/passwd"},
        {"model.embed_tokens.weight": "../outside.safetensors"},
        {"model.embed_tokens.weight": "sub/x.safetensors"},
    ],
)
def test_sensitivities_refuse_bad_weight_maps(checkpoint, tmp_path, weight_map):
    ckpt = _copy(checkpoint, tmp_path / "c")
    (tmp_path / "outside.safetensors").write_bytes((ckpt / next(ckpt.glob("*.safetensors")).name).read_bytes())
    index = json.loads((ckpt / "model.safetensors.index.json").read_text())
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(index | {"weight_map": weight_map}))
    assert "weight_map" in refused(["proxy", "sensitivities", "--checkpoint", ckpt])


# --- The environment --------------------------------------------------------------------------------


@pytest.mark.parametrize("cache", ["file", "under_file", UNWRITABLE])
def test_unusable_cache_directory(tmp_path, monkeypatch, cache):
    from cimjax.cache import cache_dir

    (tmp_path / "file").write_text("x")
    value = {"file": str(tmp_path / "file"), "under_file": str(tmp_path / "file" / "sub")}.get(cache, cache)
    result = runner.invoke(app, ["models", "--json"], env={"CIMJAX_CACHE": value})
    assert result.exit_code == 0 and len(json.loads(result.stdout)["models"]) >= 12  # read-only: no cache needed
    monkeypatch.setenv("CIMJAX_CACHE", value)
    with pytest.raises(InputError, match="set CIMJAX_CACHE"):
        cache_dir()


def test_home_without_a_usable_cache_still_evaluates(monkeypatch):
    monkeypatch.delenv("CIMJAX_CACHE")
    monkeypatch.setenv("HOME", UNWRITABLE)
    result = runner.invoke(app, ["evaluate", "--model", MODEL, "--generate", "4", "--json"])
    assert result.exit_code == 0, result.output
    assert np.isfinite(json.loads(result.stdout)["latency_s"])


# --- The library ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("c_v", 0.0), ("m", -1.0), ("pes_per_tile", float("nan")), ("bus_intra_tile", 1e9), ("c_h", True)],
)
def test_hardware_config_built_directly_is_validated(field, value):
    leaves = {k: jnp.asarray(float(v)) for k, v in EDGECIM_ALPHA05_DESIGN.items()}
    with pytest.raises(ValueError, match=f"'{field}'"):
        HardwareConfig(**leaves | {field: value})


@pytest.mark.parametrize("values", [(), (0,), (-2,), (1.5,), (True,), (2, 2), "12", None, (float("nan"),)])
def test_design_space_built_directly_checks_every_value(values):
    """Only a ``--space`` file was checked value by value; a space built in Python took 0 (NaN latencies in
    search), -2 (negative ones), 1.5 (a fraction evaluated as a design) or a repeated value."""
    with pytest.raises(ValueError, match="design space field 'c_v'"):
        DesignSpace(dict(PAPER_SPACE.values) | {"c_v": values})


def test_design_space_takes_numpy_values_as_plain_integers():
    assert DesignSpace(dict(PAPER_SPACE.values) | {"c_v": np.arange(1, 6)}) == PAPER_SPACE


def test_none_and_wrong_types_at_the_api():
    from cimjax.api import evaluate_design

    for kwargs in [{"model": None}, {"model": 3}, {"precision": None}, {"config": None}, {"config": [1, 2]}]:
        args = {"model": MODEL, "precision": "int8", "config": EDGECIM_ALPHA05_DESIGN} | kwargs
        with pytest.raises(ValueError, match="is not allowed"):
            evaluate_design(args["model"], args["precision"], args["config"])


WRONG_KEYWORDS = [
    ("evaluate", {"tech": {"clock_hz": 1e9}}, "tech"),  # was read as a Technology: AttributeError 'macro'
    ("evaluate", {"tech": {}}, "tech"),  # was the default technology, silently (an empty dict is falsy)
    ("evaluate", {"workload": {"prefill": 64}}, "workload"),  # was TypeError: unhashable type 'dict'
    ("evaluate", {"space": "paper"}, "space"),  # was AttributeError: no attribute 'validate'
    ("evaluate", {"config": dataclasses.replace(HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN), c_v=2.5)}, "c_v"),
    ("search", {"tech": "65nm"}, "tech"),
    ("search", {"workload": 128}, "workload"),
    ("search", {"seed": -1}, "seed"),
    ("search", {"seed": 2**32}, "seed"),  # was seed 0's JAX key, silently
    ("search", {"n_gen": 1e30}, "n_gen"),  # was a GA that never finished
    ("search", {"pop_size": "x"}, "pop_size"),  # was a TypeError from inside NumPy
    ("gradient", {"steps": 1e30}, "steps"),  # was "'float' object cannot be interpreted as an integer"
    ("gradient", {"starts": "x"}, "starts"),  # was "'<=' not supported between instances of 'int' and 'str'"
    ("gradient", {"temperature": 1.0}, "temperature"),  # was "cannot unpack non-iterable float object"
    ("optimize", {"seed": float("nan")}, "seed"),  # was a run whose JSON held "seed": NaN
    ("optimize", {"settings": "fast"}, "settings"),
    ("optimize", {"checkpoint_dir": 3}, "checkpoint_dir"),
    ("optimize", {"resume": "yes"}, "resume"),
    ("optimize", {"proxy": 0}, "proxy"),  # was the default proxy, silently
    ("optimize", {"budget": True}, "budget"),  # was a budget of 1 nat/token
    ("optimize", {"alpha": True}, "alpha"),  # was alpha = 1
    ("optimize", {"alpha": None}, "alpha"),  # was reported as 'alpha = nan'
    ("optimize", {"area_max": True}, "area_max"),  # was a 1 mm^2 limit
    ("search", {"progress": 1}, "progress"),  # was "'int' object is not callable" from inside the GA
    ("optimize", {"progress": "bar"}, "progress"),  # was "'str' object is not callable" from a worker thread
]


@pytest.mark.parametrize(("entry", "kwargs", "field"), WRONG_KEYWORDS, ids=lambda v: str(v)[:40])
def test_python_entry_points_refuse_wrong_keyword_values_by_name(entry, kwargs, field):
    """What a notebook user passes to ``cimjax.evaluate_design``, ``search`` and ``optimize_report`` is
    checked at the call, with a one-line ValueError naming the argument, before any model is built."""
    import cimjax

    calls = {
        "evaluate": lambda kw: cimjax.evaluate_design(MODEL, "int8", kw.pop("config", {}), **kw),
        "search": lambda kw: cimjax.search(MODEL, "int8", 0.5, "ga", **kw),
        "gradient": lambda kw: cimjax.search(MODEL, "int8", 0.5, "gradient", **kw),
        "optimize": lambda kw: cimjax.optimize_report(MODEL, kw.pop("budget", "int8"), method="sequential", **kw),
    }
    with pytest.raises(ValueError, match=f"{field}.*(is not allowed|must be)") as error:
        calls[entry](dict(kwargs))
    assert "\n" not in str(error.value)


TIMINGS = {"designs_per_s", "compile_s", "sweep_s"}


def test_numpy_scalars_are_numbers_at_the_python_entry_points(tiny_config):
    """A number taken from an array counts as that number: the same result as the Python float, and JSON
    (before: "area_max = np.float32(100.0) must be a positive number", "budget = np.float64(0.01) ...", and a
    float32 tolerance ended in "Object of type float32 is not JSON serializable" when the report was written)."""
    import cimjax

    small = cimjax.Workload(prefill=16, generate=16)
    limits = {"area_max": np.float32(100.0), "tolerance": np.float32(0.02)}
    numpy_kwargs = limits | {"budget": np.float64(0.01)}

    def untimed(report: dict) -> dict:  # the same run, but not in the same time
        return {k: v for k, v in json.loads(json.dumps(report)).items() if k not in TIMINGS and "wall" not in k}

    def optimized(kwargs):
        return untimed(cimjax.optimize_report(str(tiny_config), method="sequential", workload=small, **kwargs))

    assert optimized(numpy_kwargs) == optimized({k: float(v) for k, v in numpy_kwargs.items()})
    found = cimjax.search(MODEL, "int8", 0.5, "exhaustive", workload=small, **limits | {"area_max": np.int64(100)})
    expected = cimjax.search(MODEL, "int8", 0.5, "exhaustive", workload=small, area_max=100.0, tolerance=0.02)
    assert untimed(found.to_dict()) == untimed(expected.to_dict())


@pytest.mark.parametrize(
    ("field", "value"),
    [("steps_per_round", 2.5), ("rounds", 1e30), ("starts", True), ("seed", -1), ("hardware_sweep", "yes"),
     ("temperature", (1.0,)), ("learning_rate", "0.1"), ("penalty", float("nan"))],
)  # fmt: skip
def test_joint_settings_refuse_what_no_run_could_use_by_name(field, value):
    from cimjax.joint.settings import JointSettings

    with pytest.raises(ValueError, match=f"{field}.*is not allowed"):
        JointSettings(**{field: value})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 0.0, 1e30, [1.0, 2.0], "x", True])
def test_technology_built_around_its_check_is_checked_where_it_is_used(value):
    """``dataclasses.replace`` (or ``Technology(...)``) skips :meth:`Technology.from_values`; the entry points
    check the parameter set they are given, so a NaN clock is refused by name instead of giving NaN tokens/s."""
    from cimjax.api import evaluate_design
    from cimjax.hardware.technology import default_technology

    tech = dataclasses.replace(default_technology(), clock_hz=value)
    with pytest.raises(ValueError, match="'clock_hz'"):
        evaluate_design(MODEL, "int8", {}, tech=tech)


def test_technology_built_around_its_check_gives_the_checked_result_when_valid():
    from cimjax.api import evaluate_design
    from cimjax.hardware.technology import default_technology

    plain = default_technology()
    around = dataclasses.replace(plain, clock_hz=np.float32(2e8))
    assert around.validated() == plain.replace(clock_hz=2e8)
    assert evaluate_design(MODEL, "int8", {}, tech=around) == evaluate_design(
        MODEL, "int8", {}, tech=plain.replace(clock_hz=2e8)
    )


def test_json_output_never_holds_nan():
    from cimjax.results import to_json

    with pytest.raises(ValueError):
        to_json({"latency_s": float("nan")})


# --- Results are finite for everything validation lets through ------------------------------------------


def _largest_models():
    from cimjax.workload.spec import ModelSpec

    return [
        ModelSpec("smallest", "smallest", 1, 1, 1, 1, 1, 1, 1, False),
        ModelSpec(
            "widest",
            "widest",
            MODEL_LIMITS["n_layers"],
            MODEL_LIMITS["hidden"],
            255,
            255,
            128,
            32767,
            MODEL_LIMITS["vocab"],
            False,
            qkv_bias=True,
        ),
    ]


_CORNERS = np.array(list(itertools.product(*[(1.0, float(FIELD_LIMITS[f])) for f in FIELDS])), np.float32)


@pytest.mark.parametrize(
    ("spec_index", "workload"), [(0, (0, 1)), (1, (MAX_TOKENS, MAX_TOKENS))], ids=["smallest", "largest"]
)
def test_cost_model_is_finite_over_the_validated_range(spec_index, workload):
    """Every corner of the allowed hardware box x technology constants anywhere in their allowed ranges
    (their ends included) x the smallest/largest model and workload: finite, positive latency and energy."""
    from cimjax.cost.model import evaluate
    from cimjax.workload.operators import Workload
    from cimjax.workload.precision import preset

    spec = _largest_models()[spec_index]
    wl = Workload(prefill=workload[0], generate=workload[1])
    hw = HardwareConfig(**{f: jnp.asarray(_CORNERS[:, i]) for i, f in enumerate(FIELDS)})
    runs = {
        p: jax.jit(jax.vmap(lambda h, t, p=p: evaluate(h, preset(p, spec.n_layers), spec, wl, t), (0, None)))
        for p in ("int4", "int8")
    }

    end = st.sampled_from(["low", "high"])

    @settings(max_examples=6, deadline=None)
    @given(
        st.fixed_dictionaries({n: st.one_of(end, st.floats(0, 1)) for n in PARAMETERS}),
        st.sampled_from(["int4", "int8"]),
    )
    def check(where, precision):
        values = {}
        for name, w in where.items():
            low, high = allowed_range(name)
            values[name] = {"low": low, "high": high}.get(w) if isinstance(w, str) else low * (high / low) ** w
        costs = runs[precision](hw, Technology.from_values(values))
        for leaf in jax.tree_util.tree_leaves(costs):
            assert np.all(np.isfinite(np.asarray(leaf)))
        assert np.all(np.asarray(costs.latency_s) > 0) and np.all(np.asarray(costs.energy_j) > 0)

    check()


@pytest.mark.parametrize("extreme", ["smallest", "largest"])
def test_cost_model_is_finite_for_the_extreme_macros(extreme):
    """The macro's geometry limits (MACRO_LIMITS), smallest and largest, at every corner of the hardware box,
    the largest model and workload, and the technology constants at their allowed ends: finite and positive."""
    from cimjax.cost.model import evaluate
    from cimjax.hardware.macro import GEOMETRY, MACRO_LIMITS, Macro
    from cimjax.workload.operators import Workload
    from cimjax.workload.precision import preset

    smallest = dict.fromkeys(GEOMETRY, 1) | {"columns": 16}  # a row must hold one 16-bit weight
    macro = Macro(name=extreme, **(smallest if extreme == "smallest" else MACRO_LIMITS))
    spec = _largest_models()[1]
    wl = Workload(prefill=MAX_TOKENS, generate=MAX_TOKENS)
    hw = HardwareConfig(**{f: jnp.asarray(_CORNERS[:, i]) for i, f in enumerate(FIELDS)})
    run = jax.jit(jax.vmap(lambda h, t: evaluate(h, preset("int8", spec.n_layers), spec, wl, t), (0, None)))
    for end in (0, 1):
        tech = Technology.from_values({n: allowed_range(n)[end] for n in PARAMETERS}, macro)
        costs = run(hw, tech)
        for leaf in jax.tree_util.tree_leaves(costs):
            assert np.all(np.isfinite(np.asarray(leaf))), (extreme, end)
        assert np.all(np.asarray(costs.latency_s) > 0) and np.all(np.asarray(costs.energy_j) > 0)


def test_long_contexts_that_overflowed_int32_now_match_the_reference():
    """``--prefill 131072`` and ``--generate 46341`` overflowed int32 inside the jitted model. A two-layer
    model and one K/V block per step keep the plain-Python reference (which loops over steps) fast."""
    from cimjax.api import evaluate_design
    from cimjax.cost.reference import reference_costs
    from cimjax.hardware.technology import default_technology
    from cimjax.workload.operators import Workload
    from cimjax.workload.spec import ModelSpec

    spec = ModelSpec("two-layer", "two-layer", 2, 896, 14, 2, 64, 4864, 151936, True, qkv_bias=True)
    for wl in (Workload(prefill=131072, generate=2), Workload(prefill=8, generate=46341, attention_block=2**16)):
        report = evaluate_design(spec, "int8", EDGECIM_ALPHA05_DESIGN, wl)
        bits = [[8] * 7] * spec.n_layers
        ref = reference_costs(
            EDGECIM_ALPHA05_DESIGN,
            bits,
            [[8] * 9] * spec.n_layers,
            [8] * spec.n_layers,
            spec,
            wl,
            default_technology().to_dict(),
        )
        assert report["latency_s"] == pytest.approx(ref["latency_s"], rel=1e-4)
        assert report["energy_j"] == pytest.approx(ref["energy_j"], rel=1e-4)


# --- Files: atomic, locked, nothing left behind ------------------------------------------------------------


def test_atomic_write_never_leaves_a_truncated_file(tmp_path):
    target = tmp_path / "result.json"
    files.atomic_write(target, "old")
    with pytest.raises(KeyboardInterrupt), files.atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_failed_run_leaves_no_empty_directories(tmp_path):
    with pytest.raises(RuntimeError), files.output_dir(tmp_path / "a" / "b", "--out"):
        raise RuntimeError("the run failed")
    assert list(tmp_path.iterdir()) == []


def test_two_runs_on_one_output_directory(tmp_path):
    space = write(tmp_path / "space.json", json.dumps({k: [v] for k, v in EDGECIM_ALPHA05_DESIGN.items()}))
    out = tmp_path / "out"
    with files.output_dir(out, "--out"):  # another run holds the directory
        line = refused(["sweep", "--model", MODEL, "--space", space, "--out", out])
        assert "in use by another cimjax run" in line
        with pytest.raises(InputError, match="in use"), files.lock(out, "--checkpoint-dir"):
            pass
    assert list(out.iterdir()) == []
    result = runner.invoke(app, ["sweep", "--model", MODEL, "--space", space, "--out", str(out)])
    assert result.exit_code == 0, result.output  # free again: the lock went with its holder
    assert not (out / files.LOCK_NAME).exists()


def test_optimize_out_is_locked_for_the_whole_run(tmp_path, monkeypatch):
    """A second ``optimize`` on an --out in use is refused before it optimises anything, not when it writes."""
    from cimjax.joint import runner as joint_runner

    calls = []
    monkeypatch.setattr(joint_runner, "optimize_report", lambda *a, **k: calls.append(a) or {})
    config = write(tmp_path / "config.json", json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    out = tmp_path / "out"
    with files.output_dir(out, "--out"):
        line = refused(["optimize", "--budget", "int6", "--model", config, "--out", out])
    assert "in use by another cimjax run" in line and calls == []
    ckpt = ["--checkpoint-dir", tmp_path / "same"]
    assert "also the --checkpoint-dir" in refused(
        ["optimize", "--budget", "int6", "--model", config, "--out", tmp_path / "same", *ckpt], cwd=tmp_path
    )


# --- Checkpoints: fingerprint, missing metadata, truncation, interruption ----------------------------------

OPTIMIZE = ["optimize", "--budget", "int6", "--starts", "2", "--rounds", "3", "--json"]


@pytest.fixture(scope="module")
def joint(tmp_path_factory):
    """A small joint problem, and its uninterrupted result with checkpoints."""
    from cimjax.joint.optimizer import optimize
    from cimjax.joint.problem import BitSpace, make_problem
    from cimjax.joint.settings import JointSettings
    from cimjax.quant.train import TINY
    from cimjax.workload.operators import Workload

    problem = make_problem(
        dataclasses.replace(TINY.spec(), n_layers=2),
        "int6",
        workload=Workload(prefill=0, generate=5, attention_block=16),
        bits=BitSpace(weight=(2, 8), act=(2, 8), kv=(2, 8)),
    )
    # The descent's sizes, problem and workload are test_joint.py's: one compiled round serves both files.
    small = JointSettings(
        starts=3, rounds=3, steps_per_round=8, beam=1, polish_rounds=1, exchange=1, allocation_rounds=0
    )
    return problem, small, optimize(problem, small, checkpoint_dir=tmp_path_factory.mktemp("full"))


def _same(a, b):
    np.testing.assert_array_equal(a.choice, b.choice)
    np.testing.assert_array_equal(a.table, b.table)
    assert a.report["latency_s"] == b.report["latency_s"]


@pytest.mark.parametrize("stop_after", [1, 2])
def test_sigint_at_each_round_resumes_to_the_uninterrupted_result(joint, tmp_path, stop_after):
    from cimjax.joint.optimizer import optimize

    problem, small, full = joint

    def interrupt(phase, done, total):
        if phase == "descent" and done == stop_after:
            raise KeyboardInterrupt  # what SIGINT raises in the main thread

    with pytest.raises(KeyboardInterrupt):
        optimize(problem, small, checkpoint_dir=tmp_path, progress=interrupt)
    _same(optimize(problem, small, checkpoint_dir=tmp_path, resume=True), full)


def test_resume_refuses_another_technology_and_missing_metadata(joint, tmp_path):
    from cimjax.joint.checkpoints import CheckpointError
    from cimjax.joint.optimizer import optimize

    problem, small, _ = joint

    def interrupt(phase, done, total):
        if phase == "descent" and done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optimize(problem, small, checkpoint_dir=tmp_path, progress=interrupt)
    other = dataclasses.replace(problem, tech=problem.tech.replace(clock_hz=5e8))
    with pytest.raises(CheckpointError, match="technology"):
        optimize(other, small, checkpoint_dir=tmp_path, resume=True)
    (tmp_path / "problem.json").unlink()
    for resume in (False, True):
        with pytest.raises(CheckpointError, match="without its problem.json"):
            optimize(problem, small, checkpoint_dir=tmp_path, resume=resume)
    with files.lock(tmp_path, "--checkpoint-dir"), pytest.raises(InputError, match="in use"):
        optimize(problem, small, checkpoint_dir=tmp_path, resume=True)


def test_truncated_checkpoint_step_falls_back_to_the_previous_one(joint, tmp_path):
    """The damaged step is named, deleted and saved anew by the resumed run (orbax would skip saving a step
    that exists), so a second resume starts from it."""
    from cimjax.joint.optimizer import optimize

    problem, small, full = joint
    optimize(problem, small, checkpoint_dir=tmp_path)  # keeps the last two steps (rounds 2 and 3)
    latest = max((tmp_path / "state").iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1)
    for f in (p for p in latest.rglob("*") if p.is_file()):
        f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    calls = []
    with pytest.warns(UserWarning, match=f"step {latest.name} in .* could not be read back"):
        resumed = optimize(problem, small, checkpoint_dir=tmp_path, resume=True, progress=lambda *c: calls.append(c))
    _same(resumed, full)
    assert calls[0] == ("descent", int(latest.name) - 1, small.rounds)  # says where it starts: the intact step
    calls.clear()
    _same(optimize(problem, small, checkpoint_dir=tmp_path, resume=True, progress=lambda *c: calls.append(c)), full)
    assert calls[0] == ("descent", int(latest.name), small.rounds)


DAMAGED_STEP = """
import pathlib, sys, jax.numpy as jnp, orbax.checkpoint as ocp
from cimjax import files
manager = ocp.CheckpointManager(sys.argv[1], options=ocp.CheckpointManagerOptions(max_to_keep=2))
for step in (1, 2):
    manager.save(step, args=ocp.args.StandardSave({k: jnp.full(64, step) for k in "abcdefgh"}))
    manager.wait_until_finished()
for f in pathlib.Path(sys.argv[1], "2").rglob("manifest.ocdbt"):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
restored = files.restore_newest(manager, {k: jnp.zeros(64, jnp.int32) for k in "abcdefgh"})
print(int(restored["h"][0]), manager.all_steps())
manager.close()
"""


def test_a_damaged_step_is_one_warning_not_a_page_of_tracebacks(tmp_path):
    """Orbax's failed restore abandons reads that each print "RuntimeError: Event loop is closed" as they finish
    (70 lines of tracebacks for a cached proxy LM): only the warning naming the step is shown."""
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", DAMAGED_STEP, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0] == "1 [1]"  # the intact step, the damaged one deleted
    assert proc.stderr.count("could not be read back") == 1 and "Traceback" not in proc.stderr, proc.stderr


REFUSED_SAVE = """
import resource, signal, sys, numpy as np, jax.numpy as jnp, orbax.checkpoint as ocp
from cimjax import files
manager = ocp.CheckpointManager(sys.argv[1])
state = {k: jnp.asarray(np.random.default_rng(0).random(4096)) for k in "abcd"}  # random: no compression
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200, resource.RLIM_INFINITY))  # a write past 200 B: EFBIG
try:
    files.save_step(manager, 1, state)
except files.OutputError as error:
    print(error)
files.close_steps(manager)
print("closed")
"""


def test_a_refused_save_is_one_error_and_the_manager_closes(tmp_path):
    """A checkpoint save the file system refuses (here every file over 200 bytes: EFBIG, as a full disk gives
    ENOSPC) is one OutputError naming the directory; orbax's thread tracebacks and absl errors are held back,
    and closing does not raise the same error again (before: 252 lines of stderr on an 8 KiB tmpfs)."""
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-c", REFUSED_SAVE, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"cannot write {tmp_path}: File too large; step 1 was not saved", "closed"]
    assert proc.stderr == ""


AS_IN_A_TERMINAL = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); from cimjax.cli.main import app; app()"
)
"""The CLI as a terminal starts it, Ctrl-C raising KeyboardInterrupt: a process started in the background of a
non-interactive shell (a CI job launched with ``&``) ignores SIGINT, and so would every child it starts."""


def _cli_optimize_until(tmp_path: Path, config: str, sig: int) -> subprocess.CompletedProcess:
    """Starts ``cimjax optimize`` in its own process, sends ``sig`` once its first round is saved."""
    ckpt = tmp_path / "ckpt"
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])}
    code = AS_IN_A_TERMINAL
    args = [sys.executable, "-c", code, *OPTIMIZE, "--model", config, "--checkpoint-dir", str(ckpt)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not any((ckpt / "state").glob("[0-9]*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_config):
    path = tmp_path_factory.mktemp("whole")
    whole = runner.invoke(app, [*OPTIMIZE, "--model", str(tiny_config), "--checkpoint-dir", str(path / "ckpt")])
    assert whole.exit_code == 0, whole.output
    return json.loads(whole.stdout)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_cli_killed_mid_run_resumes_to_the_uninterrupted_result(tmp_path, uninterrupted, sig, tiny_config):
    """A real signal to a real ``cimjax optimize`` process as soon as it starts saving its first round."""
    config = str(tiny_config)
    done = _cli_optimize_until(tmp_path, config, sig)
    if sig == signal.SIGINT:
        assert done.returncode == 130, done.stderr
        assert "--resume" in done.stderr and "Traceback" not in done.stderr
    else:
        assert done.returncode == -signal.SIGKILL
    resumed = runner.invoke(app, [*OPTIMIZE, "--model", config, "--checkpoint-dir", str(tmp_path / "ckpt"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    # it says where it starts (a step a SIGKILL cut short is unreadable: then from the start)
    said = r"(resuming from round [1-9]\d* of \d+|no saved round to resume: starting anew) \(--checkpoint-dir "
    assert re.search(said, resumed.stderr), resumed.stderr
    got = json.loads(resumed.stdout)
    for key in ("bits", "config", "latency_s", "energy_j", "proxy"):
        assert got[key] == uninterrupted[key], key


def test_ctrl_c_leaves_with_status_130_without_the_interpreter_teardown(monkeypatch):
    """Ctrl-C anywhere in a command: status 130 through ``os._exit``, which skips the teardown that crashed
    (SIGSEGV) when the interrupt came while XLA compiled on its own threads (``sweep``, ``search``,
    ``reproduce`` and ``proxy sensitivities`` did, 2-2.6 s into a cold run)."""
    import cimjax.api
    import cimjax.interrupts

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    exits = []
    monkeypatch.setattr(cimjax.api, "evaluate_design", interrupted)
    monkeypatch.setattr(cimjax.interrupts.os, "_exit", lambda code: exits.append(code) or sys.exit(code))
    result = runner.invoke(app, ["evaluate", "--model", MODEL, "--precision", "int8"])
    assert exits == [130] and result.exit_code == 130
    assert "Traceback" not in result.output


CTRL_C_IN_A_GC_CALLBACK = """
import gc, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from cimjax.cli import main
sent = []
def importing():
    frame = sys._getframe()
    while frame is not None and not frame.f_code.co_filename.startswith("<frozen importlib"):
        frame = frame.f_back
    return frame is not None
def ctrl_c_in_a_gc_callback(phase, info):  # as when Ctrl-C lands in JAX's _xla_gc_callback
    if phase == "start" and not sent and "jax" in sys.modules and not importing():  # once the command runs
        sent.append(1)
        signal.raise_signal(signal.SIGINT)
gc.callbacks.append(ctrl_c_in_a_gc_callback)
main()
"""


def test_ctrl_c_in_a_gc_callback_stops_the_run(tmp_path):
    """Seen in CI (stop 35) and in most Ctrl-Cs in the first seconds of a run (benchmarks/interrupt_probe.py): the
    SIGINT landed in JAX's ``_xla_gc_callback``, where Python prints "Exception ignored" and drops the
    KeyboardInterrupt. Before, the run went on to its end and printed its result (then exit 0; later 130). Now the
    interrupt is delivered again once the callback has returned, and the run stops there."""
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1]), "CIMJAX_CACHE": str(tmp_path / "cache")}
    args = [sys.executable, "-c", CTRL_C_IN_A_GC_CALLBACK, "evaluate", "--model", MODEL, "--json"]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert (proc.returncode, proc.stdout) == (130, ""), proc.stderr
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr


CTRL_C_IN_AN_IMPORT = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
module = sys.argv.pop(1)
class CtrlCInAnImport:  # as when Ctrl-C lands while ``module`` is being imported
    def find_spec(self, name, path=None, target=None):
        if name == module:
            signal.raise_signal(signal.SIGINT)
sys.meta_path.insert(0, CtrlCInAnImport())
from cimjax.cli import main
main()
"""


@pytest.mark.parametrize("module", ["typer", "numpy", "jax"])
def test_ctrl_c_in_an_import_stops_the_run_cleanly(module, tmp_path):
    """``typer``: the command line is still loading (before, a KeyboardInterrupt traceback). ``numpy``: inside the
    command; before, NumPy was left half imported and JAX's import of it then failed ("ImportError: Encountered
    an error while initializing the extension", a traceback and status 1). Now the interrupt waits for the
    import to finish, then stops the run."""
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1]), "CIMJAX_CACHE": str(tmp_path / "cache")}
    args = [sys.executable, "-c", CTRL_C_IN_AN_IMPORT, module, "evaluate", "--model", MODEL, "--json"]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert (proc.returncode, proc.stdout) == (130, ""), proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_swallowed_ctrl_c_is_still_noted():
    """The last resort: a KeyboardInterrupt that code catches and ignores still ends the run with 130, since
    every Ctrl-C is noted."""
    from cimjax.interrupts import noting_interrupts

    previous, hook = signal.signal(signal.SIGINT, signal.default_int_handler), sys.unraisablehook
    try:
        with noting_interrupts() as noted, contextlib.suppress(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert noted == [signal.SIGINT]
        assert (signal.getsignal(signal.SIGINT), sys.unraisablehook) == (signal.default_int_handler, hook)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_cli_interrupted_while_compiling_exits_130(tmp_path):
    """A real SIGINT to a real ``cimjax sweep`` on an empty cache as soon as it has started its work (its
    output directory is created first, then the evaluator compiles)."""
    out = tmp_path / "sweep"
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1]), "CIMJAX_CACHE": str(tmp_path / "cache")}
    code = AS_IN_A_TERMINAL
    args = [sys.executable, "-c", code, "sweep", "--model", MODEL, "--out", str(out)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err


def test_limits_are_documented():
    doc = (Path(__file__).parents[1] / "docs" / "limits.md").read_text()
    for value in (f"{MAX_TOKENS:,}", f"{validation.MAX_JSON_DEPTH}", "RANGE_FACTOR", *map(str, FIELD_LIMITS.values())):
        assert value in doc, value


@pytest.mark.parametrize("platform", ["bogus", "tpu"])
def test_a_jax_backend_the_machine_cannot_start_is_one_line_naming_jax_platforms(platform, tmp_path):
    """Before: JAX's RuntimeError ("Unable to initialize backend ...") as a traceback, or for a broken CUDA plug-in
    a bare AssertionError. ``tpu`` assumes a machine without one (JAX's CPU wheel has no TPU runtime)."""
    if platform == "tpu" and any(d.platform == "tpu" for d in jax.devices()):
        pytest.skip("this machine has a TPU")
    env = os.environ | {"JAX_PLATFORMS": platform, "CIMJAX_CACHE": str(tmp_path)}
    code = "from cimjax.cli.main import app; app()"
    argv = [sys.executable, "-c", code, "evaluate", "--model", MODEL, "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: JAX_PLATFORMS = '{platform}': JAX could not start its backend"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""


def test_a_jax_setting_that_stops_the_backend_is_named(tmp_path):
    """Before: the message blamed ``JAX_PLATFORMS = ''`` when ``JAX_NUM_CPU_DEVICES=0`` stopped the CPU backend."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    env |= {"JAX_NUM_CPU_DEVICES": "0", "CIMJAX_CACHE": str(tmp_path)}
    argv = [sys.executable, "-c", "from cimjax.cli.main import app; app()", "evaluate", "--model", MODEL, "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: JAX could not start its backend"), proc.stderr
    assert "the environment sets JAX_NUM_CPU_DEVICES = '0'" in proc.stderr and "JAX_PLATFORMS = " not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""


@pytest.mark.parametrize(
    "args",
    [["evaluate", "--model", "{long}.json"], ["proxy", "sensitivities", "--checkpoint", "{long}", "--out", "s.json"],
     ["optimize", "--budget", "int8", "--checkpoint", "{long}"]],
)  # fmt: skip
def test_an_input_path_with_a_name_too_long_is_one_line(args, tmp_path, monkeypatch):
    """Before: ``pathlib``'s is_dir/exists raised "File name too long" (ENAMETOOLONG) as a traceback; such a path
    names no file, so it gets the missing file's one line."""
    monkeypatch.chdir(tmp_path)
    long = "c" * (os.pathconf(tmp_path, "PC_NAME_MAX") + 1)
    res = runner.invoke(app, [arg.format(long=long) for arg in args])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and "Traceback" not in res.output and long in res.output
