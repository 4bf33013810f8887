"""GPTQ weight quantisation (Frantar et al., ICLR 2023) on the grid of the scheme's own scales.

For a linear ``y = x W^T`` (``W`` is ``(out, in)``) and calibration inputs ``X`` ``(N, in)``, GPTQ chooses
the codes of ``W`` for a small output error ``||X W^T - X Q^T||^2 = N/2 sum_i (w_i - q_i) H (w_i - q_i)^T``
with ``H = 2 X^T X / N``. Columns are quantised one at a time, in index order or, with act-order (the
reference's ``--act-order``), by descending ``diag(H)`` (:func:`column_order`; ``W`` and ``H`` permuted,
the codes put back after); the rounding error of column ``j`` is spread over the columns not yet quantised
(the optimal-brain-surgeon update, in the permuted order):

    e = (w_j - q_j) / U_jj,    W[:, j+1:] -= e U[j, j+1:]

where ``U`` is the upper Cholesky factor of ``(H + lambda I)^-1`` (``= U^T U``) and ``lambda`` is
:data:`DAMP` of the mean diagonal of ``H`` (the reference's ``percdamp``). An input that is zero on every
calibration token (``H_jj = 0``) gets ``H_jj = 1`` and a zero weight column, as in the reference. Updates
are applied lazily in blocks of :data:`BLOCK` columns (the reference's order of the same arithmetic).
A guard the reference lacks: an output row whose calibration error ``(w_i - q_i) H (w_i - q_i)^T`` is above
round to nearest's on the same grid keeps round to nearest's codes (on a clipped grid, the updates can push
later weights past the range, where they saturate), so no layer's output error on the calibration inputs
exceeds round to nearest's.

The grid is the scheme's: per output channel (or group, or tensor) scale and zero point from the
full-precision ``W``, MSE clip included (:func:`cimjax.quant.quantizers.entry_grid`), fixed before the loop
(act-order permutes each column's own scale with it): codes, widths and dequantisation are those of round to
nearest; only which code each weight gets differs. Each linear's ``H`` comes from the full-precision model's
inputs on training-split windows (:meth:`cimjax.quant.calibration.Calibration.gptq_tokens`), so each
tensor is quantised independently of the other tensors' bits and any mixed assignment is well defined. The
copies for every width of :data:`GPTQ_WIDTHS` are computed once per checkpoint and held by the model
(:func:`prepare`); the quantisation hooks select one by the tensor's width.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import jax
import numpy as np

from cimjax.cache import cache_dir, kept_if_possible, source_fingerprint
from cimjax.files import NPZ_UNREADABLE, atomic_savez
from cimjax.lm.model import DecoderLM, Hooks, QuantisedWeights, functional, observe
from cimjax.quant.quantizers import GPTQ_WIDTHS, TensorScheme, entry_grid
from cimjax.workload.precision import LINEAR_OPS

DAMP = 0.01  # dampening: this fraction of the mean diagonal of H is added to it (the reference's percdamp)
BLOCK = 128  # columns per lazy batch update


class _Inputs(Hooks):
    """Accumulates ``X^T X`` (float64) and the token count of every linear's input (eager calls only)."""

    def __init__(self):
        self.gram: dict[tuple[int, str], np.ndarray] = {}
        self.count: dict[tuple[int, str], int] = {}

    def act(self, layer, op, x):
        if op in LINEAR_OPS:
            rows = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
            key = (layer, op)
            self.gram[key] = self.gram.get(key, 0.0) + rows.T @ rows
            self.count[key] = self.count.get(key, 0) + len(rows)
        return x


def hessians(model: DecoderLM, windows: np.ndarray, chunk: int = 16) -> dict[tuple[int, str], np.ndarray]:
    """``H = 2 X^T X / N`` of every linear ``(layer, op)`` from its full-precision inputs on ``windows``."""
    hooks = observe(model, windows, _Inputs(), chunk)
    return {key: 2.0 * gram / hooks.count[key] for key, gram in hooks.gram.items()}


def _inverse_factor(h: np.ndarray) -> np.ndarray:
    """Upper ``U`` with ``U^T U = (H + lambda I)^-1``, ``lambda = DAMP mean(diag H)``."""
    h = h + DAMP * np.mean(np.diag(h)) * np.eye(len(h))
    return np.linalg.cholesky(np.linalg.inv(h)).T


def quantise(w: np.ndarray, h: np.ndarray, widths, scheme: TensorScheme, act_order: bool = False) -> np.ndarray:
    """GPTQ's dequantised copies of ``w`` ``(out, in)`` at each of ``widths`` (``(n, out, in)``, float32),
    on ``scheme``'s grid, with input Hessian ``h`` ``(in, in)``; with ``act_order`` the columns are quantised
    in descending ``diag(H)`` order (:func:`column_order`)."""
    w = np.asarray(w, np.float64)
    grids = [entry_grid(w, b, scheme) for b in widths]
    scale, zero = (np.stack([g[i] for g in grids]) for i in (0, 1))
    lower, top = (np.array([g[i] for g in grids])[:, None] for i in (2, 3))
    h = np.array(h, np.float64)
    order = column_order(h) if act_order else np.arange(len(h))
    q = np.empty_like(scale)
    q[:, :, order] = _columns(w[:, order], h[np.ix_(order, order)], scale[:, :, order], zero[:, :, order], lower, top)
    nearest = _on_grid(w, scale, zero, lower[:, :, None], top[:, :, None])
    keep = _row_errors(w - q, h) <= _row_errors(w - nearest, h)
    return np.where(keep[:, :, None], q, nearest).astype(np.float32)


def column_order(h: np.ndarray) -> np.ndarray:
    """Act-order: the input columns by descending ``diag(H)`` (ties in index order), so the inputs with the
    most energy are quantised first, while every later column can still absorb their error."""
    return np.argsort(-np.diag(h), kind="stable")


def _on_grid(x: np.ndarray, scale, zero, lower, top) -> np.ndarray:
    """``x`` rounded to the grid's nearest code and dequantised: ``S (clamp(round(x / S) + Z, lower, top) - Z)``."""
    return scale * (np.clip(np.round(x / scale) + zero, lower, top) - zero)


def _row_errors(diff: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``(w_i - q_i) H (w_i - q_i)^T`` per width and output row, ``(n, out)``."""
    return np.einsum("kij,jl,kil->ki", diff, np.asarray(h, np.float64), diff)


def _columns(w, h, scale, zero, lower, top) -> np.ndarray:
    """The column loop with error feedback (module docstring), every width at once, ``(n, out, in)``."""
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    u = _inverse_factor(h)
    work = np.broadcast_to(np.where(dead[None, :], 0.0, w), scale.shape).copy()
    out = np.empty_like(work)
    n_in = w.shape[1]
    for b0 in range(0, n_in, BLOCK):
        b1 = min(b0 + BLOCK, n_in)
        block, err = work[:, :, b0:b1], np.empty((len(scale), w.shape[0], b1 - b0))
        for i in range(b1 - b0):
            j = b0 + i
            s, z = scale[:, :, j], zero[:, :, j]
            q = _on_grid(block[:, :, i], s, z, lower, top)
            out[:, :, j] = q
            err[:, :, i] = (block[:, :, i] - q) / u[j, j]
            block[:, :, i + 1 :] -= err[:, :, i, None] * u[j, j + 1 : b1]
        work[:, :, b1:] -= err @ u[b0:b1, b1:]
    return out


def prepare(
    model: DecoderLM, windows: np.ndarray, scheme: TensorScheme, act_order: bool = False, cache: bool = True
) -> DecoderLM:
    """A copy of ``model`` whose every decoder linear holds GPTQ's copies at :data:`GPTQ_WIDTHS`
    (:class:`QuantisedWeights`), from the Hessians of ``windows`` (training-split windows, never the check
    ones), columns in act-order if ``act_order``. The model's own weights are unchanged. With ``cache`` the
    copies are read from, or written to, ``$CIMJAX_CACHE/gptq`` under a hash of all they depend on
    (:func:`cache_file`), so a checkpoint is not quantised again on every load (a damaged file is
    recomputed)."""
    build, params = functional(model)
    copy = build(params)
    shapes = {(layer, op): (len(GPTQ_WIDTHS), *copy.linear(layer, op).weight.shape)
              for layer in range(model.spec.n_layers) for op in LINEAR_OPS}  # fmt: skip
    path = cache_file(params, windows, scheme, act_order) if cache else None
    copies = _read(path, shapes) if path is not None else None
    if copies is None:
        copies = {key: quantise(np.asarray(model.linear(*key).weight[...]), h, GPTQ_WIDTHS, scheme, act_order)
                  for key, h in hessians(model, windows).items()}  # fmt: skip
        if path is not None:
            _write(path, copies)
    for key, q in copies.items():
        copy.linear(*key).quantised = QuantisedWeights(q)
    return copy


def cache_file(params: dict, windows: np.ndarray, scheme: TensorScheme, act_order: bool) -> Path:
    """Where :func:`prepare` keeps the copies: a SHA-256 of the model's parameters (names, shapes, float32
    bytes), the windows' token ids, the grid, the order, and the code that computes them (every cimjax
    source file and the JAX version: copies on disk are reused only by the code that made them)."""
    settings = [source_fingerprint(), jax.__version__, dataclasses.asdict(scheme), act_order]
    digest = hashlib.sha256(json.dumps(settings).encode())
    arrays = [("windows", np.asarray(windows, np.int64))]
    arrays += [(name, np.asarray(params[name], np.float32)) for name in sorted(params)]
    for name, a in arrays:
        digest.update(f"{name}{a.shape}".encode() + np.ascontiguousarray(a).tobytes())
    return cache_dir() / "gptq" / f"{digest.hexdigest()[:32]}.npz"


def _read(path: Path, shapes: dict) -> dict | None:
    """The copies of ``path`` if it holds every linear of ``shapes`` at its shape, else None."""
    try:
        with np.load(path) as stored:
            copies = {key: stored[f"{key[0]}.{key[1]}"] for key in shapes}
    except NPZ_UNREADABLE:
        return None
    return copies if all(copies[key].shape == shape for key, shape in shapes.items()) else None


def _write(path: Path, copies: dict) -> None:
    with kept_if_possible():
        atomic_savez(path, **{f"{layer}.{op}": q for (layer, op), q in copies.items()})
