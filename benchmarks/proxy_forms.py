"""Candidate forms of the optimizer proxy judged by nested cross-validation *within the fit set* (docs/proxy.md,
"Further candidates"): no held-out assignment takes part.

Fit sets: the random tensor-wise assignments of ``cimjax proxy validate --granularity tensor --seed S`` (the 120
fit ones, measured window by window on every validation window as that command does, ~400 CPU-s per seed,
kept in ``DIR/random_S.npz``) and the 64-assignment fit sets of measured checkpoint files (``cimjax proxy
sensitivities --out FILE``, or a cache entry). For each candidate and target, each of 5 folds is refitted on
the other four (the saturation chosen inside, as :func:`cimjax.quant.fitting.fit_saturation` does) and
predicted; the printed figure is Kendall tau of those predictions against the measured values.

    python benchmarks/proxy_forms.py --out DIR --seed 0 --seed 1 [--checkpoint-file FILE ...] \
        [--curves validation:16]

``--curves SPLIT:N`` also judges the random seeds' fit sets with single-point curves measured on N windows
of the training or validation split (validation windows are then left out of every measured mean, for
both curve sets), for the "calibration text" row. ``--pairs WIDTH:SET`` (with ``--transfer WIDTH:SET``: how
those pairs' interactions relate to another width's, :func:`pair_transfer`) adds the measured-pair candidates
(``pairwise``, and the interaction form with ``pairwise``'s four group terms added), their pairs measured
(:mod:`cimjax.quant.pairs`, cached) on each fit set's own calibration windows at that width; a checkpoint
file's need its checkpoint (``--checkpoint-dir DIR``, one per ``--checkpoint-file``, in order). Writes
``DIR/proxy_forms.json``. ``--validation-json FILE`` (a ``cimjax proxy validate --json`` output of the random
protocol, benchmark size) judges the candidates on *that run's* fit set (e.g. under the checkpoint quantiser): its
model, sensitivities and fit assignments rebuilt from its seed, the fit assignments measured again on every
validation window (the run's JSON keeps only the held-out values), both targets; its pairs at ``--pairs``
(cached by the run itself when the same).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from scipy import stats
from scipy.optimize import least_squares

from cimjax import validation
from cimjax.files import output_dir_argument
from cimjax.lm.checkpoint import checkpoint_directory, load_checkpoint
from cimjax.quant import corpus
from cimjax.quant import measured as measured_files
from cimjax.quant import pairs as pair_measure
from cimjax.quant.fitting import FOLDS, fit_saturation, saturate
from cimjax.quant.paired import paired
from cimjax.quant.proxy import (
    KL_FLOOR,
    VARIANTS,
    _pairwise,
    batch_features,
    fit_features,
    saturation_floor,
    unfitted,
)
from cimjax.quant.quantizers import DEFAULT_SCHEME
from cimjax.quant.sensitivity import Sensitivities, estimate, log_interp, loss_curves
from cimjax.quant.train import BENCHMARK, train
from cimjax.report.proxy_validation import draw_assignments
from cimjax.workload.precision import LINEAR_OPS, MAX_BITS, MIN_BITS, N_POINTS

BASE = VARIANTS["interaction"]


def _with_product(proxy, table):
    """The current features plus ``sum_{l,op} d_W d_X``: the energy of the ``dW dX`` term itself."""
    d = log_interp(table, proxy.sens.kl, KL_FLOOR)
    n = len(LINEAR_OPS)
    return jnp.concatenate([BASE.features(proxy, table), jnp.sum(d[:, :n] * d[:, n : 2 * n])[None]])


def _with_pairs(proxy, table):
    """The current features plus ``pairwise``'s four measured-pair group terms."""
    return jnp.concatenate([BASE.features(proxy, table), _pairwise(proxy, table)[1:]])


CANDIDATES = {
    "current": BASE,
    "kl_curves (unfitted)": VARIANTS["kl_curves"],
    "linear": dataclasses.replace(BASE, saturations=()),
    "wider saturation grid": dataclasses.replace(BASE, saturations=(16.0, 8.0, 4.0, 2.0, 1.0, 0.5)),
    "no saturation floor": dataclasses.replace(BASE, saturation_floor=0.0),
    "no additive floor": dataclasses.replace(BASE, additive_floor=0.0),
    "no floors": dataclasses.replace(BASE, saturation_floor=0.0, additive_floor=0.0),
    "+ d_W d_X": dataclasses.replace(BASE, name="product", features=_with_product),
    "log-error fit": BASE,  # fitted by _log_fit
    "interaction_spline": VARIANTS["interaction_spline"],
    "interaction_envelope": VARIANTS["interaction_envelope"],
}
PAIR_CANDIDATES = {
    "pairwise": VARIANTS["pairwise"],
    "current + measured pairs": dataclasses.replace(BASE, name="with pairs", features=_with_pairs),
}


def _log_fit(kind, floor):
    """Coefficients refitted on log errors (bounded least squares) after the saturation is chosen."""

    def fit(feats, y):
        coef, s = fit_saturation(feats, y, kind, floor)
        lower = np.zeros(feats.shape[1])
        lower[0] = kind.additive_floor
        scale = np.maximum(feats.max(axis=0), 1e-300)

        def residual(c):
            pred = np.asarray(saturate(feats @ (c / scale), s))
            return np.log(np.maximum(pred, 1e-12)) - np.log(np.maximum(y, 1e-5))

        start = np.maximum(coef * scale, lower * scale + 1e-9)
        return least_squares(residual, start, bounds=(lower * scale, np.inf)).x / scale, s

    return fit


def nested_cv_tau(name: str, sens: Sensitivities, tables: np.ndarray, y: np.ndarray, pairs=None) -> float:
    """Kendall tau of :data:`FOLDS`-fold predictions within a fit set (unfitted kinds: their tau); ``pairs``:
    the measured :class:`~cimjax.quant.pairs.Pairs` of the :data:`PAIR_CANDIDATES`."""
    kind = CANDIDATES.get(name) or PAIR_CANDIDATES[name]
    proxy = unfitted(kind, sens, None if pairs is None else pairs.coefficients())
    feats = np.asarray(batch_features(proxy, jnp.asarray(tables, jnp.float32)), np.float64)
    if not kind.fitted:
        return float(stats.kendalltau(feats @ np.asarray(proxy.coef), y).statistic)
    pred = np.zeros(len(y))
    for k in range(FOLDS):
        held = np.arange(k, len(y), FOLDS)
        rest = np.setdiff1d(np.arange(len(y)), held)
        if name == "log-error fit":
            coef, s = _log_fit(kind, saturation_floor(proxy))(feats[rest], y[rest])
            pred[held] = np.asarray(saturate(feats[held] @ coef, s))
        else:
            pred[held] = np.asarray(fit_features(proxy, feats[rest], y[rest]).predict(feats[held]))
    return float(stats.kendalltau(pred, y).statistic)


def calibration_windows(trained, seed: int) -> tuple[np.random.Generator, np.ndarray]:
    """The 16 calibration windows of ``proxy validate --seed S`` and its generator, as it leaves it after them."""
    cfg = trained.config
    train_tokens, _ = corpus.split(cfg.val_fraction, trained.tokenizer)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(train_tokens) - cfg.seq_len - 1, size=16)
    return rng, train_tokens[starts[:, None] + np.arange(cfg.seq_len + 1)]


def random_fit_set(trained, seed: int, out: Path) -> dict:
    """The fit set of ``proxy validate --granularity tensor --seed S`` (benchmark sizes), window by window."""
    path = out / f"random_{seed}.npz"
    if not path.is_file():
        cfg = trained.config
        _, val_tokens = corpus.split(cfg.val_fraction, trained.tokenizer)
        rng, calib = calibration_windows(trained, seed)
        sens = estimate(trained.model, calib, n_samples=16, seed=seed)
        fit, _ = draw_assignments(120, 60, trained.model.spec.n_layers, rng, "tensor")
        m = paired(trained.model, corpus.windows(val_tokens, cfg.seq_len), fit)
        fields = {f"sens_{f.name}": np.asarray(getattr(sens, f.name)) for f in dataclasses.fields(sens)}
        np.savez(path, tables=fit, loss=m.loss_windows, kl=m.kl_windows, **fields)
    d = np.load(path)
    sens = Sensitivities(**{f.name: jnp.asarray(d[f"sens_{f.name}"]) for f in dataclasses.fields(Sensitivities)})
    return {"sens": sens, "tables": d["tables"], "loss": d["loss"], "kl": d["kl"]}


def other_curves(trained, data: dict, split: str, n: int) -> dict:
    """``data`` with single-point curves measured on ``n`` windows of ``split`` (validation windows are
    left out of the measured values)."""
    cfg = trained.config
    train_tokens, val_tokens = corpus.split(cfg.val_fraction, trained.tokenizer)
    keep = np.arange(data["loss"].shape[1])
    if split == "validation":
        pick = np.sort(np.random.default_rng(123).choice(len(keep), n, replace=False))
        windows, keep = corpus.windows(val_tokens, cfg.seq_len)[pick], np.setdiff1d(keep, pick)
    else:
        starts = np.random.default_rng(7).integers(0, len(train_tokens) - cfg.seq_len - 1, size=n)
        windows = train_tokens[starts[:, None] + np.arange(cfg.seq_len + 1)]
    loss, kl, _ = loss_curves(trained.model, jnp.asarray(windows), DEFAULT_SCHEME)
    sens = dataclasses.replace(data["sens"], loss=jnp.asarray(loss), kl=jnp.asarray(kl))
    return data | {"sens": sens, "loss": data["loss"][:, keep], "kl": data["kl"][:, keep]}


def validation_fit_set(trained, payload: dict, width: int, pair_set: str) -> tuple:
    """``(sens, fit tables, {target: measured fit values}, pairs)`` of a random-protocol ``proxy validate`` run, as
    :func:`cimjax.report.proxy_validation.validate` draws them (benchmark sizes: 16 calibration windows and
    Rademacher samples)."""
    from cimjax.quant.calibration import Calibration
    from cimjax.quant.measured import prepared, prepared_sensitivities
    from cimjax.report.proxy_validation import QUANTISERS

    seed, scheme = payload["seed"], QUANTISERS[payload["quantiser"]]
    rng, calib = calibration_windows(trained, seed)
    model = prepared(trained.model, scheme, Calibration(16, trained.config.seq_len, 16, seed))
    sens = prepared_sensitivities(model, calib, scheme, 16, seed)
    fit, _ = draw_assignments(payload["n_fit"], payload["n_configs"], trained.model.spec.n_layers, rng,
                              payload["granularity"])  # fmt: skip
    pairs = None if width is None else pair_measure.cached(model, calib, scheme, width, pair_set)
    if "fit_measured" in payload:  # kept by the run
        return sens, fit, {t: np.asarray(v) for t, v in payload["fit_measured"].items()}, pairs
    _, val_tokens = corpus.split(trained.config.val_fraction, trained.tokenizer)
    m = paired(model, corpus.windows(val_tokens, trained.config.seq_len), fit, scheme)  # as the run measured them
    return sens, fit, {"loss": m.loss, "kl": m.kl}, pairs


def pair_transfer(a, b) -> None:
    """Prints the interaction mass of pairs ``a`` by group (sum of ``I_tu``, median ``w_tu``) and how pairs ``b``
    (a subset, at another width) relate to them: Pearson over the pairs positive in ``a``, Kendall tau against
    the sqrt-scaled prediction ``I_tu(a) sqrt(d_t(b) d_u(b) / (d_t(a) d_u(a)))``."""
    ia, s_a = a.interaction(), a.single.reshape(-1)
    print(f"{a.width} bits: singles sum {s_a.sum():.3f}; interactions +{ia[ia > 0].sum():.3f} / "
          f"{ia[ia < 0].sum():.3f}, {(ia > 0).mean():.0%} positive")  # fmt: skip
    w = ia / np.sqrt(np.maximum(s_a[a.index[:, 0]] * s_a[a.index[:, 1]], 1e-12))
    layer, block = a.index // N_POINTS, np.tile(pair_measure.BLOCK, len(a.single))[a.index]
    same = layer[:, 0] == layer[:, 1]
    groups = {
        "attention blocks": same & (block[:, 0] == block[:, 1]) & (block[:, 0] == 0),
        "MLP blocks": same & (block[:, 0] == block[:, 1]) & (block[:, 0] == 1),
        "across blocks": same & (block[:, 0] != block[:, 1]),
        "across layers": ~same,
    }
    for name, m in groups.items():
        print(f"  {name}: {m.sum()} pairs, sum I {ia[m].sum():.3f}, median w {np.median(w[m]) if m.any() else 0:.3f}")
    where = {tuple(x): k for k, x in enumerate(a.index)}
    rows = np.array([where[tuple(x)] for x in b.index])
    i1, i2, s_b = ia[rows], b.interaction(), b.single.reshape(-1)
    g1 = np.sqrt(s_a[b.index[:, 0]] * s_a[b.index[:, 1]])
    g2 = np.sqrt(s_b[b.index[:, 0]] * s_b[b.index[:, 1]])
    pos = i1 > 0
    print(f"{b.width} bits: {(i2 > 0).mean():.0%} positive, +{i2[i2 > 0].sum():.4f} / {i2[i2 < 0].sum():.4f}, "
          f"singles up to {s_b.max():.4f}")  # fmt: skip
    print(f"Pearson I({b.width}) vs I({a.width}), positive at {a.width}: {np.corrcoef(i1[pos], i2[pos])[0, 1]:.2f}")
    print(f"Kendall tau I({b.width}) vs sqrt-scaled I({a.width}): {stats.kendalltau(i2, i1 * g2 / g1).statistic:.3f}")



def _pair_spec(parser: argparse.ArgumentParser, flag: str, text: str | None) -> tuple[int | None, str | None]:
    """``WIDTH:SET`` of ``--pairs`` or ``--transfer`` as ``(width, pair set)``; (None, None) when not given."""
    if text is None:
        return None, None
    width, colon, pair_set = text.partition(":")
    if not (colon and width.isdigit() and MIN_BITS <= int(width) <= MAX_BITS and pair_set in pair_measure.PAIR_SETS):
        sets = ", ".join(pair_measure.PAIR_SETS)
        parser.error(f"{flag} = {text!r} is not allowed; allowed: WIDTH:SET, a width of {MIN_BITS}-{MAX_BITS} bits and "
                     f"one of {sets} (e.g. 3:layer)")  # fmt: skip
    return int(width), pair_set


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[list[dict], list]:
    """Every option checked, and every input file read, before the LM is trained or anything measured: the
    validation runs' JSON and the measured checkpoint files, in the order given."""
    if not (args.seed or args.checkpoint_file or args.validation_json):
        parser.error("nothing to judge: give --seed, --checkpoint-file or --validation-json")
    for seed in args.seed:
        validation.seed("--seed", seed)
    if args.curves is not None:
        split, colon, n = args.curves.partition(":")
        if not (args.seed and colon and split in ("training", "validation") and n.isdigit() and int(n) > 0):
            parser.error(f"--curves = {args.curves!r} is not allowed; allowed: SPLIT:N with --seed, SPLIT training "
                         "or validation and N a positive number of windows (e.g. validation:16)")  # fmt: skip
    if args.transfer is not None and args.pairs is None:
        parser.error("--transfer compares with the pairs of --pairs: give --pairs too")
    if args.pairs is not None and len(args.checkpoint_dir) < len(args.checkpoint_file):
        parser.error("--pairs with --checkpoint-file needs its checkpoint: one --checkpoint-dir per --checkpoint-file")
    for directory in args.checkpoint_dir:
        checkpoint_directory(directory)
    payloads = [validation.json_object(validation.read_json(f, "--validation-json"), "--validation-json", f)
                for f in args.validation_json]  # fmt: skip
    return payloads, [measured_files.load(file) for file in args.checkpoint_file]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=output_dir_argument)
    parser.add_argument("--seed", type=int, action="append", default=[])
    parser.add_argument("--checkpoint-file", action="append", default=[])
    parser.add_argument("--curves", help="SPLIT:N, SPLIT training or validation")
    parser.add_argument("--pairs", help="WIDTH:SET, the measured pairs' reference width and pair set")
    parser.add_argument("--checkpoint-dir", action="append", default=[])
    parser.add_argument("--validation-json", action="append", default=[])
    parser.add_argument("--transfer", help="WIDTH:SET, another width's pairs (a subset of --pairs') to compare")
    args = parser.parse_args()
    width, pair_set = _pair_spec(parser, "--pairs", args.pairs)
    transfer_width, transfer_set = _pair_spec(parser, "--transfer", args.transfer)
    payloads, measured = _check(parser, args)
    names = [*CANDIDATES, *(PAIR_CANDIDATES if args.pairs else ())]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = {}
    trained = train(BENCHMARK) if args.seed or args.validation_json else None
    for file, payload in zip(args.validation_json, payloads, strict=True):
        sens, tables, fit_values, pairs = validation_fit_set(trained, payload, width, pair_set)
        for target, y in fit_values.items():
            label = f"{file} ({payload['quantiser']}, seed {payload['seed']}) {target}"
            rows[label] = {c: nested_cv_tau(c, sens, tables, y, pairs) for c in names}
            print(label, rows[label], flush=True)
    for seed in args.seed:
        data = random_fit_set(trained, seed, args.out)
        pairs = None
        if args.pairs:
            pairs = pair_measure.cached(trained.model, calibration_windows(trained, seed)[1], DEFAULT_SCHEME, width,
                                        pair_set)  # fmt: skip
            if args.transfer:
                calib = calibration_windows(trained, seed)[1]
                other = pair_measure.cached(trained.model, calib, DEFAULT_SCHEME, transfer_width, transfer_set)
                pair_transfer(pairs, other)
        versions = {"": data}
        if args.curves:  # the seed's own curves on the same windows beside the other ones
            split, n = args.curves.split(":")  # checked by _check
            other = other_curves(trained, data, split, int(n))
            versions = {"": other | {"sens": data["sens"]}, f", {args.curves} curves": other}
        for label, d in versions.items():
            for target in ("loss", "kl"):
                y = d[target].mean(axis=1)
                taus = {c: nested_cv_tau(c, d["sens"], d["tables"], y, pairs) for c in names}
                rows[f"seed {seed} {target}{label}"] = taus
    for k, (file, m) in enumerate(zip(args.checkpoint_file, measured, strict=True)):
        pairs = None
        if args.pairs:
            directory = args.checkpoint_dir[k]
            calibration = measured_files.with_tokenizer(m.calibration, directory)
            model = measured_files.prepared(load_checkpoint(directory), m.scheme, calibration)
            pairs = pair_measure.cached(model, calibration.sensitivity_tokens(), m.scheme, width, pair_set)
            print(f"{Path(file).name}: {len(pairs.index)} pairs, {pairs.cpu_seconds:.0f} CPU-s (0: cached)")
        for target in ("loss", "kl"):
            y = m.joint(target)
            rows[f"{Path(file).name} {target}"] = {c: nested_cv_tau(c, m.sens, m.joint_tables, y, pairs) for c in names}
    for name, taus in rows.items():
        print(name, "  ".join(f"{c}: {t:.3f}" for c, t in taus.items()))
    (args.out / "proxy_forms.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    validation.run_script(main)
