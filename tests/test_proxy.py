"""End to end: a tiny trained LM, real quantised losses against every proxy variant, training resume, CLI."""

import dataclasses
import json
import threading

import matplotlib
import numpy as np
import pytest
from typer.testing import CliRunner

import cimjax.files as files
from cimjax.cli.proxy import proxy_app
from cimjax.lm import save_checkpoint
from cimjax.quant import corpus
from cimjax.quant.measured import loss_and_kl
from cimjax.quant.proxy import VARIANTS
from cimjax.quant.train import TINY, train
from cimjax.report.proxy_validation import draw_assignments, random_tables, scatter_plot, validate
from cimjax.workload.precision import N_POINTS, POINT_NAMES, POINTS


@pytest.fixture(scope="module")
def trained(module_cache):
    return train(TINY, log=lambda msg: None)


@pytest.fixture(scope="module")
def progress_calls():
    return []


@pytest.fixture(scope="module")
def result(trained, progress_calls):
    progress = lambda done, total: progress_calls.append((done, total))  # noqa: E731
    return validate(trained, n_configs=8, n_fit=8, seed=1, n_calib=4, n_eval=8, n_samples=2, progress=progress)


def test_validation_reports_progress_of_both_measurements(result, progress_calls):
    """One count per forward pass: the single-point curves (L x 17 points x 7 widths), then the 16 assignments
    on the 8 validation windows (one chunk)."""
    curves, assignments = TINY.n_layers * N_POINTS * 7, 16
    expected = [(k, curves) for k in range(1, curves + 1)] + [(k, assignments) for k in range(1, assignments + 1)]
    assert progress_calls == expected


def test_training_learns_and_is_cached(trained, module_cache):
    assert trained.val_loss < np.log(256) - 0.5  # well below the uniform byte distribution
    assert trained.directory.is_relative_to(module_cache) and trained.n_params > 10_000
    again = train(TINY, log=lambda msg: None)
    assert again.final_loss == trained.final_loss and again.train_seconds == trained.train_seconds


def test_interrupted_training_resumes_to_the_same_model(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))  # a fresh cache; `trained` ran uninterrupted

    def interrupt(msg):
        if f"step {TINY.ckpt_every}/" in msg:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TINY, log=interrupt)
    lines = []
    resumed = train(TINY, log=lines.append)
    assert any(f"restored step {TINY.ckpt_every}/{TINY.steps}" in line for line in lines)
    assert resumed.final_loss == trained.final_loss and resumed.val_loss == trained.val_loss


def test_a_damaged_cached_model_is_trained_again(trained, tmp_path, monkeypatch):
    """A cached checkpoint that no longer reads back (here its manifests cut in half) is a warning naming it, and
    the model is trained again into its place: the same model, restored by the next run."""
    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))
    directory = train(TINY, log=lambda msg: None).directory
    for manifest in (directory / "orbax").rglob("manifest.ocdbt"):
        manifest.write_bytes(manifest.read_bytes()[: manifest.stat().st_size // 2])
    lines = []
    with pytest.warns(UserWarning, match=f"step {TINY.steps} in {directory}/orbax could not be read back"):
        again = train(TINY, log=lines.append)
    assert any(f"training {TINY.steps} steps" in line for line in lines)
    assert again.final_loss == trained.final_loss and again.val_loss == trained.val_loss
    lines.clear()
    train(TINY, log=lines.append)
    assert any(f"restored step {TINY.steps}/{TINY.steps}" in line for line in lines)


def test_a_full_cache_does_not_stop_training(trained, tmp_path, monkeypatch):
    """A checkpoint save the cache refuses is one warning; the training goes on in memory to the same model and
    tries no further saves."""
    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))
    tried = []

    def refused(manager, step, state):
        tried.append(step)
        raise files.OutputError(f"cannot write {manager.directory}: No space left on device; step {step} was not saved")

    monkeypatch.setattr(files, "save_step", refused)
    with pytest.warns(UserWarning, match=f"step {TINY.ckpt_every} was not saved; the cache keeps no step of this run"):
        again = train(TINY, log=lambda msg: None)
    assert tried == [TINY.ckpt_every] and again.val_loss == trained.val_loss


def test_concurrent_training_of_one_cached_model_waits_and_reuses_it(tmp_path, monkeypatch):
    """A second trainer of the same cached run waits for the first (paused after its first checkpoint) and
    then loads its finished model instead of training into the same directory at the same time."""
    monkeypatch.setenv("CIMJAX_CACHE", str(tmp_path))
    config = TINY  # the `trained` fixture's run: its compiled training step and loss serve this test too
    first_saved, release = threading.Event(), threading.Event()
    first_lines, second_lines, results = [], [], {}

    def first_log(msg):
        first_lines.append(msg)
        if f"step {config.ckpt_every}/" in msg:
            first_saved.set()
            release.wait(60)

    def run(name, log):
        results[name] = train(config, log=log)

    first = threading.Thread(target=run, args=("first", first_log))
    first.start()
    assert first_saved.wait(120)
    second = threading.Thread(target=run, args=("second", second_lines.append))
    second.start()
    second.join(3)  # without the lock it would restore the first checkpoint and train on, into the same directory
    release.set()
    first.join(120)
    second.join(120)
    assert not any("proxy LM: training" in line for line in second_lines), second_lines
    assert any(f"restored step {config.steps}/{config.steps}" in line for line in second_lines), second_lines
    assert results["second"].final_loss == results["first"].final_loss


def test_random_tables_cover_2_to_8_and_share_bits_per_layer_kind():
    tables = random_tables(50, 3, np.random.default_rng(0))
    assert tables.shape == (50, 3, N_POINTS) and tables.min() == 2 and tables.max() == 8
    for kind in ("weight", "act"):
        cols = [i for i, (k, _) in enumerate(POINTS) if k == kind]
        assert np.all(tables[:, :, cols] == tables[:, :, cols[:1]])
    with pytest.raises(ValueError, match="granularity='block'"):
        random_tables(1, 1, np.random.default_rng(0), "block")


def test_held_out_assignments_do_not_depend_on_the_fit_set_size():
    fit8, test8 = draw_assignments(8, 8, 2, np.random.default_rng(3), "tensor")
    fit20, test20 = draw_assignments(20, 8, 2, np.random.default_rng(3), "tensor")
    fit3, test3 = draw_assignments(3, 8, 2, np.random.default_rng(3), "tensor")
    np.testing.assert_array_equal(test8, test20)
    np.testing.assert_array_equal(fit8, fit20[:8])
    np.testing.assert_array_equal(fit3, fit8[:3])
    assert fit20.shape == (20, 2, N_POINTS) and test3.shape == (8, 2, N_POINTS)
    assert not np.array_equal(test3, test8)  # fewer fit draws than held-out ones shift the held-out draws


def test_fewer_bits_cost_more_real_loss(trained):
    tables = np.stack([np.full((TINY.n_layers, N_POINTS), b, np.float32) for b in (8, 4, 2)])
    _, val = corpus.split()
    increase, _, base = loss_and_kl(trained.model, corpus.windows(val, TINY.seq_len, 8), tables)
    assert abs(increase[0]) < 0.01 and increase[2] > max(increase[0], increase[1]) + 0.01
    assert base == pytest.approx(trained.val_loss, abs=0.3)


def test_paired_means_and_standard_errors_against_window_by_window_losses(trained, monkeypatch):
    """Oracle: the jitted whole-batch loss and KL of one window at a time; chunking changes nothing; the
    progress callback sees every forward pass."""
    import jax.numpy as jnp

    from cimjax.lm.model import functional
    from cimjax.quant import paired as paired_module
    from cimjax.quant.quantizers import DEFAULT_SCHEME
    from cimjax.quant.sensitivity import quantised_loss_and_kl, reference_logp

    _, val = corpus.split()
    windows = corpus.windows(val, TINY.seq_len, 7)
    tables = np.stack([np.full((TINY.n_layers, N_POINTS), b, np.float32) for b in (3, 6)])
    build, params = functional(trained.model)
    full = np.full((TINY.n_layers, N_POINTS), 32.0, np.float32)
    oracle = np.zeros((len(tables), 2, len(windows)))  # (table, loss/kl, window)
    for j, w in enumerate(windows):
        w = jnp.asarray(w[None])
        ref = reference_logp(build, params, w)
        base = float(quantised_loss_and_kl(build, DEFAULT_SCHEME, params, w, full, ref)[0])
        for i, t in enumerate(tables):
            loss, kl = quantised_loss_and_kl(build, DEFAULT_SCHEME, params, w, t, ref)
            oracle[i, :, j] = float(loss) - base, float(kl)
    monkeypatch.setattr(paired_module, "CHUNK", 3)  # 7 windows in chunks of 3, 3 and 1
    calls = []
    m = paired_module.paired(trained.model, windows, tables, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 6) for k in range(1, 7)]  # one call per forward pass: 3 chunks x 2 tables
    blocks = oracle[:, :, :6].reshape(2, 2, 3, 2).mean(axis=3)  # batch means: 3 blocks of 2 windows, one left
    se = blocks.std(axis=2, ddof=1) / np.sqrt(3)
    np.testing.assert_allclose(m.loss, oracle[:, 0].mean(axis=1), atol=2e-6)
    np.testing.assert_allclose(m.kl, oracle[:, 1].mean(axis=1), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(m.loss_se, se[:, 0], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(m.kl_se, se[:, 1], rtol=1e-3, atol=1e-7)
    assert m.windows == 7 and m.loss[0] > m.loss[1] and np.all(m.loss_se > 0)
    assert m.of("kl")[1] is m.kl_se


def test_standard_error_by_batch_means_by_hand():
    from cimjax.quant.paired import standard_error

    assert standard_error(np.array([1.0, 3.0])) == pytest.approx(1.0)  # 2 windows: each its own block
    x = np.array([1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 5.0, 5.0, 9.0, 100.0])  # blocks of 3, the 100 left out
    assert standard_error(x) == pytest.approx(np.std([1.0, 11 / 3, 19 / 3], ddof=1) / np.sqrt(3))
    assert standard_error(np.ones((2, 1))).tolist() == [0.0, 0.0]
    correlated = np.repeat(np.random.default_rng(0).normal(size=20), 20)  # topics of 20 equal windows
    assert standard_error(correlated) > 3 * np.std(correlated, ddof=1) / np.sqrt(400)


def test_held_out_windows_continue_into_the_standard_library_docstrings():
    _, val = corpus.split()
    fit = (len(val) - 1) // 64
    inside, own = corpus.held_out_windows(64, 10, 5)
    np.testing.assert_array_equal(inside, corpus.windows(val, 64, 15)[10:])
    assert own == 5
    past, own = corpus.held_out_windows(64, fit - 2, 6)  # 2 validation windows left, 4 from the docstrings
    text = corpus.docstrings()
    extra = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)
    assert own == 2 and past.shape == (6, 65)
    np.testing.assert_array_equal(past[2:], corpus.windows(extra, 64, 4))
    assert len(text) > 500_000 and "Return" in text  # documentation prose, read offline
    with pytest.raises(ValueError, match="do not fit"):
        corpus.held_out_windows(64, 0, 10**7)


def test_validation_reports_every_variant(result, tmp_path):
    payload = result.to_json()
    names = [v["name"] for v in payload["variants"]]
    assert names == [*VARIANTS, "default"]
    assert payload["n_configs"] == 8 and payload["proxy"] in names
    for v in result.variants:
        for stat in (v.kendall_tau, v.spearman):  # None only where a fitted variant predicts a constant
            assert (stat is None and np.ptp(v.predicted) < 1e-9) or -1.0 <= stat <= 1.0, v.name
        slopes = v.coef if v.knots is None else v.coef[:-1]  # a spline's last coefficient is its log intercept
        assert len(v.predicted) == 8 and all(c >= 0 for c in slopes)
    assert next(v for v in result.variants if v.name == "default").assumption.startswith("ASSUMPTION")
    assert payload["kendall_tau"] == max(v.kendall_tau for v in result.variants if v.kendall_tau is not None)
    budgets = payload["budgets"]
    assert budgets["int8"] <= budgets["int6"] <= budgets["int4"]
    before = matplotlib.get_backend()
    matplotlib.use("svg")  # as a notebook's backend: drawing the scatter must leave it alone
    try:
        png = scatter_plot(result, tmp_path / "scatter.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_validate_json(trained, tmp_path, monkeypatch):
    """``--target kl``: judged in KL, the same assignments in loss units under ``other_target``; every
    variant's features are computed once for both targets."""
    from cimjax.report import proxy_validation

    calls = []
    counted = proxy_validation.batch_features
    monkeypatch.setattr(proxy_validation, "batch_features", lambda p, t: calls.append(p.name) or counted(p, t))
    args = ["validate", "--size", "tiny", "--configs", "8", "--fit-configs", "8", "--seed", "2", "--target", "kl"]
    args.append("--json")
    res = CliRunner().invoke(proxy_app, [*args, "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)  # exactly one JSON object on stdout
    for key in ("kendall_tau", "spearman", "n_configs", "proxy", "variants", "measured_standard_error"):
        assert key in payload
    assert payload["n_configs"] == payload["n_fit"] == 8
    assert payload["target"] == "kl" and payload["other_target"]["target"] == "loss"
    assert payload["quantiser"] == "default" and payload["scheme"]["gptq"] is False
    assert sorted(calls) == sorted([*VARIANTS, "default"])  # once per variant, not once per target
    fit = payload["fit_measured"]  # both targets' fit values, kept for fit-set studies
    assert sorted(fit) == ["kl", "loss"] and len(fit["kl"]) == len(fit["loss"]) == 8
    assert min(fit["kl"]) >= 0 and fit["kl"] != fit["loss"]
    assert payload["eval_windows"] == 8 and payload["measured_standard_error"]["max"] > 0
    for v in payload["variants"] + payload["other_target"]["variants"]:
        assert v["ratio_se_median"] > 0 and v["ratio_min_se"] >= 0 and v["ratio_max_se"] >= 0
        assert v["kendall_tau"] is None or 0 <= v["kendall_tau_se"] < 1
    assert (tmp_path / "validation.json").is_file() and (tmp_path / "proxy_scatter.png").is_file()


def test_cli_sensitivities_of_a_checkpoint(trained, tmp_path):
    save_checkpoint(trained.model, tmp_path)
    # test_checkpoint_optimize.py's calibration of the same tiny model: its compiled programs are reused
    calib = ["--windows", "2", "--seq-len", "32", "--samples", "1", "--check-windows", "4"]
    args = ["sensitivities", "--checkpoint", str(tmp_path), *calib]
    res = CliRunner().invoke(proxy_app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["n_layers"] == TINY.n_layers and len(payload["hessian_per_element"]) == TINY.n_layers
    assert set(payload["hessian_per_element"][0]) == set(payload["points"])
    b = payload["budgets"]["hessian_measured"]
    assert b["int8"] < b["int4"]


def test_sensitivity_table_prints_every_value_whole_at_terminal_width(capsys, monkeypatch):
    """12 layers at 80 columns: the layers are spread over several tables, each value printed whole, once."""
    from rich.console import Console

    from cimjax.cli import proxy as proxy_cli

    console = Console(width=80)  # reads sys.stdout when it prints: capsys sees it
    monkeypatch.setattr(proxy_cli, "stdout", console)
    rows = [  # every value's three digits distinct, signs and exponents mixed
        {name: (-1) ** (i + j) * (1 + 0.01 * (17 * i + j)) * 10.0 ** -(j % 6) for j, name in enumerate(POINT_NAMES)}
        for i in range(12)
    ]
    tables = proxy_cli._sensitivity_tables({"points": list(POINT_NAMES), "hessian_per_element": rows}, "title")
    for table in tables:
        console.print(table)
    text = capsys.readouterr().out
    assert len(tables) > 1 and "\u2026" not in text and max(map(len, text.splitlines())) <= 80
    for row in rows:
        assert all(text.count(f"{value:.2e}") == 1 for value in row.values())


@pytest.mark.parametrize("problem", ["missing", "no-config", "bad-json"])
def test_cli_sensitivities_bad_checkpoint_is_one_line_exit_2(tmp_path, problem):
    target = tmp_path / "ckpt"
    if problem != "missing":
        target.mkdir()
    if problem == "bad-json":
        (target / "config.json").write_text("{not json")
    res = CliRunner().invoke(proxy_app, ["sensitivities", "--checkpoint", str(target), "--json"])
    assert res.exit_code == 2
    assert res.stdout == ""
    assert "error" in res.stderr and "Traceback" not in res.stderr
    assert len(" ".join(res.stderr.split()).splitlines()) == 1  # one message (rich wraps it at the terminal width)


def test_cli_validate_frontier_protocol(trained):
    """The frontier protocol judges the optimiser's own assignments (and neighbours) and names its proxy."""
    from cimjax.quant.proxy import OPTIMIZER_PROXY

    res = CliRunner().invoke(proxy_app, ["validate", "--size", "tiny", "--protocol", "frontier", "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["protocol"] == "frontier" and payload["optimizer_proxy"] == OPTIMIZER_PROXY
    assert OPTIMIZER_PROXY in {v["name"] for v in payload["variants"]}
    frontier = payload["frontier"]
    assert len(frontier) == payload["n_configs"] == 4  # one budget x one seed x (1 + 3 neighbours)
    assert [f["neighbour"] for f in frontier] == [False, True, True, True]
    for f in frontier:
        assert f["ratio"] == pytest.approx(f["measured"] / max(f["predicted"], 1e-12), rel=1e-6)
        assert f["ratio_se"] == pytest.approx(f["measured_se"] / max(f["predicted"], 1e-12), rel=1e-6)
        assert f["measured_se"] == f["measured_loss_se"] > 0 and f["measured_kl_se"] > 0
    assert payload["held_out_windows"] == payload["eval_windows"] == 8 and payload["held_out_docstring_windows"] == 0
    ((width, uniform),) = payload["uniform_held_out"].items()  # the budget's own design on the held-out windows
    assert width == "int3" and uniform["budget"] == payload["measured_budgets"]["int3"] and uniform["measured_se"] > 0
    assert uniform["ratio"] == pytest.approx(uniform["measured"] / uniform["budget"], rel=1e-6)
    reliability = payload["reliability"]  # how far these measurements can judge a ranking (test_reliability.py)
    assert 0 <= reliability["resolved_pairs"] <= 1 and set(reliability["resolved_within_budget"]) == {"int3"}
    assert set(reliability["variants"]) == {v["name"] for v in payload["variants"]}
    own = reliability["variants"][OPTIMIZER_PROXY]  # one run: its 6 pairs are all same-seed
    assert own["same_seed"]["pairs"] == 6 and own["cross_seed"]["pairs"] == 0
    reference = payload["check_window_reference"]  # the frontier's own measurement on the check windows
    assert reference["name"] == "check_windows" and not reference["fitted"] and "same_seed" in reference
    assert -1 <= reference["kendall_tau"] <= 1 and 0 < reference["ratio_min"] <= reference["ratio_max"]
    ratios = sorted(f["measured"] / f["measured_check"] for f in frontier)  # the reference's ratios, row by row
    assert (ratios[0], ratios[-1]) == (pytest.approx(reference["ratio_min"]), pytest.approx(reference["ratio_max"]))
    assert payload["by_text"] is None  # every held-out window from the validation split


def test_frontier_judges_each_text_alone(trained, monkeypatch):
    """When the held-out windows run past the split, the frontier is judged on each text alone: counted as the
    first 3 of the 8 windows, the two texts' means, weighted by their windows, give the overall ones."""
    import cimjax.report.proxy_frontier as frontier

    real = frontier.held_out_windows
    monkeypatch.setattr(frontier, "held_out_windows", lambda *a: (real(*a)[0], 3))
    res = CliRunner().invoke(proxy_app, ["validate", "--size", "tiny", "--protocol", "frontier", "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["held_out_docstring_windows"] == 5
    texts = payload["by_text"]
    assert (texts["validation"]["windows"], texts["docstrings"]["windows"]) == (3, 5)
    mixed = (3 * np.array(texts["validation"]["measured"]) + 5 * np.array(texts["docstrings"]["measured"])) / 8
    assert mixed == pytest.approx([f["measured"] for f in payload["frontier"]], rel=1e-9)
    for t in texts.values():
        assert set(t["variants"]) == {v["name"] for v in payload["variants"]} and set(t["uniform_ratio"]) == {"int3"}


@pytest.mark.parametrize("driver, pair_set", [("pairwise", "block"), ("interaction_envelope", "none")])
def test_cli_validate_frontier_driven_by_another_variant(trained, monkeypatch, driver, pair_set):
    """``--optimizer-proxy pairwise|interaction_envelope``: the optimiser is given that fitted proxy (``pairwise``
    with the measured pairs), its own assignment meets the budget under that proxy, and the JSON's predictions
    are that proxy's. The envelope is never below its spline, so this also checks that the spline reaches a
    budget near the tiny LM's noise level (the spline's tail and log floor)."""
    from cimjax.joint.problem import proxy_values
    from cimjax.report import proxy_frontier

    driven, generate = [], proxy_frontier.frontier_tables

    def recorded(measured, proxy, *args):
        tables, labels = generate(measured, proxy, *args)
        driven.append((proxy, tables))
        return tables, labels

    monkeypatch.setattr(proxy_frontier, "frontier_tables", recorded)
    args = ["validate", "--size", "tiny", "--protocol", "frontier", "--target", "kl", "--pairs", pair_set]
    res = CliRunner().invoke(proxy_app, [*args, "--optimizer-proxy", driver, "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    ((proxy, tables),) = driven
    assert payload["optimizer_proxy"] == proxy.name == driver and (proxy.pairs is not None) == (driver == "pairwise")
    predicted = proxy_values(proxy, tables)
    assert predicted[0] <= payload["measured_budgets"]["int3"] * (1 + 1e-3)  # the optimiser met its budget
    assert [f["predicted"] for f in payload["frontier"]] == pytest.approx(predicted.tolist(), rel=1e-4)
    int8 = float(proxy_values(proxy, np.full((1, *tables.shape[1:]), 8.0))[0])
    assert payload["budgets"]["int8"] == pytest.approx(int8, rel=1e-5)  # the driving proxy's uniform budgets


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--optimizer-proxy", "higgs"],
            "--optimizer-proxy = 'higgs' is not allowed; allowed: interaction, pairwise, interaction_spline, "
            "interaction_envelope",
        ),
        (["--optimizer-proxy", "pairwise"], "allowed with --protocol frontier only"),
        (["--protocol", "frontier", "--optimizer-proxy", "pairwise", "--pairs", "none"],
         "--optimizer-proxy = 'pairwise' is not allowed; allowed with measured pairs (not --pairs none)"),
    ],
)  # fmt: skip
def test_cli_validate_optimizer_proxy_refusals(flags, expected):
    res = CliRunner().invoke(proxy_app, ["validate", "--size", "tiny", *flags])
    assert res.exit_code == 2 and expected in " ".join(res.output.split()), res.output


def test_cli_validate_lm_seed_trains_another_model_of_the_same_recipe(monkeypatch):
    """``--lm-seed 1`` trains the size's recipe with only the seed changed; a negative seed is a one-line error."""
    import cimjax.quant.train as training

    asked = []

    def recorded(config, log=None):
        asked.append(config)
        raise RuntimeError("stop after the config")

    monkeypatch.setattr(training, "train", recorded)
    CliRunner().invoke(proxy_app, ["validate", "--size", "tiny", "--lm-seed", "1"])
    assert asked == [dataclasses.replace(TINY, seed=1)]
    res = CliRunner().invoke(proxy_app, ["validate", "--size", "tiny", "--lm-seed", "-1"])
    assert res.exit_code == 2 and "--lm-seed" in res.output and len(res.output.strip().splitlines()) == 1


def test_cli_validate_rejects_bad_held_out_windows():
    res = CliRunner().invoke(
        proxy_app, ["validate", "--size", "tiny", "--protocol", "frontier", "--held-out-windows", "0"]
    )
    assert res.exit_code == 2 and "--held-out-windows" in res.output


def test_cli_validate_rejects_unknown_protocol():
    res = CliRunner().invoke(proxy_app, ["validate", "--size", "tiny", "--protocol", "pareto"])
    assert res.exit_code == 2 and "--protocol" in res.output


def test_cli_validate_checkpoint_quantiser_reaches_the_measurement(trained, monkeypatch):
    """``--quantiser checkpoint``: the model holds GPTQ's copies, the sensitivities their errors, and every
    measurement uses the checkpoint quantiser; the JSON names it. With ``--pairs none`` (the same run, to keep the
    suite short) no pair is measured and ``pairwise`` is not judged."""
    from cimjax.quant.measured import CHECKPOINT_SCHEME, gptq_errors
    from cimjax.report import proxy_validation

    seen, judged = [], []
    measure, features = proxy_validation.paired, proxy_validation.proxy_features
    monkeypatch.setattr(proxy_validation, "paired", lambda m, w, t, s, p: seen.append((m, s)) or measure(m, w, t, s, p))
    monkeypatch.setattr(proxy_validation, "proxy_features", lambda s, *a: judged.append(s) or features(s, *a))
    monkeypatch.setattr(proxy_validation, "cached_pairs", lambda *a: pytest.fail("pairs measured with --pairs none"))
    args = ["validate", "--size", "tiny", "--configs", "3", "--fit-configs", "3", "--granularity", "tensor"]
    res = CliRunner().invoke(proxy_app, [*args, "--quantiser", "checkpoint", "--pairs", "none", "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["quantiser"] == "checkpoint" and payload["scheme"]["gptq"] is True
    assert "pairwise" not in {v["name"] for v in payload["variants"]}
    ((model, scheme),) = seen
    assert scheme == CHECKPOINT_SCHEME and model.linear(0, "q").quantised is not None
    (sens,) = judged  # its weight errors are the GPTQ copies', not round to nearest's
    np.testing.assert_array_equal(np.asarray(sens.err), np.asarray(gptq_errors(sens, model).err))


def test_cli_validate_rejects_an_unknown_pair_set():
    res = CliRunner().invoke(proxy_app, ["validate", "--size", "tiny", "--pairs", "triples"])
    assert res.exit_code == 2 and "--pairs" in res.output and "none" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize(("protocol", "quantiser"), [("frontier", "default"), ("random", "gptq")])
def test_cli_validate_rejects_a_quantiser_it_cannot_use(protocol, quantiser):
    res = CliRunner().invoke(
        proxy_app, ["validate", "--size", "tiny", "--protocol", protocol, "--quantiser", quantiser]
    )
    assert res.exit_code == 2 and "--quantiser" in res.output and "Traceback" not in res.output
