"""A measured evolutionary search over the bit table at fixed hardware (docs/joint.md, "Evolutionary search").

EvoPress (Sieberling et al., ICML 2025) shows that sums of per-layer errors do not rank compression
assignments, and searches them with the measured KL divergence instead. Here, at the hardware of a verified
design (its exact cost model, so tokens/s, prices every candidate for free):

* **Mutation** (a *level switch*): up to three entries of the parent's bit table raised by one bit and one
  to three others lowered by one, within the allowed bits of each point, drawn where the proxy ranks them
  (:func:`_odds`: the proxy ranks, the measurement decides); a child must cost at most the current *cost
  target* (the objective at the design's hardware), so many random switches are priced and the
  :data:`OFFSPRING` new ones that meet the target and spend most of it are kept.
* **Fitness**: the measured target (KL) on *selection* windows, never on the check windows; in two stages
  (EvoPress's multi-step selection): every child on the first ``STAGES[0]`` windows, the best
  :data:`SURVIVORS` on all of them. The parent competes while it meets the target (elitism).
* **Outer loop** (EvoPress: minimise KL at a fixed cost target, then raise the target): once the best design
  measures within the selection budget the cost target falls by ``step`` below it; when :data:`STALL`
  generations in a row at one target neither improve the parent nor bring it within the budget, the search
  returns to the fastest design within it with half the step, and stops once the step is below
  :data:`MIN_STEP`, when there is no such design, or when the measurements are spent.

The result is the fastest design measured within the selection budget, or the start when none is faster.
:func:`with_evolution` measures it *once* on the check windows and accepts it only if it is within the
budget there (the selection never saw those windows), then lets optimize's rule pick its hardware.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from cimjax.joint.problem import ExactEvaluator, JointProblem, design_report
from cimjax.joint.refine import hardware_and_bits
from cimjax.quant.measured import Measured, loss_and_kl

STAGES = (8, 64)  # selection windows of the first and the second stage (the second: all of them)
OFFSPRING = 16  # children measured on the first stage per generation
SURVIVORS = 4  # children measured on every selection window per generation
STALL = 3  # generations in a row at one cost target without improvement before backing off
STEP = 0.01  # the first cost-target step (1 % of the objective)
MIN_STEP = 0.0025
TRIES = 32  # random mutations priced per child wanted
EXPLORE = 0.25  # share of a switch's probability spread evenly over the entries (the rest: the proxy's ranking)
SELECTION_SEED = 1000  # the selection windows' seed, offset from the calibration's


def _mutations(rng: np.random.Generator, parent: np.ndarray, odds: tuple, n: int) -> np.ndarray:
    """``n`` level switches of ``parent`` ``(L, P)``: 0-3 entries raised by one bit and 1-3 others lowered by
    one, drawn with the probabilities ``odds`` = ``(raise, lower)`` over the flat entries (zero where the
    entry is at its highest, resp. lowest, allowed bits)."""
    p_up, p_down = odds
    tables = np.repeat(parent.reshape(1, -1), n, axis=0)
    for row in tables:
        ups = rng.choice(row.size, min(int(rng.integers(0, 4)), np.count_nonzero(p_up)), replace=False, p=p_up)
        p = p_down.copy()
        p[ups] = 0.0
        downs = rng.choice(row.size, min(int(rng.integers(1, 4)), np.count_nonzero(p)), replace=False, p=p / p.sum())
        row[ups] += 1
        row[downs] -= 1
    return tables.reshape(n, *parent.shape)


def _ranked(gain: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Probabilities over the entries: ``1 / rank`` of ``gain`` among the allowed entries with a positive
    gain, mixed with an even share :data:`EXPLORE` over every allowed entry."""
    order = np.argsort(-gain, kind="stable")
    weight = np.zeros(gain.size)
    weight[order] = 1.0 / (1.0 + np.arange(gain.size))
    weight = np.where(allowed & (gain > 0), weight, 0.0)
    even = allowed / allowed.sum()
    return even if weight.sum() == 0 else (1 - EXPLORE) * weight / weight.sum() + EXPLORE * even


def _odds(parent: np.ndarray, bounds: tuple, price) -> tuple[np.ndarray, np.ndarray]:
    """Where level switches are drawn (the proxy ranks, the measurement decides): raises by the proxy's
    predicted fall per unit of cost they add, reductions by the cost they save per unit of predicted rise;
    ``price(tables) -> (objective, proxy)`` at the design's hardware."""
    low, high = (np.broadcast_to(b, parent.shape).reshape(-1) for b in bounds)
    flat, eye = parent.reshape(-1), np.eye(parent.size)

    def log_price(tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        objective, proxy = price(tables.reshape(-1, *parent.shape))
        return np.log(objective), proxy

    (cost, proxy), (up_cost, up_proxy) = log_price(flat), log_price(np.minimum(flat + eye, high))
    down_cost, down_proxy = log_price(np.maximum(flat - eye, low))
    up = (proxy - up_proxy) / np.maximum(up_cost - cost, 1e-12)
    down = (cost - down_cost) / np.maximum(down_proxy - proxy, 1e-12)
    return _ranked(up, flat < high), _ranked(down, flat > low)


def _offspring(rng, parent, odds: tuple, cost, target: float, seen: set) -> np.ndarray:
    """Up to :data:`OFFSPRING` distinct new children of ``parent`` whose cost is at most ``target``, those
    that spend most of it first (a level switch that saves more than the target asks gives up accuracy for
    nothing: EvoPress's switches keep the cost)."""
    tables = _mutations(rng, parent, odds, OFFSPRING * TRIES)
    costs = cost(tables)
    children, keys = [], set()
    for k in np.argsort(-costs, kind="stable"):
        key = tables[k].tobytes()
        if costs[k] <= target and key not in seen and key not in keys:
            keys.add(key)
            children.append(tables[k])
        if len(children) == OFFSPRING:
            break
    return np.array(children).reshape(-1, *parent.shape)


@dataclasses.dataclass
class _State:
    """The search's state: the parent, the fastest design within the budget, the cost target and step."""

    parent: tuple  # (cost, table, value on every selection window)
    best: tuple | None
    target: float
    step: float = STEP
    stall: int = 0


def _back_off(state: _State) -> bool:
    """Back to the fastest design within the budget, with half the step; False when there is none or the step
    is below :data:`MIN_STEP` (the search stops)."""
    if state.best is None:
        return False
    state.step /= 2
    state.parent, state.target, state.stall = state.best, state.best[0] * (1 - state.step), 0
    return state.step >= MIN_STEP


def _next_target(state: _State, budget: float, improved: bool) -> bool:
    """Updates the target after a generation (``improved``: a child replaced the parent); False when the
    search should stop."""
    cost, _, value = state.parent
    if value <= budget:
        if state.best is None or cost < state.best[0]:
            state.best = state.parent
        state.target, state.stall = cost * (1 - state.step), 0
        return True
    state.stall = 0 if improved else state.stall + 1
    return state.stall < STALL or _back_off(state)


def evolve(
    problem: JointProblem,
    report: dict,
    budget: float,
    measure: Callable[[np.ndarray, int], np.ndarray],
    limit: int,
    seed: int = 0,
    say: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, float, dict]:
    """The fastest bit table (at ``report``'s hardware) measured within ``budget`` on the selection windows.

    Args:
      problem: the problem ``report`` solved (hardware space, bit bounds, objective).
      report: the starting design (its bits and hardware).
      budget: the selection budget, in the units ``measure`` returns.
      measure: ``(tables (n, L, 17), stage) -> values (n,)`` on the first ``STAGES[stage]`` selection windows.
      limit: most assignments measured (every stage counts).

    Returns ``(table, value, info)``: the table, its value on every selection window, and ``info``:
    ``measured``, ``generations``, ``start_value`` (the start's value) and ``improved`` (whether the table is
    faster than the start's; else it is the start's).
    """
    say = say or (lambda msg: None)
    rng, evaluator = np.random.default_rng(seed), ExactEvaluator(problem)
    choice, start = hardware_and_bits(problem, report)
    bounds = problem.bits.bounds()

    def price(tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = evaluator(np.repeat(choice[None], len(tables), axis=0), tables)
        return scores.objective, scores.proxy

    def cost(tables: np.ndarray) -> np.ndarray:
        return price(tables)[0]

    seen = {start.tobytes()}
    first = (float(cost(start[None])[0]), start, float(measure(start[None], 1)[0]))
    state, measured, generations = _State(parent=first, best=None, target=first[0]), 1, 0
    if first[2] <= budget:
        state.best, state.target = first, first[0] * (1 - STEP)
    while measured + OFFSPRING + SURVIVORS <= limit:
        children = _offspring(rng, state.parent[1], _odds(state.parent[1], bounds, price), cost, state.target, seen)
        if len(children) == 0:  # no level switch reaches the target: a smaller step
            if not _back_off(state):
                break
            continue
        seen.update(t.tobytes() for t in children)
        screened = measure(children, 0)
        keep = children[np.argsort(screened, kind="stable")[:SURVIVORS]]
        values = measure(keep, 1)
        measured += len(children) + len(keep)
        generations += 1
        pool = [(float(c), t, float(v)) for c, t, v in zip(cost(keep), keep, values, strict=True)]
        if state.parent[0] <= state.target:
            pool.append(state.parent)
        parent, state.parent = state.parent, min(pool, key=lambda p: (p[2], p[0]))
        say(f"evolve: generation {generations}, value {state.parent[2]:.4g} (budget {budget:.4g}), "
            f"cost {state.parent[0] / first[0]:.4f} of the start's")  # fmt: skip
        if not _next_target(state, budget, state.parent is not parent):
            break
    improved = state.best is not None and state.best[0] < first[0]
    final = state.best if improved else first
    info = {"measured": measured, "generations": generations, "start_value": first[2], "improved": improved}
    return final[1], final[2], info


def selector(measured: Measured, model, target: str) -> Callable[[np.ndarray, int], np.ndarray]:
    """``(tables, stage) -> values``: ``target`` measured on the first ``STAGES[stage]`` selection windows,
    random windows of the training split (seeded apart from the sensitivities' and disjoint from the check
    windows of the validation split), on ``model`` as the checkpoint's quantiser sees it (:meth:`Measured.model`)."""
    calibration = measured.calibration
    windows = dataclasses.replace(calibration, windows=STAGES[-1], seed=calibration.seed + SELECTION_SEED).tokens()

    def measure(tables: np.ndarray, stage: int) -> np.ndarray:
        loss, kl, _ = loss_and_kl(model, windows[: STAGES[stage]], np.asarray(tables), measured.scheme)
        return np.asarray({"loss": loss, "kl": kl}[target], np.float64)

    return measure


def with_evolution(found: tuple, *, measured: Measured, select, check, budget: float, target: str, limit: int,
                   seed: int, against_uniform, say) -> tuple:  # fmt: skip
    """The evolutionary search from the recommended design ``found`` (``(problem, report, values, extras)``),
    its result measured once on the check windows (``check``: ``tables -> [values]``) and, if within
    ``budget`` there, put to optimize's rule (``against_uniform(candidates)``); the better of the two by the
    objective is returned, with the JSON ``evolve``. The selection budget is ``budget`` scaled by the
    baseline width's value on the selection windows over its value on the check windows."""
    problem, report, values, extras = found
    say = say or (lambda msg: None)
    if extras["baseline"] is None or values is None:
        return found, None
    start, cpu, width = time.perf_counter(), time.process_time(), extras["baseline"]["width"]
    uniform = float(select(problem.uniform_table(width)[None], 1)[0])
    selection_budget = budget * uniform / measured.uniform(target)[width]
    table, value, info = evolve(problem, report, selection_budget, select, limit, seed, say)
    info |= {"measured": info["measured"] + 1, "selection_windows": list(STAGES), "selection_budget": selection_budget,
             "selection_value": value, "measured_check": None, "accepted": False,
             "tokens_per_s_before": report["tokens_per_s"]}  # fmt: skip
    chosen = found
    if info["improved"]:
        result = check(table[None])[0]  # the one measurement on the check windows
        info["measured_check"] = result["value"]
        if result["value"] <= budget:
            choice, _ = hardware_and_bits(problem, report)
            evolved = design_report(problem, choice, table, ExactEvaluator(problem)) | {"feasible": True}
            candidate = against_uniform([(problem, evolved, result)])
            if candidate[3]["objective"] < extras["objective"]:
                info["accepted"] = True
                chosen = (*candidate[:3], candidate[3] | {"optimiser_design": extras["optimiser_design"]})
    say(f"evolve: {'accepted' if info['accepted'] else 'not accepted'} ({info['measured']} measured)")
    elapsed = {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}
    return chosen, info | {"tokens_per_s": chosen[1]["tokens_per_s"]} | elapsed
