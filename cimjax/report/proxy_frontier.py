"""The *frontier* protocol of ``cimjax proxy validate``: proxies judged on the assignments the joint optimiser
returns at measured budgets INT8..INT4 (and their one-step neighbours), not on random ones.

The trained model is exported as a checkpoint and measured as ``cimjax optimize --checkpoint`` does
(:func:`cimjax.quant.measured.for_checkpoint`); the frontier assignments are measured on validation windows
that neither the budgets nor the fit set used: by default every validation window after the check windows,
each measurement with its standard error over windows (:mod:`cimjax.quant.paired`).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from scipy import stats

from cimjax.joint.settings import JointSettings
from cimjax.quant import corpus
from cimjax.quant.calibration import Calibration
from cimjax.quant.measured import Measured, loss_and_kl
from cimjax.quant.paired import Paired, paired, resolved, split_half_tau, standard_error
from cimjax.quant.pairs import of_checkpoint
from cimjax.quant.proxy import OPTIMIZER_PROXY, OPTIMIZER_VARIANTS, optimizer_proxy, uniform_budgets
from cimjax.quant.train import TrainedModel
from cimjax.report.proxy_validation import (
    ValidationResult,
    VariantResult,
    judge_variants,
    model_info,
    proxy_features,
    rank_correlation,
    score,
    variant_json,
)

# Frontier runs per size: the optimiser's settings (None: JointSettings()), check windows and held-out windows
# (n_eval; None: every validation window after the check windows). They override the random protocol's SIZES.
FRONTIER_SIZES: dict[str, dict] = {
    "benchmark": {"settings": None, "check_windows": 64, "n_eval": None},
    "tiny": {
        "settings": JointSettings(starts=2, rounds=2),
        "check_windows": 8,
        "seeds": (0,),
        "widths": (3,),
        "n_eval": 8,
    },
    "subword": {"settings": None, "check_windows": 64, "n_eval": None},
}


def held_out_windows(calibration: Calibration, val_fraction: float, n_eval: int | None) -> tuple[np.ndarray, int]:
    """The frontier's ``n_eval`` held-out windows (None: every validation window after the check windows) and
    how many came from the validation split (:func:`cimjax.quant.corpus.held_out_windows`): after the check
    windows, so disjoint from every window the checkpoint was measured on (GPTQ's and, by default, the
    sensitivities' are training-split windows; with ``sensitivity_split="check"`` they are check windows)."""
    seq_len, skip, tokenizer = calibration.seq_len, calibration.check_windows, calibration.tokenizer
    if n_eval is None:
        n_eval = (len(corpus.split(val_fraction, tokenizer)[1]) - 1) // seq_len - skip
    return corpus.held_out_windows(seq_len, skip, n_eval, val_fraction, tokenizer)


def one_step_neighbours(table: np.ndarray, n: int, rng: np.random.Generator, low, high) -> np.ndarray:
    """``n`` tables that each move one random entry of ``table`` by +-1 bit within ``[low, high]`` ``(17,)``."""
    out = []
    while len(out) < n:
        layer, col = rng.integers(table.shape[0]), rng.integers(table.shape[1])
        step = rng.choice((-1, 1))
        if low[col] <= table[layer, col] + step <= high[col]:
            moved = table.copy()
            moved[layer, col] += step
            out.append(moved)
    return np.stack(out)


def frontier_tables(
    measured: Measured, proxy, target: str, widths, seeds, neighbours: int, seed: int, settings, say
) -> tuple[np.ndarray, list[dict]]:
    """The optimiser's assignment at each measured budget (``widths``) and seed, each followed by
    ``neighbours`` random one-step moves; and a label per assignment (budget, seed, neighbour)."""
    from cimjax.joint.optimizer import optimize
    from cimjax.joint.problem import make_problem

    tables, labels = [], []
    for width in widths:
        budget, limit = f"int{width}", measured.uniform(target)[width]
        if limit <= 0:
            raise ValueError(f"uniform INT{width} measured a {target} increase of {limit:.3g} <= 0: no budget to test")
        problem = make_problem(measured.spec, limit, proxy=proxy)
        low, high = problem.bits.bounds()
        for s in seeds:
            say(f"frontier: {budget} (measured {target} {limit:.4g} nats/token), seed {s} ...")
            table = optimize(problem, dataclasses.replace(settings or JointSettings(), seed=s)).table
            rng = np.random.default_rng([seed, s, len(tables)])
            tables += [table, *one_step_neighbours(table, neighbours, rng, low, high)]
            labels += [{"budget": budget, "seed": s, "neighbour": k > 0} for k in range(neighbours + 1)]
    return np.stack(tables).astype(np.float32), labels


def uniform_held_out(widths, budgets: dict[int, float], values, errors) -> dict:
    """Each uniform budget design measured on the held-out windows, against its budget (its value on the check
    windows): the measured / predicted ratio of a proxy that prices it exactly at its budget, with its
    standard error; how far the windows alone move a ratio."""
    return {
        f"int{w}": {"measured": float(v), "measured_se": float(e), "budget": budgets[w]}
        | {"ratio": float(v / budgets[w]), "ratio_se": float(e / budgets[w])}
        for w, v, e in zip(widths, values, errors, strict=True)
    }


def reliability(per_window: np.ndarray, budgets: list[str], variants: list, runs: list[str] | None = None) -> dict:
    """How far the frontier's measurements ``(n, W)`` can judge a ranking, and each variant where they can.

    ``split_half_tau``: the measured ranking on the even windows against the odd ones
    (:func:`cimjax.quant.paired.split_half_tau`); ``resolved_pairs``: the fraction of assignment pairs
    whose order the measurement resolves (:func:`cimjax.quant.paired.resolved`), ``resolved_within_budget``
    the same among the pairs of each budget; per variant (anything with ``name`` and ``predicted``),
    ``resolved_pair_tau`` (Kendall's statistic over the resolved pairs only: concordant minus discordant,
    over their number; None if none is resolved) and ``within_budget_tau`` (its Kendall tau among each
    budget's assignments). Why: the assignments of one budget are nearly equal, so much of the tau may rest
    on differences within measurement noise.

    With ``runs`` (which optimiser run each assignment comes from: its budget and seed), the pairs within a
    budget are also split (:func:`run_pairs`) into ``same_seed`` (both from one run: an assignment and its
    neighbours) and ``cross_seed`` (from the two seeds' runs), beside ``across_budgets`` (the rest). Why:
    the optimiser drives every run to its proxy's budget, so that proxy prices the runs of one budget nearly
    equal by construction, while a one-bit neighbour differs from its assignment by a term the proxy does
    price.
    """
    known = resolved(per_window)
    measured = np.asarray(per_window, np.float64).mean(axis=1)
    budget = np.asarray(budgets)
    i, j = np.triu_indices(len(measured), 1)
    pairs, same = known[i, j], budget[i] == budget[j]
    names = list(dict.fromkeys(budgets))
    groups = {} if runs is None else {"same_seed": same & (np.asarray(runs)[i] == np.asarray(runs)[j])}
    if groups:
        groups |= {"cross_seed": same & ~groups["same_seed"], "across_budgets": ~same}

    def within(predicted, name):
        rows = budget == name
        return rank_correlation(stats.kendalltau, predicted[rows], measured[rows])

    def judged(predicted):
        sign = np.sign(predicted[i] - predicted[j]) * np.sign(measured[i] - measured[j])
        return {
            "resolved_pair_tau": float(np.mean(sign[pairs])) if pairs.any() else None,
            "within_budget_tau": {b: within(predicted, b) for b in names},
        } | {g: run_pairs(sign[rows], pairs[rows]) for g, rows in groups.items()}

    return {
        "split_half_tau": split_half_tau(per_window),
        "resolved_pairs": float(np.mean(pairs)),
        "resolved_within_budget": {b: float(np.mean(pairs[same & (budget[i] == b)])) for b in names},
        "variants": {v.name: judged(np.asarray(v.predicted, np.float64)) for v in variants},
    }


def run_pairs(sign: np.ndarray, known: np.ndarray) -> dict:
    """A group of pairs judged: how many, how many the proxy orders as measured (``concordant``), against it
    (``discordant``; a tie on either side is neither), and the same among the pairs the measurement resolves
    (``resolved``, ``resolved_concordant``)."""
    return {
        "pairs": int(sign.size),
        "concordant": int(np.sum(sign > 0)),
        "discordant": int(np.sum(sign < 0)),
        "resolved": int(np.sum(known)),
        "resolved_concordant": int(np.sum(sign[known] > 0)),
    }


CHECK_REFERENCE = "check_windows"
"""The name of :func:`check_window_reference`'s pseudo-variant."""


def check_window_reference(
    model, measured: Measured, tables: np.ndarray, target: str, held_out: np.ndarray, se: np.ndarray
) -> VariantResult:
    """Each frontier assignment's own measured ``target`` on the check windows (where the budgets and the fit
    set were measured), scored as if it were a proxy's prediction of the held-out measurement ``held_out``.

    Why: a proxy fitted on the check windows can at best reproduce those measurements, so this is what an
    exact model of them would score on the frontier; the gap between it and a variant is what the variant's
    form loses, the gap between it and a perfect score what the change of windows (text and noise) loses."""
    loss, kl, _ = loss_and_kl(model, measured.calibration.check_tokens(), tables, measured.scheme)
    assumption = "not a proxy: each assignment measured on the check windows, a reference for the variants"
    return score(CHECK_REFERENCE, {"loss": loss, "kl": kl}[target], held_out, False, [], assumption, measured_se=se)


def frontier_rows(
    labels: list[dict], m: Paired, target: str, opt: VariantResult, reference: VariantResult
) -> list[dict]:
    """The JSON's ``frontier``: each assignment's label with its measured ``target``, the optimizer proxy's
    prediction and their ratio, its ``target`` on the check windows (``measured_check``,
    :func:`check_window_reference`), and its measured loss and KL, each with its standard error."""
    values, se = m.of(target)
    return [
        label
        | {"measured": float(values[i]), "predicted": opt.predicted[i], "ratio": opt.ratios[i]}
        | {"measured_check": reference.predicted[i]}
        | {"measured_loss": float(m.loss[i]), "measured_kl": float(m.kl[i])}
        | {"measured_se": float(se[i]), "ratio_se": opt.ratio_se[i]}
        | {"measured_loss_se": float(m.loss_se[i]), "measured_kl_se": float(m.kl_se[i])}
        for i, label in enumerate(labels)
    ]


TEXT_KEYS = ("kendall_tau", "kendall_tau_se", "spearman", "ratio_min", "ratio_max", "within_ratio_band")
"""The variant figures :func:`by_text` gives per text (those of :func:`variant_json`)."""


def by_text(
    per_window: np.ndarray,
    own: int,
    labels: list[str],
    variants: list[VariantResult],
    budgets: dict,
    runs: list[str] | None = None,
) -> dict | None:
    """The frontier judged on each text of its held-out windows alone: ``validation`` (the first ``own``
    windows, from the validation split) and ``docstrings`` (the rest, :func:`cimjax.quant.corpus.docstrings`);
    None unless the windows hold both.

    ``per_window`` ``(n + len(budgets), W)``: the ``n`` judged assignments (budget ``labels``), then the uniform
    budget designs in the order of ``budgets`` (their values on the check windows). Per text: the windows,
    each assignment's mean, each variant's :data:`TEXT_KEYS` against those means, :func:`reliability` on
    that text's windows (with ``runs``, each assignment's optimiser run), and each uniform design's mean over
    its budget (``uniform_ratio``). Why: the docstrings are not the text the model was trained on or its
    budgets measured on (the byte LM's loss there is 1.94 against 1.20 nats/byte on the split), so a figure
    over all windows mixes two measurements; this says whether they rank and price the frontier alike.
    """
    x, n = np.asarray(per_window, np.float64), len(labels)
    if not 0 < own < x.shape[1]:
        return None
    out = {}
    for text, part in (("validation", slice(0, own)), ("docstrings", slice(own, None))):
        frontier, uniform = x[:n, part], x[n:, part].mean(axis=1)
        means, se = frontier.mean(axis=1), standard_error(frontier)
        judged = [score(v.name, np.asarray(v.predicted), means, v.fitted, v.coef, v.assumption, v.saturation, se)
                  for v in variants]  # fmt: skip
        out[text] = {
            "windows": frontier.shape[1],
            "measured": means.tolist(),
            "variants": {v.name: {k: variant_json(v)[k] for k in TEXT_KEYS} for v in judged},
            "reliability": reliability(frontier, labels, judged, runs),
            "uniform_ratio": {b: float(u / budgets[b]) for b, u in zip(budgets, uniform, strict=True)},
        }
    return out


def validate_frontier(
    trained: TrainedModel,
    *,
    widths: tuple[int, ...] = (8, 6, 4),
    seeds: tuple[int, ...] = (0, 1),
    neighbours: int = 3,
    seed: int = 0,
    n_calib: int = 16,
    n_eval: int | None = None,
    n_samples: int = 16,
    check_windows: int = 64,
    settings=None,
    target: str = "loss",
    sensitivity_split: str = "train",
    pair_set: str | None = "layer",
    optimizer_variant: str = OPTIMIZER_PROXY,
    log=None,
    progress=None,
) -> ValidationResult:
    """Judges every variant on the assignments the joint optimiser returns, and their one-step neighbours.

    The trained model is exported as a checkpoint and measured like ``cimjax optimize --checkpoint`` does
    (:func:`measured_checkpoint`). For each measured budget and seed, the joint optimiser (tokens/s, no area
    limit, ``settings``) with :func:`optimizer_proxy` of ``optimizer_variant`` (:data:`OPTIMIZER_VARIANTS`)
    returns an assignment (budgets: the measured ``target`` of uniform W=A=KV at each of ``widths``; INT8..INT4
    by default); ``neighbours`` random one-step moves of each are added. All are measured on ``n_eval`` *other*
    validation windows (after the check windows; None: all of them; beyond the split's end the windows
    continue into :func:`cimjax.quant.corpus.docstrings`). Fitted variants are fitted on the checkpoint's fit set.
    ``target`` is what budgets, fits and measurements are in: the ``loss`` increase or the ``kl`` divergence
    from full precision. The uniform budget designs are measured on the held-out windows too
    (:func:`uniform_held_out`); when the windows run into the docstrings, each text is also judged alone
    (:func:`by_text`). ``pairwise``'s pairs (``pair_set``) are measured on the sensitivity windows (None:
    none are, and ``pairwise`` is not judged; it cannot then drive the optimiser). ``progress`` is called as
    ``progress(done, total)`` while the checkpoint and the held-out windows are measured
    (:data:`cimjax.quant.sensitivity.Progress`).
    """
    if optimizer_variant not in OPTIMIZER_VARIANTS:
        raise ValueError(f"optimizer_variant={optimizer_variant!r}; allowed: {', '.join(OPTIMIZER_VARIANTS)}")
    if optimizer_variant == "pairwise" and pair_set is None:
        raise ValueError("optimizer_variant='pairwise' needs measured pairs; pair_set=None measures none")
    say = log or (lambda msg: None)
    t0 = time.perf_counter()
    measured = measured_checkpoint(trained, n_calib, n_samples, seed, check_windows, sensitivity_split, say, progress)
    sens_seconds = time.perf_counter() - t0
    # the model and quantiser the fit set and budgets were measured with (smoothed first if the scheme says so)
    model = measured.model(trained.model)
    pairs = None if pair_set is None else of_checkpoint(model, measured, pair_set)
    fit_values = measured.joint(target)
    driving = pairs.coefficients() if optimizer_variant == "pairwise" else None
    proxy = optimizer_proxy(measured.sens, measured.joint_tables, fit_values, target, optimizer_variant, driving)
    tables, labels = frontier_tables(measured, proxy, target, widths, seeds, neighbours, seed, settings, say)
    held_out, own = held_out_windows(measured.calibration, trained.config.val_fraction, n_eval)
    say(f"measuring {len(tables)} frontier assignments on {len(held_out)} held-out windows ({own} validation) ...")
    uniform = np.stack([np.full(tables.shape[1:], float(w), np.float32) for w in widths])
    m = paired(model, held_out, np.concatenate([tables, uniform]), measured.scheme, progress)
    values, errors = m.of(target)
    frontier_measured, se = values[: len(tables)], errors[: len(tables)]
    spec = trained.model.spec
    features = proxy_features(measured.sens, spec, np.concatenate([measured.joint_tables, tables]), pairs)
    results = judge_variants(features, len(fit_values), fit_values, frontier_measured, se)
    opt = next(v for v in results if v.name == optimizer_variant)
    budgets = {f"int{w}": measured.uniform(target)[w] for w in widths}
    say(f"measuring the {len(tables)} frontier assignments on the check windows too (a reference) ...")
    reference = check_window_reference(model, measured, tables, target, frontier_measured, se)
    budget_of, runs = [x["budget"] for x in labels], [f"{x['budget']}, seed {x['seed']}" for x in labels]
    judged = reliability(m.windows_of(target)[: len(tables)], budget_of, [*results, reference], runs)
    details = {
        "frontier": frontier_rows(labels, m, target, opt, reference),
        "measured_budgets": budgets,
        "uniform_held_out": uniform_held_out(
            widths, measured.uniform(target), values[len(tables) :], errors[len(tables) :]
        ),
        "sensitivity_text": measured.calibration.sensitivity_split,
        "held_out_windows": len(held_out),
        "held_out_docstring_windows": len(held_out) - own,
        "check_window_reference": variant_json(reference) | judged["variants"].pop(CHECK_REFERENCE),
        "reliability": judged,
        "by_text": by_text(m.windows_of(target), own, budget_of, results, budgets, runs),
    }
    return ValidationResult(
        variants=results,
        measured=frontier_measured.tolist(),
        measured_fit=fit_values.tolist(),
        base_loss=m.base,
        n_configs=len(tables),
        n_fit=len(fit_values),
        granularity="tensor",
        seed=seed,
        model=model_info(trained),
        budgets=uniform_budgets(proxy, spec.n_layers),
        sensitivity_seconds=sens_seconds,
        protocol="frontier",
        target=target,
        details=details,
        measured_se=se.tolist(),
        eval_windows=m.windows,
        scheme=measured.scheme,
        optimizer_proxy=optimizer_variant,
    )


def measured_checkpoint(
    trained: TrainedModel,
    n_calib: int,
    n_samples: int,
    seed: int,
    check_windows: int,
    sensitivity_split: str,
    say,
    progress=None,
) -> Measured:
    """``trained`` exported as a checkpoint (once) and measured as ``cimjax optimize --checkpoint`` measures it
    (:func:`cimjax.quant.measured.for_checkpoint`, cached): sensitivities on ``n_calib`` windows of the training
    split or, with ``sensitivity_split="check"``, of the check windows; budgets and the fit set on
    ``check_windows`` validation windows."""
    from cimjax.lm.checkpoint import save_checkpoint
    from cimjax.quant.measured import for_checkpoint

    directory = trained.directory / "hf"
    if not (directory / "config.json").is_file():
        save_checkpoint(trained.model, directory, tokenizer=trained.tokenizer)
    calibration = Calibration(
        n_calib, trained.config.seq_len, n_samples, seed, check_windows, sensitivity_split=sensitivity_split
    )
    return for_checkpoint(directory, calibration, log=say, progress=progress)
