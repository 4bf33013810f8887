"""Measured pairwise interactions of quantised points (IMPQ-style, arXiv 2509.15455; docs/proxy.md, "Measured
pairs").

For two points ``t`` and ``u`` (columns of the ``(L, 17)`` bit table) quantised to a reference width ``b`` with
everything else at full precision, the interaction is

    ``I_tu = KL(t, u) - KL(t) - KL(u)``

with ``KL(.)`` the mean per-token KL divergence from the full-precision model on calibration windows (the
singles measured in the same batch, on the same windows). IMPQ estimates such pairwise terms by Shapley
sampling; a model of 17 points a layer is small enough to measure each pair of a chosen set exactly. The forward
passes of many assignments run as one jitted, vmapped program (:data:`CHUNK` tables at a time).

Pair sets (:data:`PAIR_SETS`): ``block`` (points of the same attention or MLP block of one layer), ``layer``
(any two points of one layer) and ``all`` (any two points of the model).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from cimjax.cache import cache_dir, kept_if_possible
from cimjax.files import NPZ_UNREADABLE, atomic_savez
from cimjax.lm.model import Builder, DecoderLM, functional
from cimjax.quant.quantizers import FULL_PRECISION_BITS, QuantScheme
from cimjax.quant.sensitivity import BIT_GRID, quantised_loss_and_kl, reference_logp
from cimjax.workload.precision import N_POINTS, POINTS

PAIR_SETS = ("block", "layer", "all")
CHECKPOINT_PAIR_SET = "layer"
"""The pairs ``optimize --checkpoint --proxy pairwise`` measures unless told: ``136 L`` of them, linear in the layers
(``all`` grows as ``(17 L)^2 / 2``, 148,000 for 32 layers); on the byte LM's fit sets ``all`` and ``layer`` rank
alike (docs/proxy.md, "Measured pair interactions")."""
REFERENCE_BITS = 3  # the default reference width: low enough that interactions stand above the KL's rounding
CHUNK = 32  # assignments per batched forward pass
MLP_OPS = ("gate", "up", "down")
BLOCK = np.array([int(op in MLP_OPS) for _, op in POINTS])  # block of each column: 0 attention, 1 MLP


def pair_index(n_layers: int, pair_set: str) -> np.ndarray:
    """Flat point indices ``(P, 2)`` (``layer * 17 + column``, first < second) of the pairs of ``pair_set``."""
    if pair_set not in PAIR_SETS:
        raise ValueError(f"pair_set={pair_set!r} is not known; allowed: {PAIR_SETS}")
    layer = np.repeat(np.arange(n_layers), N_POINTS)
    block = np.tile(BLOCK, n_layers)
    i, j = np.triu_indices(n_layers * N_POINTS, 1)
    keep = {
        "block": (layer[i] == layer[j]) & (block[i] == block[j]),
        "layer": layer[i] == layer[j],
        "all": np.ones(len(i), bool),
    }[pair_set]
    return np.stack([i[keep], j[keep]], axis=1)


@dataclasses.dataclass(frozen=True)
class Pairs:
    """Single-point and pair KL divergences at one reference width (nats/token).

    Attributes:
      width: the reference width every quantised point of a measurement has.
      pair_set: which pairs were measured (:data:`PAIR_SETS`).
      single: KL with one point quantised ``(L, 17)``.
      index: the measured pairs' flat point indices ``(P, 2)`` (:func:`pair_index`).
      joint: KL with both points of each pair quantised ``(P,)``.
      cpu_seconds: process CPU time the measurement took (0 when read from the cache).
    """

    width: int
    pair_set: str
    single: np.ndarray
    index: np.ndarray
    joint: np.ndarray
    cpu_seconds: float = 0.0

    def interaction(self) -> np.ndarray:
        """``I_tu = KL(t, u) - KL(t) - KL(u)`` of each measured pair ``(P,)``."""
        s = self.single.reshape(-1)
        return self.joint - s[self.index[:, 0]] - s[self.index[:, 1]]

    def coefficients(self, floor: float = 1e-12) -> np.ndarray:
        """Symmetric ``(N, N)`` (``N = 17 L``, zero diagonal and unmeasured pairs): ``max(I_tu, 0) /
        sqrt(KL_t KL_u)``, the interaction per unit geometric mean of the two singles at the reference width
        (singles floored at ``floor``); negative interactions (sub-additive pairs) count as none."""
        s = np.maximum(self.single.reshape(-1), floor)
        i, j = self.index[:, 0], self.index[:, 1]
        w = np.zeros((len(s), len(s)))
        w[i, j] = w[j, i] = np.maximum(self.interaction(), 0.0) / np.sqrt(s[i] * s[j])
        return w


@functools.partial(jax.jit, static_argnums=(0, 1))
def _batch_kl(build: Builder, scheme: QuantScheme, params, windows, tables, ref_logp):
    """Mean per-token KL of each table ``(n, L, 17)``: one program for the whole batch."""
    return jax.vmap(lambda t: quantised_loss_and_kl(build, scheme, params, windows, t, ref_logp)[1])(tables)


def _tables(n_layers: int, index: np.ndarray, width: int) -> np.ndarray:
    """Bit tables of every single point, then of every pair of ``index``: full precision but those at ``width``."""
    n = n_layers * N_POINTS
    tables = np.full((n + len(index), n), FULL_PRECISION_BITS, np.float32)
    tables[np.arange(n), np.arange(n)] = width
    rows = n + np.arange(len(index))
    tables[rows, index[:, 0]] = tables[rows, index[:, 1]] = width
    return tables.reshape(-1, n_layers, N_POINTS)


def measure(
    model: DecoderLM, windows: np.ndarray, scheme: QuantScheme, width: int = REFERENCE_BITS, pair_set: str = "block"
) -> Pairs:
    """The :class:`Pairs` of ``model`` (prepared for ``scheme`` as its sensitivities are) on calibration
    ``windows`` ``(B, T + 1)``: ``17 L`` singles and the pairs of ``pair_set``, :data:`CHUNK` per forward pass."""
    if int(width) not in BIT_GRID:
        raise ValueError(f"width={width!r} is not a measured width; allowed: {BIT_GRID.tolist()}")
    start = time.process_time()
    build, params = functional(model)
    n_layers = model.spec.n_layers
    index = pair_index(n_layers, pair_set)
    tables = _tables(n_layers, index, int(width))
    w = jnp.asarray(windows)
    ref = reference_logp(build, params, w)
    padded = np.concatenate([tables, np.repeat(tables[:1], -len(tables) % CHUNK, axis=0)])  # one compile
    kl = np.concatenate([np.asarray(_batch_kl(build, scheme, params, w, padded[k : k + CHUNK], ref))
                         for k in range(0, len(padded), CHUNK)])[: len(tables)]  # fmt: skip
    n = n_layers * N_POINTS
    return Pairs(int(width), pair_set, kl[:n].reshape(n_layers, N_POINTS), index, kl[n:], time.process_time() - start)


def _key(model: DecoderLM, windows: np.ndarray, scheme: QuantScheme, width: int, pair_set: str) -> str:
    """Content key: every parameter (GPTQ copies included), the windows, the quantiser, width and pair set."""
    digest = hashlib.sha256()
    for name, value in sorted(functional(model)[1].items()):
        digest.update(name.encode() + b"\0" + np.ascontiguousarray(np.asarray(value)).tobytes())
    digest.update(np.ascontiguousarray(np.asarray(windows, np.int64)).tobytes())
    digest.update(json.dumps([dataclasses.asdict(scheme), int(width), pair_set], sort_keys=True).encode())
    return digest.hexdigest()[:24]


def cached(
    model: DecoderLM, windows: np.ndarray, scheme: QuantScheme, width: int = REFERENCE_BITS, pair_set: str = "block"
) -> Pairs:
    """:func:`measure`, read from ``$CIMJAX_CACHE/pairs`` when this model, windows, quantiser, width and pair
    set were measured before (written there otherwise; a damaged entry is measured again)."""
    path = cache_dir() / "pairs" / f"{_key(model, windows, scheme, width, pair_set)}.npz"
    if path.is_file():
        try:
            with np.load(path) as d:
                return Pairs(int(d["width"]), str(d["pair_set"]), d["single"], d["index"], d["joint"])
        except NPZ_UNREADABLE:
            pass
    pairs = measure(model, windows, scheme, width, pair_set)
    with kept_if_possible():
        atomic_savez(path, width=pairs.width, pair_set=pairs.pair_set, single=pairs.single, index=pairs.index,
                     joint=pairs.joint)  # fmt: skip
    return pairs


def of_checkpoint(model: DecoderLM, measured, pair_set: str = CHECKPOINT_PAIR_SET) -> Pairs:
    """The :func:`cached` pairs of a measured checkpoint (a :class:`cimjax.quant.measured.Measured`) at
    :data:`REFERENCE_BITS`: ``model`` as its quantiser sees it (``measured.model(weights)``), on its sensitivity
    windows, under its quantiser (as ``proxy validate`` measures them)."""
    return cached(model, measured.calibration.sensitivity_tokens(), measured.scheme, REFERENCE_BITS, pair_set)
