"""Paired measurement: the loss and KL of quantised assignments against full precision on the same windows,
with the standard error of each mean over windows.

The loss increase of an assignment is the mean over windows of ``loss_quantised(w) - loss_full(w)``; both
terms see the same tokens, so the token-to-token spread of the loss itself cancels and only the spread of
the *difference* remains. Its standard error is taken by batch means (:func:`standard_error`): consecutive
windows share a topic of the corpus, and how sensitive the text is to quantisation varies from topic to
topic, so windows are not independent (on the trained byte LM the standard error of uniform INT4's loss
increase from blocks of 32 windows is 3x the one that treats windows as independent; at INT8 the
token-to-token noise dominates and the two agree). The same holds for the per-token KL divergence.
Windows go through the model :data:`CHUNK` at a time, so memory stays bounded for thousands of windows.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from scipy import stats

from cimjax.lm.model import DecoderLM, functional
from cimjax.quant.quantizers import DEFAULT_SCHEME, FULL_PRECISION_BITS, QuantScheme
from cimjax.quant.sensitivity import Progress, reference_logp, window_loss_and_kl
from cimjax.workload.precision import N_POINTS

CHUNK = 64  # windows per forward pass


@dataclasses.dataclass(frozen=True)
class Paired:
    """Measured means ``(n,)`` of ``n`` assignments (nats/token) and their standard errors over windows.

    Attributes:
      loss, loss_se: the loss increase over full precision and its standard error.
      kl, kl_se: the mean per-token ``KL(p_full || p_quantised)`` and its standard error.
      base: the full-precision loss.
      windows: how many windows every value is a mean over.
      loss_windows, kl_windows: the per-window values ``(n, windows)`` the means are taken over.
    """

    loss: np.ndarray
    loss_se: np.ndarray
    kl: np.ndarray
    kl_se: np.ndarray
    base: float
    windows: int
    loss_windows: np.ndarray
    kl_windows: np.ndarray

    def of(self, target: str) -> tuple[np.ndarray, np.ndarray]:
        """``(values, standard errors)`` of ``target`` (``loss`` or ``kl``, checked by the caller)."""
        return {"loss": (self.loss, self.loss_se), "kl": (self.kl, self.kl_se)}[target]

    def windows_of(self, target: str) -> np.ndarray:
        """The per-window values ``(n, windows)`` of ``target``."""
        return {"loss": self.loss_windows, "kl": self.kl_windows}[target]


def standard_error(per_window: np.ndarray) -> np.ndarray:
    """Standard error of the mean over the last axis ``(W,)`` by batch means: the ``W // b`` blocks of
    ``b = floor(sqrt(W))`` consecutive windows (a remainder left out), ``sd(block means) / sqrt(blocks)``;
    with fewer than 2 blocks, every window its own block; zero for a single window."""
    x = np.asarray(per_window, np.float64)
    n = x.shape[-1]
    if n < 2:
        return np.zeros(x.shape[:-1])
    size = int(np.sqrt(n)) if n // int(np.sqrt(n)) >= 2 else 1
    blocks = x[..., : n // size * size].reshape(*x.shape[:-1], n // size, size).mean(axis=-1)
    return np.std(blocks, axis=-1, ddof=1) / np.sqrt(blocks.shape[-1])


def paired(
    model: DecoderLM,
    windows: np.ndarray,
    tables: np.ndarray,
    scheme: QuantScheme = DEFAULT_SCHEME,
    progress: Progress | None = None,
) -> Paired:
    """The :class:`Paired` measurement of each bit table ``(n, L, 17)`` on ``windows`` ``(W, seq_len + 1)``
    (``progress``: see :data:`Progress`)."""
    build, params = functional(model)
    tables = np.asarray(tables, np.float32).reshape(-1, model.spec.n_layers, N_POINTS)
    full = np.full((model.spec.n_layers, N_POINTS), FULL_PRECISION_BITS, np.float32)
    loss = np.zeros((len(tables), len(windows)))
    kl, base = np.zeros_like(loss), np.zeros(len(windows))
    starts = range(0, len(windows), CHUNK)
    total, done = len(starts) * len(tables), 0
    for start in starts:
        part = slice(start, start + CHUNK)
        w = jnp.asarray(windows[part])
        ref = reference_logp(build, params, w)
        base[part] = np.asarray(window_loss_and_kl(build, scheme, params, w, full, ref)[0])
        for i, table in enumerate(tables):
            nll, div = window_loss_and_kl(build, scheme, params, w, table, ref)
            loss[i, part], kl[i, part] = np.asarray(nll) - base[part], np.asarray(div)
            done += 1
            if progress is not None:
                progress(done, total)
    return Paired(
        loss=loss.mean(axis=1),
        loss_se=standard_error(loss),
        kl=kl.mean(axis=1),
        kl_se=standard_error(kl),
        base=float(base.mean()),
        windows=len(windows),
        loss_windows=loss,
        kl_windows=kl,
    )


RESOLVED_Z = 2.0
"""Standard errors beyond which the difference of two paired means counts as resolved (~95 %, two-sided)."""


def resolved(per_window: np.ndarray, z: float = RESOLVED_Z) -> np.ndarray:
    """``(n, n)`` booleans (symmetric, diagonal False): whether the measurements ``(n, W)`` of assignments ``i``
    and ``j`` on the same windows differ by more than ``z`` standard errors of their difference.

    Why: two assignments measured on the same windows share those windows' difficulty, so what decides
    whether their order is known is the spread of their per-window *difference* (by batch means,
    :func:`standard_error`), not the standard error of each mean.
    """
    x = np.asarray(per_window, np.float64)
    i, j = np.triu_indices(len(x), 1)
    diff = x[i] - x[j]
    out = np.zeros((len(x), len(x)), bool)
    out[i, j] = out[j, i] = np.abs(diff.mean(axis=1)) > z * standard_error(diff)
    return out


def split_half_tau(per_window: np.ndarray) -> float | None:
    """Kendall tau between the means over the even and over the odd windows of measurements ``(n, W)``:
    how well the measurement, on half of its windows, ranks the assignments as the other half does (None
    when undefined: fewer than 2 windows, or a half constant)."""
    x = np.asarray(per_window, np.float64)
    if x.shape[1] < 2:
        return None
    even, odd = x[:, ::2].mean(axis=1), x[:, 1::2].mean(axis=1)
    if np.ptp(even) == 0 or np.ptp(odd) == 0:
        return None
    return float(stats.kendalltau(even, odd).statistic)
