"""The one batched evaluator of the exact cost model, used by every sweep, search, joint method and the API.

``make_evaluator(spec, workload, space, designs)`` returns ``run(designs, prec, tech)``, the cost model
``jax.vmap``-ed over a batch of designs and compiled once per model, workload, space, way of naming the
designs and batch shape, kept on disk between processes (:class:`cimjax.cache.CompiledProgram`). Precision
and technology are traced arguments, so calibration loops and precision or alpha sweeps do not recompile.
How a call names its designs (``designs``):

* ``"config"``: a :class:`HardwareConfig` whose leaves have a leading batch axis (any values);
* ``"design"``: one :class:`HardwareConfig` (scalar leaves), not batched: the API's single design (a batch
  of one would compile about 12 % more operations, benchmarks/compile_time.py);
* ``"choice"``: per-field choice indices into ``space``, int ``(B, 9)`` (:meth:`DesignSpace.from_choice_indices`);
* ``"range"``: a start index; the call costs the ``size`` designs numbered ``start, start + 1, ...`` by
  ``space.decode``: flat indices of a :class:`DesignSpace`, or ranks of any other enumeration with
  ``decode`` and ``size`` (the sweep passes :class:`cimjax.search.symmetry.MirrorFolding`, its distinct
  designs). Numbers past the end repeat the last design. With ``devices``, a 1-D mesh over them: device
  ``i`` costs the ``size`` designs from ``start + i * size`` (``jax.shard_map``), outputs in order.
* ``"ranks"``: int ``(B,)`` numbers of designs as ``range`` names them (``space.decode``), any of them: the
  ``range`` program but for chosen designs, compiled alike, so its numbers are the sweep's bit for bit
  (tests/test_batched.py).

``run`` returns the decode phase's ``(latency_s, energy_j, area_mm2)`` (per design), or with ``full=True``
the whole :class:`Costs` (breakdowns, prefill included). :func:`in_batches` feeds any number of designs to
a ``config``/``choice`` evaluator in padded batches of one size (one compiled shape).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from cimjax.cache import CompiledProgram, enable_compilation_cache
from cimjax.cost.model import evaluate
from cimjax.hardware.config import PAPER_SPACE, DesignSpace
from cimjax.workload.operators import Workload
from cimjax.workload.precision import Precision
from cimjax.workload.spec import ModelSpec

enable_compilation_cache()  # compiled programs on disk, for library users as for the CLI

DESIGNS = ("config", "choice", "range", "design", "ranks")
"""How an evaluator's calls name their designs (see the module docstring)."""

AXIS = "designs"
"""Name of the device mesh axis of a sharded ``range`` evaluator."""


@functools.lru_cache(maxsize=64)
def make_evaluator(
    spec: ModelSpec,
    workload: Workload,
    space: DesignSpace = PAPER_SPACE,
    designs: str = "choice",
    *,
    size: int | None = None,
    per_design_precision: bool = False,
    full: bool = False,
    devices: tuple | None = None,
) -> Callable:
    """The compiled ``run(designs, prec, tech)`` of the module docstring, cached per argument set.

    ``size``: designs per call (per device) of a ``range`` evaluator, and only of one. ``per_design_precision``:
    ``prec`` has a leading batch axis too (one precision per design). ``full``: return whole :class:`Costs`.
    ``devices``: shard a ``range`` evaluator over them (a plain ``jax.jit``, compiled in memory).
    ``range`` programs run many times per sweep, so they keep XLA's full optimisation, and so do ``ranks``
    ones (their numbers are the sweep's); the others, whose runs are short next to their compilation, are
    compiled fast (:data:`cimjax.cache.FAST_COMPILE`).
    """
    if designs not in DESIGNS:
        raise ValueError(f"designs = {designs!r} is not allowed; allowed: {list(DESIGNS)}")
    if (designs == "range") != (size is not None) or (size is not None and size < 1):
        raise ValueError(f"size = {size!r}: a 'range' evaluator needs a size >= 1, and only it takes one")
    if devices is not None and designs != "range":
        raise ValueError(f"devices are for 'range' evaluators, not {designs!r} ones")
    if per_design_precision and designs == "design":
        raise ValueError("per_design_precision needs a batch of designs, not designs = 'design'")

    def costs(hw, prec, tech):
        def one(h, p):
            return evaluate(h, p, spec, workload, tech, with_prefill=full)

        if designs != "design":
            one = jax.vmap(one, in_axes=(0, 0 if per_design_precision else None))
        out = one(hw, prec)
        return out if full else (out.latency_s, out.energy_j, out.area_mm2)

    if designs in ("config", "design"):
        run = costs
    elif designs == "choice":

        def run(choice, prec, tech):
            return costs(space.from_choice_indices(choice), prec, tech)

    elif designs == "ranks":

        def run(ranks, prec, tech):
            return costs(space.decode(ranks), prec, tech)

    else:
        offsets, last = jnp.arange(size), space.size - 1

        def run(start, prec, tech):
            first = start if devices is None else start + jax.lax.axis_index(AXIS) * size
            return costs(space.decode(jnp.minimum(first + offsets, last)), prec, tech)

    if devices is not None:
        replicated = PartitionSpec()
        mesh = Mesh(np.asarray(devices), (AXIS,))
        return jax.jit(jax.shard_map(run, mesh=mesh, in_specs=(replicated,) * 3, out_specs=PartitionSpec(AXIS)))
    static = (spec, workload, space, designs, size, per_design_precision, full)
    return CompiledProgram(f"evaluate-{designs}", static, jax.jit(run), fast_compile=designs not in ("range", "ranks"))


def pad_rows(rows: np.ndarray, size: int) -> np.ndarray:
    """``rows`` (1 to ``size`` of them) padded to ``size`` by repeating the last: every call has one shape."""
    rows = np.asarray(rows)
    if not 1 <= len(rows) <= size:
        raise ValueError(f"{len(rows)} rows cannot be padded to a batch of {size}")
    return np.concatenate([rows, np.repeat(rows[-1:], size - len(rows), axis=0)])


def in_batches(run: Callable, batch: int, rows: tuple, *shared) -> list[np.ndarray]:
    """``run(*block, *shared)`` over ``rows`` (arrays or pytrees sharing a leading axis of n >= 1 designs) in
    blocks of ``batch``, the last padded by :func:`pad_rows`; every output cut back to n and joined, float64."""
    n = len(jax.tree.leaves(rows)[0])
    if n == 0:
        raise ValueError("no designs to evaluate; allowed: at least one")
    parts = []
    for first in range(0, n, batch):
        block = jax.tree.map(lambda x, first=first: pad_rows(np.asarray(x)[first : first + batch], batch), rows)
        parts.append([np.asarray(x, np.float64)[: min(batch, n - first)] for x in run(*block, *shared)])
    return [np.concatenate(x) for x in zip(*parts, strict=True)]


def compress_uniform(prec: Precision) -> Precision:
    """One layer row if every layer has the same bits (the cost model repeats it), else unchanged."""
    leaves = [np.asarray(x) for x in (prec.weight_bits, prec.act_bits, prec.kv_bits)]
    if all((x == x[:1]).all() for x in leaves):
        return Precision(prec.weight_bits[:1], prec.act_bits[:1], prec.kv_bits[:1])
    return prec
