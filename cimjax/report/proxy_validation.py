"""Checks the accuracy proxy against the real loss of a trained LM under random mixed-precision assignments.

Protocol: sensitivities are estimated on calibration windows of the *training* split; the real loss
increase of each random assignment (weights, activations and KV cache, 2-8 bits per layer) is measured on
windows of the *validation* split. Variants with fitted coefficients are fitted on one set of random
assignments and every variant is judged (Kendall tau, Spearman rho) on a second, held-out set.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from scipy import stats

from cimjax.quant import corpus
from cimjax.quant.calibration import Calibration
from cimjax.quant.default_proxy import default_proxy
from cimjax.quant.measured import CHECKPOINT_SCHEME, check_target, prepared, prepared_sensitivities
from cimjax.quant.paired import paired
from cimjax.quant.pairs import REFERENCE_BITS, Pairs
from cimjax.quant.pairs import cached as cached_pairs
from cimjax.quant.proxy import (
    OPTIMIZER_PROXY,
    VARIANTS,
    Proxy,
    as_float32,
    batch_features,
    fit_features,
    make_proxy,
    uniform_budgets,
)
from cimjax.quant.quantizers import DEFAULT_SCHEME, QuantScheme
from cimjax.quant.sensitivity import Sensitivities
from cimjax.quant.train import BENCHMARK, SUBWORD, TINY, TrainConfig, TrainedModel
from cimjax.report.plots import scatter_plot
from cimjax.workload.precision import N_POINTS, POINTS
from cimjax.workload.spec import ModelSpec

# Model and measurement sizes: the benchmark run (every validation window: 364), a seconds-long one for tests, the
# 8-layer sub-word model (its validation split holds 125 windows: 64 check + 61 held-out for the frontier); pairs
# measured (cimjax.quant.pairs): all 2,278 of the byte LM (~230 CPU-s), the sub-word LM's within layers (1,088).
SIZES: dict[str, tuple[TrainConfig, dict]] = {
    "benchmark": (BENCHMARK, {"n_calib": 16, "n_eval": None, "n_samples": 16, "pair_set": "all"}),
    "tiny": (TINY, {"n_calib": 4, "n_eval": 8, "n_samples": 2, "pair_set": "all"}),
    "subword": (SUBWORD, {"n_calib": 16, "n_eval": 60, "n_samples": 16, "pair_set": "layer"}),
}

FIT_PER_HELD_OUT = 4
"""Fit assignments per held-out one by default: the interaction variant fits 2L+3 coefficients and chooses its
saturation by cross-validation; on the byte LM's tensor-wise assignments 120 fit assignments rank the same 60
held-out ones better than 60 do, and 240 better than 120 (docs/proxy.md, "How many fit assignments")."""
GRANULARITIES = ("layer", "tensor")
QUANTISERS = {"default": DEFAULT_SCHEME, "checkpoint": CHECKPOINT_SCHEME}
"""The random protocol's quantisers by name: max-scale round to nearest, or the one measured checkpoints (and
so ``cimjax optimize --checkpoint``) use; the frontier protocol always uses the checkpoint's."""
PROTOCOLS = ("random", "frontier")
_KINDS = ("weight", "act", "kv")


def random_tables(
    n: int, n_layers: int, rng: np.random.Generator, granularity: str = "layer", low: int = 2, high: int = 8
) -> np.ndarray:
    """``n`` random integer bit tables ``(n, L, 17)``, uniform in ``[low, high]``.

    ``layer``: one draw per layer and tensor kind (all weights of a layer share bits, likewise all matmul
    inputs, and the KV cache); ``tensor``: an independent draw for every point.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity={granularity!r} is not known; allowed: {GRANULARITIES}")
    if granularity == "tensor":
        return rng.integers(low, high + 1, size=(n, n_layers, N_POINTS)).astype(np.float32)
    draws = rng.integers(low, high + 1, size=(n, n_layers, len(_KINDS)))
    kind_of_point = np.array([_KINDS.index(kind) for kind, _ in POINTS])
    return draws[:, :, kind_of_point].astype(np.float32)


def draw_assignments(
    n_fit: int, n_configs: int, n_layers: int, rng: np.random.Generator, granularity: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(fit, held-out)`` random tables: the first ``n_configs`` fit ones, then the held-out ones, then any
    further fit ones, so the held-out set of a seed does not depend on the fit set's size (of at least
    ``n_configs``)."""
    first = random_tables(min(n_fit, n_configs), n_layers, rng, granularity)
    held_out = random_tables(n_configs, n_layers, rng, granularity)
    rest = random_tables(n_fit - len(first), n_layers, rng, granularity)
    return np.concatenate([first, rest]), held_out


@dataclasses.dataclass
class VariantResult:
    """One proxy variant's agreement with the measured loss on the held-out assignments."""

    name: str
    kendall_tau: float
    spearman: float
    fitted: bool
    coef: list[float]
    assumption: str | None
    predicted: list[float]
    ratios: list[float]  # measured / predicted per judged assignment
    saturation: float = float("inf")  # saturation scale of the weighted feature sum (fitted kinds may choose one)
    ratio_se: list[float] | None = None  # standard error of each ratio (the measurement's over predicted)
    kendall_tau_se: float | None = None  # bootstrap standard error of tau over the judged assignments
    knots: list | None = None  # spline kinds' knots of their log features ((G, segments + 1)), else None


RATIO_BAND = (0.67, 1.5)  # measured / predicted within this band counts as a calibrated prediction


def score(
    name: str,
    predicted: np.ndarray,
    measured: np.ndarray,
    fitted: bool,
    coef,
    assumption: str | None,
    saturation: float = float("inf"),
    measured_se=None,
    knots=None,
) -> VariantResult:
    """Kendall tau, Spearman rho and measured/predicted ratios (with standard errors when ``measured_se``,
    the measurements' standard errors, is given) of one variant's predictions."""
    predicted, measured = np.asarray(predicted, np.float64), np.asarray(measured, np.float64)
    denominator = np.maximum(predicted, 1e-12)
    return VariantResult(
        name=name,
        kendall_tau=rank_correlation(stats.kendalltau, predicted, measured),
        spearman=rank_correlation(stats.spearmanr, predicted, measured),
        fitted=fitted,
        coef=[float(c) for c in coef],
        assumption=assumption,
        predicted=predicted.tolist(),
        ratios=(measured / denominator).tolist(),
        saturation=float(saturation),
        ratio_se=None if measured_se is None else (np.asarray(measured_se, np.float64) / denominator).tolist(),
        kendall_tau_se=_tau_se(predicted, measured),
        knots=None if knots is None else np.asarray(knots, np.float64).tolist(),
    )


BOOTSTRAP = 200  # resamples of the judged assignments for the standard error of Kendall tau


def _tau_se(predicted: np.ndarray, measured: np.ndarray) -> float | None:
    """Bootstrap standard error of Kendall tau: how much it moves when the judged assignments are redrawn
    (with replacement, fixed seed), i.e. how far a tau on this many assignments can be trusted."""
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(measured), len(measured)) for _ in range(BOOTSTRAP)]
    taus = [stats.kendalltau(predicted[i], measured[i]).statistic for i in draws]
    taus = np.asarray(taus)[np.isfinite(taus)]
    return float(np.std(taus, ddof=1)) if len(taus) > 1 else None


def variant_json(v: VariantResult) -> dict:
    """One variant's figures as in ``validation.json`` (``ratio_min_se``, ``ratio_max_se``: the standard
    errors of those two ratios; ``ratio_se_median``: the median one; all None when unmeasured)."""
    lo, hi = int(np.argmin(v.ratios)), int(np.argmax(v.ratios))
    se = v.ratio_se
    return {
        "name": v.name,
        "kendall_tau": v.kendall_tau,
        "kendall_tau_se": v.kendall_tau_se,
        "spearman": v.spearman,
        "fitted": v.fitted,
        "coef": v.coef,
        "saturation": v.saturation if np.isfinite(v.saturation) else None,
        "knots": v.knots,
        "assumption": v.assumption,
        "ratio_min": float(np.min(v.ratios)),
        "ratio_max": float(np.max(v.ratios)),
        "within_ratio_band": float(np.mean(in_ratio_band(v.ratios))),
        "ratio_min_se": None if se is None else se[lo],
        "ratio_max_se": None if se is None else se[hi],
        "ratio_se_median": None if se is None else float(np.median(se)),
    }


def _tau(v: VariantResult) -> float:
    """Sort key: Kendall tau, undefined counting as the worst."""
    return -2.0 if v.kendall_tau is None else v.kendall_tau


def rank_correlation(statistic, predicted: np.ndarray, measured: np.ndarray) -> float | None:
    """A rank correlation, or None where it is undefined: one side constant (scipy would warn and give NaN)."""
    if np.ptp(predicted) == 0 or np.ptp(measured) == 0:
        return None
    value = statistic(predicted, measured).statistic
    return float(value) if np.isfinite(value) else None  # JSON has no NaN


def _proxies(sens: Sensitivities, spec: ModelSpec, pairs: Pairs | None = None) -> list[Proxy]:
    """Every variant of ``sens`` (unfitted; those that need measured pairs only with ``pairs``) and the
    weight-less default proxy of ``spec``."""
    w = None if pairs is None else pairs.coefficients()
    names = [name for name in VARIANTS if w is not None or name != "pairwise"]
    return [make_proxy(name, sens, w) for name in names] + [default_proxy(spec)]


def proxy_features(sens: Sensitivities, spec: ModelSpec, tables, pairs: Pairs | None = None) -> list[tuple]:
    """Every variant (unfitted) with its features ``(N, G)`` at ``tables`` ``(N, L, 17)``, once for all targets."""
    stacked = jnp.asarray(np.asarray(tables), jnp.float32)
    return [(p, np.asarray(batch_features(p, stacked), np.float64)) for p in _proxies(sens, spec, pairs)]


def judge_variants(features, n_fit: int, fit_measured, test_measured, test_se=None) -> list[VariantResult]:
    """Every variant of :func:`proxy_features` (of the fit tables, then the judged ones) fitted (fitted
    kinds) on the first ``n_fit`` rows and scored on the rest, the *held-out* set; ``test_se``: the standard
    errors of ``test_measured``."""
    results = []
    for proxy, feats in features:
        fitted = dataclasses.replace(proxy, coef=np.asarray(proxy.coef, np.float64))
        if proxy.kind.fitted:
            fitted = fit_features(proxy, feats[:n_fit], fit_measured)
        predicted = np.asarray(fitted.predict(feats[n_fit:]), np.float64)
        results.append(
            score(proxy.name, predicted, test_measured, proxy.kind.fitted, fitted.coef, proxy.assumption,
                  fitted.saturation, test_se, fitted.knots)
        )  # fmt: skip
    return results


@dataclasses.dataclass
class ValidationResult:
    """Everything a validation run measured; :meth:`to_json` is what the CLI prints."""

    variants: list[VariantResult]
    measured: list[float]
    measured_fit: list[float]
    base_loss: float
    n_configs: int
    n_fit: int
    granularity: str
    seed: int
    model: dict
    budgets: dict[str, float]
    sensitivity_seconds: float
    protocol: str = "random"
    target: str = "loss"
    details: dict = dataclasses.field(default_factory=dict)  # protocol-specific (the frontier's assignments)
    measured_se: list[float] | None = None  # standard error of each held-out measurement over its windows
    eval_windows: int | None = None  # windows every held-out measurement is a mean over
    scheme: QuantScheme = DEFAULT_SCHEME  # the quantiser of every measurement and sensitivity
    optimizer_proxy: str = OPTIMIZER_PROXY  # the variant that drove the optimiser (frontier) or drives it by default

    @property
    def best(self) -> VariantResult:
        return max(self.variants, key=_tau)

    def to_json(self) -> dict:
        best = self.best
        return {
            "proxy": best.name,
            "kendall_tau": best.kendall_tau,
            "spearman": best.spearman,
            "protocol": self.protocol,
            "target": self.target,
            "optimizer_proxy": self.optimizer_proxy,
            "n_configs": self.n_configs,
            "n_fit": self.n_fit,
            "granularity": self.granularity,
            "seed": self.seed,
            "quantiser": quantiser_name(self.scheme),
            "scheme": dataclasses.asdict(self.scheme),
            "base_loss": self.base_loss,
            "model": self.model,
            "budgets": self.budgets,
            "sensitivity_seconds": self.sensitivity_seconds,
            "variants": [variant_json(v) for v in self.variants],
            "ratio_band": list(RATIO_BAND),
            **self.details,
            "measured_loss_increase": {
                "min": float(np.min(self.measured)),
                "median": float(np.median(self.measured)),
                "max": float(np.max(self.measured)),
            },
            "eval_windows": self.eval_windows,
            "measured_standard_error": None
            if self.measured_se is None
            else {"median": float(np.median(self.measured_se)), "max": float(np.max(self.measured_se))},
        }


def quantiser_name(scheme: QuantScheme) -> str:
    """The name of ``scheme`` in :data:`QUANTISERS`, or ``custom``."""
    return next((name for name, known in QUANTISERS.items() if known == scheme), "custom")


def validate(
    trained: TrainedModel,
    *,
    n_configs: int = 60,
    n_fit: int | None = None,
    seed: int = 0,
    granularity: str = "layer",
    n_calib: int = 16,
    n_eval: int | None = 64,
    n_samples: int = 16,
    scheme: QuantScheme = DEFAULT_SCHEME,
    target: str = "loss",
    pair_set: str | None = "layer",
    log=None,
    progress=None,
) -> ValidationResult:
    """Measures every proxy variant against the real loss (or KL) of ``trained`` under random assignments.

    The JSON's ``other_target`` judges the same variants on the same assignments against the other target
    (KL for ``loss``, and the reverse), fitted on it: both come from one set of measurements. ``fit_measured``
    keeps both targets' fit values (a fit-set study, ``benchmarks/proxy_forms.py``, need not measure them again).

    Args:
      trained: the trained model (see :func:`cimjax.quant.train.train`).
      n_configs: held-out assignments the variants are judged on.
      n_fit: assignments the fitted variants are fitted on (default :data:`FIT_PER_HELD_OUT` x ``n_configs``),
        drawn separately: the first ``n_configs`` of them before the held-out set, any others after it
        (:func:`draw_assignments`).
      seed: seeds the assignments, the calibration windows and the Rademacher samples.
      granularity: ``layer`` or ``tensor`` (see :func:`random_tables`).
      n_calib: calibration windows (training split) for the sensitivities.
      n_eval: validation-split windows the real loss is measured on (None: all of them).
      n_samples: Hutchinson / output-MSE samples.
      scheme: the quantisation scheme, the same for measurement and proxy (:data:`QUANTISERS`); the model is
        :func:`~cimjax.quant.measured.prepared` for it as measured checkpoints are (GPTQ's copies from the
        training split's evenly spaced windows when it has GPTQ weights, the sensitivities then with their
        errors).
      target: what is measured and predicted: ``loss`` increase or ``kl`` divergence from full precision.
      pair_set: the pairs ``pairwise`` measures (:data:`~cimjax.quant.pairs.PAIR_SETS`, calibration windows; None: no).
      log: a callable for progress lines, or None.
      progress: called as ``progress(done, total)`` while the single-point curves, then the assignments, are measured
        (:data:`cimjax.quant.sensitivity.Progress`), or None.
    """
    import time

    say = log or (lambda msg: None)
    n_fit = FIT_PER_HELD_OUT * n_configs if n_fit is None else n_fit
    if n_configs < 3 or n_fit < 1:
        raise ValueError(f"n_configs={n_configs} must be at least 3 and n_fit={n_fit} at least 1")
    cfg = trained.config
    n_layers = trained.model.spec.n_layers
    train_tokens, val_tokens = corpus.split(cfg.val_fraction, trained.tokenizer)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(train_tokens) - cfg.seq_len - 1, size=n_calib)
    calib = train_tokens[starts[:, None] + np.arange(cfg.seq_len + 1)[None, :]]
    available = (len(val_tokens) - 1) // cfg.seq_len
    evaluation = corpus.windows(val_tokens, cfg.seq_len, available if n_eval is None else min(n_eval, available))

    t0 = time.perf_counter()
    tokenizer = None if trained.tokenizer is None else str(trained.tokenizer)
    model = prepared(trained.model, scheme, Calibration(n_calib, cfg.seq_len, n_samples, seed, tokenizer=tokenizer))
    say(f"sensitivities on {n_calib} calibration windows ...")
    sens = prepared_sensitivities(model, calib, scheme, n_samples, seed, progress)
    sens_seconds = time.perf_counter() - t0
    pairs = None if pair_set is None else cached_pairs(model, calib, scheme, REFERENCE_BITS, pair_set)  # same windows
    fit_tables, test_tables = draw_assignments(n_fit, n_configs, n_layers, rng, granularity)
    say(f"measuring {n_fit} fit + {n_configs} held-out assignments on {len(evaluation)} validation windows ...")
    all_tables = np.concatenate([fit_tables, test_tables])
    m = paired(model, evaluation, all_tables, scheme, progress)
    measured, se = m.of(check_target(target))
    fit_measured, test_measured = measured[:n_fit], measured[n_fit:]

    features = proxy_features(sens, trained.model.spec, all_tables, pairs)
    results = judge_variants(features, n_fit, fit_measured, test_measured, se[n_fit:])
    other = next(t for t in ("loss", "kl") if t != target)  # the same assignments judged against the other target
    other_measured, other_se = m.of(other)
    others = judge_variants(features, n_fit, other_measured[:n_fit], other_measured[n_fit:], other_se[n_fit:])
    best = max(results, key=_tau)
    fits = {target: fit_measured.tolist(), other: other_measured[:n_fit].tolist()}
    unfit = next(p for p, _ in features if p.name == best.name)
    best_proxy = as_float32(dataclasses.replace(unfit, coef=best.coef, saturation=best.saturation, knots=best.knots))
    return ValidationResult(
        variants=results,
        measured=test_measured.tolist(),
        measured_fit=fit_measured.tolist(),
        base_loss=m.base,
        n_configs=n_configs,
        n_fit=n_fit,
        granularity=granularity,
        seed=seed,
        model=model_info(trained),
        budgets=uniform_budgets(best_proxy, n_layers),
        sensitivity_seconds=sens_seconds,
        target=target,
        details={"other_target": {"target": other, "variants": list(map(variant_json, others))}, "fit_measured": fits},
        measured_se=se[n_fit:].tolist(),
        eval_windows=m.windows,
        scheme=scheme,
    )


def model_info(trained: TrainedModel) -> dict:
    cfg = trained.config
    return {
        "n_params": trained.n_params,
        "n_layers": trained.model.spec.n_layers,
        "hidden": cfg.hidden,
        "train_steps": cfg.steps,
        "train_seed": cfg.seed,
        "train_seconds": trained.train_seconds,
        "final_train_loss": trained.final_loss,
        "val_loss": trained.val_loss,
        "cache_dir": str(trained.directory),
    }


def in_ratio_band(ratios) -> np.ndarray:
    """Which measured / predicted ratios lie within :data:`RATIO_BAND` (bounds included)."""
    return (np.asarray(ratios) >= RATIO_BAND[0]) & (np.asarray(ratios) <= RATIO_BAND[1])


def write_outputs(directory: Path, result: ValidationResult) -> list[Path]:
    """``validation.json`` (:meth:`ValidationResult.to_json`) and ``proxy_scatter.png`` in ``directory``,
    each written whole or not at all; returns their paths."""
    import json

    from cimjax.files import atomic_write

    files = [Path(directory) / "validation.json", Path(directory) / "proxy_scatter.png"]
    atomic_write(files[0], json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n")
    scatter_plot(result, files[1])  # through plots.save: whole or not at all
    return files
