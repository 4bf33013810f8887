"""Where a checkpoint's sensitivities are measured (``Calibration.sensitivity_split``, ``--sensitivity-text``):
the windows each split gives, the cache keys and files from before the field, the frontier's held-out windows
kept apart from every window used, and the CLI options' plumbing and one-line errors."""

from __future__ import annotations

import dataclasses
import json
import types

import numpy as np
import pytest
from typer.testing import CliRunner

from cimjax.cli.main import app
from cimjax.quant import corpus
from cimjax.quant.calibration import Calibration
from cimjax.quant.measured import CHECKPOINT_SCHEME, cache_path, from_json
from cimjax.report.proxy_frontier import held_out_windows

SMALL = Calibration(windows=4, seq_len=32, samples=1, check_windows=8)


def test_check_split_draws_the_sensitivity_windows_from_the_check_windows():
    train, check = SMALL, dataclasses.replace(SMALL, sensitivity_split="check")
    np.testing.assert_array_equal(train.sensitivity_tokens(), train.tokens())  # as before the field
    rows = [tuple(r) for r in check.check_tokens()]
    got = [rows.index(tuple(r)) for r in check.sensitivity_tokens()]  # each one of the check windows ...
    assert len(got) == 4 and len(set(got)) == 4 and got == sorted(got)  # ... distinct, in order
    others = {tuple(rows.index(tuple(r)) for r in dataclasses.replace(check, seed=s).sensitivity_tokens())
              for s in range(1, 6)}  # fmt: skip
    assert len(others | {tuple(got)}) > 1  # drawn by the seed
    assert dataclasses.replace(check, windows=8).sensitivity_tokens().shape == (8, 33)  # all of them
    with pytest.raises(ValueError, match="sensitivity_split='val' is not known; allowed: train, check"):
        dataclasses.replace(SMALL, sensitivity_split="val")
    with pytest.raises(ValueError, match="windows=9 sensitivity windows do not fit in the 8 check windows"):
        dataclasses.replace(check, windows=9)


def test_train_split_keeps_the_keys_and_text_from_before_the_field():
    digest, calibration = "0" * 64, Calibration()
    # Name and text computed at commit 8e41049, before sensitivity_split existed.
    assert cache_path(digest, calibration, CHECKPOINT_SCHEME).name == f"{'0' * 32}-a40abb740018-v4.json"
    assert calibration.describe(256) == (
        "pydoc_data corpus: sensitivities on 16 x 128 training-split tokens (seed 0), losses on 64 x 128 "
        "validation-split tokens"
    )
    check = dataclasses.replace(calibration, sensitivity_split="check")
    assert cache_path(digest, check, CHECKPOINT_SCHEME) != cache_path(digest, calibration, CHECKPOINT_SCHEME)
    assert "sensitivities on 16 x 128 check-window (validation-split) tokens" in check.describe(256)


def test_files_without_the_field_were_measured_on_training_windows(tmp_path):
    """A sensitivities file from before the field reads as ``train``; one with ``check`` keeps it."""
    payload = json.loads(_tiny_measured_file(tmp_path).read_text())
    assert from_json(payload).calibration.sensitivity_split == "check"
    del payload["calibration"]["sensitivity_split"]
    assert from_json(payload).calibration.sensitivity_split == "train"


def _tiny_measured_file(tmp_path):
    """A sensitivities file of a one-layer random model (ones for every table), measured on 'check'."""
    from cimjax.quant.measured import _SENS_FIELDS, UNIFORM_WIDTHS, Measured
    from cimjax.quant.measured_file import shape_of
    from cimjax.quant.sensitivity import Sensitivities
    from cimjax.workload.spec import ModelSpec

    spec = ModelSpec("t", "t", 1, 8, 2, 1, 4, 16, 256, False)
    sens = Sensitivities(**{f.name: np.ones(shape_of(f.name, 1)) for f in _SENS_FIELDS})
    zeros = {b: 0.0 for b in UNIFORM_WIDTHS}
    calibration = dataclasses.replace(SMALL, sensitivity_split="check")
    empty = np.zeros((0, 1, 17))
    measured = Measured(spec, "0" * 64, calibration, sens, zeros, empty, np.zeros(0), zeros, np.zeros(0))
    return measured.save(tmp_path / "sens.json")


@pytest.mark.parametrize("split", ["train", "check"])
def test_frontier_held_out_windows_are_disjoint_from_every_window_used(monkeypatch, split):
    """With token ids replaced by their positions in the corpus, no held-out window shares an input or a
    predicted token with the sensitivity, GPTQ, smoothing or check windows."""
    n_train, n_val = 20_000, 32 * 40 + 1  # 40 windows of 32 + 1 tokens
    monkeypatch.setattr(corpus, "split", lambda val_fraction=0.1, tokenizer=None: (
        np.arange(n_train), np.arange(n_train, n_train + n_val)))  # fmt: skip
    calibration = dataclasses.replace(SMALL, windows=6, gptq_windows=16, sensitivity_split=split)
    held_out, own = held_out_windows(calibration, 0.1, None)
    assert own == len(held_out) == 40 - 8  # every validation window after the check windows
    used = [calibration.sensitivity_tokens(), calibration.gptq_tokens(), calibration.tokens(),
            calibration.check_tokens()]  # fmt: skip
    for part in (slice(None, -1), slice(1, None)):  # inputs, then predicted tokens
        seen = set(np.concatenate([w[:, part].ravel() for w in used]))
        assert seen.isdisjoint(held_out[:, part].ravel())
    if split == "check":
        assert set(calibration.sensitivity_tokens().ravel()) <= set(calibration.check_tokens().ravel())
        assert calibration.sensitivity_tokens().min() >= n_train  # validation text only


def _stop_measuring(monkeypatch) -> list:
    """Replaces the checkpoint measurement by a stop that records the calibration it was given."""
    import cimjax.quant.measured as measured_module

    chosen = []

    def stop(directory, calibration, log=None, scheme=None, progress=None):
        chosen.append(calibration.sensitivity_split)
        raise ValueError("stopped once the calibration was chosen")

    monkeypatch.setattr(measured_module, "for_checkpoint", stop)
    return chosen


def _run(args) -> tuple[int, str]:
    result = CliRunner().invoke(app, args)
    return result.exit_code, " ".join(result.output.split())


def test_sensitivity_text_option_reaches_the_measurement_and_is_checked(monkeypatch, tmp_path):
    from flax import nnx

    from cimjax.lm import DecoderLM, save_checkpoint
    from cimjax.workload.spec import ModelSpec

    chosen = _stop_measuring(monkeypatch)
    spec = ModelSpec("t", "t", 1, 16, 2, 1, 8, 32, 256, False)
    model = DecoderLM(spec, rope_theta=500.0, rms_eps=1e-5, rngs=nnx.Rngs(0))
    directory = str(save_checkpoint(model, tmp_path / "byte-vocab"))
    commands = (
        (["optimize", "--checkpoint", directory, "--budget", "int8"], "--calib-windows"),
        (["proxy", "sensitivities", "--checkpoint", directory], "--windows"),
    )
    for command, windows_flag in commands:
        for flags in (["--sensitivity-text", "check"], [], ["--sensitivity-text", "train"]):
            code, output = _run([*command, *flags])
            assert code == 2 and "stopped once the calibration was chosen" in output, (command, flags, output)
        code, output = _run([*command, "--sensitivity-text", "val"])
        assert code == 2 and "--sensitivity-text = 'val' is not allowed; allowed: train, check" in output
        code, output = _run([*command, "--sensitivity-text", "check", windows_flag, "65"])
        message = f"{windows_flag} = 65 is not allowed; allowed with --sensitivity-text check: at most --check-windows"
        assert code == 2 and f"{message} (64)" in output, output
    assert chosen == ["check", "train", "train"] * 2
    code, output = _run(["optimize", "--model", "tiny-llama", "--budget", "int8", "--sensitivity-text", "check"])
    assert code == 2 and "--sensitivity-text says where real weights are measured: it needs --checkpoint" in output


def test_sensitivity_text_contradicting_a_sensitivities_file_is_refused(monkeypatch, tmp_path):
    import cimjax.joint.verified as verified

    def stop(*args, **kwargs):
        raise ValueError("stopped at the optimisation")

    monkeypatch.setattr(verified, "optimize_measured", stop)
    path = str(_tiny_measured_file(tmp_path))  # measured on 'check'
    code, output = _run(["optimize", "--sensitivities", path, "--budget", "int8", "--sensitivity-text", "train"])
    assert code == 2 and f"--sensitivity-text = 'train' is not allowed; --sensitivities {path} was measured " in output
    assert "with 'check'" in output
    for flags in (["--sensitivity-text", "check"], []):
        code, output = _run(["optimize", "--sensitivities", path, "--budget", "int8", *flags])
        assert code == 2 and "stopped at the optimisation" in output, output


def test_validate_sensitivity_text_goes_to_the_frontier_protocol_only(monkeypatch):
    import cimjax.quant.train as train_module
    import cimjax.report.proxy_frontier as frontier

    monkeypatch.setattr(train_module, "train", lambda config, log=None: types.SimpleNamespace())
    chosen = []

    def stop(trained, sensitivity_split, **kwargs):
        chosen.append(sensitivity_split)
        raise ValueError("stopped at the frontier run")

    monkeypatch.setattr(frontier, "validate_frontier", stop)
    base = ["proxy", "validate", "--size", "tiny"]
    for flags in (["--sensitivity-text", "check"], []):
        code, output = _run([*base, "--protocol", "frontier", *flags])
        assert code == 2 and "stopped at the frontier run" in output, output
    assert chosen == ["check", "train"]
    code, output = _run([*base, "--sensitivity-text", "check"])
    assert code == 2 and "--sensitivity-text applies to --protocol frontier" in output
    code, output = _run([*base, "--protocol", "frontier", "--sensitivity-text", "x"])
    assert code == 2 and "--sensitivity-text = 'x' is not allowed; allowed: train, check" in output


@pytest.mark.parametrize("split", ["train", "check"])
def test_the_measurement_takes_the_split_s_windows(monkeypatch, split):
    """``measure`` estimates the sensitivities on :meth:`Calibration.sensitivity_tokens` (stopped there)."""
    import cimjax.quant.measured as measured_module

    seen = []

    def stop(model, tokens, scheme, n_samples, seed, progress=None):
        seen.append(np.asarray(tokens))
        raise RuntimeError("stopped at the sensitivities")

    monkeypatch.setattr(measured_module, "prepared_sensitivities", stop)
    model = types.SimpleNamespace(spec=types.SimpleNamespace(vocab=256))
    calibration = dataclasses.replace(SMALL, sensitivity_split=split)
    with pytest.raises(RuntimeError, match="stopped at the sensitivities"):
        measured_module.measure(model, calibration, "0" * 64)
    expected = calibration.check_tokens() if split == "check" else calibration.tokens()
    assert all(any(np.array_equal(row, e) for e in expected) for row in seen[0]) and len(seen[0]) == 4
