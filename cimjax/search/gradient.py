"""Gradient search on the relaxed cost model, then snapping and an exact neighbourhood search.

1. **Relaxed descent.** Each field is optimised in a coordinate where its allowed values are about evenly
   spaced (``P = sqrt(P^2)`` for PEs per tile, ``log2`` of bus widths, the value itself otherwise), boxed
   onto ``[min, max]`` by a sigmoid of an unconstrained parameter. Many starts run in parallel
   (``jax.vmap``) under Adam, minimising ``alpha log L + (1 - alpha) log E`` of the relaxed model
   (:func:`cimjax.cost.relaxed.relaxed_ops`) while the temperature anneals geometrically from high to
   low. The whole descent is one jitted ``lax.scan``; alpha, precision, technology, seed-dependent starts
   and the schedule are traced, so one compilation serves every alpha, precision and seed.
2. **Snapping.** Every start's continuous design goes to its nearest allowed design, and to the designs
   that swap one field to the other allowed value bracketing it (floor/ceil neighbours).
3. **Exact neighbourhood search.** From the best few distinct snapped designs, steepest descent over
   moves of one field to an adjacent allowed value, each round's neighbours evaluated as one exact batch,
   until no design improves.

The reported objective and metrics are the exact model's, at the final discrete design.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cimjax import validation
from cimjax.cache import CompiledProgram
from cimjax.cost.batched import compress_uniform, in_batches, make_evaluator
from cimjax.cost.model import evaluate
from cimjax.cost.relaxed import relaxed_ops
from cimjax.hardware.config import FIELDS, PAPER_SPACE, DesignSpace, HardwareConfig
from cimjax.hardware.technology import Technology
from cimjax.search.pareto import alpha_objective, log_alpha_objective
from cimjax.workload.operators import Workload
from cimjax.workload.precision import Precision
from cimjax.workload.spec import ModelSpec

EXACT_BATCH = 128
"""Designs per exact evaluation call (padded), so snapping and every round reuse one compilation."""

_SQRT_FIELDS = ("pes_per_tile",)
_LOG2_FIELDS = ("bus_inter_cluster", "bus_inter_tile", "bus_intra_tile")


def to_search_coordinate(name: str, values):
    """The coordinate a field is optimised in: P for P^2, log2 for bus widths, the value otherwise."""
    values = jnp.asarray(values, jnp.float32)
    if name in _SQRT_FIELDS:
        return jnp.sqrt(values)
    if name in _LOG2_FIELDS:
        return jnp.log2(values)
    return values


def from_search_coordinate(name: str, z):
    """Inverse of :func:`to_search_coordinate`."""
    if name in _SQRT_FIELDS:
        return z * z
    if name in _LOG2_FIELDS:
        return jnp.exp2(z)
    return z


@dataclasses.dataclass(frozen=True)
class GradientResult:
    """Outcome of one gradient search.

    Attributes:
        best_config: The final discrete design (field -> allowed value).
        best_choice: Its choice indices into the space's allowed values, shape (9,).
        objective: Exact ``L^alpha E^(1-alpha)`` of ``best_config``.
        latency_s, energy_j: Exact decode latency and energy of ``best_config``.
        evaluations: Distinct designs evaluated with the exact model (snapping plus neighbourhood search).
        gradient_steps: Adam steps per start; ``starts`` starts ran in parallel.
        starts: Number of parallel starts.
        wall_s: Wall-clock seconds of the whole search (compilation included when not cached).
        history: Best exact objective after snapping, then after each neighbourhood round.
        relaxed_history: Lowest relaxed objective over the starts after each gradient step.
    """

    best_config: dict
    best_choice: np.ndarray
    objective: float
    latency_s: float
    energy_j: float
    evaluations: int
    gradient_steps: int
    starts: int
    wall_s: float
    history: np.ndarray
    relaxed_history: np.ndarray


def search_box(space: DesignSpace) -> tuple[jax.Array, jax.Array]:
    """Lower and upper bounds of every field in its search coordinate, shape (9,) each."""
    lo = jnp.stack([to_search_coordinate(n, min(space.values[n])) for n in FIELDS])
    hi = jnp.stack([to_search_coordinate(n, max(space.values[n])) for n in FIELDS])
    return lo, hi


def config_from_coordinates(z) -> HardwareConfig:
    """A continuous design from search coordinates, shape (..., 9)."""
    return HardwareConfig(**{n: from_search_coordinate(n, z[..., i]) for i, n in enumerate(FIELDS)})


def make_descent(spec: ModelSpec, workload: Workload, space: DesignSpace, learning_rate: float) -> Callable:
    """A compiled ``descend(theta0, alpha, temperatures, prec, tech) -> (z, relaxed_history)`` (cimjax.cache).

    ``theta0`` has shape (starts, 9) (unconstrained); ``temperatures`` shape (steps,). Alpha, precision,
    technology, schedule and the space's search box are traced: one program per model, workload, learning
    rate and sizes serves every space (:func:`descent_program`).
    """
    program, box = descent_program(spec, workload, learning_rate), search_box(space)

    def descend(theta0, alpha, temperatures, prec, tech):
        return program(theta0, alpha, temperatures, prec, tech, box)

    return descend


def boxed(theta, box):
    """Unconstrained parameters mapped into the box ``(lo, hi)`` by a sigmoid (the search's coordinates)."""
    lo, hi = box
    return lo + (hi - lo) * jax.nn.sigmoid(theta)


@functools.lru_cache(maxsize=16)
def descent_program(spec: ModelSpec, workload: Workload, learning_rate: float) -> CompiledProgram:
    """The compiled ``descend(theta0, alpha, temperatures, prec, tech, (lo, hi))`` of :func:`make_descent`,
    the search box ``(lo, hi)`` (each shape (9,), :func:`search_box`) an argument; starts and steps are the
    shapes of ``theta0`` and ``temperatures``."""
    optimizer = optax.adam(learning_rate)

    def loss(theta, alpha, tau, prec, tech, box):
        z = boxed(theta, box)
        costs = evaluate(config_from_coordinates(z), prec, spec, workload, tech, relaxed_ops(tau), False)
        return log_alpha_objective(costs.latency_s, costs.energy_j, alpha)

    value_and_grad = jax.vmap(jax.value_and_grad(loss), in_axes=(0, None, None, None, None, None))

    def descend(theta0, alpha, temperatures, prec, tech, box):
        def step(carry, tau):
            theta, opt_state = carry
            value, grad = value_and_grad(theta, alpha, tau, prec, tech, box)
            updates, opt_state = optimizer.update(grad, opt_state, theta)
            return (optax.apply_updates(theta, updates), opt_state), jnp.min(value)

        (theta, _), history = jax.lax.scan(step, (theta0, optimizer.init(theta0)), temperatures)
        return boxed(theta, box), history

    return CompiledProgram("descent", (spec, workload, learning_rate), jax.jit(descend), fast_compile=True)


class _ExactCache:
    """Exact objective of designs by choice-index tuple; counts distinct evaluations."""

    def __init__(self, run: Callable, prec: Precision, tech: Technology, alpha: float):
        self._run, self._prec, self._tech, self._alpha = run, prec, tech, alpha
        self.values: dict[tuple, tuple[float, float, float]] = {}

    def evaluate(self, choices: np.ndarray) -> np.ndarray:
        """Objectives of ``choices`` (n, 9); only designs not seen before go to the exact model."""
        keys = [tuple(int(v) for v in row) for row in choices]
        new = list(dict.fromkeys(k for k in keys if k not in self.values))
        if new:
            block = np.asarray(new, np.int32)
            latency, energy, _ = in_batches(self._run, EXACT_BATCH, (block,), self._prec, self._tech)
            objective = alpha_objective(latency, energy, self._alpha)
            if not np.isfinite(objective).all():  # a non-finite design is never ranked
                bad = block[~np.isfinite(objective)].tolist()
                raise ValueError(f"the exact model returned a non-finite objective for designs {bad}")
            for key, o, lat, e in zip(new, objective, latency, energy, strict=True):
                self.values[key] = (float(o), float(lat), float(e))
        return np.asarray([self.values[k][0] for k in keys])


def space_coordinates(space: DesignSpace) -> list[np.ndarray]:
    """Every field's allowed values in its search coordinate (float64), in ``FIELDS`` order."""
    return [np.asarray(to_search_coordinate(n, space.values[n]), np.float64) for n in FIELDS]


def nearest_choices(z: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
    """Choice indices ``(n, 9)`` of the allowed values nearest to continuous designs ``z`` (search coordinates)."""
    return np.stack([np.abs(z[:, i, None] - c[None, :]).argmin(axis=1) for i, c in enumerate(coords)], axis=1)


def _snap_candidates(z: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
    """Nearest allowed design of each start, plus one-field swaps to the other bracketing value; (n, 9)."""
    nearest = nearest_choices(z, coords)
    candidates = [nearest]
    for i, c in enumerate(coords):
        below = np.clip(np.searchsorted(c, z[:, i], side="right") - 1, 0, len(c) - 1)
        above = np.clip(below + 1, 0, len(c) - 1)
        other = np.where(nearest[:, i] == below, above, below)
        swapped = nearest.copy()
        swapped[:, i] = other
        candidates.append(swapped)
    return np.concatenate(candidates)


def neighbours(choice: np.ndarray, radices: np.ndarray) -> np.ndarray:
    """Designs one field away (adjacent allowed value), shape (<= 18, 9)."""
    steps = np.concatenate([np.eye(len(radices), dtype=np.int64), -np.eye(len(radices), dtype=np.int64)])
    moved = choice[None, :] + steps
    return moved[np.all((moved >= 0) & (moved < radices), axis=1)]


def check_range(name: str, value, low, high=None) -> None:
    """ValueError naming ``name`` unless ``value`` is a finite number (not a bool or a string) in
    ``[low, high]``."""
    validation.number(name, validation.plain(value), low, math.inf if high is None else high)


def check_temperature(temperature) -> None:
    """The annealing schedule ``(initial, final)``: initial >= final > 0."""
    if not (isinstance(temperature, tuple | list) and len(temperature) == 2):
        raise validation.fail("temperature", temperature, "allowed: a pair (initial, final), initial >= final > 0")
    tau0, tau1 = temperature
    check_range("final temperature", tau1, np.nextafter(0.0, 1.0))
    check_range("initial temperature", tau0, tau1)


def gradient_search(
    spec: ModelSpec,
    prec: Precision,
    workload: Workload,
    tech: Technology,
    alpha: float,
    *,
    space: DesignSpace = PAPER_SPACE,
    starts: int = 32,
    steps: int = 200,
    seed: int = 0,
    learning_rate: float = 0.1,
    temperature: tuple[float, float] = (1.0, 1e-3),
    beam: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> GradientResult:
    """Minimises ``L^alpha E^(1-alpha)`` over ``space`` by relaxed gradient descent plus exact local search.

    Args:
      spec, prec, workload, tech: what is evaluated (as for :func:`cimjax.cost.model.evaluate`).
      alpha: weight of latency, in [0, 1].
      space: the discrete design space; every field is relaxed onto its [min, max] box.
      starts: parallel random starts (>= 1).
      steps: Adam steps per start (>= 1).
      seed: seeds the random starts; the search is deterministic for a seed.
      learning_rate: Adam step size on the unconstrained parameters (> 0).
      temperature: (initial, final) temperature of the geometric annealing schedule, initial >= final > 0.
      beam: distinct snapped designs the exact neighbourhood search starts from (>= 1).
      progress: called as ``progress(done, total)`` after the descent and after each neighbourhood round.

    Returns:
      A :class:`GradientResult` with the exact metrics of the final discrete design.
    """
    check_range("alpha", alpha, 0.0, 1.0)
    validation.count("starts", starts, 1, validation.MAX_BATCH)
    validation.count("steps", steps, 1, validation.MAX_ITERATIONS)
    validation.count("beam", beam, 1, validation.MAX_BATCH)
    check_range("learning_rate", learning_rate, np.nextafter(0.0, 1.0))
    check_temperature(temperature)
    tau0, tau1 = temperature

    start_time = time.perf_counter()
    prec = compress_uniform(prec)
    radices = np.asarray(space.radices)

    rng = np.random.default_rng(seed)
    u = rng.uniform(0.02, 0.98, size=(starts, len(FIELDS))).astype(np.float32)
    theta0 = jnp.asarray(np.log(u) - np.log1p(-u))
    temperatures = jnp.asarray(np.geomspace(tau0, tau1, steps), jnp.float32)
    descend = make_descent(spec, workload, space, float(learning_rate))
    z, relaxed_history = descend(theta0, jnp.float32(alpha), temperatures, prec, tech)
    z = np.asarray(z, np.float64)
    total_rounds = 1 + 2 * len(FIELDS)  # shown as a rough total; the search usually stops earlier
    if progress:
        progress(1, total_rounds)

    cache = _ExactCache(make_evaluator(spec, workload, space, "choice"), prec, tech, float(alpha))
    coords = space_coordinates(space)
    candidates = np.unique(_snap_candidates(z, coords), axis=0)
    objectives = cache.evaluate(candidates)
    current = candidates[np.argsort(objectives, kind="stable")[:beam]]
    history = [float(objectives.min())]

    while True:
        moves = [neighbours(c, radices) for c in current]
        values = cache.evaluate(np.concatenate(moves))
        improved, offset = [], 0
        for c, m in zip(current, moves, strict=True):
            v = values[offset : offset + len(m)]
            offset += len(m)
            j = int(np.argmin(v))
            if v[j] < cache.values[tuple(int(x) for x in c)][0]:
                improved.append(m[j])
        history.append(min(v for v, _, _ in cache.values.values()))
        if progress:
            progress(min(len(history), total_rounds - 1), total_rounds)
        if not improved:
            break
        current = np.unique(np.asarray(improved), axis=0)

    best_key = min(cache.values, key=lambda k: (cache.values[k][0], k))
    objective, latency, energy = cache.values[best_key]
    best_choice = np.asarray(best_key)
    if progress:
        progress(total_rounds, total_rounds)
    return GradientResult(
        best_config={n: space.values[n][best_choice[i]] for i, n in enumerate(FIELDS)},
        best_choice=best_choice,
        objective=objective,
        latency_s=latency,
        energy_j=energy,
        evaluations=len(cache.values),
        gradient_steps=steps,
        starts=starts,
        wall_s=time.perf_counter() - start_time,
        history=np.asarray(history),
        relaxed_history=np.exp(np.asarray(relaxed_history, np.float64)),
    )
