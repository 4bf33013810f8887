"""The descent of the joint gradient method: augmented Lagrangian on the relaxed model, many starts at once.

optax-style: :func:`make_descent` returns a :class:`Descent`, a pair of pure functions over an explicit
:class:`JointState` pytree -- ``init(seed)`` draws the starts, ``update(state)`` runs one round
(``steps_per_round`` Adam steps on every start's augmented Lagrangian, then the multiplier and penalty
updates). The state is all there is to save and restore (:mod:`cimjax.joint.checkpoints`).

Equations and reasoning: docs/joint.md.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cimjax.cache import CompiledProgram
from cimjax.cost.model import evaluate
from cimjax.cost.relaxed import relaxed_ops
from cimjax.hardware.config import FIELDS, DesignSpace
from cimjax.joint.problem import JointProblem
from cimjax.joint.settings import JointSettings
from cimjax.search.gradient import boxed, config_from_coordinates, search_box
from cimjax.search.pareto import log_alpha_objective
from cimjax.workload.operators import Workload
from cimjax.workload.precision import N_POINTS, Precision
from cimjax.workload.spec import ModelSpec

FEASIBLE = 1e-3
"""A start counts as feasible in the history when every log-constraint is at most this."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class JointState:
    """Everything the descent carries between rounds (saved by orbax).

    Shapes: ``theta_hw (S, 9)``, ``theta_bits (S, L, 17)``, ``multipliers (S, 2)`` (accuracy, area),
    ``penalty ()`` (rho), ``round ()`` (rounds done); ``opt_state`` is Adam's.
    """

    theta_hw: jax.Array
    theta_bits: jax.Array
    opt_state: optax.OptState
    multipliers: jax.Array
    penalty: jax.Array
    round: jax.Array


class Descent(NamedTuple):
    """Pure functions over a :class:`JointState`: ``init(seed)`` and ``update(state) -> (state, constraints
    (S, 2), objective (S,))``, the constraints and objective (logs) measured after the round."""

    init: Callable[[int], JointState]
    update: Callable[[JointState], tuple[JointState, jax.Array, jax.Array]]


def make_descent(problem: JointProblem, settings: JointSettings) -> Descent:
    """The descent of ``problem`` with ``settings``' sizes and schedule (temperatures annealed geometrically
    from ``temperature[0]`` to ``temperature[1]`` over all steps, each round taking its window)."""
    run_round = _make_round(
        problem.spec, problem.workload, problem.space, settings.learning_rate, settings.penalty_growth
    )
    tau0, tau1 = settings.temperature
    schedule = np.geomspace(tau0, tau1, settings.total_steps).astype(np.float32)
    data = _problem_data(problem)
    steps = settings.steps_per_round

    def init(seed: int) -> JointState:
        """Random starts: hardware anywhere in its box, bits in the middle half of their ranges."""
        rng = np.random.default_rng(seed)
        s = settings.starts
        theta_hw = _logit(rng.uniform(0.02, 0.98, size=(s, len(FIELDS))))
        theta_bits = _logit(rng.uniform(0.25, 0.75, size=(s, problem.n_layers, N_POINTS)))
        params = (jnp.asarray(theta_hw, jnp.float32), jnp.asarray(theta_bits, jnp.float32))
        return JointState(
            theta_hw=params[0],
            theta_bits=params[1],
            opt_state=_adam(settings.learning_rate).init(params),
            multipliers=jnp.zeros((s, 2), jnp.float32),
            penalty=jnp.asarray(settings.penalty, jnp.float32),
            round=jnp.asarray(0, jnp.int32),
        )

    def update(state: JointState) -> tuple[JointState, jax.Array, jax.Array]:
        r = int(state.round)
        return run_round(state, jnp.asarray(schedule[r * steps : (r + 1) * steps]), data)

    return Descent(init, update)


def round_summary(r: int, constraints: np.ndarray, objective: np.ndarray) -> dict:
    """One history entry: the best relaxed objective among feasible starts, the worst proxy/budget ratio."""
    feasible = np.all(constraints <= FEASIBLE, axis=1)
    return {
        "round": r,
        "best_relaxed_objective": float(np.exp(objective[feasible].min(initial=np.inf))),
        "max_proxy_ratio": float(np.exp(constraints[:, 0].max())),
        "feasible_starts": int(np.sum(feasible)),
    }


def unbox(theta_hw, theta_bits, hw_box, bit_box):
    """Unconstrained parameters to hardware search coordinates and continuous bits, each boxed by a sigmoid."""
    return boxed(theta_hw, hw_box), boxed(theta_bits, bit_box)


def continuous_designs(problem: JointProblem, state: JointState) -> tuple[np.ndarray, np.ndarray]:
    """The starts' continuous hardware (search coordinates, ``(S, 9)``) and bits ``(S, L, 17)``."""
    z, bits = unbox(state.theta_hw, state.theta_bits, search_box(problem.space), problem.bits.bounds())
    return np.asarray(z, np.float64), np.asarray(bits, np.float64)


def _logit(u):
    return np.log(u) - np.log1p(-u)


def _adam(learning_rate: float) -> optax.GradientTransformation:
    return optax.adam(learning_rate)


@functools.lru_cache(maxsize=16)
def _make_round(spec: ModelSpec, workload: Workload, space: DesignSpace, learning_rate: float, growth: float):
    """A compiled ``round(state, temperatures, problem data) -> (state, constraints, objective)``.

    Runs one Adam step per temperature on the augmented Lagrangian of every start, then updates the
    multipliers and multiplies the penalty by ``growth``. Problem numbers (alpha, budget, whether there is
    an area limit and its value, proxy, technology, bit bounds) are traced, and the numbers of starts and
    steps are array shapes, so one program serves every problem and size of a model, workload and space.
    """
    lo_hw, hi_hw = search_box(space)
    optimizer = _adam(learning_rate)

    def terms(params, tau, data):
        alpha, budget, area_max, has_area, proxy, tech, bit_lo, bit_hi = data
        z, bits = unbox(*params, (lo_hw, hi_hw), (bit_lo, bit_hi))
        hw = config_from_coordinates(z)
        costs = evaluate(hw, Precision.from_table(bits), spec, workload, tech, relaxed_ops(tau), False)
        objective = log_alpha_objective(costs.latency_s, costs.energy_j, alpha)
        c_acc = jnp.log(proxy(Precision.from_table(bits)) / budget)
        c_area = jnp.where(has_area, jnp.log(costs.area_mm2 / area_max), -1.0)
        return objective, jnp.stack([c_acc, c_area])

    def lagrangian(params, lam, rho, tau, data):
        objective, c = terms(params, tau, data)
        active = jnp.maximum(0.0, lam + rho * c)
        return objective + jnp.sum(active**2 - lam**2) / (2.0 * rho), (objective, c)

    grad = jax.vmap(jax.grad(lagrangian, has_aux=True), in_axes=(0, 0, None, None, None))

    def run_round(state: JointState, temperatures, data):
        def step(carry, x):
            tau, measure_only = x
            params, opt_state = carry
            g, measured = grad(params, state.multipliers, state.penalty, tau, data)
            updates, new_state = optimizer.update(g, opt_state, params)
            new = (optax.apply_updates(params, updates), new_state)
            return jax.tree.map(lambda old, n: jnp.where(measure_only, old, n), carry, new), measured

        # One more pass than steps measures the round's end point at its last temperature (its update is
        # dropped): the program holds the model's gradient once, not also a separate forward measure.
        taus = jnp.concatenate([temperatures, temperatures[-1:]])
        last = jnp.arange(taus.shape[0]) == temperatures.shape[0]
        params = (state.theta_hw, state.theta_bits)
        (params, opt_state), (objectives, cs) = jax.lax.scan(step, (params, state.opt_state), (taus, last))
        objective, c = objectives[-1], cs[-1]
        multipliers = jnp.maximum(0.0, state.multipliers + state.penalty * c)
        new = JointState(
            theta_hw=params[0],
            theta_bits=params[1],
            opt_state=opt_state,
            multipliers=multipliers,
            penalty=state.penalty * growth,
            round=state.round + 1,
        )
        return new, c, objective

    # Compiled once per machine, kept on disk (cimjax.cache); fast compile: its run is short next to compiling.
    static = (spec, workload, space, learning_rate, growth)
    return CompiledProgram("joint-round", static, jax.jit(run_round), fast_compile=True)


def _problem_data(problem: JointProblem):
    lo, hi = problem.bits.bounds()
    area_max = problem.area_max if problem.area_max is not None else 1.0
    return (
        jnp.float32(problem.alpha),
        jnp.float32(problem.budget),
        jnp.float32(area_max),
        np.bool_(problem.area_max is not None),  # NumPy: a jnp scalar would compile an eager conversion
        problem.proxy,
        problem.tech,
        jnp.asarray(lo, jnp.float32),
        jnp.asarray(hi, jnp.float32),
    )
