"""Reads a Hugging Face ``config.json`` into a :class:`ModelSpec`, so users can add models of their own.

Supported families are the LLaMA-style decoders the cost model understands: LLaMA (TinyLlama, SmolLM,
SmolLM2), SmolLM3, Qwen2/Qwen2.5, Qwen3, Phi-3/3.5 and Mistral (a LLaMA-shaped decoder; its sliding attention
window is not modelled, which is exact while prompt + generated tokens fit in the window). Keys that are
absent take the defaults of the family's ``transformers`` config class, so a spec matches what
``transformers`` would build.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cimjax.validation import read_json
from cimjax.workload.spec import ModelSpec


class ConfigError(ValueError):
    """Raised for a config.json that cannot be read or does not describe a supported model."""


# model_type -> the defaults of its transformers config class that change the spec.
# qkv_bias: q/k/v biases are built in (Qwen2). qk_norm: per-head q/k RMSNorm (Qwen3).
# head_dim: the class default when the key is absent or null (None: hidden / heads).
_FAMILIES: dict[str, dict[str, Any]] = {
    "llama": {"tied": False, "qkv_bias": False, "qk_norm": False, "head_dim": None},
    "smollm3": {"tied": True, "qkv_bias": False, "qk_norm": False, "head_dim": None},
    "qwen2": {"tied": False, "qkv_bias": True, "qk_norm": False, "head_dim": None},
    "qwen3": {"tied": False, "qkv_bias": False, "qk_norm": True, "head_dim": 128},
    "phi3": {"tied": False, "qkv_bias": False, "qk_norm": False, "head_dim": None},
    "mistral": {"tied": False, "qkv_bias": False, "qk_norm": False, "head_dim": None},
}

# Used only when model_type is missing.
_ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "SmolLM3ForCausalLM": "smollm3",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Phi3ForCausalLM": "phi3",
    "MistralForCausalLM": "mistral",
}

# Key -> what it means, for error messages.
_REQUIRED = {
    "num_hidden_layers": "the number of decoder layers",
    "hidden_size": "the model width",
    "num_attention_heads": "the number of query heads",
    "intermediate_size": "the FFN width",
    "vocab_size": "the vocabulary size",
}

# Bias flags ModelSpec cannot represent: their weights would be missing from every count.
_UNSUPPORTED_FLAGS = ("attention_bias", "mlp_bias")


def load_hf_config(path: str | Path) -> ModelSpec:
    """Builds a ModelSpec from a Hugging Face ``config.json``.

    Args:
      path: the config.json file, or a directory that contains one.

    Returns:
      The model's shape. Its id is ``name_or_path`` (or ``_name_or_path``) when present, else the
      name of the directory holding the file; only the last path component is kept, lower-cased,
      so ``Qwen/Qwen2.5-0.5B`` becomes ``qwen2.5-0.5b`` like the built-in ids.

    Raises:
      ConfigError: the file is missing or not JSON, a required key is missing or not a positive
        integer, the model type is unsupported, or the sizes do not form a valid model.
    """
    file = Path(path)
    if os.path.isdir(file):  # os.path, not Path: a name too long for the file system is no file, not an OSError
        file = file / "config.json"
    if not os.path.isfile(file):
        raise ConfigError(f"no config.json at {file}")
    try:
        cfg = read_json(file, "config.json")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"config.json at {file} must hold a JSON object, not {type(cfg).__name__}")

    family = _family(cfg, file)
    defaults = _FAMILIES[family]
    for flag in _UNSUPPORTED_FLAGS:
        if cfg.get(flag):
            raise ConfigError(
                f"config.json at {file} sets '{flag}': true; biases on o_proj and the FFN are not modelled "
                f"(expected '{flag}' absent or false)"
            )

    sizes = {key: _positive_int(cfg, key, what, file) for key, what in _REQUIRED.items()}
    hidden, heads = sizes["hidden_size"], sizes["num_attention_heads"]
    kv_heads = heads
    if cfg.get("num_key_value_heads") is not None:
        kv_heads = _positive_int(cfg, "num_key_value_heads", "the number of key/value heads", file)
    if heads % kv_heads:
        raise ConfigError(
            f"config.json at {file}: 'num_attention_heads' ({heads}) must be a multiple of "
            f"'num_key_value_heads' ({kv_heads}) for grouped-query attention"
        )

    if cfg.get("head_dim") is not None:
        head_dim = _positive_int(cfg, "head_dim", "the width of one attention head", file)
    elif defaults["head_dim"] is not None:
        head_dim = defaults["head_dim"]
    elif hidden % heads:
        raise ConfigError(
            f"config.json at {file} lacks 'head_dim' and 'hidden_size' ({hidden}) is not a multiple of "
            f"'num_attention_heads' ({heads}); give 'head_dim' (a positive integer)"
        )
    else:
        head_dim = hidden // heads

    tied = cfg.get("tie_word_embeddings", defaults["tied"])
    if not isinstance(tied, bool):
        raise ConfigError(f"config.json at {file} has 'tie_word_embeddings'={tied!r} (expected true or false)")

    name = cfg.get("name_or_path") or cfg.get("_name_or_path")
    if not isinstance(name, str) or not name.strip("/"):
        name = file.resolve().parent.name
    try:  # sizes beyond the documented limits (cimjax.validation.MODEL_LIMITS) are refused here
        return ModelSpec(
            id=name.rstrip("/").rsplit("/", 1)[-1].lower(),
            name=name,
            n_layers=sizes["num_hidden_layers"],
            hidden=hidden,
            n_heads=heads,
            n_kv_heads=kv_heads,
            head_dim=head_dim,
            ffn=sizes["intermediate_size"],
            vocab=sizes["vocab_size"],
            tied_embeddings=tied,
            qkv_bias=defaults["qkv_bias"],
            qk_norm=defaults["qk_norm"],
        )
    except ValueError as e:
        raise ConfigError(f"config.json at {file}: {e}") from None


def _family(cfg: dict, file: Path) -> str:
    """The supported model_type of ``cfg``, inferred from ``architectures`` when model_type is absent."""
    supported = ", ".join(sorted(_FAMILIES))
    model_type = cfg.get("model_type")
    if model_type is None:
        architectures = cfg.get("architectures") or []
        if not isinstance(architectures, list):
            raise ConfigError(
                f"config.json at {file} has 'architectures' = {architectures!r}; expected a list of class names "
                f"such as ['LlamaForCausalLM'] (or give 'model_type', one of: {supported})"
            )
        known = [_ARCHITECTURES[a] for a in architectures if isinstance(a, str) and a in _ARCHITECTURES]
        model_type = known[0] if known else None
        if model_type is None:
            raise ConfigError(
                f"config.json at {file} lacks 'model_type' (one of: {supported}) and its 'architectures' "
                f"{architectures!r} name none of {', '.join(_ARCHITECTURES)}"
            )
    if not isinstance(model_type, str) or model_type not in _FAMILIES:
        raise ConfigError(f"config.json at {file} has unsupported 'model_type' {model_type!r}; supported: {supported}")
    return model_type


def _positive_int(cfg: dict, key: str, what: str, file: Path) -> int:
    """``cfg[key]``, checked to be a positive integer (a JSON bool or float is not one)."""
    if key not in cfg:
        raise ConfigError(f"config.json at {file} lacks '{key}' ({what}, a positive integer)")
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"config.json at {file} has '{key}'={value!r}; expected {what}, a positive integer")
    return value
