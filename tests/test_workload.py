"""Tests of the model zoo, the Hugging Face config.json loader and parameter counting."""

from __future__ import annotations

import json

import pytest

from cimjax.workload.hf_config import ConfigError, load_hf_config
from cimjax.workload.models import MODELS, UnknownModelError, get_model
from cimjax.workload.params import layer_linear_weights, parameter_count, tensor_shapes
from cimjax.workload.spec import ModelSpec

# The public config.json files of the Hugging Face checkpoints (Phi-3.5's long rope factor lists are
# cut short; they do not affect shapes). SmolLM3-3B's file has no tie_word_embeddings key: the
# SmolLM3Config default (True) applies.
HF_CONFIGS = {
    "llama3.2-1b": {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "head_dim": 64,
        "hidden_act": "silu",
        "hidden_size": 2048,
        "initializer_range": 0.02,
        "intermediate_size": 8192,
        "max_position_embeddings": 131072,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 16,
        "num_key_value_heads": 8,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "factor": 32.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3",
        },
        "rope_theta": 500000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.45.0.dev0",
        "use_cache": True,
        "vocab_size": 128256,
    },
    "llama3.2-3b": {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "head_dim": 128,
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 24,
        "num_hidden_layers": 28,
        "num_key_value_heads": 8,
        "rms_norm_eps": 1e-05,
        "rope_theta": 500000.0,
        "tie_word_embeddings": True,
        "vocab_size": 128256,
    },
    "qwen2.5-0.5b": {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "hidden_act": "silu",
        "hidden_size": 896,
        "initializer_range": 0.02,
        "intermediate_size": 4864,
        "max_position_embeddings": 32768,
        "max_window_layers": 24,
        "model_type": "qwen2",
        "num_attention_heads": 14,
        "num_hidden_layers": 24,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.40.1",
        "use_cache": True,
        "use_mrope": False,
        "use_sliding_window": False,
        "vocab_size": 151936,
    },
    "qwen3-0.6b": {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "head_dim": 128,
        "hidden_act": "silu",
        "hidden_size": 1024,
        "initializer_range": 0.02,
        "intermediate_size": 3072,
        "max_position_embeddings": 40960,
        "max_window_layers": 28,
        "model_type": "qwen3",
        "num_attention_heads": 16,
        "num_hidden_layers": 28,
        "num_key_value_heads": 8,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000,
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.51.0",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": 151936,
    },
    "phi3.5-mini": {
        "_name_or_path": "Phi-3.5-mini-instruct",
        "architectures": ["Phi3ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "embd_pdrop": 0.0,
        "eos_token_id": 32000,
        "hidden_act": "silu",
        "hidden_size": 3072,
        "initializer_range": 0.02,
        "intermediate_size": 8192,
        "max_position_embeddings": 131072,
        "model_type": "phi3",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 32,
        "original_max_position_embeddings": 4096,
        "pad_token_id": 32000,
        "resid_pdrop": 0.0,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "long_factor": [1.0800000429153442, 1.1100000143051147],
            "short_factor": [1.0, 1.0],
            "type": "longrope",
        },
        "rope_theta": 10000.0,
        "sliding_window": 262144,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.43.3",
        "use_cache": True,
        "vocab_size": 32064,
    },
    "smollm2-1.7b": {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "hidden_act": "silu",
        "hidden_size": 2048,
        "initializer_range": 0.02,
        "intermediate_size": 8192,
        "max_position_embeddings": 8192,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 24,
        "num_key_value_heads": 32,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 130000,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.42.3",
        "use_cache": True,
        "vocab_size": 49152,
    },
    "smollm3-3b": {
        "architectures": ["SmolLM3ForCausalLM"],
        "attention_bias": False,
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "mlp_bias": False,
        "model_type": "smollm3",
        "no_rope_layer_interval": 4,
        "num_attention_heads": 16,
        "num_hidden_layers": 36,
        "num_key_value_heads": 4,
        "rms_norm_eps": 1e-06,
        "rope_theta": 5000000.0,
        "vocab_size": 128256,
    },
    "tinyllama-1.1b": {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 2048,
        "initializer_range": 0.02,
        "intermediate_size": 5632,
        "max_position_embeddings": 2048,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 22,
        "num_key_value_heads": 4,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.35.0",
        "use_cache": True,
        "vocab_size": 32000,
    },
}

SHAPE_FIELDS = (
    "n_layers", "hidden", "n_heads", "n_kv_heads", "head_dim", "ffn", "vocab",
    "tied_embeddings", "qkv_bias", "qk_norm",
)  # fmt: skip

# The parameter counts Hugging Face publishes for these checkpoints; each also agrees with the
# per-tensor arithmetic in test_parameter_count_by_hand.
PUBLISHED_COUNTS = {
    "qwen2.5-0.5b": 494_032_768,
    "llama3.2-1b": 1_235_814_400,
    "llama3.2-3b": 3_212_749_824,
    "tinyllama-1.1b": 1_100_048_384,
    "qwen3-0.6b": 596_049_920,
}


def _write(tmp_path, cfg, dirname="model"):
    """Writes ``cfg`` as ``tmp_path/dirname/config.json`` and returns the file's path."""
    directory = tmp_path / dirname
    directory.mkdir(exist_ok=True)
    file = directory / "config.json"
    file.write_text(json.dumps(cfg))
    return file


def _without(cfg, *keys):
    """A copy of ``cfg`` without ``keys``."""
    return {k: v for k, v in cfg.items() if k not in keys}


# --- the built-in zoo ---------------------------------------------------------------------------


def test_builtins_are_valid():
    assert len(MODELS) == 12
    for model_id, spec in MODELS.items():
        assert spec.id == model_id
        assert spec.n_heads % spec.n_kv_heads == 0
        assert get_model(model_id) is spec


def test_qwen3_head_dim_is_not_hidden_over_heads(tmp_path):
    loaded = load_hf_config(_write(tmp_path, HF_CONFIGS["qwen3-0.6b"]))
    for spec in (MODELS["qwen3-0.6b"], MODELS["qwen3-4b"], loaded):
        assert spec.head_dim == 128 != spec.hidden // spec.n_heads
        assert tensor_shapes(spec)["q_proj"] == (spec.n_heads * 128, spec.hidden)


def test_unknown_model_lists_known_ids():
    with pytest.raises(UnknownModelError) as e:
        get_model("nope")
    for model_id in MODELS:
        assert model_id in str(e.value)


# --- loading config.json ------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", sorted(HF_CONFIGS))
def test_hf_config_reproduces_builtin(tmp_path, model_id):
    spec = load_hf_config(_write(tmp_path, HF_CONFIGS[model_id]))
    builtin = MODELS[model_id]
    assert {f: getattr(spec, f) for f in SHAPE_FIELDS} == {f: getattr(builtin, f) for f in SHAPE_FIELDS}
    assert parameter_count(spec) == parameter_count(builtin)


def test_id_from_directory_or_name_or_path(tmp_path):
    file = _write(tmp_path, HF_CONFIGS["qwen2.5-0.5b"], dirname="Qwen2.5-0.5B")
    assert load_hf_config(file).id == "qwen2.5-0.5b"
    assert load_hf_config(file.parent).id == "qwen2.5-0.5b"  # a directory holding config.json
    phi = load_hf_config(_write(tmp_path, HF_CONFIGS["phi3.5-mini"]))
    assert (phi.id, phi.name) == ("phi-3.5-mini-instruct", "Phi-3.5-mini-instruct")
    named = load_hf_config(_write(tmp_path, {**HF_CONFIGS["qwen3-0.6b"], "_name_or_path": "Qwen/Qwen3-0.6B"}))
    assert (named.id, named.name) == ("qwen3-0.6b", "Qwen/Qwen3-0.6B")


def test_get_model_loads_a_path(tmp_path):
    file = _write(tmp_path, HF_CONFIGS["tinyllama-1.1b"])
    assert get_model(str(file)).ffn == 5632


def test_family_defaults_for_absent_keys(tmp_path):
    base = _without(HF_CONFIGS["llama3.2-1b"], "head_dim", "tie_word_embeddings")
    llama = load_hf_config(_write(tmp_path, {**base, "num_key_value_heads": None}, "a"))
    assert (llama.head_dim, llama.n_kv_heads, llama.tied_embeddings) == (64, 32, False)
    assert load_hf_config(_write(tmp_path, {**base, "head_dim": None}, "b")).head_dim == 64
    qwen3 = _without(HF_CONFIGS["qwen3-0.6b"], "head_dim", "tie_word_embeddings")
    spec = load_hf_config(_write(tmp_path, qwen3, "c"))
    assert (spec.head_dim, spec.tied_embeddings, spec.qk_norm) == (128, False, True)
    no_type = _without(HF_CONFIGS["qwen2.5-0.5b"], "model_type")
    assert load_hf_config(_write(tmp_path, no_type, "d")).qkv_bias  # family from "architectures"


# --- errors ---------------------------------------------------------------------------------------


def _error(tmp_path, cfg):
    """The message of the ConfigError that loading ``cfg`` raises; it must name the file."""
    file = _write(tmp_path, cfg)
    with pytest.raises(ConfigError) as e:
        load_hf_config(file)
    assert str(file) in str(e.value)
    return str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        load_hf_config(tmp_path / "absent.json")
    with pytest.raises(ConfigError, match="no config.json"):
        load_hf_config(tmp_path)  # a directory without config.json
    with pytest.raises(ConfigError):
        get_model(str(tmp_path / "absent" / "config.json"))


def test_invalid_json(tmp_path):
    file = tmp_path / "config.json"
    file.write_text('{"hidden_size": 2048,')
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_hf_config(file)
    file.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_hf_config(file)


@pytest.mark.parametrize(
    "key", ["num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size"]
)
def test_missing_required_key(tmp_path, key):
    cfg = _without(HF_CONFIGS["llama3.2-1b"], key)
    message = _error(tmp_path, cfg)
    assert f"lacks '{key}'" in message and "positive integer" in message


@pytest.mark.parametrize("key", ["hidden_size", "num_key_value_heads", "head_dim", "vocab_size"])
@pytest.mark.parametrize("value", [0, -8, 2048.0, "2048", True])
def test_bad_size(tmp_path, key, value):
    message = _error(tmp_path, {**HF_CONFIGS["llama3.2-1b"], key: value})
    assert f"'{key}'={value!r}" in message and "positive integer" in message


def test_unsupported_model_type_lists_supported(tmp_path):
    message = _error(tmp_path, {**HF_CONFIGS["llama3.2-1b"], "model_type": "gpt2"})
    assert "'model_type'" in message and "'gpt2'" in message
    for family in ("llama", "phi3", "qwen2", "qwen3", "smollm3"):
        assert family in message
    cfg = _without(HF_CONFIGS["llama3.2-1b"], "model_type")
    assert "'model_type'" in _error(tmp_path, {**cfg, "architectures": ["GPT2LMHeadModel"]})


def test_heads_not_multiple_of_kv_heads(tmp_path):
    message = _error(tmp_path, {**HF_CONFIGS["llama3.2-1b"], "num_key_value_heads": 5})
    assert "'num_key_value_heads'" in message and "multiple" in message


def test_head_dim_needed_when_hidden_not_divisible(tmp_path):
    cfg = {**HF_CONFIGS["llama3.2-1b"], "num_attention_heads": 24, "head_dim": None}
    message = _error(tmp_path, cfg)
    assert "'head_dim'" in message and "multiple" in message


def test_bad_tie_word_embeddings(tmp_path):
    message = _error(tmp_path, {**HF_CONFIGS["llama3.2-1b"], "tie_word_embeddings": 1})
    assert "'tie_word_embeddings'" in message


@pytest.mark.parametrize("flag", ["attention_bias", "mlp_bias"])
def test_unmodelled_biases_are_refused(tmp_path, flag):
    assert f"'{flag}'" in _error(tmp_path, {**HF_CONFIGS["llama3.2-1b"], flag: True})


# --- parameter counts -----------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", sorted(PUBLISHED_COUNTS))
def test_parameter_count_matches_published(model_id):
    assert parameter_count(MODELS[model_id]) == PUBLISHED_COUNTS[model_id]


def test_parameter_count_by_hand():
    # Qwen2.5-0.5B, tied: per layer q 896*896 + k, v 128*896 each + o 896*896, gate/up/down 3*896*4864,
    # q/k/v biases 896+128+128, two norms 2*896; then embeddings 151936*896 and the final norm 896.
    layer = 896 * 896 * 2 + 128 * 896 * 2 + 3 * 896 * 4864 + (896 + 256) + 2 * 896
    assert layer == 14_912_384
    assert parameter_count(MODELS["qwen2.5-0.5b"]) == 24 * layer + 151936 * 896 + 896
    assert parameter_count(MODELS["qwen2.5-0.5b"], include_embeddings=False) == 24 * layer + 896
    # Qwen3-0.6B: q 2048x1024 (16 heads of 128), k, v 1024x1024, o 1024x2048, q/k norms 128 each.
    layer = 2048 * 1024 * 2 + 1024 * 1024 * 2 + 3 * 1024 * 3072 + 2 * 128 + 2 * 1024
    assert parameter_count(MODELS["qwen3-0.6b"]) == 28 * layer + 151936 * 1024 + 1024 == 596_049_920
    # Phi-3.5-mini, untied: the LM head counts a second 32064x3072 matrix.
    layer = 4 * 3072 * 3072 + 3 * 3072 * 8192 + 2 * 3072
    assert parameter_count(MODELS["phi3.5-mini"]) == 32 * layer + 2 * 32064 * 3072 + 3072 == 3_821_079_552
    # SmolLM2-1.7B: multi-head attention, tied.
    layer = 4 * 2048 * 2048 + 3 * 2048 * 8192 + 2 * 2048
    assert parameter_count(MODELS["smollm2-1.7b"]) == 24 * layer + 49152 * 2048 + 2048 == 1_711_376_384


def test_layer_linear_weights():
    # LLaMA3.2-1B: q, o 2048x2048; k, v 512x2048; gate, up, down 2048x8192.
    assert layer_linear_weights(MODELS["llama3.2-1b"]) == 2 * 2048 * 2048 + 2 * 512 * 2048 + 3 * 2048 * 8192
    assert layer_linear_weights(MODELS["llama3.2-1b"]) == 60_817_408
    # Biases and norms are not linear weights.
    qwen = MODELS["qwen2.5-0.5b"]
    assert layer_linear_weights(qwen) == 896 * 896 * 2 + 128 * 896 * 2 + 3 * 896 * 4864


def test_tensor_shapes():
    shapes = tensor_shapes(MODELS["qwen2.5-0.5b"])
    assert shapes["k_proj"] == (128, 896) and shapes["down_proj"] == (896, 4864)
    assert shapes["q_proj.bias"] == (896,) and shapes["v_proj.bias"] == (128,)
    assert "lm_head" not in shapes and "q_norm" not in shapes
    shapes = tensor_shapes(MODELS["tinyllama-1.1b"])
    assert shapes["lm_head"] == shapes["embed_tokens"] == (32000, 2048)
    assert "q_proj.bias" not in shapes
    shapes = tensor_shapes(MODELS["qwen3-0.6b"])
    assert shapes["q_norm"] == shapes["k_norm"] == (128,) and shapes["o_proj"] == (1024, 2048)


def test_counts_follow_the_spec():
    spec = ModelSpec("toy", "toy", 2, 8, 4, 2, 2, 16, 10, tied_embeddings=False)
    # layer: q 8x8, k, v 4x8, o 8x8, 3 FFN 16x8, 2 norms of 8; embeddings, head 10x8; final norm 8.
    assert parameter_count(spec) == 2 * (64 + 32 + 32 + 64 + 3 * 128 + 16) + 2 * 80 + 8


def test_mistral_config_is_llama_shaped(tmp_path):
    # Mistral-7B-v0.1's config.json (the keys that matter); 7,241,732,096 parameters as published.
    cfg = {
        "architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096,
        "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "vocab_size": 32000, "tie_word_embeddings": False, "sliding_window": 4096, "rope_theta": 10000.0,
        "_name_or_path": "mistralai/Mistral-7B-v0.1",
    }  # fmt: skip
    spec = load_hf_config(_write(tmp_path, cfg))
    assert (spec.id, spec.head_dim, spec.n_kv_heads, spec.qkv_bias, spec.qk_norm) == ("mistral-7b-v0.1", 128, 8,
                                                                                          False, False)  # fmt: skip
    assert parameter_count(spec) == 7_241_732_096
    assert load_hf_config(_write(tmp_path, _without(cfg, "model_type"), "b")).n_layers == 32
