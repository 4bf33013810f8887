"""The checks of a sensitivities file's fields (written by ``cimjax proxy sensitivities --out``, read by
``cimjax optimize --sensitivities`` and the measurement cache): each table must have the model's shape
and hold JSON numbers (``true`` is not 1) within the limits below, so that a hand-edited or corrupted file
is refused with one line naming the field instead of turning into NaN or nonsense designs (docs/limits.md).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cimjax.quant.quantizers import DEFAULT_SCHEME, QuantScheme, TensorScheme
from cimjax.quant.sensitivity import BIT_GRID
from cimjax.workload.precision import N_POINTS


class MeasuredFileError(ValueError):
    """A sensitivities file that cannot be read, is malformed, or belongs to another model or checkpoint."""


UNIFORM_WIDTHS = tuple(int(b) for b in BIT_GRID)  # uniform W=A=KV widths whose loss is measured

MAX_NATS = 1e3
"""Largest magnitude of a loss increase or KL divergence, nats/token: about 66x the cross-entropy of a
uniform guess over the largest vocabulary cimjax accepts (2^22 tokens, 15.2 nats); measured values are
below a few nats."""
KL_ROUNDING = 1e-4
"""A KL divergence is non-negative; summed in float32 a measured one can come out slightly below zero
(-2e-8 nats/token on the tiny test checkpoint), so values down to -1e-4 are taken as rounding."""
MAX_TABLE = 1e20
"""Largest magnitude of the other tables (elements, error energies, Hessian and Fisher traces): float32, the
proxy's dtype, holds 3.4e38, and the proxies multiply these by at most the squared number of levels of
16 bits (4.3e9); the largest measured is 9.2e7 (``outmse`` of the trained byte-level LM, whose largest
tensor has 7.9e5 elements; the tables grow with tensor size)."""
MAX_FILE_BYTES = 256 * 2**20
"""Largest sensitivities file read: 256 MiB, so that ``/dev/zero`` or a wrong, huge file is refused instead of
filling the memory. Measured: the tiny test checkpoint's file (2 layers, 64 fit assignments) is 36,140 bytes,
at most 282 bytes per layer and fit assignment; at that rate an 80-layer model with the most fit assignments
``for_checkpoint`` takes (10,000) needs 226 MB, within the limit."""
MAX_BITS = 16
"""Widest bits of a measured mixed assignment (the activations' and KV cache's largest quantised width)."""

FIELD_RANGES = {
    "numel": (1.0, MAX_TABLE),
    "hessian": (-MAX_TABLE, MAX_TABLE),  # a Hutchinson estimate: may be negative
    "fisher": (0.0, MAX_TABLE),
    "outmse": (0.0, MAX_TABLE),
    "noise_c": (0.0, MAX_TABLE),
    "energy": (0.0, MAX_TABLE),
    "symmetric": (0.0, 1.0),
    "err": (0.0, MAX_TABLE),
    "loss": (-MAX_NATS, MAX_NATS),  # a measured loss increase may be negative (noise)
    "base_loss": (0.0, MAX_NATS),
    "kl": (-KL_ROUNDING, MAX_NATS),
    "joint.tables": (2.0, float(MAX_BITS)),
}
"""Allowed ``[low, high]`` of each table, by rule name (a table's own name; ``uniform_loss`` and
``joint.loss`` follow ``loss``, ``uniform_kl`` and ``joint.kl`` follow ``kl``)."""
WHOLE = ("numel", "symmetric", "joint.tables")
"""Rules of whole numbers (tensor sizes, a 0/1 flag, bits)."""


def shape_of(field: str, n_layers: int) -> tuple[int, ...]:
    """The shape a sensitivity table of a model of ``n_layers`` layers has."""
    if field in ("err", "loss", "kl"):
        return (n_layers, N_POINTS, len(BIT_GRID))
    return () if field == "base_loss" else (n_layers, N_POINTS)


def _has_bool(value) -> bool:
    if isinstance(value, list):
        return any(_has_bool(item) for item in value)
    return isinstance(value, bool)


def read_array(value, field: str, shape: tuple[int, ...], source: str, rule: str | None = None) -> np.ndarray:
    """``value`` as a float64 array of ``shape`` within the range of ``rule`` (:data:`FIELD_RANGES`; by
    default the field's own)."""
    rule = rule or field
    try:
        if _has_bool(value):
            raise TypeError
        a = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise MeasuredFileError(f"{source}: '{field}' is not an array of numbers") from None
    if a.shape != shape:
        raise MeasuredFileError(f"{source}: '{field}' has shape {a.shape}; the model implies {shape}")
    if not np.all(np.isfinite(a)):
        raise MeasuredFileError(f"{source}: '{field}' holds non-finite values")
    low, high = FIELD_RANGES[rule]
    whole = rule in WHOLE
    outside = (a < low) | (a > high) | ((a != np.round(a)) if whole else False)
    if np.any(outside):
        where = tuple(int(i) for i in np.argwhere(outside)[0])
        at = field + "".join(f"[{i}]" for i in where)
        kind = "whole numbers" if whole else "numbers"
        raise MeasuredFileError(
            f"{source}: '{at}' = {float(a[where])!r} is not allowed; allowed: {kind} in [{low:g}, {high:g}]"
        )
    return a


def read_uniform(value, field: str, source: str, rule: str) -> dict[int, float]:
    """A ``{width: value}`` object of every :data:`UNIFORM_WIDTHS`, each checked by ``rule``."""
    if not isinstance(value, dict) or set(value) != {str(b) for b in UNIFORM_WIDTHS}:
        raise MeasuredFileError(f"{source}: '{field}' must map every width of {list(UNIFORM_WIDTHS)} to a number")
    return {b: float(read_array(value[str(b)], f"{field}.{b}", (), source, rule)) for b in UNIFORM_WIDTHS}


def read_scheme(value, source: str) -> QuantScheme:
    """The file's quantiser; files without one were measured with :data:`DEFAULT_SCHEME` (the only one then),
    GPTQ files without ``gptq_act_order`` in index order (the only order then)."""
    if value is None:
        return DEFAULT_SCHEME
    fields = [f.name for f in dataclasses.fields(TensorScheme)]  # every file with a scheme wrote them all
    for kind in ("weight", "act", "probs", "kv"):
        if (
            not isinstance(value, dict)
            or not isinstance(value.get(kind), dict)
            or sorted(value[kind]) != sorted(fields)
        ):
            raise MeasuredFileError(f"{source}: 'scheme.{kind}' must be an object of {', '.join(fields)}")
    try:
        kinds = {kind: TensorScheme(**value[kind]) for kind in ("weight", "act", "probs", "kv")}
        gptq_on = value.get("gptq", False)
        act_order = value.get("gptq_act_order", False if gptq_on else QuantScheme.gptq_act_order)
        return QuantScheme(**kinds, smooth=value.get("smooth"), gptq=gptq_on, gptq_act_order=act_order)
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise MeasuredFileError(f"{source}: 'scheme' is malformed: {e}") from None
