"""``optimize`` never returns a design worse than its baseline at its own objective; gains are honest."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cimjax.joint.compare import compare, objective_of


def design(latency, energy, area, feasible=True):
    return {"latency_s": latency, "energy_j": energy, "area_mm2": area, "tokens_per_s": 128 / latency,
            "tokens_per_j": 128 / energy, "feasible": feasible}  # fmt: skip


positive = st.floats(1e-4, 1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(positive, positive, positive, positive, positive, positive, st.sampled_from([0.0, 0.3, 0.5, 1.0]),
       st.sampled_from([0.0, 0.01, 0.2]), st.booleans())  # fmt: skip
def test_the_chosen_design_never_loses_to_the_baseline(l1, e1, a1, l2, e2, a2, alpha, tolerance, feasible):
    ours, base = design(l1, e1, a1, feasible), design(l2, e2, a2)
    chosen, extras = compare(ours, base, alpha, None, tolerance)
    assert chosen is ours or chosen is base
    value, base_value = objective_of(chosen, alpha), objective_of(base, alpha)
    assert value <= base_value * (1 + tolerance) * (1 + 1e-12)
    if tolerance == 0:
        assert extras["gains"]["objective"] >= 1.0
    assert chosen is base or feasible
    assert extras["chosen"] == ("optimised" if chosen is ours else "baseline")
    assert extras["gains"]["tokens_per_s"] == pytest.approx(base["latency_s"] / chosen["latency_s"])
    assert extras["ratios_to_baseline"]["area_mm2"] == pytest.approx(chosen["area_mm2"] / base["area_mm2"])


def test_hand_computed_cases():
    # The case: at alpha = 1 a 4 % faster design on a 5.5x larger, less efficient chip.
    ours, base = design(1 / 1.044, 1 / 34.1, 923.6), design(1.0, 1 / 71.9, 168.8)
    chosen, extras = compare(ours, base, 1.0, None)
    assert chosen is ours and extras["gains"]["objective"] == pytest.approx(1.044)
    assert extras["gains"]["tokens_per_j"] == pytest.approx(34.1 / 71.9)  # below 1: energy got worse
    assert extras["ratios_to_baseline"]["area_mm2"] == pytest.approx(923.6 / 168.8)
    assert "latency only" in extras["objective_note"] and "not limited" in extras["objective_note"]
    # ... which a 5 % near-tie rule trades for the much smaller baseline chip
    chosen, extras = compare(ours, base, 1.0, None, tolerance=0.05)
    assert chosen is base and extras["chosen"] == "baseline" and extras["gains"]["objective"] == 1.0
    # at alpha = 0 the same design loses to the baseline, which is returned instead
    chosen, extras = compare(ours, base, 0.0, None)
    assert chosen is base and "energy only" in extras["objective_note"]
    with pytest.raises(ValueError, match="--tolerance"):
        compare(ours, base, 1.0, None, tolerance=1.5)
