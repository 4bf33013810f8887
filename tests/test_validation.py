"""Bad input at the library boundary: ValueError naming the field, the value and what is allowed."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, PAPER_SPACE, HardwareConfig
from cimjax.hardware.technology import Technology, default_technology
from cimjax.workload.operators import Workload
from cimjax.workload.precision import Precision, preset


def test_hardware_values_outside_the_space():
    with pytest.raises(ValueError, match=r"'bus_intra_tile' = 300 is not allowed; allowed values: \[512, 1024"):
        HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN | {"bus_intra_tile": 300})
    with pytest.raises(ValueError, match=r"unknown hardware field\(s\) \['clock'\]"):
        HardwareConfig.from_dict(EDGECIM_ALPHA05_DESIGN | {"clock": 1})
    with pytest.raises(ValueError, match="'m' is missing"):
        HardwareConfig.from_dict({k: v for k, v in EDGECIM_ALPHA05_DESIGN.items() if k != "m"})


def test_design_space_encode_decode_round_trip():
    for index in (0, 1, 12345, PAPER_SPACE.size - 1):
        assert PAPER_SPACE.encode(PAPER_SPACE.decode(index).to_dict()) == index
    assert PAPER_SPACE.size == 3_136_000


def test_technology_values():
    with pytest.raises(
        ValueError, match=r"'clock_hz' = -1.0 is not allowed; allowed: a finite number in \[400000, 4e\+11\]"
    ):
        default_technology().replace(clock_hz=-1.0)
    with pytest.raises(ValueError, match=r"'dram_efficiency' = 1.5 is not allowed; allowed: .*, 1\]"):
        default_technology().replace(dram_efficiency=1.5)
    with pytest.raises(ValueError, match=r"unknown technology parameter\(s\) \['vdd'\]"):
        Technology.from_values({"vdd": 1.0})


def test_technology_json_overrides(tmp_path):
    path = tmp_path / "tech.json"
    path.write_text('{"clock_hz": 5e8}')
    assert float(Technology.from_json(path).clock_hz) == 5e8
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        Technology.from_json(path)


def test_precision_values():
    with pytest.raises(ValueError, match=r"weight bits = 0 is outside the allowed range \[1, 16\]"):
        Precision.uniform(4, 0)
    prec = preset("int4", 3)
    with pytest.raises(ValueError, match=r"'weight_bits' has shape \(3, 7\); expected \(4, 7\)"):
        prec.validate(4)
    fractional = Precision(prec.weight_bits + 0.5, prec.act_bits, prec.kv_bits)
    with pytest.raises(ValueError, match="whole bits"):
        fractional.validate(3)
    nan = Precision(prec.weight_bits.at[0, 0].set(jnp.nan), prec.act_bits, prec.kv_bits)
    with pytest.raises(ValueError, match="'weight_bits'"):
        nan.validate(3)


def test_workload_values():
    with pytest.raises(ValueError, match=r"'prefill' = -1 is not allowed; allowed: an integer in \[0, 16777216\]"):
        Workload(prefill=-1)
    with pytest.raises(ValueError, match="'attention_block' = 0"):
        Workload(attention_block=0)


def test_closed_form_block_sums_match_loops():
    import math

    for prefill, generate, block in [(0, 1, 1), (128, 128, 32), (5, 17, 7), (100, 3, 64)]:
        wl = Workload(prefill=prefill, generate=generate, attention_block=block)
        contexts = [prefill + t for t in range(1, generate + 1)]
        assert wl.decode_block_sum() == sum(math.ceil(c / block) for c in contexts)
        assert wl.decode_context_sum() == sum(contexts)


def test_every_constant_is_documented():
    from pathlib import Path

    from cimjax.hardware.technology import PARAMETERS

    doc = (Path(__file__).parents[1] / "docs" / "model.md").read_text()
    missing = [name for name in PARAMETERS if f"`{name}`" not in doc]
    assert not missing, f"constants without a row in docs/model.md: {missing}"
    for name, param in PARAMETERS.items():
        assert f"| `{name}` | {param.value:.4g} |" in doc, f"docs/model.md shows a stale value for {name}"
