"""The shape of a decoder-only language model: what the cost model and the proxy LM read of a model.

The built-in models are in :mod:`cimjax.workload.models`; :mod:`cimjax.workload.hf_config` builds one from
a Hugging Face ``config.json``.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The shape of a LLaMA-style decoder (RMSNorm, RoPE, GQA attention, gated FFN).

    Attributes:
      id: the identifier used on the command line and in tables.
      name: a human-readable name.
      n_layers, hidden, n_heads, n_kv_heads, head_dim, ffn, vocab: the usual transformer sizes.
      tied_embeddings: the LM head shares the embedding matrix.
      qkv_bias: q, k and v projections have biases (Qwen2/2.5).
      qk_norm: per-head RMSNorm on q and k (Qwen3).
    """

    id: str
    name: str
    n_layers: int
    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    tied_embeddings: bool
    qkv_bias: bool = False
    qk_norm: bool = False

    def __post_init__(self):
        from cimjax.validation import MODEL_LIMITS, model_sizes

        for field in ("id", "name"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise ValueError(f"model {field} = {value!r} is not allowed; allowed: a non-empty string")
        model_sizes(self.id, {field: getattr(self, field) for field in MODEL_LIMITS})
        for field in ("tied_embeddings", "qkv_bias", "qk_norm"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"model {self.id!r}: {field} = {getattr(self, field)!r} is not allowed; allowed: bool")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"model {self.id!r}: n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads}"
            )

    @property
    def group_size(self) -> int:
        """Query heads per KV head (1 for multi-head attention)."""
        return self.n_heads // self.n_kv_heads

    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim
