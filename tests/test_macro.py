"""The PE macro as its own object: a second macro is defined here, in this file alone, and loads, latency,
energy and area change as the equations say (hand-computed values and the reference parametrised by it)."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import jsonschema
import pytest

from cimjax.api import evaluate_design
from cimjax.cost.model import evaluate
from cimjax.cost.reference import reference_costs
from cimjax.hardware.area import chip_area
from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, HardwareConfig
from cimjax.hardware.macro import EDGECIM_MACRO, Macro
from cimjax.hardware.technology import Technology, default_technology
from cimjax.mapping.partition import pe_loads
from cimjax.mapping.pipeline import stage_timing
from cimjax.ops import EXACT
from cimjax.schema import schema
from cimjax.workload.models import MODELS
from cimjax.workload.precision import Precision


@dataclasses.dataclass(frozen=True)
class Digital64(Macro):
    """A 64x64 digital bit-serial macro: 16x EdgeCIM's cells, so (assumed for this test) 16x its energy per
    cycle and its area; the write energy per bit is EdgeCIM's."""

    def cycle_energy(self, tech):
        return 16.0 * tech.pe_cycle_energy

    def area_mm2(self, tech):
        return 16.0 * tech.pe_area_mm2


@dataclasses.dataclass(frozen=True)
class Analog(Macro):
    """An analog macro: 2-bit cells, 2-bit input DACs, two rows written per cycle, and one ADC conversion
    per column and cycle on top of the array's energy per cycle."""

    adc_energy_per_conversion: float = 0.5e-12  # J; assumed for the test (an 8-bit SAR ADC at 65 nm is ~1 pJ)

    def cycle_energy(self, tech):
        return tech.pe_cycle_energy + self.columns * self.adc_energy_per_conversion


DIGITAL64 = Digital64(name="digital-64x64", rows=64, columns=64)
ANALOG = Analog(
    name="analog-32x32", rows=32, columns=32, bits_per_cell=2, input_bits_per_cycle=2, rows_written_per_cycle=2
)
DESIGN = EDGECIM_ALPHA05_DESIGN | {"m": 2}


def test_loads_and_cycles_hand_computed():
    # 2048 x 2048 at 4 bits: EdgeCIM 128 row groups x ceil(2048 / 4) = 65536 loads; 64x64: 32 x ceil(2048/16).
    assert float(pe_loads(EDGECIM_MACRO, 2048, 2048, 4.0, EXACT)) == 128 * 512
    assert float(pe_loads(DIGITAL64, 2048, 2048, 4.0, EXACT)) == 32 * 128
    # Analog: a 3- or 4-bit weight takes 2 two-bit cells, so 16 per row of 32 cells; 64 row groups.
    for bits in (3.0, 4.0):
        assert float(pe_loads(ANALOG, 2048, 2048, bits, EXACT)) == 64 * 128
    assert float(ANALOG.input_cycles(8.0, EXACT)) == 4 and float(ANALOG.input_cycles(3.0, EXACT)) == 2
    assert EDGECIM_MACRO.input_cycles(8.0, EXACT) == 8.0  # bit-serial: one cycle per input bit
    assert (EDGECIM_MACRO.write_cycles, DIGITAL64.write_cycles, ANALOG.write_cycles) == (16, 64, 16)
    assert (EDGECIM_MACRO.stored_bits, DIGITAL64.stored_bits, ANALOG.stored_bits) == (256, 4096, 2048)


def test_row_write_time_follows_the_macro():
    """A stage bound by writing the macro's rows lasts write_cycles / f (tiny stage, no compute); with
    the bus-width write port (the default) one cycle, whatever the macro."""
    hw = HardwareConfig.from_dict(DESIGN)
    f = float(default_technology().clock_hz)
    for port, cycles in ((0, lambda macro: macro.write_cycles), (1, lambda macro: 1)):
        base = default_technology().replace(bus_width_write=port)
        for macro in (EDGECIM_MACRO, DIGITAL64, ANALOG):
            t = stage_timing(
                hw, base.replace(macro=macro), EXACT, stage_bits=1.0, streaming_clusters=1.0, stage_cycles=0.0,
                drain_cycles=0.0,
            )  # fmt: skip
            assert float(t.first) == pytest.approx(cycles(macro) / f, rel=1e-6), (port, macro.name)


def test_area_changes_as_the_equations_say():
    hw = HardwareConfig.from_dict(DESIGN)
    base = default_technology().replace(bus_width_write=0)  # the write port's area: test_cost_model.py
    edge, big = chip_area(hw, base), chip_area(hw, base.replace(macro=DIGITAL64))
    pe, bit = float(base.pe_area_mm2), float(base.sram_area_per_bit_mm2)
    # PEs 16x larger; the global buffer holds 2 x (4096 - 256) more bits per active macro; buses unchanged.
    expected = float(hw.total_pes) * 15 * pe + 2 * float(hw.clusters * hw.active_pes) * (4096 - 256) * bit
    assert float(big.total - edge.total) == pytest.approx(expected, rel=1e-5)
    assert float(big.pes) == pytest.approx(16 * float(edge.pes), rel=1e-6)
    assert float(big.buses) == float(edge.buses)


@pytest.mark.parametrize("macro", [EDGECIM_MACRO, DIGITAL64, ANALOG], ids=lambda m: m.name)
def test_jax_model_matches_the_reference_for_each_macro(macro, small_workload):
    spec = MODELS["qwen2.5-0.5b"]
    n = spec.n_layers
    w = [[(3 + layer + j) % 7 + 2 for j in range(7)] for layer in range(n)]
    a = [[(5 + layer * j) % 7 + 2 for j in range(9)] for layer in range(n)]
    kv = [(layer % 5) + 3 for layer in range(n)]
    with jax.enable_x64(True):
        tech = default_technology().replace(macro=macro)
        prec = Precision(jnp.asarray(w, float), jnp.asarray(a, float), jnp.asarray(kv, float))
        hw = HardwareConfig(**{k: jnp.asarray(float(v)) for k, v in DESIGN.items()})
        got = jax.jit(lambda hw, prec, tech: evaluate(hw, prec, spec, small_workload, tech, with_prefill=False))(
            hw, prec, tech
        )
        ref = reference_costs(DESIGN, w, a, kv, spec, small_workload, tech.to_dict(), macro=macro)
    for key in ("latency_s", "energy_j", "area_mm2"):
        assert float(getattr(got, key)) == pytest.approx(ref[key], rel=1e-6), key
    for component, value in ref["energy_by_component"].items():
        assert float(got.decode.energy_by_component[component]) == pytest.approx(value, rel=1e-6), component


def test_adc_cost_per_conversion_prices_every_macro_cycle(small_workload):
    """Same geometry with and without ADCs: compute energy scales by (e_cycle + columns * e_adc) / e_cycle,
    latency and every other dynamic component stay."""
    spec = MODELS["qwen2.5-0.5b"]
    base = default_technology()
    digital = Macro(**{f.name: getattr(ANALOG, f.name) for f in dataclasses.fields(Macro)})
    prec = Precision.uniform(spec.n_layers, 4.0, 4.0, 4.0)
    hw = HardwareConfig.from_dict(DESIGN)
    with_adc, without = (
        evaluate(hw, prec, spec, small_workload, base.replace(macro=m), with_prefill=False) for m in (ANALOG, digital)
    )
    e = float(base.pe_cycle_energy)
    ratio = (e + ANALOG.columns * ANALOG.adc_energy_per_conversion) / e
    compute_adc, compute = (float(r.decode.energy_by_component["compute"]) for r in (with_adc, without))
    assert compute_adc == pytest.approx(ratio * compute, rel=1e-5)
    assert float(with_adc.latency_s) == float(without.latency_s)
    assert float(with_adc.decode.energy_by_component["dram"]) == float(without.decode.energy_by_component["dram"])


def test_jit_treats_the_macro_as_static(small_workload):
    """One jitted function, two macros: the macro is part of the Technology's structure (recompiled), not a
    traced value, and a larger macro takes 64 rather than 16 row-write cycles, so a different latency."""
    spec = MODELS["qwen2.5-0.5b"]
    base = default_technology().replace(bus_width_write=0)  # with it both designs run at the DRAM rate
    assert jax.tree.structure(base) != jax.tree.structure(base.replace(macro=DIGITAL64))
    assert len(jax.tree.leaves(base)) == len(jax.tree.leaves(base.replace(macro=DIGITAL64)))
    run = jax.jit(lambda tech: evaluate(HardwareConfig.from_dict(DESIGN), Precision.uniform(spec.n_layers, 4.0),
                                        spec, small_workload, tech, with_prefill=False).latency_s)  # fmt: skip
    assert float(run(base)) != float(run(base.replace(macro=DIGITAL64)))
    assert base.replace(dram_efficiency=0.9).macro is EDGECIM_MACRO
    assert base.replace(macro=DIGITAL64).replace(clock_hz=5e8).macro == DIGITAL64


@pytest.mark.parametrize(
    "field", ["rows", "columns", "bits_per_cell", "input_bits_per_cycle", "rows_written_per_cycle"]
)
def test_bad_macro_geometry_is_refused(field):
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match=f"macro field '{field}' = {bad!r} is not allowed"):
            dataclasses.replace(EDGECIM_MACRO, **{field: bad})


def test_a_macro_reaches_the_design_report_through_tech(small_workload):
    """evaluate_design with a Technology carrying the 64x64 macro: 16x the peak MACs per macro (64 rows x 16
    INT4 weights vs 16 x 4), a larger chip, and fewer macro loads, so a different energy (the latency may be
    the same: both run at the DRAM rate)."""
    spec = MODELS["qwen2.5-0.5b"]
    edge = evaluate_design(spec, "int4", DESIGN, small_workload)
    big = evaluate_design(spec, "int4", DESIGN, small_workload, tech=default_technology().replace(macro=DIGITAL64))
    assert big["figure_of_merit"]["peak_tops"] == pytest.approx(16 * edge["figure_of_merit"]["peak_tops"], rel=1e-12)
    assert big["area_mm2"] > edge["area_mm2"] and big["energy_j"] != edge["energy_j"]


def test_a_technology_file_chooses_the_macro(tmp_path):
    """`--tech FILE` with a "macro" object: the same numbers as the Python API with that macro (energies and
    area stay the technology's pe_* constants), recorded in meta; fields left out keep EdgeCIM's."""
    from typer.testing import CliRunner

    from cimjax.cli.main import app

    path = tmp_path / "tech.json"
    path.write_text(json.dumps({"clock_hz": 5e8, "macro": {"name": "dcim-32x32", "rows": 32, "columns": 32}}))
    macro = Macro(name="dcim-32x32", rows=32, columns=32)
    assert Technology.from_json(path) == default_technology().replace(macro=macro, clock_hz=5e8)
    jsonschema.validate(json.loads(path.read_text()), schema("tech"))

    result = CliRunner().invoke(app, ["evaluate", "--model", "qwen2.5-0.5b", "--precision", "int4", "--tech",
                                      str(path), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    tech = default_technology().replace(macro=macro, clock_hz=5e8)
    want = evaluate_design("qwen2.5-0.5b", "int4", EDGECIM_ALPHA05_DESIGN, tech=tech)
    assert got["tokens_per_s"] == pytest.approx(want["tokens_per_s"], rel=1e-6)
    assert got["area_mm2"] == pytest.approx(want["area_mm2"], rel=1e-6)
    assert got["meta"]["technology_overrides"] == {"clock_hz": 5e8, "macro": macro.to_dict()}
    default = evaluate_design("qwen2.5-0.5b", "int4", EDGECIM_ALPHA05_DESIGN, tech=tech.replace(macro=EDGECIM_MACRO))
    assert got["area_mm2"] != pytest.approx(default["area_mm2"])  # 4x the cells per macro: a larger global buffer


@pytest.mark.parametrize(
    ("macro", "message"),
    [
        ({"rows": 0}, "macro field 'rows' = 0 is not allowed; allowed: whole numbers in [1, 1024]"),
        ({"columns": 4096}, "macro field 'columns' = 4096 is not allowed; allowed: whole numbers in [1, 1024]"),
        ({"bits_per_cell": 2.5}, "macro field 'bits_per_cell' = 2.5 is not allowed"),
        ({"adc_bits": 8}, "unknown macro field(s) ['adc_bits']"),
        ({"name": ""}, "macro field 'name' = '' is not allowed"),
        ({"columns": 4, "bits_per_cell": 2}, "macro columns x bits_per_cell = 4 x 2 is not allowed"),
        ([16, 16], "technology 'macro' = [16, 16] is not allowed"),
    ],
)
def test_a_bad_macro_in_a_technology_file_is_a_one_line_error(tmp_path, macro, message):
    from typer.testing import CliRunner

    from cimjax.cli.main import app

    path = tmp_path / "tech.json"
    path.write_text(json.dumps({"macro": macro}))
    result = CliRunner().invoke(app, ["evaluate", "--model", "qwen2.5-0.5b", "--tech", str(path), "--json"])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


def test_whole_number_ops_equal_the_exact_ops():
    """The report's Python-integer operations (no JAX dispatch) agree with the exact model's on whole numbers."""
    import numpy as np

    from cimjax.evaluation import WHOLE_NUMBERS

    a, b = (x.ravel() for x in np.meshgrid(np.arange(0, 130), np.arange(1, 40)))
    for op in ("ceil_div", "floor_div", "maximum"):
        exact = np.asarray(getattr(EXACT, op)(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)))
        whole = [getattr(WHOLE_NUMBERS, op)(int(x), int(y)) for x, y in zip(a, b, strict=True)]
        np.testing.assert_array_equal(exact, whole, err_msg=op)
    n = np.arange(0, 5000)
    exact = np.asarray(EXACT.log2_ceil(jnp.asarray(n, jnp.float32)))
    np.testing.assert_array_equal(exact, [WHOLE_NUMBERS.log2_ceil(int(k)) for k in n])
