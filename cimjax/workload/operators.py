"""The operators one decoder layer runs, for decode (one token) and prefill (many tokens).

These are the shapes the mapping and cost model consume; nothing here depends on hardware.
"""

from __future__ import annotations

import dataclasses
import math

import cimjax.validation as validation
from cimjax.workload.precision import LINEAR_OPS
from cimjax.workload.spec import ModelSpec


@dataclasses.dataclass(frozen=True)
class Workload:
    """The token counts of one inference: ``prefill`` prompt tokens, then ``generate`` decoded tokens.

    The paper's results use 128 + 128. ``attention_block`` is the number of cached tokens per K/V
    block streamed from DRAM during attention (FlashAttention-style blocking; a documented assumption).
    """

    prefill: int = 128
    generate: int = 128
    attention_block: int = 32

    def __post_init__(self):
        for field, low in (("prefill", 0), ("generate", 1), ("attention_block", 1)):
            validation.tokens(f"workload field {field!r}", getattr(self, field), low)

    def context_lengths(self) -> list[int]:
        """Keys attended by each decode step: step t (1-based) sees the prompt and t generated tokens."""
        return [self.prefill + t for t in range(1, self.generate + 1)]

    def decode_context_sum(self) -> int:
        """Sum over decode steps of the keys attended (the KV entries read from DRAM, per KV head)."""
        p, g = self.prefill, self.generate
        return g * p + g * (g + 1) // 2

    def decode_block_sum(self) -> int:
        """Sum over decode steps of ceil(context / block): the K/V blocks streamed, per KV head."""
        return _ceil_sum(self.prefill + self.generate, self.attention_block) - _ceil_sum(
            self.prefill, self.attention_block
        )

    def prefill_blocks(self) -> int:
        return math.ceil(self.prefill / self.attention_block)

    def prefill_query_block_pairs(self) -> int:
        """Causal prefill: sum over K/V blocks of the queries that attend to that block."""
        n, b = self.prefill_blocks(), self.attention_block
        return n * self.prefill - b * n * (n - 1) // 2  # sum over j < n of (prefill - j b)


@dataclasses.dataclass(frozen=True)
class PassCounts:
    """Static counts of one phase (decode or prefill), summed over its passes, per KV head.

    Counts are Python floats: they exceed int32 for long contexts (``--generate 46341``), and an int
    above 2^31 reaching jitted code overflows, while float32 keeps them to 7 significant digits.

    Attributes:
      passes: times every weight matrix is streamed from DRAM.
      inputs: token vectors that share one streamed weight partition.
      blocks: K/V blocks streamed from DRAM.
      query_blocks: (query, K/V block) pairs computed.
      scores: (query, key) pairs, i.e. softmax elements per query head.
      kv_read: K/V entries read from DRAM.
      kv_write: K/V entries appended to DRAM.
    """

    passes: float
    inputs: float
    blocks: float
    query_blocks: float
    scores: float
    kv_read: float
    kv_write: float

    def __post_init__(self):
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, float(getattr(self, field.name)))

    @property
    def tokens(self) -> float:
        return self.passes * self.inputs


def decode_counts(workload: Workload) -> PassCounts:
    """Decode: one pass per generated token, each attending to the cache so far."""
    blocks = workload.decode_block_sum()
    ctx = workload.decode_context_sum()
    g = workload.generate
    return PassCounts(passes=g, inputs=1, blocks=blocks, query_blocks=blocks, scores=ctx, kv_read=ctx, kv_write=g)


def prefill_counts(workload: Workload) -> PassCounts:
    """Prefill (GEMM-shaped, beyond what the paper modelled): one pass over all prompt tokens, causal."""
    p = workload.prefill
    return PassCounts(
        passes=1,
        inputs=p,
        blocks=workload.prefill_blocks(),
        query_blocks=workload.prefill_query_block_pairs(),
        scores=p * (p + 1) // 2,
        kv_read=p,
        kv_write=p,
    )


def _ceil_sum(n: int, b: int) -> int:
    """sum_{x=1..n} ceil(x / b) in closed form."""
    q, r = divmod(n, b)
    return b * q * (q + 1) // 2 + r * (q + 1)


def linear_shapes(spec: ModelSpec) -> dict[str, tuple[int, int]]:
    """(d_in, d_out) of each linear operator of one layer, in ``LINEAR_OPS`` order."""
    h, f = spec.hidden, spec.ffn
    shapes = {
        "q": (h, spec.q_dim),
        "k": (h, spec.kv_dim),
        "v": (h, spec.kv_dim),
        "o": (spec.q_dim, h),
        "gate": (h, f),
        "up": (h, f),
        "down": (f, h),
    }
    assert tuple(shapes) == LINEAR_OPS
    return shapes


def aux_elements(spec: ModelSpec) -> dict[str, int]:
    """Elements per layer per token handled by the functional units (not the CIM macros).

    Softmax is listed per attended key and query head (multiply by the context length).
    """
    qk_norm = (spec.n_heads + spec.n_kv_heads) * spec.head_dim if spec.qk_norm else 0
    return {
        "norm": 2 * spec.hidden + qk_norm,  # input and post-attention RMSNorm (+ Qwen3 q/k norms)
        "rope": spec.q_dim + spec.kv_dim,
        "softmax_per_key": spec.n_heads,
        "activation": spec.ffn,  # SiLU on the gate
        "eltwise_mul": spec.ffn,  # gate * up
        "residual": 2 * spec.hidden,
        "kv_quant": 2 * spec.kv_dim,  # quantise (and transpose) the new k, v before the KV append
        "act_quant": sum(d_in for d_in, _ in linear_shapes(spec).values()),
    }


def aux_parameters(spec: ModelSpec) -> int:
    """Per-layer parameters besides the seven matrices: norm gains and q/k/v biases (kept at 16 bits)."""
    n = 2 * spec.hidden
    if spec.qkv_bias:
        n += spec.q_dim + 2 * spec.kv_dim
    if spec.qk_norm:
        n += 2 * spec.head_dim
    return n


def decode_operators(spec: ModelSpec, workload: Workload) -> list[dict]:
    """A readable list of one layer's decode operators for one average step (for reports)."""
    mean_ctx = workload.decode_context_sum() / workload.generate
    ops = [
        {"op": name, "kind": "linear", "d_in": d_in, "d_out": d_out, "macs": d_in * d_out}
        for name, (d_in, d_out) in linear_shapes(spec).items()
    ]
    ops.insert(
        3,
        {
            "op": "attention",
            "kind": "attention",
            "heads": spec.n_heads,
            "kv_heads": spec.n_kv_heads,
            "mean_context": mean_ctx,
            "macs": 2 * spec.n_heads * spec.head_dim * mean_ctx,
        },
    )
    ops += [{"op": name, "kind": "functional-unit", "elements": n} for name, n in aux_elements(spec).items()]
    return ops
