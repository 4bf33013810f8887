"""The flax decoder against an independent numpy forward pass, its KV cache, and HF checkpoint I/O."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import load_file, save_file

from cimjax.lm import (
    CheckpointError,
    DecoderLM,
    functional,
    load_checkpoint,
    load_weights,
    model_tensors,
    save_checkpoint,
)
from cimjax.workload.spec import ModelSpec

SPECS = {
    "llama": ModelSpec("tiny-llama", "tiny", 2, 24, 4, 2, 6, 40, 37, False),
    "qwen2": ModelSpec("tiny-qwen2", "tiny", 2, 24, 4, 1, 6, 40, 37, True, qkv_bias=True),
    "qwen3": ModelSpec("tiny-qwen3", "tiny", 2, 24, 2, 2, 8, 40, 37, True, qk_norm=True),
}
THETA, EPS = 500.0, 1e-5


def random_model(spec: ModelSpec, seed: int = 0) -> DecoderLM:
    """A model whose every parameter (norms and biases included) is random and far from its init."""
    model = DecoderLM(spec, rope_theta=THETA, rms_eps=EPS, rngs=nnx.Rngs(seed))
    rng = np.random.default_rng(seed)
    tensors = {
        name: (1.0 + 0.2 * rng.standard_normal(t.shape) if "norm" in name else 0.25 * rng.standard_normal(t.shape))
        for name, t in model_tensors(model).items()
    }
    return load_weights(model, {k: v.astype(np.float32) for k, v in tensors.items()})


def numpy_forward(t: dict[str, np.ndarray], spec: ModelSpec, tokens: np.ndarray) -> np.ndarray:
    """Plain numpy LLaMA/Qwen forward for one sequence, written from the transformers equations."""

    def rms(x, w):
        return w * x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + EPS)

    def rope(x, pos):  # x: (T, heads, hd); rotate-half pairs (i, i + hd/2)
        half = spec.head_dim // 2
        out = np.empty_like(x)
        for i in range(half):
            angle = pos * THETA ** (-2.0 * i / spec.head_dim)
            c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
            a, b = x[:, :, i], x[:, :, i + half]
            out[:, :, i], out[:, :, i + half] = a * c - b * s, b * c + a * s
        return out

    n = len(tokens)
    x = t["model.embed_tokens.weight"][tokens].astype(np.float64)
    pos = np.arange(n, dtype=np.float64)
    for layer in range(spec.n_layers):
        p = f"model.layers.{layer}."
        h = rms(x, t[p + "input_layernorm.weight"])
        proj = {}
        for name in ("q", "k", "v"):
            y = h @ t[p + f"self_attn.{name}_proj.weight"].T
            if spec.qkv_bias:
                y = y + t[p + f"self_attn.{name}_proj.bias"]
            proj[name] = y
        q = proj["q"].reshape(n, spec.n_heads, spec.head_dim)
        k = proj["k"].reshape(n, spec.n_kv_heads, spec.head_dim)
        v = proj["v"].reshape(n, spec.n_kv_heads, spec.head_dim)
        if spec.qk_norm:
            q, k = rms(q, t[p + "self_attn.q_norm.weight"]), rms(k, t[p + "self_attn.k_norm.weight"])
        q, k = rope(q, pos), rope(k, pos)
        heads = []
        for head in range(spec.n_heads):
            kv = head // (spec.n_heads // spec.n_kv_heads)
            scores = q[:, head] @ k[:, kv].T / np.sqrt(spec.head_dim)
            scores = np.where(np.tril(np.ones((n, n))) > 0, scores, -np.inf)
            w = np.exp(scores - scores.max(axis=-1, keepdims=True))
            heads.append((w / w.sum(axis=-1, keepdims=True)) @ v[:, kv])
        x = x + np.concatenate(heads, axis=-1) @ t[p + "self_attn.o_proj.weight"].T
        h = rms(x, t[p + "post_attention_layernorm.weight"])
        gate = h @ t[p + "mlp.gate_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * (h @ t[p + "mlp.up_proj.weight"].T)) @ t[p + "mlp.down_proj.weight"].T
    x = rms(x, t["model.norm.weight"])
    head = t["model.embed_tokens.weight"] if spec.tied_embeddings else t["lm_head.weight"]
    return x @ head.T


def forward(model: DecoderLM, tokens) -> np.ndarray:
    """Jitted full forward pass (one compile per model shape; eager dispatch is slow on 2 cores)."""
    build, params = functional(model)
    return np.asarray(_forward(build, params, jnp.asarray(tokens)))


@functools.partial(jax.jit, static_argnums=0)
def _forward(build, params, tokens):
    return build(params)(tokens)


@functools.partial(jax.jit, static_argnums=0)
def _decode(build, params, tokens, cache):
    return build(params).decode(tokens, cache)


TOKENS = np.array([[3, 17, 0, 36, 5, 5, 21, 9, 30], [1, 2, 3, 4, 5, 6, 7, 8, 9]], np.int32)


@pytest.mark.parametrize("family", sorted(SPECS))
def test_logits_match_numpy_reference(family):
    spec = SPECS[family]
    model = random_model(spec)
    logits = forward(model, TOKENS)
    tensors = {k: v.astype(np.float64) for k, v in model_tensors(model).items()}
    for row, toks in enumerate(TOKENS):
        ref = numpy_forward(tensors, spec, toks)
        assert np.std(ref) > 0.5  # the check is not trivially satisfied by flat logits
        np.testing.assert_allclose(logits[row], ref, atol=2e-4, rtol=2e-4)


@pytest.mark.parametrize("family", sorted(SPECS))
def test_checkpoint_round_trip(tmp_path, family):
    model = random_model(SPECS[family], seed=1)
    save_checkpoint(model, tmp_path)
    loaded = load_checkpoint(tmp_path)
    assert loaded.spec.tied_embeddings == model.spec.tied_embeddings
    assert (loaded.rope_theta, loaded.rms_eps) == (THETA, EPS)
    a, b = model_tensors(model), model_tensors(loaded)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    np.testing.assert_array_equal(forward(model, TOKENS), forward(loaded, TOKENS))


def test_hf_names():
    names = set(model_tensors(random_model(SPECS["qwen2"])))
    assert "model.layers.1.self_attn.q_proj.weight" in names
    assert "model.layers.0.self_attn.k_proj.bias" in names
    assert "model.norm.weight" in names and "lm_head.weight" not in names  # tied
    assert "lm_head.weight" in model_tensors(random_model(SPECS["llama"]))
    spec = SPECS["qwen2"]
    assert model_tensors(random_model(spec))["model.layers.0.self_attn.k_proj.weight"].shape == (
        spec.kv_dim,
        spec.hidden,
    )


def test_sharded_checkpoint(tmp_path):
    model = random_model(SPECS["llama"], seed=2)
    save_checkpoint(model, tmp_path, max_shard_bytes=8_000)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 2 and not (tmp_path / "model.safetensors").exists()
    loaded = load_checkpoint(tmp_path)
    np.testing.assert_array_equal(forward(model, TOKENS), forward(loaded, TOKENS))


@pytest.mark.parametrize("family", sorted(SPECS))
def test_kv_cache_decoding_equals_full_forward(family):
    model = random_model(SPECS[family], seed=3)
    full = forward(model, TOKENS)
    build, params = functional(model)
    cache = model.init_cache(batch=2, max_len=12)
    prefill, cache = _decode(build, params, jnp.asarray(TOKENS[:, :4]), cache)
    steps = [prefill]
    for i in range(4, TOKENS.shape[1]):
        logits, cache = _decode(build, params, jnp.asarray(TOKENS[:, i : i + 1]), cache)
        steps.append(logits)
    assert int(cache.length) == TOKENS.shape[1]
    np.testing.assert_allclose(np.concatenate([np.asarray(s) for s in steps], axis=1), full, atol=1e-5, rtol=1e-5)


def test_missing_directory_and_config(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="config.json"):
        load_checkpoint(tmp_path)


def test_missing_and_misshaped_tensors(tmp_path):
    save_checkpoint(random_model(SPECS["llama"]), tmp_path)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    name = "model.layers.1.mlp.up_proj.weight"
    broken = {k: v for k, v in tensors.items() if k != name}
    save_file(broken, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing tensor.*up_proj"):
        load_checkpoint(tmp_path)
    broken[name] = np.zeros((3, 3), np.float32)
    save_file(broken, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"up_proj.weight.*\(3, 3\).*\(40, 24\)"):
        load_checkpoint(tmp_path)
    del broken[name]
    broken[name] = tensors[name]
    broken["model.layers.7.mlp.up_proj.weight"] = tensors[name]
    save_file(broken, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="unexpected tensor.*layers.7"):
        load_checkpoint(tmp_path)


def test_missing_weights_and_shard(tmp_path):
    save_checkpoint(random_model(SPECS["llama"]), tmp_path, max_shard_bytes=8_000)
    first = sorted(tmp_path.glob("model-*.safetensors"))[0]
    first.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path)
    for f in tmp_path.glob("*.safetensors*"):
        f.unlink()
    with pytest.raises(CheckpointError, match="no \\*.safetensors"):
        load_checkpoint(tmp_path)


def test_transformers_reference(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    for family, spec in SPECS.items():
        model = random_model(spec, seed=4)
        save_checkpoint(model, tmp_path / family)
        ref = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / family, torch_dtype=torch.float32)
        with torch.no_grad():
            expected = ref(torch.tensor(TOKENS, dtype=torch.long)).logits.numpy()
        np.testing.assert_allclose(forward(model, TOKENS), expected, atol=1e-4, rtol=1e-4)
