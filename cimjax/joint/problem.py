"""A joint co-design problem: per-layer bits and accelerator hardware, under accuracy and area limits.

Every optimiser (:mod:`cimjax.joint.optimizer` and the baselines of :mod:`cimjax.joint.baselines`)
solves the same :class:`JointProblem` and scores its answers with the same exact evaluator,
:class:`ExactEvaluator`:

    minimise   L^alpha E^(1 - alpha)        (alpha = 1: tokens/s, alpha = 0: tokens/J)
    subject to proxy(bits) <= budget,  area(hardware) <= area_max,
               bits[l, t] whole numbers in [low_t, high_t],  hardware in the design space.

A design is a pair (hardware choice indices ``(9,)``, bit table ``(L, 17)`` in
:data:`cimjax.workload.precision.POINTS` order: 7 linear weights, 9 matmul inputs, the KV cache).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from cimjax import validation
from cimjax.cost.batched import in_batches, make_evaluator
from cimjax.hardware.area import chip_area
from cimjax.hardware.config import FIELDS, PAPER_SPACE, DesignSpace
from cimjax.hardware.technology import Technology, technology_argument
from cimjax.quant.default_proxy import default_proxy
from cimjax.quant.proxy import AccuracyProxy
from cimjax.results import Accuracy, DesignReport, Metrics
from cimjax.search.pareto import alpha_objective, check_alphas
from cimjax.workload.operators import Workload
from cimjax.workload.precision import N_POINTS, POINTS, PRESETS, Precision
from cimjax.workload.spec import ModelSpec

EXACT_BATCH = 256
"""Designs per exact evaluation call (padded), so every caller reuses one compilation."""

INFEASIBLE_RANK = 1e3
"""Rank of an infeasible design before its violation is added: above the log of any finite positive
float64 (< 710), so every infeasible design ranks behind every feasible one."""

BUDGET_RTOL = 1e-6
"""Relative tolerance on the proxy budget: float32 sums of many per-entry terms round by about this much."""


class InfeasibleError(ValueError):
    """No design can meet the request (a budget below every assignment, an area limit below every design)."""


@dataclasses.dataclass(frozen=True)
class BitSpace:
    """Allowed whole bits per tensor kind (weights, matmul inputs, KV cache), inclusive ranges."""

    weight: tuple[int, int] = (2, 8)
    act: tuple[int, int] = (2, 16)
    kv: tuple[int, int] = (2, 16)

    def __post_init__(self):
        for kind in ("weight", "act", "kv"):
            low, high = getattr(self, kind)
            if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high <= 16):
                raise ValueError(f"BitSpace.{kind} = {(low, high)!r}; allowed: whole bits 1 <= low <= high <= 16")

    def __str__(self) -> str:
        ranges = (f"{name} {low}-{high}" for name, (low, high) in
                  (("weights", self.weight), ("matmul inputs", self.act), ("KV cache", self.kv)))  # fmt: skip
        return ", ".join(ranges) + " bits"

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest bits of each of the 17 points, shape (17,) each."""
        ranges = [getattr(self, kind) for kind, _ in POINTS]
        return np.array([r[0] for r in ranges], np.float64), np.array([r[1] for r in ranges], np.float64)

    def radices(self, n_layers: int) -> np.ndarray:
        """Number of allowed values of every entry of an ``(L, 17)`` bit table, flattened."""
        low, high = self.bounds()
        return np.tile((high - low + 1).astype(np.int64), n_layers)


@dataclasses.dataclass(frozen=True)
class JointProblem:
    """What is optimised and under which limits. Build it with :func:`make_problem`."""

    spec: ModelSpec
    proxy: AccuracyProxy
    budget: float
    budget_label: str
    alpha: float
    area_max: float | None
    workload: Workload
    tech: Technology
    space: DesignSpace
    bits: BitSpace

    @property
    def n_layers(self) -> int:
        return self.spec.n_layers

    def within_budget(self, proxy) -> np.ndarray:
        """Whether proxy values meet the budget (with :data:`BUDGET_RTOL` for float32 rounding)."""
        return np.asarray(proxy) <= self.budget * (1 + BUDGET_RTOL)

    def proxy_of_tables(self, tables: np.ndarray) -> np.ndarray:
        """Proxy values of bit tables ``(n, L, 17)``, float64 ``(n,)`` (see :func:`proxy_values`)."""
        return proxy_values(self.proxy, tables)

    def uniform_table(self, bits: float) -> np.ndarray:
        """The ``(L, 17)`` table with every entry at ``bits``."""
        return np.full((self.n_layers, N_POINTS), float(bits))

    def uniform_widths(self) -> range:
        """Widths every tensor kind allows (the intersection of the :class:`BitSpace` ranges; may be empty)."""
        low, high = self.bits.bounds()
        return range(int(low.max()), int(high.min()) + 1)

    def smallest_uniform_width(self) -> int | None:
        """The smallest uniform width whose proxy meets the budget, or None if none does."""
        widths = self.uniform_widths()
        if not widths:
            return None
        meets = self.within_budget(self.proxy_of_tables(np.stack([self.uniform_table(b) for b in widths])))
        return widths[int(np.argmax(meets))] if meets.any() else None

    def violation(self, scores: Scores) -> np.ndarray:
        """Summed relative constraint violations in log units, ``log(proxy / budget)`` and
        ``log(area / area_max)`` where above 0; 0 for feasible designs."""
        v = np.log(np.maximum(scores.proxy / self.budget, 1.0))
        if self.area_max is not None:
            v = v + np.log(np.maximum(scores.area_mm2 / self.area_max, 1.0))
        return v

    def rank(self, scores: Scores) -> np.ndarray:
        """Lower is better, always finite: ``log`` objective if feasible, else :data:`INFEASIBLE_RANK` plus
        :meth:`violation`. Every optimiser compares designs by it."""
        return np.where(scores.feasible, np.log(scores.objective), INFEASIBLE_RANK + self.violation(scores))

    def max_table(self) -> np.ndarray:
        """Every entry at its highest allowed bits: the lowest proxy any assignment reaches."""
        return np.broadcast_to(self.bits.bounds()[1], (self.n_layers, N_POINTS)).copy()


@jax.jit
def _batch_proxy(proxy: AccuracyProxy, tables: jax.Array) -> jax.Array:
    return jax.vmap(lambda t: proxy(Precision.from_table(t)))(tables)


def proxy_values(proxy: AccuracyProxy, tables: np.ndarray) -> np.ndarray:
    """Proxy values of bit tables ``(n, L, 17)``, float64 ``(n,)``, in padded batches of :data:`EXACT_BATCH`.

    Every caller (budgets, feasibility tests, the exact evaluator) goes through this one compiled program,
    so a table gets the same float32 value wherever it is priced: a design exactly at the budget (uniform
    INT4 against the ``int4`` budget) is not ruled out by a different summation order.
    """
    tables = np.asarray(tables, np.float32)
    return in_batches(lambda block: (_batch_proxy(proxy, block),), EXACT_BATCH, (tables,))[0]


def resolve_budget(budget: str | float, proxy: AccuracyProxy, n_layers: int) -> tuple[float, str]:
    """A budget as (value, label): ``int8``/``int6``/``int4`` (the proxy at that uniform width) or a number."""

    def uniform(width: int) -> float:
        return float(proxy_values(proxy, np.full((1, n_layers, N_POINTS), float(width)))[0])

    return parse_budget(budget, uniform, "predicted")


def parse_budget(budget: str | float, uniform: Callable[[int], float], kind: str) -> tuple[float, str]:
    """``(value, label)`` of a budget: a label of :data:`PRESETS` is ``uniform(width)``, anything
    else must be a positive finite number (a ``kind`` loss increase in nats/token)."""
    if isinstance(budget, str):
        key = budget.strip().lower()
        if key in PRESETS:
            return uniform(PRESETS[key]), key
        try:
            budget = float(key)
        except ValueError:
            raise ValueError(
                f"budget = {budget!r} is not allowed; give one of {sorted(PRESETS)} or a positive number "
                f"({kind} loss increase, nats/token)"
            ) from None
    if not (validation.is_number(budget) and math.isfinite(budget) and budget > 0):
        raise ValueError(f"budget = {budget!r} must be a positive finite number (nats/token) or int8/int6/int4")
    return float(budget), f"{budget:g}"


@functools.lru_cache(maxsize=8)
def smallest_area(space: DesignSpace, tech: Technology) -> float:
    """The smallest chip area of any design of a space (every design's area, in chunks)."""
    chunk = 1 << 18

    @jax.jit
    def areas(start):
        index = jnp.minimum(start + jnp.arange(chunk), space.size - 1)
        return jnp.min(jax.vmap(lambda h: chip_area(h, tech).total)(space.decode(index)))

    return float(min(float(areas(jnp.asarray(first))) for first in range(0, space.size, chunk)))


def make_problem(
    spec: ModelSpec,
    budget: str | float,
    *,
    proxy: AccuracyProxy | None = None,
    alpha: float = 1.0,
    area_max: float | None = None,
    workload: Workload | None = None,
    tech: Technology | None = None,
    space: DesignSpace = PAPER_SPACE,
    bits: BitSpace | None = None,
) -> JointProblem:
    """Validates a request and says plainly when nothing can meet it.

    Args:
      spec: the model.
      budget: ``int8``/``int6``/``int4`` (as good as that uniform width by the proxy) or the largest
        allowed predicted loss increase in nats/token.
      proxy: the accuracy proxy (default: :func:`cimjax.quant.default_proxy.default_proxy` of ``spec``).
      alpha: weight of latency in ``L^alpha E^(1-alpha)``, in [0, 1].
      area_max: chip area limit in mm^2, or None for none.
      workload, tech, space: as for the cost model (defaults: the paper's).
      bits: allowed bits per tensor kind (default :class:`BitSpace`).

    Raises:
      ValueError: a malformed argument (names the field and what is allowed).
      InfeasibleError: a budget below the proxy at the highest allowed bits, or an area limit below the
        smallest design of ``space``.
    """
    check_alphas(alpha)
    proxy = validation.instance("proxy", proxy, AccuracyProxy, lambda: default_proxy(spec))
    bits = validation.instance("bits", bits, BitSpace, BitSpace)
    workload = validation.instance("workload", workload, Workload, Workload)
    space = validation.instance("space", space, DesignSpace, lambda: PAPER_SPACE)
    value, label = resolve_budget(budget, proxy, spec.n_layers)
    tech = technology_argument(tech)
    if area_max is not None:
        if not (validation.is_number(area_max) and math.isfinite(area_max) and area_max > 0):
            raise ValueError(f"area_max = {area_max!r} must be a positive number of mm^2 (or None for no limit)")
        area_max = float(area_max)  # a NumPy scalar is not JSON
        smallest = smallest_area(space, tech)
        if area_max < smallest:
            raise InfeasibleError(
                f"area limit {area_max:g} mm^2 is below the smallest design of the space ({smallest:.3f} mm^2)"
            )
    problem = JointProblem(
        spec=spec,
        proxy=proxy,
        budget=value,
        budget_label=label,
        alpha=float(alpha),
        area_max=None if area_max is None else float(area_max),
        workload=workload,
        tech=tech,
        space=space,
        bits=bits,
    )
    lowest = float(problem.proxy_of_tables(problem.max_table()[None])[0])
    if lowest > value:
        raise InfeasibleError(
            f"budget {value:.4g} nats/token cannot be met: even every tensor at its highest allowed bits "
            f"({bits}) predicts {lowest:.4g}; allowed: a budget of at least {lowest:.4g}"
        )
    return problem


@dataclasses.dataclass
class Scores:
    """Exact metrics of a batch of designs (float64 arrays)."""

    latency_s: np.ndarray
    energy_j: np.ndarray
    area_mm2: np.ndarray
    proxy: np.ndarray
    objective: np.ndarray
    feasible: np.ndarray


class ExactEvaluator:
    """Scores designs with the exact cost model and the proxy; counts every design it is given."""

    def __init__(self, problem: JointProblem):
        self.problem = problem
        self._run = make_evaluator(problem.spec, problem.workload, problem.space, "choice", per_design_precision=True)
        self.evaluations = 0

    def __call__(self, choices: np.ndarray, tables: np.ndarray) -> Scores:
        """Scores of designs given as hardware choices ``(n, 9)`` and bit tables ``(n, L, 17)``."""
        p = self.problem
        choices = np.asarray(choices, np.int32).reshape(-1, len(FIELDS))
        tables = np.asarray(tables, np.float32).reshape(-1, p.n_layers, N_POINTS)
        self.evaluations += len(choices)
        designs = (choices, Precision.from_table(tables))
        latency, energy, area = in_batches(self._run, EXACT_BATCH, designs, p.tech)
        proxy = proxy_values(p.proxy, tables)
        objective = np.asarray(alpha_objective(latency, energy, p.alpha), np.float64)
        feasible = p.within_budget(proxy)
        if p.area_max is not None:
            feasible &= area <= p.area_max
        return Scores(latency, energy, area, proxy, objective, feasible)


def design_report(problem: JointProblem, choice: np.ndarray, table: np.ndarray, evaluator: ExactEvaluator) -> dict:
    """The exact metrics of one discrete design, with its bits and hardware: the ``joint`` form of a
    :class:`cimjax.results.DesignReport`."""
    s = evaluator(np.asarray(choice)[None], np.asarray(table)[None])
    metrics = Metrics(problem.workload.generate, float(s.latency_s[0]), float(s.energy_j[0]), float(s.area_mm2[0]))
    return DesignReport(
        config={n: problem.space.values[n][int(choice[i])] for i, n in enumerate(FIELDS)},
        metrics=metrics,
        bits=np.asarray(table),
        accuracy=Accuracy(float(s.proxy[0]), problem.budget, bool(s.feasible[0])),
    ).to_json("joint")


__all__ = [
    "BitSpace",
    "ExactEvaluator",
    "InfeasibleError",
    "JointProblem",
    "Scores",
    "design_report",
    "make_problem",
    "resolve_budget",
]
