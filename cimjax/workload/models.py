"""The built-in zoo of the twelve EdgeCIM SLMs, and model look-up by id or ``config.json`` path.

Values are the public Hugging Face ``config.json`` values listed in ``docs/models.md``; the shape itself
is :class:`cimjax.workload.spec.ModelSpec`.
"""

from __future__ import annotations

from cimjax.workload.hf_config import load_hf_config
from cimjax.workload.spec import ModelSpec


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
        return load_hf_config(model_id)
    raise UnknownModelError(
        f"unknown model id {model_id!r}; known ids: {', '.join(MODELS)} (or a path to a config.json)"
    )


def resolve_model(model: str | ModelSpec) -> ModelSpec:
    """A :class:`ModelSpec` given as itself, a built-in id or a ``config.json`` path (see :func:`get_model`)."""
    return model if isinstance(model, ModelSpec) else get_model(model)
