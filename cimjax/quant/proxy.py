"""The accuracy proxy: predicted increase of the LM loss (nats/token) under a :class:`Precision`.

Every variant is linear in non-negative features of the bits, ``dL(b) = sum_g coef_g * f_g(b)``, each
feature a sum over points (quantised tensors, :data:`cimjax.workload.precision.POINTS`) that falls
smoothly and monotonically as bits grow, so every variant is differentiable in continuous bits and more
bits never predict more loss (coefficients are non-negative). With ``e_t(b)`` an error energy:

* ``hessian_noise``:   ``sum_t 0.5 (tr H_t / n_t) C_t / levels(b_t)^2``  (HAWQ-V2 trace x ``Delta^2/12``)
* ``fisher_noise``:    the same with the empirical-Fisher trace.
* ``hessian_measured``: ``sum_t 0.5 (tr H_t / n_t) err_t(b_t)`` with the measured error curve.
* ``fisher_measured``:  the same with the Fisher trace.
* ``outmse_measured``:  ``a * sum_t (outmse_t / n_t) err_t(b_t)``: output-MSE sensitivity; ``a`` (nats per
  unit output error energy) is fitted, the only way to give output MSE loss units.
* ``loss_curves``:      ``sum_t dL_t(b_t)``: measured single-point loss increases, interpolated.
* ``higgs``:            ``sum_g a_g sum_{t in g} err_t(b_t) / ||x_t||^2``: HIGGS-style linear model in the
  relative errors, one coefficient per layer and tensor kind (weights, activations, KV), fitted by
  non-negative least squares on measured losses of assignments that are not used to judge it.
* ``interaction``:   ``a sum_t d_t + sum_l c_l (sum_{t in l} sqrt d_t)^2 + g (sum_t sqrt d_t)^2
  + p sum_{l, op} sqrt(d_W,l,op d_X,l,op)`` with ``d_t = KL_t(b_t)`` the measured single-point KL
  divergences from the full-precision model (non-negative, unlike single-point loss changes, which are
  noise-dominated at high bits; the target stays the loss increase):
  the additive model plus interaction terms -- errors compounding inside a layer, across the whole model,
  and between the weight and the input of the same matmul (the ``dW dX`` product of ``(W + dW)(X + dX)``).
  Expanding a square gives every pairwise product ``sqrt(d_t d_u)``: the interaction of two points is
  assumed to scale with the geometric mean of their single-point effects, with one coefficient per group
  (layer block, model, matmul). The ``2 L + 3`` coefficients are fitted (non-negative least squares on
  *relative* errors) on measured mixed assignments, the additive one at least 1 and the saturation scale
  bounded below (:class:`ProxyKind`: ``additive_floor``, ``saturation_floor``).
* ``pairwise``: ``a sum_t d_t + sum_g c_g sum_{t<u in g} w_tu sqrt(d_t d_u)``, ``w_tu`` the *measured* pair
  interactions (:meth:`cimjax.quant.pairs.Pairs.coefficients`, ``Proxy.pairs``), one scale ``c_g`` per pair
  group (attention block, MLP block, across a layer's blocks, across layers); fitted as ``interaction``.
* ``interaction_spline``: ``exp(c + sum_g h_g(log f_g))`` over ``interaction``'s features ``f_g``, each ``h_g`` a
  non-decreasing piecewise-linear spline (:data:`~cimjax.quant.fitting.SPLINE_SEGMENTS` segments between the fit
  set's quantiles, linear beyond them), fitted by bounded least squares on log losses
  (:func:`~cimjax.quant.fitting.fit_spline`): the same features combined by a monotone function learnt from the
  fit set instead of a weighted sum; no additive or saturation floor.
* ``interaction_envelope``: ``max(interaction, interaction_spline)``, each fitted on its own: the pessimistic
  driver, which keeps ``interaction``'s floors and the spline's tail (the optimiser gains nothing from a gap in
  one fit the other does not share).
* ``default``: for models without weights, :func:`cimjax.quant.default_proxy.default_proxy` -- an assumption,
  labelled as such.

Negative Hessian-trace estimates (sampling noise, or non-convex directions) are set to zero.

Each variant is a :class:`ProxyKind` (a name, a features function, whether it is fitted, its assumption
and gain cap); :func:`make_proxy` and :func:`~cimjax.quant.default_proxy.default_proxy` are the factories that
give a :class:`Proxy` of a kind. The joint optimiser uses only the :class:`AccuracyProxy` protocol, so a new
proxy is a features function and a kind (or any pytree with that protocol) in one file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from cimjax.quant.fitting import KNOT_GAP, SPLINE_SEGMENTS, fit_saturation, fit_spline, saturate, spline_value
from cimjax.quant.pairs import BLOCK
from cimjax.quant.quantizers import levels
from cimjax.quant.sensitivity import Sensitivities, log_interp
from cimjax.workload.precision import LINEAR_OPS, POINTS, PRESETS, Precision
from cimjax.workload.spec import ModelSpec

LOSS_FLOOR = 1e-6  # nats/token: measured single-point increases below this are treated as this
# nats/token: the interaction proxy's single-point KL floor, far below any measured one (>= 2.6e-8 at 8 bits on
# the benchmark LMs): with its additive coefficient >= 1, LOSS_FLOOR would price every point at least 1e-6
KL_FLOOR = 1e-10
_KINDS = ("weight", "act", "kv")
_TINY = 1e-30  # floor of interpolated error energies
# Least saturation scale of the interaction proxy, in units of its additive sum x4 at the widest preset (INT4):
# at x = x4 = s/4, s ln(1 + x/s) is within 11 % of x and its slope 1/(1 + x/s) is 0.8, so the optimiser, whose
# budgets reach uniform INT4, cannot buy bits where the saturation flattens the proxy (docs/proxy.md).
SATURATION_MARGIN = 4.0


@runtime_checkable
class AccuracyProxy(Protocol):
    """What the joint optimiser needs of an accuracy proxy, and all it uses.

    ``proxy(precision)`` is the predicted loss increase in nats/token, differentiable in continuous bits
    (the descent takes its gradient with ``jax.grad`` through :meth:`Precision.from_table`) and
    non-increasing in every entry; the proxy is a JAX pytree, so it enters compiled programs as data.
    ``name`` is reported (``proxy_name``) and part of a checkpoint's fingerprint; ``assumption`` says why
    its numbers may not hold for the model at hand (None when measured on it); ``gain_cap`` the most any
    assignment can gain under it, and why (None when no cap is known). Runtime-checkable, so an entry point
    can refuse a value that has none of these.
    """

    name: str
    assumption: str | None
    gain_cap: str | None

    def __call__(self, precision: Precision) -> jax.Array: ...


@dataclasses.dataclass(frozen=True)
class ProxyKind:
    """What makes one kind of :class:`Proxy`: its name and ``features(proxy, table)``, the non-negative
    features ``(G,)`` of a bit table ``(L, 17)`` (static: compiled into the programs that use it).

    Attributes:
      fitted: its coefficients are fitted on measured losses (:func:`fit_proxy`).
      relative_fit: fitted on relative errors (budgets span 1e-4..1 nats/token).
      saturations: saturation scales the fit may choose, as multiples of the fit set's median measured value
        (:func:`fit_saturation`); linear (no saturation) is always a choice.
      additive_floor: the least coefficient of the first feature, when it is the sum of the measured
        single-point effects: with it a tensor quantised alone is never priced below its own measured effect.
      saturation_floor: the least saturation scale, as a multiple of the first feature at the widest uniform
        preset (:func:`saturation_floor`): the proxy stays nearly linear up to the largest budget.
      segments: 0 for ``saturate(coef . features)``; else the prediction is a monotone spline of the log
        features with this many segments each (:func:`~cimjax.quant.fitting.fit_spline`; ``Proxy.knots``).
      envelope: with ``segments``, the prediction is the larger of the spline and ``saturate(coef . features)``
        (its coefficients first in ``Proxy.coef``, then the spline's).
      assumption, gain_cap: see :class:`AccuracyProxy`.
    """

    name: str
    features: Callable[[Proxy, jax.Array], jax.Array] = dataclasses.field(repr=False)
    fitted: bool = False
    relative_fit: bool = False
    saturations: tuple[float, ...] = ()
    additive_floor: float = 0.0
    saturation_floor: float = 0.0
    segments: int = 0
    envelope: bool = False
    assumption: str | None = None
    gain_cap: str | None = None


def levels_table(table: jax.Array, symmetric: jax.Array) -> jax.Array:
    """Quantisation levels of each bit width of ``table``, symmetric or not per column."""
    return jnp.where(symmetric > 0, levels(table, True), levels(table, False))


def _hessian(sens: Sensitivities) -> jax.Array:
    return 0.5 * jnp.maximum(sens.hessian, 0.0) / sens.numel


def _fisher(sens: Sensitivities) -> jax.Array:
    return 0.5 * sens.fisher / sens.numel


def _noise(sens: Sensitivities, table: jax.Array) -> jax.Array:
    return sens.noise_c / levels_table(table, sens.symmetric) ** 2


def _err(sens: Sensitivities, table: jax.Array) -> jax.Array:
    return log_interp(table, sens.err, _TINY)


def _hessian_noise(proxy: Proxy, table: jax.Array) -> jax.Array:
    return jnp.sum(_hessian(proxy.sens) * _noise(proxy.sens, table))[None]


def _fisher_noise(proxy: Proxy, table: jax.Array) -> jax.Array:
    return jnp.sum(_fisher(proxy.sens) * _noise(proxy.sens, table))[None]


def _hessian_measured(proxy: Proxy, table: jax.Array) -> jax.Array:
    return jnp.sum(_hessian(proxy.sens) * _err(proxy.sens, table))[None]


def _fisher_measured(proxy: Proxy, table: jax.Array) -> jax.Array:
    return jnp.sum(_fisher(proxy.sens) * _err(proxy.sens, table))[None]


def _outmse_measured(proxy: Proxy, table: jax.Array) -> jax.Array:
    sens = proxy.sens
    return jnp.sum(sens.outmse / sens.numel * _err(sens, table))[None]


def _loss_curves(proxy: Proxy, table: jax.Array) -> jax.Array:
    return jnp.sum(log_interp(table, proxy.sens.loss, LOSS_FLOOR))[None]


def _kl_curves(proxy: Proxy, table: jax.Array) -> jax.Array:
    return jnp.sum(log_interp(table, proxy.sens.kl, LOSS_FLOOR))[None]


def _higgs(proxy: Proxy, table: jax.Array) -> jax.Array:
    """One feature per (layer, tensor kind): relative errors summed within it."""
    terms = _err(proxy.sens, table) / jnp.maximum(proxy.sens.energy, _TINY)
    onehot = jax.nn.one_hot(np.array([_KINDS.index(kind) for kind, _ in POINTS]), len(_KINDS))  # (17, 3)
    return (terms @ onehot).reshape(-1)


_ATTENTION = BLOCK == 0  # columns of the attention block


def _pair_groups(n_layers: int) -> np.ndarray:
    """Masks ``(4, N, N)`` of ``pairwise``'s pair groups: one attention block, one MLP block, one layer, two."""
    layer, block = np.repeat(np.arange(n_layers), len(POINTS)), np.tile(BLOCK, n_layers)
    same_layer, same_block = layer[:, None] == layer[None, :], block[:, None] == block[None, :]
    return np.stack([same_layer & same_block & (block[:, None] == 0), same_layer & same_block & (block[:, None] == 1),
                     same_layer & ~same_block, ~same_layer]).astype(np.float32)  # fmt: skip


def _pairwise(proxy: Proxy, table: jax.Array) -> jax.Array:
    """``[sum d, sum_{t<u in g} w_tu sqrt(d_t d_u) per pair group g]``, ``(5,)``."""
    if proxy.pairs is None:
        raise ValueError("proxy variant 'pairwise' needs measured pairs (cimjax.quant.pairs; make_proxy(pairs=...))")
    d = log_interp(table, proxy.sens.kl, KL_FLOOR)
    r = jnp.sqrt(d).reshape(-1)
    terms = 0.5 * jnp.einsum("i,gij,j->g", r, proxy.pairs * _pair_groups(table.shape[0]), r)
    return jnp.concatenate([jnp.sum(d)[None], terms])


def _interaction(proxy: Proxy, table: jax.Array) -> jax.Array:
    """``[sum d, (sum_attention sqrt d)^2 per layer, (sum_mlp sqrt d)^2 per layer, (sum sqrt d)^2,
    sum_matmul sqrt(d_W d_X)]``, ``(2 L + 3,)``."""
    d = log_interp(table, proxy.sens.kl, KL_FLOOR)
    r = jnp.sqrt(d)
    n_w = len(LINEAR_OPS)
    pairs = jnp.sum(r[:, :n_w] * r[:, n_w : 2 * n_w])  # weight and input of q..down (same column order)
    attention, mlp = jnp.sum(r[:, _ATTENTION], axis=1), jnp.sum(r[:, ~_ATTENTION], axis=1)
    return jnp.concatenate([jnp.sum(d)[None], attention**2, mlp**2, (jnp.sum(r) ** 2)[None], pairs[None]])


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Proxy:
    """A proxy of some :class:`ProxyKind` (an :class:`AccuracyProxy`): ``proxy(precision)`` is the predicted
    loss increase in nats/token, :func:`saturate` of ``coef . kind.features(proxy, table)``.

    Attributes:
      sens: the model's sensitivities (None for the ``default`` kind).
      coef: non-negative coefficients of the features (ones unless fitted).
      kind: what it computes (static).
      spec: the model it is for, when its features need it (static; the ``default`` kind).
      saturation: the scale ``s`` of :func:`saturate` (infinite: linear; fitted by :func:`fit_saturation`).
      pairs: measured pair coefficients ``(17 L, 17 L)`` (:meth:`cimjax.quant.pairs.Pairs.coefficients`) of
        the kinds that use them (``pairwise``), else None.
      knots: ``(G, segments + 1)`` knots of the log features of spline kinds (``kind.segments > 0``), else None.
    """

    sens: Sensitivities | None
    coef: jax.Array
    kind: ProxyKind = dataclasses.field(metadata={"static": True})
    spec: ModelSpec | None = dataclasses.field(default=None, metadata={"static": True})
    saturation: float | jax.Array = np.float32(np.inf)
    pairs: jax.Array | None = None
    knots: jax.Array | None = None

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def assumption(self) -> str | None:
        return self.kind.assumption

    @property
    def gain_cap(self) -> str | None:
        return self.kind.gain_cap

    def features(self, precision: Precision) -> jax.Array:
        return self.kind.features(self, precision.to_table())

    def predict(self, features: jax.Array) -> jax.Array:
        """The prediction from features ``(..., G)`` (one assignment's, or a batch's)."""
        n = features.shape[-1]
        if not self.kind.segments:
            return saturate(features @ self.coef, self.saturation)
        spline = spline_value(features, self.coef[-(n * self.kind.segments + 1) :], self.knots)
        if self.kind.envelope:
            return jnp.maximum(saturate(features @ self.coef[:n], self.saturation), spline)
        return spline

    def __call__(self, precision: Precision) -> jax.Array:
        return self.predict(self.features(precision))


_INTERACTION = ProxyKind(
    "interaction",
    _interaction,
    fitted=True,
    relative_fit=True,
    saturations=(8.0, 4.0, 2.0, 1.0),
    additive_floor=1.0,
    saturation_floor=SATURATION_MARGIN,
)
VARIANTS: dict[str, ProxyKind] = {
    kind.name: kind
    for kind in (
        ProxyKind("hessian_noise", _hessian_noise),
        ProxyKind("fisher_noise", _fisher_noise),
        ProxyKind("hessian_measured", _hessian_measured),
        ProxyKind("fisher_measured", _fisher_measured),
        ProxyKind("outmse_measured", _outmse_measured, fitted=True),
        ProxyKind("loss_curves", _loss_curves),
        ProxyKind("kl_curves", _kl_curves),
        ProxyKind("higgs", _higgs, fitted=True),
        _INTERACTION,
        dataclasses.replace(_INTERACTION, name="pairwise", features=_pairwise),  # fitted as interaction
        ProxyKind("interaction_spline", _interaction, fitted=True, segments=SPLINE_SEGMENTS),
        dataclasses.replace(_INTERACTION, name="interaction_envelope", segments=SPLINE_SEGMENTS, envelope=True),
    )
}
"""The variants built from a model's measured :class:`Sensitivities` (:func:`make_proxy`), by name; a new
one is a features function and its :class:`ProxyKind` (added here to be validated with the others)."""


def make_proxy(name: str, sens: Sensitivities, pairs=None) -> Proxy:
    """An unfitted variant (coefficients one; fitted ones need :func:`fit_proxy`), ``pairs`` as in :class:`Proxy`."""
    if name not in VARIANTS:
        raise ValueError(f"proxy variant {name!r} is not known; allowed: {tuple(VARIANTS)}")
    return unfitted(VARIANTS[name], sens, pairs)


def unfitted(kind: ProxyKind, sens: Sensitivities, pairs=None) -> Proxy:
    """A proxy of ``kind`` for the model measured in ``sens`` (and ``pairs``), every coefficient one."""
    pairs = None if pairs is None else jnp.asarray(pairs, jnp.float32)
    probe = Proxy(sens=sens, coef=jnp.ones((1,), jnp.float32), kind=kind, pairs=pairs)
    if not kind.segments:
        n_feat = kind.features(probe, jnp.full(sens.numel.shape, 8.0)).shape[0]
        return dataclasses.replace(probe, coef=jnp.ones((n_feat,), jnp.float32))
    # knots at the features of uniform widths 8 .. 2 (a fit places them at the fit set's quantiles)
    widths = np.linspace(8.0, 2.0, kind.segments + 1)
    logs = np.log(np.stack([np.asarray(kind.features(probe, jnp.full(sens.numel.shape, b))) for b in widths], 1))
    knots = np.maximum.accumulate(logs, axis=1) + KNOT_GAP * np.arange(kind.segments + 1)
    n_coef = logs.shape[0] * (kind.segments + kind.envelope) + 1
    return dataclasses.replace(probe, coef=jnp.ones((n_coef,), jnp.float32), knots=jnp.asarray(knots, jnp.float32))


@jax.jit
def batch_features(proxy: Proxy, tables: jax.Array) -> jax.Array:
    """Features ``(N, G)`` of a proxy at bit tables ``(N, L, 17)`` (one compile per variant and N)."""
    return jax.vmap(lambda t: proxy.features(Precision.from_table(t)))(tables)


def saturation_floor(proxy: Proxy) -> float:
    """The least saturation scale a fit of ``proxy`` may choose: ``kind.saturation_floor`` times its first
    feature at uniform W=A=KV of the widest :data:`PRESETS` width (0 when the kind sets none)."""
    if not proxy.kind.saturation_floor:
        return 0.0
    widest = Precision.uniform(proxy.sens.numel.shape[0], min(PRESETS.values()))
    return proxy.kind.saturation_floor * float(proxy.features(widest)[0])


def fit_features(proxy: Proxy, features: np.ndarray, measured: np.ndarray) -> Proxy:
    """``proxy`` fitted to ``features`` ``(N, G)`` of assignments whose measured values are ``measured``
    (:func:`fit_saturation` with the kind's floors, :func:`fit_spline` for spline kinds, both for an envelope),
    its parameters numpy float64 (:meth:`Proxy.predict` of float64 features then sums in float64;
    :func:`fit_proxy` gives the float32 proxy compiled programs take)."""
    coef, scale = np.zeros(0), np.inf
    if proxy.kind.envelope or not proxy.kind.segments:
        coef, scale = fit_saturation(features, measured, proxy.kind, saturation_floor(proxy))
    if proxy.kind.segments:
        spline, knots = fit_spline(features, measured, proxy.kind.segments)
        return dataclasses.replace(proxy, coef=np.concatenate([coef, spline]), saturation=scale, knots=knots)
    return dataclasses.replace(proxy, coef=coef, saturation=scale)


def fit_proxy(proxy: Proxy, tables: np.ndarray, measured: np.ndarray) -> Proxy:
    """Fits non-negative coefficients by least squares of predicted against measured loss increases.

    Args:
      proxy: the variant (its current coefficients are ignored).
      tables: bit tables ``(N, L, 17)`` of the *fit* set (never the set the proxy is judged on).
      measured: their measured loss increases, nats/token.
    """
    if len(tables) != len(measured) or not len(tables):
        raise ValueError(f"need as many measured losses ({len(measured)}) as assignments ({len(tables)}) > 0")
    feats = np.asarray(batch_features(proxy, jnp.asarray(tables, jnp.float32)))
    return as_float32(fit_features(proxy, feats, measured))


def as_float32(proxy: Proxy) -> Proxy:
    """``proxy`` with float32 coefficients, saturation and knots: the form compiled programs take."""
    knots = None if proxy.knots is None else jnp.asarray(proxy.knots, jnp.float32)
    return dataclasses.replace(
        proxy, coef=jnp.asarray(proxy.coef, jnp.float32), saturation=np.float32(proxy.saturation), knots=knots
    )


OPTIMIZER_PROXY = "interaction"
"""The variant ``cimjax optimize --checkpoint`` prices assignments with by default (see :func:`optimizer_proxy`)."""
OPTIMIZER_VARIANTS = ("interaction", "pairwise", "interaction_spline", "interaction_envelope")
"""The variants that may drive the optimiser (``optimize --checkpoint --proxy``); ``pairwise`` needs measured pairs."""


def optimizer_proxy(
    sens: Sensitivities, tables: np.ndarray, measured: np.ndarray, target: str = "loss", variant: str = OPTIMIZER_PROXY,
    pairs=None,
) -> Proxy:  # fmt: skip
    """The proxy of ``variant`` (:data:`OPTIMIZER_PROXY` by default) for a checkpoint, given its measured mixed
    assignments.

    Args:
      sens: the checkpoint's sensitivities.
      tables, measured: mixed assignments ``(n, L, 17)`` and their measured ``target`` (the fit set of fitted
        variants; unused by unfitted ones). Without a fit set, or when the fit gives every coefficient zero
        (measured values at the noise level), the additive measured curves of the target are returned
        (``loss_curves`` or ``kl_curves``).
      target: what ``measured`` is: ``loss`` (loss increase) or ``kl`` (KL divergence from full precision).
      variant, pairs: one of :data:`OPTIMIZER_VARIANTS`, and the measured pair coefficients ``pairwise`` needs
        (as in :class:`Proxy`).
    """
    additive = {"loss": "loss_curves", "kl": "kl_curves"}.get(target)
    if additive is None:
        raise ValueError(f"target = {target!r} is not known; allowed: loss, kl")
    if variant not in OPTIMIZER_VARIANTS:
        raise ValueError(f"variant = {variant!r} cannot drive the optimiser; allowed: {', '.join(OPTIMIZER_VARIANTS)}")
    proxy = make_proxy(variant, sens, pairs)
    proxy = fit_proxy(proxy, tables, measured) if len(tables) else proxy
    slopes = proxy.coef if proxy.knots is None else proxy.coef[:-1]  # a spline's last coefficient is its intercept
    if not len(tables) or not np.any(np.asarray(slopes) > 0):  # nothing above noise to fit
        proxy = make_proxy(additive, sens)
    return proxy


def uniform_budgets(proxy: Callable[[Precision], jax.Array], n_layers: int) -> dict[str, float]:
    """A proxy (or a jitted one) at each uniform width of :data:`PRESETS` (W, A and KV alike): budgets for the
    optimiser."""
    return {name: float(proxy(Precision.uniform(n_layers, bits))) for name, bits in PRESETS.items()}
