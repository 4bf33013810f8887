"""How far paired measurements can judge a ranking (cimjax.quant.paired.resolved / split_half_tau and the
frontier's reliability figures), against values computed by hand."""

import numpy as np
import pytest

from cimjax.quant.paired import resolved, split_half_tau
from cimjax.report.proxy_frontier import by_text, reliability
from cimjax.report.proxy_validation import score


def test_resolved_pairs_by_hand():
    """9 windows: batch means over 3 blocks of 3. a and b differ by 0.5 +- 0.1 in every block (block means
    of the difference all 0.5: standard error 0, resolved); c alternates around a with mean 0 (not resolved);
    b - c has mean 0.5 and block means 1/6, 5/6, 1/2, so a standard error of (1/3)/sqrt(3) = 0.19245:
    resolved at 2 standard errors (0.385 < 0.5), not at 3 (0.577 > 0.5)."""
    a = np.ones(9)
    b = a + [0.5, 0.6, 0.4] * 3
    c = a + [1, -1, 1, -1, 1, -1, 1, -1, 0]
    x = np.stack([a, b, c])
    at2 = resolved(x)
    assert at2.tolist() == [[False, True, False], [True, False, True], [False, True, False]]
    at3 = resolved(x, z=3.0)
    assert at3[0, 1] and not at3[1, 2] and not at3[0, 2]


def test_split_half_tau_by_hand():
    # even windows rank the three 1 < 2 < 3, odd windows 5 > 4 > 3: every pair reversed
    x = np.array([[1, 5, 1, 5], [2, 4, 2, 4], [3, 3, 3, 3]], float)
    assert split_half_tau(x) == pytest.approx(-1.0)
    assert split_half_tau(x[:, :1]) is None  # one window: no halves
    assert split_half_tau(np.ones((3, 4))) is None  # constant: undefined


def test_frontier_reliability_by_hand():
    """Budget A: 1 < 2 (resolved); budget B: 10 against 10 +- 1 with mean 0 (not resolved); 5 of 6 pairs
    resolved. Even windows 1, 2, 10, 9.5 and odd 1, 2, 10, 10.5 disagree on one pair of 6: tau 4/6."""
    x = np.array([[1, 1, 1, 1], [2, 2, 2, 2], [10, 10, 10, 10], [10, 11, 9, 10]], float)
    measured = x.mean(axis=1)
    right = score("right", np.array([1.0, 2, 3, 4]), measured, False, [1.0], None)
    swapped = score("swapped", np.array([2.0, 1, 3, 4]), measured, False, [1.0], None)
    out = reliability(x, ["A", "A", "B", "B"], [right, swapped])
    assert out["resolved_pairs"] == pytest.approx(5 / 6)
    assert out["resolved_within_budget"] == {"A": 1.0, "B": 0.0}
    assert out["split_half_tau"] == pytest.approx(4 / 6)
    assert out["variants"]["right"]["resolved_pair_tau"] == pytest.approx(1.0)
    assert out["variants"]["swapped"]["resolved_pair_tau"] == pytest.approx(3 / 5)  # (0, 1) reversed
    assert out["variants"]["right"]["within_budget_tau"] == {"A": pytest.approx(1.0), "B": None}  # B: a tie
    assert out["variants"]["swapped"]["within_budget_tau"]["A"] == pytest.approx(-1.0)


def test_frontier_reliability_splits_pairs_by_run():
    """One budget, two runs (seeds) of two assignments each: the 2 same-seed pairs are (0, 1) and (2, 3), the
    4 cross-seed pairs the rest. Measured 1, 2, 3, 4 on every window (all resolved); the prediction 1, 2, 2, 1
    orders (0, 1) and (0, 2) as measured, ties (0, 3) and (1, 2), reverses (1, 3) and (2, 3): same-seed one
    right and one reversed; cross-seed (0, 2) right, (1, 3) reversed, two tied."""
    x = np.repeat(np.array([[1.0], [2], [3], [4]]), 4, axis=1)
    guess = score("guess", np.array([1.0, 2, 2, 1]), x.mean(axis=1), False, [1.0], None)
    out = reliability(x, ["A"] * 4, [guess], ["A0", "A0", "A1", "A1"])["variants"]["guess"]
    assert out["same_seed"] == {"pairs": 2, "concordant": 1, "discordant": 1, "resolved": 2, "resolved_concordant": 1}
    assert out["cross_seed"] == {"pairs": 4, "concordant": 1, "discordant": 1, "resolved": 4, "resolved_concordant": 1}
    assert out["across_budgets"]["pairs"] == 0
    assert "same_seed" not in reliability(x, ["A"] * 4, [guess])["variants"]["guess"]  # no runs: no split
    other_budget = reliability(x, ["A", "A", "B", "B"], [guess], ["A0", "A0", "B0", "B1"])["variants"]["guess"]
    assert other_budget["cross_seed"]["pairs"] == 1 and other_budget["same_seed"]["pairs"] == 1
    # the pairs across budgets: (0, 2) in order, (1, 3) reversed, (0, 3) and (1, 2) tied in the prediction
    assert other_budget["across_budgets"] == {
        "pairs": 4,
        "concordant": 1,
        "discordant": 1,
        "resolved": 4,
        "resolved_concordant": 1,
    }


def test_frontier_by_text_by_hand():
    """Three assignments of one budget and a uniform design, 4 windows of the split, then 4 docstring windows,
    each window equal to its text's value: the split measures 1, 2, 3 (the prediction exactly: tau 1, ratios
    1), the docstrings 3, 2, 1 (tau -1, ratios 3, 1, 1/3: one of three in [0.67, 1.5]); the uniform design
    measures 1 then 4 against its budget 2. With no windows beyond the split, or none from it: None."""
    val, doc = np.array([1.0, 2, 3, 1]), np.array([3.0, 2, 1, 4])
    x = np.concatenate([np.repeat(val[:, None], 4, 1), np.repeat(doc[:, None], 4, 1)], axis=1)
    right = score("right", np.array([1.0, 2, 3]), x[:3].mean(axis=1), False, [1.0], None)
    out = by_text(x, 4, ["int8"] * 3, [right], {"int8": 2.0})
    assert {t: out[t]["windows"] for t in out} == {"validation": 4, "docstrings": 4}
    assert out["validation"]["measured"] == [1.0, 2.0, 3.0] and out["docstrings"]["measured"] == [3.0, 2.0, 1.0]
    v, d = out["validation"]["variants"]["right"], out["docstrings"]["variants"]["right"]
    assert v["kendall_tau"] == pytest.approx(1.0) and (v["ratio_min"], v["ratio_max"]) == (1.0, 1.0)
    assert v["within_ratio_band"] == 1.0
    assert d["kendall_tau"] == pytest.approx(-1.0) and d["within_ratio_band"] == pytest.approx(1 / 3)
    assert (d["ratio_min"], d["ratio_max"]) == (pytest.approx(1 / 3), pytest.approx(3.0))
    assert out["docstrings"]["reliability"]["resolved_pairs"] == 1.0  # every difference constant: resolved
    assert out["docstrings"]["reliability"]["variants"]["right"]["resolved_pair_tau"] == pytest.approx(-1.0)
    assert out["validation"]["uniform_ratio"] == {"int8": 0.5} and out["docstrings"]["uniform_ratio"] == {"int8": 2.0}
    assert by_text(x, 8, ["int8"] * 3, [right], {"int8": 2.0}) is None
    assert by_text(x, 0, ["int8"] * 3, [right], {"int8": 2.0}) is None


def test_validate_table_states_the_frontier_reliability():
    """The terminal output of a frontier run says how far its measurements can rank (the JSON's figures)."""
    from cimjax.cli.proxy import _print_validation, stdout
    from cimjax.quant.proxy import OPTIMIZER_PROXY
    from cimjax.report.proxy_validation import ValidationResult

    variant = score(OPTIMIZER_PROXY, np.array([1.0, 2, 3]), np.array([1.0, 2, 4]), True, [1.0], None)
    model = {"n_params": 1, "train_steps": 1, "train_seconds": 1.0, "final_train_loss": 1.0, "val_loss": 1.0}
    result = ValidationResult([variant], [1.0, 2, 4], [1.0], 1.0, 3, 1, "tensor", 0, model, {}, 0.0, "frontier")
    reliability = {
        "split_half_tau": 0.5,
        "resolved_pairs": 2 / 3,
        "resolved_within_budget": {"int8": 0.25},
        "variants": {OPTIMIZER_PROXY: {"resolved_pair_tau": 1.0, "within_budget_tau": {"int8": None}}},
    }
    pairs = {"pairs": 6, "concordant": 4, "discordant": 2, "resolved": 3, "resolved_concordant": 3}
    reliability["variants"][OPTIMIZER_PROXY] |= {"same_seed": pairs, "cross_seed": pairs | {"concordant": 1}}
    reliability["variants"][OPTIMIZER_PROXY]["across_budgets"] = pairs | {"pairs": 9, "concordant": 9}
    reference = {"kendall_tau": 0.75, "ratio_min": 0.9, "ratio_max": 1.25}
    payload = {"optimizer_proxy": OPTIMIZER_PROXY, "reliability": reliability, "check_window_reference": reference}
    with stdout.capture() as captured:
        _print_validation(result, payload, "kl", "frontier")
    text = " ".join(captured.get().split())
    assert "1.00 to 1.33 │ 3/3" in text  # the ratio range and how many lie within [0.67, 1.5]
    assert "split-half tau 0.500, 67% of pairs resolved (within int8 25%)" in text
    assert f"{OPTIMIZER_PROXY} over the resolved pairs: tau 1.000" in text
    assert "orders as measured 9 of 9 across-budgets pairs; 4 of 6 same-seed pairs; 1 of 6 cross-seed pairs" in text
    assert "own measurement on the check windows as the prediction: tau 0.750, measured/predicted 0.90 to 1.25" in text
    with stdout.capture() as captured:  # the random protocol has none
        _print_validation(result, {"optimizer_proxy": OPTIMIZER_PROXY}, "kl", "random")
    assert "resolved" not in captured.get()
