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
from cimjax.quant.measured import loss_increases
from cimjax.quant.proxy import (
    FITTED,
    VARIANTS,
    Proxy,
    batch_features,
    default_proxy,
    fit_coefficients,
    make_proxy,
    uniform_budgets,
)
from cimjax.quant.quantizers import DEFAULT_SCHEME, QuantScheme
from cimjax.quant.sensitivity import N_POINTS, POINTS, estimate
from cimjax.quant.train import BENCHMARK, TINY, TrainConfig, TrainedModel

# Model and measurement sizes: the benchmark run, and a seconds-long one for tests and smoke checks.
SIZES: dict[str, tuple[TrainConfig, dict]] = {
    "benchmark": (BENCHMARK, {"n_calib": 16, "n_eval": 64, "n_samples": 16}),
    "tiny": (TINY, {"n_calib": 4, "n_eval": 8, "n_samples": 2}),
}

GRANULARITIES = ("layer", "tensor")
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


def measure_losses(
    trained: TrainedModel, windows: np.ndarray, tables: np.ndarray, scheme: QuantScheme = DEFAULT_SCHEME
) -> tuple[np.ndarray, float]:
    """Real loss increase (nats/token) of each table on ``windows``, and the full-precision loss."""
    return loss_increases(trained.model, windows, tables, scheme)


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

    @property
    def best(self) -> VariantResult:
        return max(self.variants, key=lambda v: v.kendall_tau)

    def to_json(self) -> dict:
        best = self.best
        return {
            "proxy": best.name,
            "kendall_tau": best.kendall_tau,
            "spearman": best.spearman,
            "n_configs": self.n_configs,
            "n_fit": self.n_fit,
            "granularity": self.granularity,
            "seed": self.seed,
            "base_loss": self.base_loss,
            "model": self.model,
            "budgets": self.budgets,
            "sensitivity_seconds": self.sensitivity_seconds,
            "variants": [
                {
                    "name": v.name,
                    "kendall_tau": v.kendall_tau,
                    "spearman": v.spearman,
                    "fitted": v.fitted,
                    "coef": v.coef,
                    "assumption": v.assumption,
                }
                for v in self.variants
            ],
            "measured_loss_increase": {
                "min": float(np.min(self.measured)),
                "median": float(np.median(self.measured)),
                "max": float(np.max(self.measured)),
            },
        }


def validate(
    trained: TrainedModel,
    *,
    n_configs: int = 60,
    n_fit: int | None = None,
    seed: int = 0,
    granularity: str = "layer",
    n_calib: int = 16,
    n_eval: int = 64,
    n_samples: int = 16,
    scheme: QuantScheme = DEFAULT_SCHEME,
    log=None,
) -> ValidationResult:
    """Measures every proxy variant against the real loss of ``trained`` under random assignments.

    Args:
      trained: the trained model (see :func:`cimjax.quant.train.train`).
      n_configs: held-out assignments the variants are judged on.
      n_fit: assignments the fitted variants are fitted on (default ``n_configs``); drawn separately.
      seed: seeds the assignments, the calibration windows and the Rademacher samples.
      granularity: ``layer`` or ``tensor`` (see :func:`random_tables`).
      n_calib: calibration windows (training split) for the sensitivities.
      n_eval: validation-split windows the real loss is measured on.
      n_samples: Hutchinson / output-MSE samples.
      scheme: the quantisation scheme, the same for measurement and proxy.
      log: a callable for progress lines, or None.
    """
    import time

    say = log or (lambda msg: None)
    n_fit = n_configs if n_fit is None else n_fit
    if n_configs < 3 or n_fit < 1:
        raise ValueError(f"n_configs={n_configs} must be at least 3 and n_fit={n_fit} at least 1")
    cfg = trained.config
    n_layers = trained.model.spec.n_layers
    train_tokens, val_tokens = corpus.split(cfg.val_fraction)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(train_tokens) - cfg.seq_len - 1, size=n_calib)
    calib = train_tokens[starts[:, None] + np.arange(cfg.seq_len + 1)[None, :]]
    evaluation = corpus.windows(val_tokens, cfg.seq_len, min(n_eval, (len(val_tokens) - 1) // cfg.seq_len))

    t0 = time.perf_counter()
    say(f"sensitivities on {n_calib} calibration windows ...")
    sens = estimate(trained.model, calib, scheme, n_samples=n_samples, seed=seed)
    sens_seconds = time.perf_counter() - t0
    fit_tables = random_tables(n_fit, n_layers, rng, granularity)
    test_tables = random_tables(n_configs, n_layers, rng, granularity)
    say(f"measuring {n_fit} fit + {n_configs} held-out assignments on {len(evaluation)} validation windows ...")
    measured, base = measure_losses(trained, evaluation, np.concatenate([fit_tables, test_tables]), scheme)
    fit_measured, test_measured = measured[:n_fit], measured[n_fit:]

    all_tables = jnp.asarray(np.concatenate([fit_tables, test_tables]))  # one batch shape: one compile per variant
    proxies: list[Proxy] = [make_proxy(name, sens) for name in VARIANTS] + [default_proxy(trained.model.spec)]
    results = []
    for proxy in proxies:
        fitted = proxy.name in FITTED or proxy.name == "default"
        feats = np.asarray(batch_features(proxy, all_tables), np.float64)
        if fitted:
            coef = fit_coefficients(feats[:n_fit], fit_measured)
            proxy = dataclasses.replace(proxy, coef=jnp.asarray(coef, jnp.float32))
        pred = feats[n_fit:] @ np.asarray(proxy.coef, np.float64)
        results.append(
            VariantResult(
                name=proxy.name,
                kendall_tau=float(stats.kendalltau(pred, test_measured).statistic),
                spearman=float(stats.spearmanr(pred, test_measured).statistic),
                fitted=fitted,
                coef=[float(c) for c in proxy.coef],
                assumption=proxy.assumption,
                predicted=pred.tolist(),
            )
        )
    best = max(results, key=lambda v: v.kendall_tau)
    best_proxy = next(p for p in proxies if p.name == best.name)
    if best.fitted:
        best_proxy = dataclasses.replace(best_proxy, coef=jnp.asarray(best.coef, jnp.float32))
    model_info = {
        "n_params": trained.n_params,
        "n_layers": n_layers,
        "hidden": cfg.hidden,
        "train_steps": cfg.steps,
        "train_seconds": trained.train_seconds,
        "final_train_loss": trained.final_loss,
        "val_loss": trained.val_loss,
        "cache_dir": str(trained.directory),
    }
    return ValidationResult(
        variants=results,
        measured=test_measured.tolist(),
        measured_fit=fit_measured.tolist(),
        base_loss=base,
        n_configs=n_configs,
        n_fit=n_fit,
        granularity=granularity,
        seed=seed,
        model=model_info,
        budgets=uniform_budgets(best_proxy, n_layers),
        sensitivity_seconds=sens_seconds,
    )


def scatter_plot(result: ValidationResult, path: str | Path) -> Path:
    """Predicted vs measured loss increase of every variant on the held-out assignments (log-log PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(result.variants)
    cols = 4
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(4 * cols, 3.6 * ((n + cols - 1) // cols)))
    measured = np.maximum(np.asarray(result.measured), 1e-6)
    for ax, v in zip(np.ravel(axes), result.variants, strict=False):
        predicted = np.maximum(v.predicted, 1e-9)
        ax.scatter(predicted, measured, s=10)
        lo, hi = min(predicted.min(), measured.min()), max(predicted.max(), measured.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.6)  # predicted = measured
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{v.name}\ntau={v.kendall_tau:.3f} rho={v.spearman:.3f}", fontsize=9)
        ax.set_xlabel("predicted dL (nats/token)")
        ax.set_ylabel("measured dL")
    for ax in np.ravel(axes)[n:]:
        ax.axis("off")
    fig.suptitle(f"proxy vs measured loss increase, {result.n_configs} held-out assignments ({result.granularity})")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
