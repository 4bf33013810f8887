"""Joint gradient co-optimisation of per-layer bits and hardware: augmented Lagrangian on the relaxed model.

Method (equations and reasoning: docs/joint.md):

1. **Relaxation.** Hardware fields live in the search coordinates of :mod:`cimjax.search.gradient`
   (boxed by a sigmoid); every entry of the ``(L, 17)`` bit table is ``low + (high - low) sigmoid(theta)``.
   The cost model runs with :func:`cimjax.cost.relaxed.relaxed_ops` (temperature annealed geometrically)
   and the proxy takes continuous bits, so ``f = alpha log L + (1 - alpha) log E`` and the constraints
   ``c_acc = log(proxy / budget) <= 0`` and ``c_area = log(area / area_max) <= 0`` are smooth.
2. **Augmented Lagrangian** (Powell-Hestenes-Rockafellar form for inequalities):
   ``Phi = f + sum_i (max(0, lambda_i + rho c_i)^2 - lambda_i^2) / (2 rho)``, minimised by Adam for
   ``steps_per_round`` steps, then ``lambda_i <- max(0, lambda_i + rho c_i)`` and ``rho <- growth rho``.
   Many starts run in parallel (``jax.vmap``), each with its own multipliers.
3. **Discretisation.** Each start is snapped (nearest allowed hardware, nearest whole bits) and repaired
   to meet the budget (the +1-bit moves with most proxy reduction per unit of exact objective). The
   ``beam`` best, and the best start's hardware with the uniform bits that meet the budget, get their
   bits re-allocated at that hardware by MILP on exact single-entry costs (:mod:`cimjax.joint.allocation`),
   then are polished by exact steepest descent over one- and two-field hardware moves, +-1-bit moves
   and paired (+1, -1)-bit exchanges. With ``hardware_sweep`` (by default: when there is an area limit),
   the best one's bits and the uniform bits then get the best hardware of the whole space by exact sweep
   (area limit applied), are re-allocated and polished there, and kept if better (so the result is never
   worse than the uniform baseline). The reported design and metrics are the exact model's.

The optimiser state (:class:`JointState`) is an explicit pytree; with a checkpoint directory it is saved
with orbax after every round, and a stopped run resumes to the same result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from cimjax import files
from cimjax.cache import CompiledProgram
from cimjax.cost.model import evaluate
from cimjax.cost.relaxed import relaxed_ops
from cimjax.hardware.config import FIELDS, DesignSpace
from cimjax.joint.allocation import allocate_within_budget, best_hardware, linearise
from cimjax.joint.problem import ExactEvaluator, JointProblem, Scores, design_report
from cimjax.search.gradient import (
    check_range,
    config_from_coordinates,
    nearest_choices,
    neighbours,
    search_box,
    space_coordinates,
)
from cimjax.validation import json_object, read_json
from cimjax.workload.models import ModelSpec
from cimjax.workload.operators import Workload
from cimjax.workload.precision import N_POINTS, Precision


@dataclasses.dataclass(frozen=True)
class JointSettings:
    """Sizes and schedule of a joint optimisation (all of it must match to resume a checkpoint)."""

    starts: int = 16
    rounds: int = 8
    steps_per_round: int = 50
    learning_rate: float = 0.08
    temperature: tuple[float, float] = (1.0, 1e-3)
    penalty: float = 1.0
    penalty_growth: float = 2.0
    beam: int = 4
    allocation_rounds: int = 1
    hardware_sweep: bool | None = None  # None: sweep when the problem has an area limit
    polish_rounds: int = 60
    exchange: int = 12
    seed: int = 0

    def __post_init__(self):
        for name in ("starts", "rounds", "steps_per_round", "beam", "exchange"):
            check_range(name, getattr(self, name), 1)
        check_range("polish_rounds", self.polish_rounds, 0)
        check_range("allocation_rounds", self.allocation_rounds, 0)
        check_range("learning_rate", self.learning_rate, np.nextafter(0.0, 1.0))
        check_range("penalty", self.penalty, np.nextafter(0.0, 1.0))
        check_range("penalty_growth", self.penalty_growth, 1.0)
        tau0, tau1 = self.temperature
        check_range("final temperature", tau1, np.nextafter(0.0, 1.0))
        check_range("initial temperature", tau0, tau1)

    @property
    def total_steps(self) -> int:
        return self.rounds * self.steps_per_round


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


@dataclasses.dataclass(frozen=True)
class JointResult:
    """Outcome of :func:`optimize`: the exact report of the final discrete design plus search statistics."""

    choice: np.ndarray
    table: np.ndarray
    report: dict
    evaluations: int
    relaxed_evaluations: int
    exact_evaluations: int
    wall_s: float
    history: list[dict]


def _logit(u):
    return np.log(u) - np.log1p(-u)


def initial_state(problem: JointProblem, settings: JointSettings) -> JointState:
    """Random starts (seeded): hardware anywhere in its box, bits in the middle half of their ranges."""
    rng = np.random.default_rng(settings.seed)
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


def _adam(learning_rate: float) -> optax.GradientTransformation:
    return optax.adam(learning_rate)


@functools.lru_cache(maxsize=16)
def _make_round(spec: ModelSpec, workload: Workload, space_key: tuple, settings: JointSettings, has_area: bool):
    """A compiled ``round(state, temperatures, problem data) -> (state, constraints, objective)``.

    Runs ``steps_per_round`` Adam steps on the augmented Lagrangian of every start, then updates the
    multipliers. Problem numbers (alpha, budget, area limit, proxy, technology, bit bounds) are traced.
    """
    lo_hw, hi_hw = search_box(DesignSpace(dict(space_key)))
    optimizer = _adam(settings.learning_rate)

    def terms(params, tau, data):
        alpha, budget, area_max, proxy, tech, bit_lo, bit_hi = data
        z, bits = unbox(*params, (lo_hw, hi_hw), (bit_lo, bit_hi))
        hw = config_from_coordinates(z)
        costs = evaluate(hw, Precision.from_table(bits), spec, workload, tech, relaxed_ops(tau), False)
        objective = alpha * jnp.log(costs.latency_s) + (1.0 - alpha) * jnp.log(costs.energy_j)
        c_acc = jnp.log(proxy(Precision.from_table(bits)) / budget)
        c_area = jnp.log(costs.area_mm2 / area_max) if has_area else jnp.asarray(-1.0)
        return objective, jnp.stack([c_acc, c_area])

    def lagrangian(params, lam, rho, tau, data):
        objective, c = terms(params, tau, data)
        active = jnp.maximum(0.0, lam + rho * c)
        return objective + jnp.sum(active**2 - lam**2) / (2.0 * rho)

    grad = jax.vmap(jax.grad(lagrangian), in_axes=(0, 0, None, None, None))
    measure = jax.vmap(terms, in_axes=(0, None, None))

    def run_round(state: JointState, temperatures, data):
        def step(carry, tau):
            params, opt_state = carry
            g = grad(params, state.multipliers, state.penalty, tau, data)
            updates, opt_state = optimizer.update(g, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        params = (state.theta_hw, state.theta_bits)
        (params, opt_state), _ = jax.lax.scan(step, (params, state.opt_state), temperatures)
        objective, c = measure(params, temperatures[-1], data)
        multipliers = jnp.maximum(0.0, state.multipliers + state.penalty * c)
        new = JointState(
            theta_hw=params[0],
            theta_bits=params[1],
            opt_state=opt_state,
            multipliers=multipliers,
            penalty=state.penalty * settings.penalty_growth,
            round=state.round + 1,
        )
        return new, c, objective

    # Compiled once per machine, kept on disk (cimjax.cache); fast compile: its run is short next to compiling.
    static = (spec, workload, space_key, settings, has_area)
    return CompiledProgram("joint-round", static, jax.jit(run_round), fast_compile=True)


def _problem_data(problem: JointProblem):
    lo, hi = problem.bits.bounds()
    area_max = problem.area_max if problem.area_max is not None else 1.0
    return (
        jnp.float32(problem.alpha),
        jnp.float32(problem.budget),
        jnp.float32(area_max),
        problem.proxy,
        problem.tech,
        jnp.asarray(lo, jnp.float32),
        jnp.asarray(hi, jnp.float32),
    )


def unbox(theta_hw, theta_bits, hw_box, bit_box):
    """Unconstrained parameters to hardware search coordinates and continuous bits, each boxed by a sigmoid."""
    (lo_hw, hi_hw), (lo, hi) = hw_box, bit_box
    return lo_hw + (hi_hw - lo_hw) * jax.nn.sigmoid(theta_hw), lo + (hi - lo) * jax.nn.sigmoid(theta_bits)


def continuous_designs(problem: JointProblem, state: JointState) -> tuple[np.ndarray, np.ndarray]:
    """The starts' continuous hardware (search coordinates, ``(S, 9)``) and bits ``(S, L, 17)``."""
    z, bits = unbox(state.theta_hw, state.theta_bits, search_box(problem.space), problem.bits.bounds())
    return np.asarray(z, np.float64), np.asarray(bits, np.float64)


# --- Checkpoints -------------------------------------------------------------------------------------


def _fingerprint(problem: JointProblem, settings: JointSettings) -> dict:
    """What a checkpoint must have been written for (compared before resuming)."""
    return {
        "model": problem.spec.id,
        "n_layers": problem.n_layers,
        "budget": problem.budget,
        "alpha": problem.alpha,
        "area_max": problem.area_max,
        "proxy": problem.proxy.name,
        "bits": dataclasses.asdict(problem.bits),
        "settings": dataclasses.asdict(settings),
        "workload": dataclasses.asdict(problem.workload),
        "technology": problem.tech.to_dict(),
    }


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be used as asked (would be overwritten, or another problem's)."""


class _Checkpoints:
    """Orbax manager of :class:`JointState` after every round, plus a JSON fingerprint of the problem."""

    def __init__(self, directory: Path, fingerprint: dict, resume: bool):
        self._lock = contextlib.ExitStack()  # one run per directory, released by close() or the process's end
        self.directory = self._lock.enter_context(files.output_dir(directory, "--checkpoint-dir")).resolve()
        try:
            self._check(fingerprint, resume)
            options = ocp.CheckpointManagerOptions(max_to_keep=2)
            self.manager = ocp.CheckpointManager(self.directory / "state", options=options)
        except BaseException:
            if not self._lock.__exit__(*sys.exc_info()):  # also removes the directory if created here
                raise

    def _check(self, fingerprint: dict, resume: bool) -> None:
        meta = self.directory / "problem.json"
        existing = meta.exists()
        if existing and not resume:
            raise CheckpointError(
                f"{self.directory} already holds a joint-optimisation checkpoint; pass resume=True (--resume) to "
                "continue it, or choose another directory"
            )
        if not existing and (self.directory / "state").exists():
            raise CheckpointError(
                f"{self.directory} holds optimiser state without its problem.json, so it cannot be checked to be "
                "this problem's; remove the directory or choose another"
            )
        if existing:
            try:
                saved = json_object(read_json(meta, "checkpoint problem"), "checkpoint problem", meta)
            except ValueError as e:
                raise CheckpointError(str(e)) from None
            wanted = json.loads(json.dumps(fingerprint))
            differs = sorted(k for k in wanted if saved.get(k) != wanted[k])
            if differs:
                raise CheckpointError(f"checkpoint in {self.directory} is for another problem: {differs} differ")
        else:
            files.atomic_write(meta, json.dumps(fingerprint, indent=2) + "\n")

    def restore(self, template: JointState) -> JointState | None:
        """The newest intact saved state (a step left truncated by a killed run is skipped), or None."""
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                return self.manager.restore(step, args=ocp.args.StandardRestore(template))
            except Exception:  # noqa: BLE001 - any unreadable step: fall back to the previous one
                continue
        return None

    def save(self, state: JointState) -> None:
        with files.deferred_interrupt():  # Ctrl-C during a save: finish it, then stop
            self.manager.save(int(state.round), args=ocp.args.StandardSave(state))
            self.manager.wait_until_finished()

    def close(self) -> None:
        try:
            self.manager.close()
        finally:
            self._lock.close()


# --- Discretisation ------------------------------------------------------------------------------------


def snap(problem: JointProblem, z: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest allowed hardware (in search coordinates) and nearest whole bits, per start."""
    lo, hi = problem.bits.bounds()
    return nearest_choices(z, space_coordinates(problem.space)), np.clip(np.rint(bits), lo, hi)


def _bit_moves(problem: JointProblem, table: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Tables with one entry moved by ``step`` bits (within bounds) and the flat index of each entry moved."""
    lo, hi = problem.bits.bounds()
    lo, hi = np.broadcast_to(lo, table.shape).ravel(), np.broadcast_to(hi, table.shape).ravel()
    flat = table.ravel()
    moved = np.flatnonzero((flat + step >= lo) & (flat + step <= hi))
    tables = np.repeat(flat[None], len(moved), axis=0)
    tables[np.arange(len(moved)), moved] += step
    return tables.reshape(-1, *table.shape), moved


def repair(problem: JointProblem, evaluator: ExactEvaluator, choice: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Raises bits until the proxy meets the budget, cheapest proxy reduction per exact objective first.

    The proxy is a sum over entries, so the reductions of distinct entries add up exactly; entries are
    raised one bit at a time (re-measured each pass) until the budget holds or nothing can rise.
    """
    table = table.copy()
    while True:
        base = evaluator(choice[None], table[None])
        if problem.within_budget(base.proxy[0]):
            return table
        tables, moved = _bit_moves(problem, table, +1)
        if not len(moved):
            return table
        s = evaluator(np.repeat(choice[None], len(moved), axis=0), tables)
        gain = base.proxy[0] - s.proxy
        cost = np.maximum(np.log(s.objective) - np.log(base.objective[0]), 1e-9)
        order = np.argsort(-gain / cost, kind="stable")
        needed = base.proxy[0] - problem.budget
        taken = np.searchsorted(np.cumsum(gain[order]), needed) + 1
        flat = table.ravel()
        flat[moved[order[:taken]]] += 1
        table = flat.reshape(table.shape)


def allocate(
    problem: JointProblem, evaluator: ExactEvaluator, choice: np.ndarray, table: np.ndarray, rounds: int
) -> np.ndarray:
    """Re-allocates the bits at fixed hardware by MILP on exact single-entry costs, while that improves.

    Each round linearises around the current (feasible) table (:mod:`cimjax.joint.allocation`), so the
    allocation follows the optimiser's hardware and starting bits rather than INT8's.
    """
    for _ in range(rounds):
        new = allocate_within_budget(problem, linearise(problem, choice, table, evaluator), choice, evaluator)
        s = evaluator(np.stack([choice, choice]), np.stack([table, new]))
        if problem.rank(s)[1] >= problem.rank(s)[0]:
            break
        table = new
    return table


def _hardware_moves(problem: JointProblem, choice: np.ndarray) -> np.ndarray:
    """Designs one or two single-value steps away: two-field moves let a design on the area limit grow one
    field while shrinking another."""
    radices = np.asarray(problem.space.radices)
    near = neighbours(choice, radices)
    moved = np.unique(np.concatenate([near, *(neighbours(c, radices) for c in near)]), axis=0)
    return moved[np.any(moved != choice, axis=1)]


def polish(
    problem: JointProblem,
    evaluator: ExactEvaluator,
    choice: np.ndarray,
    table: np.ndarray,
    settings: JointSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact steepest descent from a discrete design over hardware, single-bit and exchange moves.

    Exchanges pair the ``exchange`` -1-bit moves that save most objective with the ``exchange`` +1-bit moves
    that remove most proxy per unit of objective, so a design on the budget can still trade bits.
    """
    for _ in range(settings.polish_rounds):
        current = evaluator(choice[None], table[None])
        hw = _hardware_moves(problem, choice)
        up, up_idx = _bit_moves(problem, table, +1)
        down, down_idx = _bit_moves(problem, table, -1)
        choices = np.concatenate([hw, np.repeat(choice[None], len(up) + len(down), axis=0)])
        tables = np.concatenate([np.repeat(table[None], len(hw), axis=0), up, down])
        s = evaluator(choices, tables)
        k = settings.exchange
        s_up, s_down = _slice(s, len(hw), len(hw) + len(up)), _slice(s, len(hw) + len(up), len(s.objective))
        base = float(np.log(current.objective[0]))
        best_down = np.argsort(np.log(s_down.objective) - base, kind="stable")[:k]
        up_ratio = (current.proxy[0] - s_up.proxy) / np.maximum(np.log(s_up.objective) - base, 1e-9)
        best_up = np.argsort(-up_ratio, kind="stable")[:k]
        pairs = [(i, j) for i in best_down for j in best_up if down_idx[i] != up_idx[j]]
        if pairs:
            ex = np.repeat(table.ravel()[None], len(pairs), axis=0)
            rows = np.arange(len(pairs))
            ex[rows, [down_idx[i] for i, _ in pairs]] -= 1
            ex[rows, [up_idx[j] for _, j in pairs]] += 1
            choices = np.concatenate([choices, np.repeat(choice[None], len(pairs), axis=0)])
            tables = np.concatenate([tables, ex.reshape(-1, *table.shape)])
            s = _concat(s, evaluator(choices[-len(pairs) :], tables[-len(pairs) :]))
        rank = problem.rank(s)
        j = int(np.argmin(rank))
        if rank[j] >= problem.rank(current)[0] - 1e-12:
            break
        choice, table = choices[j], tables[j]
    return choice, table


def _slice(s: Scores, start: int, stop: int) -> Scores:
    return Scores(*(getattr(s, f.name)[start:stop] for f in dataclasses.fields(s)))


def _concat(a: Scores, b: Scores) -> Scores:
    return Scores(*(np.concatenate([getattr(a, f.name), getattr(b, f.name)]) for f in dataclasses.fields(a)))


# --- Entry point ------------------------------------------------------------------------------------------


def optimize(
    problem: JointProblem,
    settings: JointSettings | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> JointResult:
    """Jointly optimises per-layer bits and hardware for ``problem`` (see the module docstring).

    Args:
      problem: from :func:`cimjax.joint.problem.make_problem`.
      settings: sizes and schedule (default :class:`JointSettings`).
      checkpoint_dir: where the state is saved after every round (orbax); None for no checkpoints.
      resume: continue from the checkpoint in ``checkpoint_dir`` (it must be this problem's); without it
        an existing checkpoint is an error rather than being overwritten.
      progress: called as ``progress(phase, done, total)`` with phase ``descent`` or ``polish``.

    Returns:
      A :class:`JointResult`; ``report`` holds the exact metrics of the discrete design.
    """
    settings = settings or JointSettings()
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir to resume from")
    start_time = time.perf_counter()
    state = initial_state(problem, settings)
    checkpoints = None
    if checkpoint_dir is not None:
        checkpoints = _Checkpoints(Path(checkpoint_dir), _fingerprint(problem, settings), resume)
        state = checkpoints.restore(state) or state
    try:
        state, history = _descend(problem, settings, state, checkpoints, progress)
    finally:
        if checkpoints is not None:
            checkpoints.close()

    evaluator = ExactEvaluator(problem)
    z, bits = continuous_designs(problem, state)
    choices, tables = snap(problem, z, bits)
    tables = np.stack([repair(problem, evaluator, c, t) for c, t in zip(choices, tables, strict=True)])
    starts = list(np.argsort(problem.rank(evaluator(choices, tables)), kind="stable")[: settings.beam])
    candidates = [(choices[i], tables[i]) for i in starts]
    width = problem.smallest_uniform_width()
    fallback = None if width is None else problem.uniform_table(width)
    if fallback is not None:  # the best start hardware with uniform bits: never worse than uniform there
        k = int(np.argmin(problem.rank(evaluator(choices, np.broadcast_to(fallback, tables.shape)))))
        candidates.append((choices[k], fallback))
    finalists = []
    for done, (choice, table) in enumerate(candidates):
        table = allocate(problem, evaluator, choice, table, settings.allocation_rounds)
        choice, table = polish(problem, evaluator, choice, table, settings)
        finalists.append((choice, table))
        if progress:
            progress("polish", done + 1, len(candidates))
    s = evaluator(np.stack([c for c, _ in finalists]), np.stack([t for _, t in finalists]))
    choice, table = finalists[int(np.argmin(problem.rank(s)))]
    swept = 0
    if settings.hardware_sweep or (settings.hardware_sweep is None and problem.area_max is not None):
        tables = [table] + ([fallback] if fallback is not None and not np.array_equal(fallback, table) else [])
        for done, bits in enumerate(tables):
            new_choice, n = best_hardware(problem, bits)
            new_table = allocate(problem, evaluator, new_choice, bits, settings.allocation_rounds)
            new_choice, new_table = polish(problem, evaluator, new_choice, new_table, settings)
            s = evaluator(np.stack([choice, new_choice]), np.stack([table, new_table]))
            if problem.rank(s)[1] < problem.rank(s)[0]:
                choice, table = new_choice, new_table
            swept += n
            if progress:
                progress("hardware", done + 1, len(tables))
    exact = evaluator.evaluations + swept
    report = design_report(problem, choice, table, evaluator)
    relaxed = settings.starts * settings.total_steps
    return JointResult(
        choice=choice,
        table=table,
        report=report,
        evaluations=relaxed + exact,
        relaxed_evaluations=relaxed,
        exact_evaluations=exact,
        wall_s=time.perf_counter() - start_time,
        history=history,
    )


def _descend(problem, settings, state, checkpoints, progress) -> tuple[JointState, list[dict]]:
    """Runs the remaining rounds of the augmented-Lagrangian descent, checkpointing after each."""
    run_round = _make_round(
        problem.spec, problem.workload, tuple(problem.space.values.items()), settings, problem.area_max is not None
    )
    tau0, tau1 = settings.temperature
    schedule = np.geomspace(tau0, tau1, settings.total_steps).astype(np.float32)
    data = _problem_data(problem)
    history = []
    for r in range(int(state.round), settings.rounds):
        window = jnp.asarray(schedule[r * settings.steps_per_round : (r + 1) * settings.steps_per_round])
        state, c, objective = run_round(state, window, data)
        c, objective = np.asarray(c, np.float64), np.asarray(objective, np.float64)
        history.append(
            {
                "round": r + 1,
                "best_relaxed_objective": float(np.exp(objective[np.all(c <= 1e-3, axis=1)].min(initial=np.inf))),
                "max_proxy_ratio": float(np.exp(c[:, 0].max())),
                "feasible_starts": int(np.sum(np.all(c <= 1e-3, axis=1))),
            }
        )
        if checkpoints is not None:
            checkpoints.save(state)
        if progress:
            progress("descent", r + 1, settings.rounds)
    return state, history


__all__ = ["CheckpointError", "JointResult", "JointSettings", "JointState", "optimize"]
