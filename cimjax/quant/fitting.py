"""Fitting a proxy's coefficients and saturation to measured assignments (:mod:`cimjax.quant.proxy`'s fits).

The proxy of a fitted kind is ``saturate(coef . features, s)``: non-negative (or floored) least squares on
the inverse transform of the measured values, with ``s`` chosen by cross-validated rank correlation within
the fit set (docs/proxy.md).
"""

from __future__ import annotations

from typing import Protocol

import jax.numpy as jnp
import numpy as np
from scipy.optimize import nnls

RELATIVE_FLOOR = 1e-5  # nats/token: measured increases below this weigh as this in a relative fit


class FitKind(Protocol):
    """What a fit needs of a proxy kind (:class:`cimjax.quant.proxy.ProxyKind`)."""

    saturations: tuple[float, ...]
    additive_floor: float
    relative_fit: bool


def saturate(x, scale):
    """``s log(1 + x / s)``: equal to ``x`` for ``x << s`` (and for an infinite ``s``), growing only
    logarithmically beyond ``s``; monotone and differentiable (also in jit, with ``s`` infinite)."""
    finite = jnp.isfinite(scale)
    s = jnp.where(finite, scale, 1.0)
    return jnp.where(finite, s * jnp.log1p(x / s), x)


FOLDS = 5  # cross-validation folds that choose a fitted saturation


def fit_saturation(
    features: np.ndarray, measured: np.ndarray, kind: FitKind, floor: float = 0.0
) -> tuple[np.ndarray, float]:
    """Coefficients and saturation scale ``s`` of ``saturate(coef . features, s) ~ measured`` for a kind.

    For each allowed ``s`` (infinite, then ``kind.saturations`` times the median of ``|measured|``, each at
    least ``floor``) the coefficients are fitted to the inverse transform ``s (exp(measured / s) - 1)``
    (:func:`fit_coefficients`, the first one at least ``kind.additive_floor``);
    ``s`` is the one whose :data:`FOLDS`-fold cross-validated predictions *within this fit set* rank it best
    (Kendall tau; ties go to the earlier, less saturating choice), then refitted on the whole set. Fewer
    than ``2 FOLDS`` assignments: linear.

    Why: losses of heavily quantised models saturate (at 2-3 bits a sum of interaction terms grows faster
    than the measured loss); the transform follows that where losses are large and leaves small ones (the
    INT8 and INT6 budgets) linear, and keeps the proxy monotone and differentiable.
    """
    from scipy import stats

    y = np.asarray(measured, np.float64)
    feats = np.asarray(features, np.float64)
    median = float(np.median(np.abs(y))) if len(y) else np.inf
    scales = list(dict.fromkeys([np.inf, *(max(m * median, floor) for m in kind.saturations)]))
    lower = np.zeros(feats.shape[1])
    lower[:1] = kind.additive_floor

    def fit(rows, s):
        target = y[rows] if np.isinf(s) else s * np.expm1(np.minimum(y[rows] / s, 50.0))
        return fit_coefficients(feats[rows], target, kind.relative_fit, lower)

    best = np.inf
    if len(scales) > 1 and len(y) >= 2 * FOLDS:
        scores = []
        for s in scales:
            pred = np.zeros_like(y)
            for k in range(FOLDS):
                held = np.arange(k, len(y), FOLDS)
                pred[held] = np.asarray(saturate(feats[held] @ fit(np.setdiff1d(np.arange(len(y)), held), s), s))
            tau = stats.kendalltau(pred, y).statistic
            scores.append(tau if np.isfinite(tau) else -2.0)
        best = scales[int(np.argmax(scores))]  # the first maximum: the least saturating among ties
    return fit(np.arange(len(y)), best), float(best)


def fit_coefficients(
    features: np.ndarray, measured: np.ndarray, relative: bool = False, lower: np.ndarray | None = None
) -> np.ndarray:
    """Least squares ``features @ coef ~ measured`` with ``coef >= lower`` (default 0; features ``(N, G)``,
    scaled for conditioning): non-negative least squares of the rest, ``measured - features @ lower``.

    With ``relative`` every row is divided by its measured value (at least :data:`RELATIVE_FLOOR`), so the
    fit minimises relative errors and small losses count as much as large ones.
    """
    feats = np.asarray(features, np.float64)
    target = np.asarray(measured, np.float64)
    lower = np.zeros(feats.shape[1]) if lower is None else np.asarray(lower, np.float64)
    if relative:
        weight = 1.0 / np.maximum(np.abs(target), RELATIVE_FLOOR)
        feats, target = feats * weight[:, None], target * weight
    scale = np.maximum(feats.max(axis=0), 1e-300)
    coef, _ = nnls(feats / scale, target - feats @ lower)
    return coef / scale + lower


SPLINE_SEGMENTS = 4  # segments of each feature's monotone spline (chosen by cross-validation, docs/proxy.md)
KNOT_GAP = 1e-6  # least gap between knots (log units): a feature constant over the fit set still has a basis


def spline_basis(log_features, knots):
    """Monotone piecewise-linear basis ``(..., G K)`` of log features ``(..., G)`` between ``knots`` ``(G, K + 1)``.

    Segment ``k`` of feature ``g`` rises from 0 at ``knots[g, k]`` to 1 at ``knots[g, k + 1]``; the first keeps
    falling below the lowest knot and the last keeps rising above the highest (linear tails), so the spline
    extrapolates with its end slopes instead of going flat. Each column is non-decreasing in its feature.
    """
    lo, hi = knots[:, :-1], knots[:, 1:]
    ramp = (log_features[..., None] - lo) / (hi - lo)
    k = jnp.arange(knots.shape[1] - 1)
    ramp = jnp.clip(ramp, jnp.where(k == 0, -jnp.inf, 0.0), jnp.where(k == k[-1], jnp.inf, 1.0))
    return ramp.reshape(*ramp.shape[:-2], -1)


def spline_value(features, coef, knots):
    """``exp(coef[-1] + coef[:-1] . spline_basis(log features, knots))``: the prediction of a spline fitted by
    :func:`fit_spline`, for features ``(..., G)``."""
    return jnp.exp(spline_basis(jnp.log(features), knots) @ coef[:-1] + coef[-1])


TAIL_SLOPE = 1.0
"""Least sum over features of the spline's lowest-segment slopes (log prediction per log feature): as every error
shrinks by a factor ``x`` (all features scale with the single-point KLs), the prediction shrinks by at least ``x``,
so it reaches zero at full precision as the measured loss does. Free fits on the byte LM's tensor-wise fit sets
come close to it already (docs/proxy.md, "The driver's form")."""
FLAT_KNOTS = 1e-3  # log units: a lowest segment narrower than this (a near-constant feature) carries no tail slope
LOG_FLOOR = 1e-2
"""Measured values below this fraction of the fit set's median enter the spline's log fit as that fraction: they
are at the measurement's noise level (a paired loss increase can be negative), and in logs they would otherwise
weigh without bound. A fraction, not a fixed value, because fit sets span 1e-7 (the tests' tiny LM) to 1 nats/token;
on the byte LM's checkpoint fit sets it clips only loss increases (4 of 64, three of them negative), no KL."""


def fit_spline(features: np.ndarray, measured: np.ndarray, segments: int = SPLINE_SEGMENTS):
    """``(coef, knots)`` of ``log y ~ coef[-1] + coef[:-1] . spline_basis(log features, knots)``, ``coef[:-1] >= 0``.

    Knots are each feature's quantiles over the fit set (``segments`` segments), the coefficients bounded least
    squares on ``log max(measured, LOG_FLOOR x median |measured|)``: a monotone additive model in log space (a
    product of monotone functions of the features), so more error in any feature never predicts less loss. When
    the lowest segments' slopes sum to less than :data:`TAIL_SLOPE`, the least squares are solved again with that
    sum as a constraint (SLSQP).
    """
    from scipy.optimize import lsq_linear, minimize

    logs = np.log(np.asarray(features, np.float64))
    knots = np.quantile(logs, np.linspace(0.0, 1.0, segments + 1), axis=0).T  # (G, K + 1)
    knots = knots + KNOT_GAP * np.arange(segments + 1)  # quantiles never fall, so the gaps are >= KNOT_GAP
    basis = np.asarray(spline_basis(jnp.asarray(logs), jnp.asarray(knots)), np.float64)
    design = np.concatenate([basis, np.ones((len(logs), 1))], axis=1)
    lower = np.zeros(design.shape[1])
    lower[-1] = -np.inf  # the intercept
    y = np.asarray(measured, np.float64)
    target = np.log(np.maximum(y, LOG_FLOOR * np.median(np.abs(y))))
    coef = lsq_linear(design, target, bounds=(lower, np.inf)).x
    gaps = knots[:, 1] - knots[:, 0]
    tail = np.zeros(design.shape[1])  # coef -> sum of the lowest slopes per log unit
    tail[:-1:segments] = np.where(gaps > FLAT_KNOTS, 1.0 / gaps, 0.0)
    if tail @ coef < TAIL_SLOPE and np.any(tail > 0):
        coef = minimize(
            lambda c: 0.5 * np.sum((design @ c - target) ** 2),
            coef,
            jac=lambda c: design.T @ (design @ c - target),
            bounds=[(0.0, None)] * (design.shape[1] - 1) + [(None, None)],
            constraints=[{"type": "ineq", "fun": lambda c: tail @ c - TAIL_SLOPE, "jac": lambda c: tail}],
            method="SLSQP",
            options={"maxiter": 500, "ftol": 1e-12},
        ).x
    return coef, knots
