"""Pareto tools for latency/energy trade-offs: non-dominated filtering, hypervolume and alpha sweeps.

All objectives are minimised. The paper scalarises latency L and energy E as ``L**alpha * E**(1-alpha)``;
for alpha in [0, 1] that objective is monotone in both, so its minimiser over any set of designs can be
taken on the set's Pareto front, which is what makes :func:`alpha_sweep` cheap over millions of designs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_CHUNK_ELEMENTS = 1 << 24
"""Largest (rows, n, k) comparison block built at once by the general-k dominance check."""


def _as_points(points) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] == 0:
        raise ValueError(f"points must have shape (n, k) with k >= 1, got shape {points.shape}")
    if np.isnan(points).any():
        raise ValueError(f"points contain NaN (first at row {int(np.isnan(points).any(axis=1).argmax())})")
    return points


def _non_dominated_2d(points: np.ndarray) -> np.ndarray:
    """O(n log n) with one sort by x: a point survives iff it has the smallest y within its group of equal
    x and a y strictly below every point of the groups with smaller x."""
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(points[:, 0])
    xs, ys = points[order, 0], points[order, 1]
    starts = np.flatnonzero(np.concatenate(([True], xs[1:] != xs[:-1])))
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(xs))))
    group_min = np.minimum.reduceat(ys, starts)
    min_before = np.minimum.accumulate(ys)[np.maximum(starts - 1, 0)]
    keep_sorted = (ys == group_min[group]) & ((group == 0) | (ys < min_before[group]))
    mask = np.empty(len(xs), dtype=bool)
    mask[order] = keep_sorted
    return mask


def _non_dominated_general(points: np.ndarray) -> np.ndarray:
    """O(n^2 k) pairwise check, chunked over rows to bound memory."""
    n, k = points.shape
    mask = np.empty(n, dtype=bool)
    rows = max(1, _CHUNK_ELEMENTS // max(1, n * k))
    for lo in range(0, n, rows):
        block = points[lo : lo + rows, None, :]  # candidates p
        others = points[None, :, :]  # possible dominators q
        dominated = np.any(np.all(others <= block, axis=2) & np.any(others < block, axis=2), axis=1)
        mask[lo : lo + rows] = ~dominated
    return mask


def non_dominated(points) -> np.ndarray:
    """Marks the points no other point dominates (all objectives minimised).

    ``q`` dominates ``p`` when it is no worse in every objective and better in one, so duplicates of a
    non-dominated point are all kept.

    Args:
        points: Objective values, shape (n, k); ``inf`` is allowed, NaN is not.

    Returns:
        Boolean mask of shape (n,). Costs O(n log n) for k <= 2 and O(n^2 k) otherwise (meant for small n).
    """
    points = _as_points(points)
    if points.shape[1] == 1:
        return points[:, 0] == points[:, 0].min(initial=np.inf)
    if points.shape[1] == 2:
        return _non_dominated_2d(points)
    return _non_dominated_general(points)


def pareto_front_2d(x, y) -> np.ndarray:
    """Indices of the non-dominated designs of two minimised objectives, by increasing ``x``.

    Args:
        x: First objective (e.g. latency), shape (n,).
        y: Second objective (e.g. energy), shape (n,).

    Returns:
        Integer indices into ``x``/``y``; ``y`` decreases along them (ties in both are kept, by index).
    """
    points = _as_points(np.stack(_same_length_1d(x, y, names=("x", "y")), axis=1))
    front = np.flatnonzero(_non_dominated_2d(points))
    return front[np.lexsort((front, points[front, 1], points[front, 0]))]


def hypervolume(points, reference) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (all objectives minimised).

    Exact by a sum of rectangles for k = 2; pymoo's HV indicator (also exact) for other k.

    Args:
        points: Objective values, shape (n, k), each no worse than ``reference`` in every objective.
        reference: Reference point, shape (k,), e.g. a little beyond the worst design.

    Returns:
        The hypervolume (0.0 for no points).

    Raises:
        ValueError: On NaN or non-finite values, mismatched dimensions, or a point worse than the
            reference in some objective (the reference must be dominated by every point).
    """
    points = _as_points(points)
    reference = np.asarray(reference, dtype=np.float64)
    if reference.shape != (points.shape[1],):
        raise ValueError(f"reference must have shape ({points.shape[1]},) to match points, got {reference.shape}")
    if not (np.isfinite(points).all() and np.isfinite(reference).all()):
        raise ValueError("hypervolume needs finite points and a finite reference")
    beyond = np.any(points > reference, axis=1)
    if beyond.any():
        row = int(beyond.argmax())
        raise ValueError(
            f"reference {reference.tolist()} does not bound point {row} = {points[row].tolist()}; "
            "choose a reference no better than every point in every objective, or drop that point"
        )
    if len(points) == 0:
        return 0.0
    if points.shape[1] != 2:
        from pymoo.indicators.hv import HV  # only needed for k > 2; keeps pymoo off the import path

        return float(HV(ref_point=reference)(points))
    front = points[_non_dominated_2d(points)]
    front = front[np.lexsort((front[:, 1], front[:, 0]))]
    widths = np.diff(np.append(front[:, 0], reference[0]))
    return float(np.sum(widths * (reference[1] - front[:, 1])))


def _same_length_1d(*arrays, names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    out = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
    for a, name in zip(out, names, strict=True):
        if a.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if len({a.shape for a in out}) != 1:
        shapes = ", ".join(f"{name} {a.shape}" for a, name in zip(out, names, strict=True))
        raise ValueError(f"shapes differ: {shapes}")
    return out


def check_alphas(alphas) -> None:
    """ValueError naming the first alpha outside [0, 1] (NaN included), or an alpha that is not a number."""
    try:
        values = np.asarray(alphas)
        if values.dtype.kind not in "iuf":  # a bool, None, a string or a dict is no weight
            raise TypeError
        alphas = np.atleast_1d(values.astype(np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"alpha = {alphas!r} is not allowed; allowed: numbers in [0, 1]") from None
    bad = ~((alphas >= 0.0) & (alphas <= 1.0))  # also catches NaN
    if bad.any():
        raise ValueError(f"alpha = {float(alphas[bad][0])!r} is outside the allowed range [0, 1]")


def _check_metrics(latency: np.ndarray, energy: np.ndarray) -> None:
    for values, name in ((latency, "latency"), (energy, "energy")):
        if np.isnan(values).any():
            raise ValueError(f"{name} contains NaN")
        if (values <= 0).any():
            raise ValueError(f"{name} must be positive (the objective is taken in log space), got {values.min()}")


def _weighted_log(weight, values, xp):
    """``weight * log(values)`` with 0 * log(inf) = 0, so alpha = 0 or 1 ignores the other metric fully."""
    with np.errstate(invalid="ignore"):
        return xp.where(weight == 0, 0.0, weight * xp.log(values))


def log_alpha_objective(latency, energy, alpha):
    """``alpha log L + (1 - alpha) log E``, the log of :func:`alpha_objective` (with 0 log inf = 0), unchecked:
    what gradient descents minimise. Jittable and differentiable; ``alpha`` may be traced."""
    xp = jnp if any(isinstance(x, jax.Array) for x in (latency, energy, alpha)) else np
    return _weighted_log(alpha, latency, xp) + _weighted_log(1.0 - alpha, energy, xp)


def alpha_objective(latency, energy, alpha: float):
    """The paper's scalarised objective ``latency**alpha * energy**(1 - alpha)``, formed in log space.

    NumPy inputs are validated; JAX inputs are computed with ``jax.numpy`` (jittable and differentiable
    in ``latency``/``energy``), and checked only when they are concrete.

    Args:
        latency: Positive latencies (any shape; ``inf`` allowed for infeasible designs).
        energy: Positive energies, broadcastable with ``latency``.
        alpha: Weight of latency, in [0, 1]; 1 is latency only, 0 energy only.

    Returns:
        The objective, broadcast shape of the inputs (a JAX array for JAX inputs).
    """
    check_alphas(alpha)
    alpha = float(alpha)
    if isinstance(latency, jax.Array) or isinstance(energy, jax.Array):
        xp = jnp
        if not isinstance(latency, jax.core.Tracer) and not isinstance(energy, jax.core.Tracer):
            _check_metrics(np.asarray(latency), np.asarray(energy))
    else:
        xp = np
        latency, energy = np.asarray(latency, dtype=np.float64), np.asarray(energy, dtype=np.float64)
        _check_metrics(latency, energy)
    return xp.exp(log_alpha_objective(latency, energy, alpha))


def alpha_sweep(latency, energy, alphas) -> np.ndarray:
    """Index of the design minimising :func:`alpha_objective` for each alpha.

    Only the latency/energy Pareto front is scored (the minimum always lies on it), so millions of designs
    cost one sort plus ``len(alphas) x front size`` work. Ties go to the lowest index on the front, so
    alpha = 1 picks the least-energy design among the fastest ones.

    Args:
        latency: Positive latencies of n designs, shape (n,).
        energy: Positive energies of the same designs, shape (n,).
        alphas: Weights of latency, each in [0, 1], shape (m,) (or a scalar).

    Returns:
        Integer design indices, shape (m,).
    """
    latency, energy = _same_length_1d(latency, energy, names=("latency", "energy"))
    if latency.size == 0:
        raise ValueError("alpha_sweep needs at least one design")
    _check_metrics(latency, energy)
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if alphas.ndim != 1:
        raise ValueError(f"alphas must be a scalar or 1-D, got shape {alphas.shape}")
    check_alphas(alphas)
    front = pareto_front_2d(latency, energy)
    a = alphas[:, None]
    scores = _weighted_log(a, latency[front][None, :], np) + _weighted_log(1.0 - a, energy[front][None, :], np)
    return front[np.argmin(scores, axis=1)]
