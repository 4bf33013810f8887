"""Shapes of decoder-only language models, and the built-in zoo of the twelve EdgeCIM SLMs.

Values are the public Hugging Face ``config.json`` values listed in ``docs/models.md``.
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


def _m(id, name, layers, hidden, heads, kv, head_dim, ffn, vocab, tied, **kw) -> ModelSpec:
    return ModelSpec(id, name, layers, hidden, heads, kv, head_dim, ffn, vocab, tied, **kw)


MODELS: dict[str, ModelSpec] = {
    m.id: m
    for m in (
        _m("tinyllama-1.1b", "TinyLLaMA-1.1B", 22, 2048, 32, 4, 64, 5632, 32000, False),
        _m("llama3.2-1b", "LLaMA3.2-1B", 16, 2048, 32, 8, 64, 8192, 128256, True),
        _m("llama3.2-3b", "LLaMA3.2-3B", 28, 3072, 24, 8, 128, 8192, 128256, True),
        _m("phi3.5-mini", "Phi-3.5-mini (3.8B)", 32, 3072, 32, 32, 96, 8192, 32064, False),
        _m("qwen2.5-0.5b", "Qwen2.5-0.5B", 24, 896, 14, 2, 64, 4864, 151936, True, qkv_bias=True),
        _m("qwen2.5-1.5b", "Qwen2.5-1.5B", 28, 1536, 12, 2, 128, 8960, 151936, True, qkv_bias=True),
        _m("qwen2.5-3b", "Qwen2.5-3B", 36, 2048, 16, 2, 128, 11008, 151936, True, qkv_bias=True),
        _m("smollm2-1.7b", "SmolLM2-1.7B", 24, 2048, 32, 32, 64, 8192, 49152, True),
        _m("smollm3-3b", "SmolLM3-3B", 36, 2048, 16, 4, 128, 11008, 128256, True),
        _m("qwen3-0.6b", "Qwen3-0.6B", 28, 1024, 16, 8, 128, 3072, 151936, True, qk_norm=True),
        _m("qwen3-1.7b", "Qwen3-1.7B", 28, 2048, 16, 8, 128, 6144, 151936, True, qk_norm=True),
        _m("qwen3-4b", "Qwen3-4B", 36, 2560, 32, 8, 128, 9728, 151936, True, qk_norm=True),
    )
}


class UnknownModelError(ValueError):
    """Raised for a model id that is neither built in nor a path to a config.json."""


def get_model(model_id: str) -> ModelSpec:
    """Returns a built-in model by id, or loads a Hugging Face ``config.json`` given as a path."""
    if not isinstance(model_id, str):
        raise UnknownModelError(
            f"model = {model_id!r} is not allowed; allowed: a model id ({', '.join(MODELS)}), a path to a "
            "config.json or a ModelSpec"
        )
    if model_id in MODELS:
        return MODELS[model_id]
    if model_id.endswith(".json") or "/" in model_id:
        from cimjax.workload.hf_config import load_hf_config

        return load_hf_config(model_id)
    raise UnknownModelError(
        f"unknown model id {model_id!r}; known ids: {', '.join(MODELS)} (or a path to a config.json)"
    )
