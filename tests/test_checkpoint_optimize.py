"""Real checkpoints end to end: export, measured sensitivities (file and cache), ``optimize --checkpoint``
in measured units with ``--verify``, and one-line errors for malformed or mismatched files."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from cimjax.cli.main import app
from cimjax.joint.verified import measured_budget
from cimjax.lm import load_checkpoint, model_tensors
from cimjax.lm.model import functional, token_nll
from cimjax.quant.measured import Calibration, cache_path, checkpoint_hash, load
from cimjax.quant.quantizers import QuantHooks
from cimjax.quant.train import TINY, train
from cimjax.results import BASELINE_KEYS, MEASURED_KEYS, OPTIMIZE_KEYS
from cimjax.workload.precision import Precision, table_from_bits

runner = CliRunner()
CALIB = ["--windows", "2", "--seq-len", "32", "--samples", "1", "--check-windows", "4"]
FAST = ["--starts", "2", "--rounds", "2"]


@pytest.fixture(scope="module")
def exported(module_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    res = runner.invoke(app, ["proxy", "export", "--size", "tiny", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def sens_file(exported, tmp_path_factory):
    path = tmp_path_factory.mktemp("sens") / "tiny.json"
    res = runner.invoke(
        app, ["proxy", "sensitivities", "--checkpoint", str(exported), *CALIB, "--out", str(path), "--json"]
    )
    assert res.exit_code == 0, res.output
    return path


def _measured_loss(model, windows, table) -> float:
    """Independent oracle: the mean token loss with the table fake-quantised minus the full-precision loss."""
    build, params = functional(model)
    x, y = windows[:, :-1], windows[:, 1:]
    hooks = QuantHooks(Precision.from_table(jnp.asarray(table, jnp.float32)))
    quantised = jax.jit(lambda p: token_nll(build(p)(x, hooks), y))(params)
    return float(quantised) - float(jax.jit(lambda p: token_nll(build(p)(x), y))(params))


def test_export_writes_the_trained_model(exported, module_cache):
    trained = train(TINY, log=lambda msg: None)
    loaded = model_tensors(load_checkpoint(exported))
    for name, value in model_tensors(trained.model).items():
        np.testing.assert_array_equal(loaded[name], value)


def test_sensitivities_file_round_trips_and_is_cached_by_content(sens_file, exported):
    measured = load(sens_file)
    assert measured.checkpoint_hash == checkpoint_hash(exported)
    assert measured.spec.n_layers == TINY.n_layers and len(measured.joint_loss) == len(measured.joint_tables) > 0
    calibration = Calibration(windows=2, seq_len=32, samples=1, check_windows=4)
    assert cache_path(measured.checkpoint_hash, calibration).is_file()
    # The measured int8 budget is the real loss increase of uniform INT8 on the calibration windows.
    model = load_checkpoint(exported)
    expected = _measured_loss(model, calibration.check_tokens(), np.full((TINY.n_layers, 17), 8.0))
    assert measured.uniform_loss[8] == pytest.approx(expected, abs=2e-6)


def test_labelled_budgets_are_measured_uniform_losses(sens_file):
    measured = load(sens_file)
    for label, width in (("int8", 8), ("int6", 6), ("int4", 4)):
        if measured.uniform_loss[width] > 0:
            assert measured_budget(measured, label) == (measured.uniform_loss[width], label)
        else:  # the tiny model on a few windows: quantisation noise can lower the loss
            with pytest.raises(ValueError, match="<= 0"):
                measured_budget(measured, label)


def test_optimize_checkpoint_verify_reports_measured_units(exported, sens_file):
    measured = load(sens_file)
    budget = str(measured.uniform_loss[2])  # what uniform INT2 measures: well above the tiny model's noise
    args = ["optimize", "--checkpoint", str(exported), "--sensitivities", str(sens_file), "--budget", budget]
    res = runner.invoke(app, [*args, "--verify", "--verify-rounds", "2", *FAST, "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["measured_budget"] == pytest.approx(measured.uniform_loss[2])
    assert 1 <= report["rounds"] == len(report["verify_history"]) <= 2
    model = load_checkpoint(exported)
    loss = _measured_loss(model, measured.calibration.check_tokens(), table_from_bits(report["bits"]))
    assert report["measured_loss"] == pytest.approx(loss, abs=2e-6)
    assert report["verified"] == (report["measured_loss"] <= report["measured_budget"])
    if report["baseline"] is not None:
        assert list(report) == [*(k for k in OPTIMIZE_KEYS if k != "gain_cap"), *MEASURED_KEYS]  # declared, in order
        assert list(report["baseline"]) == [*BASELINE_KEYS, "width", "measured_loss"]
        assert report["baseline"]["measured_loss"] <= report["measured_budget"]
        assert report["gain"] == pytest.approx(report["tokens_per_s"] / report["baseline"]["tokens_per_s"])


def test_without_verify_nothing_is_claimed_within_budget(sens_file):
    budget = str(load(sens_file).uniform_loss[2])
    res = runner.invoke(app, ["optimize", "--sensitivities", str(sens_file), "--budget", budget, *FAST, "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["rounds"] == 1
    if report["chosen"] == "optimised":  # not measured: not claimed within budget
        assert report["verified"] is False and report["measured_loss"] is None
    else:  # the uniform baseline won: its loss was measured when the budgets were
        assert report["verified"] is True and report["measured_loss"] <= report["measured_budget"]


def _one_line_error(res, expected: str) -> None:
    assert res.exit_code == 2, res.output
    assert expected in " ".join(res.output.split())
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is not readable JSON"),
        ('{"format": "other"}', "not a cimjax sensitivities file"),
        ("missing", "does not exist"),
    ],
)
def test_malformed_sensitivities_file_is_one_line_exit_2(tmp_path, content, expected):
    path = tmp_path / "s.json"
    if content != "missing":
        path.write_text(content)
    _one_line_error(runner.invoke(app, ["optimize", "--sensitivities", str(path), "--budget", "int8"]), expected)


def test_wrong_shapes_and_other_checkpoints_are_refused(sens_file, exported, tmp_path):
    payload = json.loads(sens_file.read_text())
    payload["sensitivities"]["hessian"] = [[0.0] * 16]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(payload))
    _one_line_error(runner.invoke(app, ["optimize", "--sensitivities", str(bad), "--budget", "int8"]), "'hessian'")
    other = tmp_path / "other"
    other.mkdir()
    for f in exported.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    (other / "config.json").write_text((exported / "config.json").read_text().replace("silu", "silu "))
    args = ["optimize", "--checkpoint", str(other), "--sensitivities", str(sens_file), "--budget", "int8"]
    _one_line_error(runner.invoke(app, args), "measured on another checkpoint")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--budget", "int8", "--verify", "--model", "qwen3-0.6b"], "--verify measures real weights"),
        (["--budget", "int8"], "give --model ID"),
        (["--budget", "int8", "--checkpoint", "/nonexistent/dir"], "is not a directory"),
    ],
)
def test_checkpoint_option_errors(args, expected):
    _one_line_error(runner.invoke(app, ["optimize", *args]), expected)
