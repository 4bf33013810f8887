"""A LLaMA/Qwen-family decoder language model in flax nnx, with fake-quantisation hooks.

Parameter names mirror Hugging Face ``transformers`` one-to-one (``model.layers.{i}.self_attn.q_proj.weight``
and so on, linear weights in ``(out, in)`` layout), so a checkpoint maps onto the module tree by joining the
nnx state path with dots. Every matmul of a decoder layer calls a :class:`Hooks` object on its operands and
output; the identity hooks give the plain model, the quantisation hooks of :mod:`cimjax.quant` give the
fake-quantised one, and the sensitivity code uses the same points to inject perturbations.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from cimjax.workload.spec import ModelSpec


class Hooks:
    """Identity hooks: the points where a decoder layer's matmul operands and outputs can be changed.

    ``op`` is a name of :data:`cimjax.workload.precision.MATMUL_OPS` (``weight`` only gets the linear ones);
    ``which`` is ``"k"`` or ``"v"``. ``layer`` is a Python int, so hooks may index per-layer tables.
    """

    def weight(self, layer: int, op: str, w: jax.Array) -> jax.Array:
        """A linear weight, ``(out, in)``, before its matmul."""
        return w

    def act(self, layer: int, op: str, x: jax.Array) -> jax.Array:
        """The activation input of matmul ``op`` (for ``qk`` the queries, for ``pv`` the probabilities)."""
        return x

    def kv(self, layer: int, which: str, x: jax.Array) -> jax.Array:
        """A key or value entry, ``(batch, time, kv_heads, head_dim)``, as it is written to the KV cache."""
        return x

    def out(self, layer: int, op: str, y: jax.Array) -> jax.Array:
        """The output of matmul ``op`` (scores for ``qk``, before the mask)."""
        return y

    def stored_weight(self, layer: int, op: str, w: jax.Array, stored: jax.Array) -> jax.Array:
        """A linear weight whose layer also holds precomputed quantised copies ``stored`` (``(n, out, in)``,
        :class:`QuantisedWeights`); hooks that do not use them see the full-precision weight, as
        :meth:`weight`."""
        return self.weight(layer, op, w)


IDENTITY = Hooks()


def observe(model: DecoderLM, windows, hooks: Hooks, chunk: int = 16) -> Hooks:
    """Run ``model`` over ``windows``' inputs (``windows[:, :-1]``, as every measurement feeds them),
    ``chunk`` windows at a time, with recording ``hooks``; returns the hooks with what they recorded."""
    tokens = jnp.asarray(windows)[:, :-1]
    for start in range(0, len(tokens), chunk):
        model(tokens[start : start + chunk], hooks)
    return hooks


class KVCache(NamedTuple):
    """Per-layer keys and values, ``(batch, max_len, kv_heads, head_dim)`` each, and the filled length."""

    k: tuple[jax.Array, ...]
    v: tuple[jax.Array, ...]
    length: jax.Array


class RMSNorm(nnx.Module):
    """``weight * x / sqrt(mean(x^2) + eps)`` over the last axis, computed in float32."""

    def __init__(self, dim: int, eps: float):
        self.weight = nnx.Param(jnp.ones((dim,), jnp.float32))
        self.eps = eps

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return (self.weight[...] * y).astype(x.dtype)


class QuantisedWeights(nnx.Variable):
    """Precomputed quantised copies of a linear weight, one per bit width (e.g. GPTQ's,
    :mod:`cimjax.quant.gptq`): not a parameter of the model, never trained or exported."""


class Linear(nnx.Module):
    """``y = x W^T (+ b)`` with ``W`` in the Hugging Face ``(out, in)`` layout and hooks on both operands.

    ``quantised``: None, or :class:`QuantisedWeights` ``(n, out, in)`` that the hooks may select from
    (:meth:`Hooks.stored_weight`) instead of quantising ``W`` themselves.
    """

    def __init__(self, d_in: int, d_out: int, *, bias: bool, rngs: nnx.Rngs, std: float):
        self.weight = nnx.Param(std * jax.random.normal(rngs.params(), (d_out, d_in), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((d_out,), jnp.float32)) if bias else None
        self.quantised = nnx.data(None)  # data, so that prepare can set it after construction

    def __call__(self, x: jax.Array, hooks: Hooks, layer: int, op: str) -> jax.Array:
        w = self.weight[...]
        if self.quantised is None:
            w = hooks.weight(layer, op, w)
        else:
            w = hooks.stored_weight(layer, op, w, self.quantised[...])
        y = hooks.act(layer, op, x) @ w.T
        if self.bias is not None:
            y = y + self.bias[...]
        return hooks.out(layer, op, y)


class Embedding(nnx.Module):
    """A ``(vocab, hidden)`` table, ``weight`` as in Hugging Face's ``embed_tokens``."""

    def __init__(self, vocab: int, dim: int, *, rngs: nnx.Rngs, std: float):
        self.weight = nnx.Param(std * jax.random.normal(rngs.params(), (vocab, dim), jnp.float32))

    def __call__(self, tokens: jax.Array) -> jax.Array:
        return jnp.take(self.weight[...], tokens, axis=0)


def rope_tables(positions: jax.Array, head_dim: int, theta: float) -> tuple[jax.Array, jax.Array]:
    """cos and sin, ``positions.shape + (head_dim,)``, in the rotate-half layout of ``transformers``."""
    inv_freq = 1.0 / theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)
    angles = positions.astype(jnp.float32)[..., None] * inv_freq
    angles = jnp.concatenate([angles, angles], axis=-1)
    return jnp.cos(angles), jnp.sin(angles)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """Rotates ``x`` (batch, time, heads, head_dim) by position; cos/sin are (time, head_dim)."""
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos[:, None, :] + rotated * sin[:, None, :]


class Attention(nnx.Module):
    """Grouped-query self-attention with RoPE, optional q/k/v bias (Qwen2) and per-head q/k norm (Qwen3)."""

    def __init__(self, spec: ModelSpec, *, rms_eps: float, rngs: nnx.Rngs, std: float):
        self.spec = spec
        h, q_dim, kv_dim = spec.hidden, spec.q_dim, spec.kv_dim
        self.q_proj = Linear(h, q_dim, bias=spec.qkv_bias, rngs=rngs, std=std)
        self.k_proj = Linear(h, kv_dim, bias=spec.qkv_bias, rngs=rngs, std=std)
        self.v_proj = Linear(h, kv_dim, bias=spec.qkv_bias, rngs=rngs, std=std)
        self.o_proj = Linear(q_dim, h, bias=False, rngs=rngs, std=std)
        if spec.qk_norm:
            self.q_norm = RMSNorm(spec.head_dim, rms_eps)
            self.k_norm = RMSNorm(spec.head_dim, rms_eps)

    def __call__(self, x, cos, sin, positions, cache_kv, hooks: Hooks, layer: int):
        s = self.spec
        b, t, _ = x.shape
        q = self.q_proj(x, hooks, layer, "q").reshape(b, t, s.n_heads, s.head_dim)
        k = self.k_proj(x, hooks, layer, "k").reshape(b, t, s.n_kv_heads, s.head_dim)
        v = self.v_proj(x, hooks, layer, "v").reshape(b, t, s.n_kv_heads, s.head_dim)
        if s.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k, v = hooks.kv(layer, "k", k), hooks.kv(layer, "v", v)
        if cache_kv is None:
            keys, values, key_pos = k, v, positions
        else:
            ck, cv, start = cache_kv
            keys = jax.lax.dynamic_update_slice(ck, k.astype(ck.dtype), (0, start, 0, 0))
            values = jax.lax.dynamic_update_slice(cv, v.astype(cv.dtype), (0, start, 0, 0))
            key_pos = jnp.arange(ck.shape[1])
        q = hooks.act(layer, "qk", q).reshape(b, t, s.n_kv_heads, s.group_size, s.head_dim)
        scores = jnp.einsum("btkgd,bskd->bkgts", q, keys) / math.sqrt(s.head_dim)
        scores = hooks.out(layer, "qk", scores).astype(jnp.float32)
        visible = key_pos[None, :] <= positions[:, None]
        scores = jnp.where(visible, scores, jnp.finfo(jnp.float32).min)
        probs = hooks.act(layer, "pv", jax.nn.softmax(scores, axis=-1).astype(x.dtype))
        out = jnp.einsum("bkgts,bskd->btkgd", probs, values).reshape(b, t, s.q_dim)
        out = hooks.out(layer, "pv", out)
        return self.o_proj(out, hooks, layer, "o"), (keys, values)


class MLP(nnx.Module):
    """SwiGLU feed-forward: ``down(silu(gate(x)) * up(x))``."""

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs, std: float):
        self.gate_proj = Linear(spec.hidden, spec.ffn, bias=False, rngs=rngs, std=std)
        self.up_proj = Linear(spec.hidden, spec.ffn, bias=False, rngs=rngs, std=std)
        self.down_proj = Linear(spec.ffn, spec.hidden, bias=False, rngs=rngs, std=std)

    def __call__(self, x, hooks: Hooks, layer: int):
        h = jax.nn.silu(self.gate_proj(x, hooks, layer, "gate")) * self.up_proj(x, hooks, layer, "up")
        return self.down_proj(h, hooks, layer, "down")


class DecoderLayer(nnx.Module):
    """Pre-norm residual block: attention then SwiGLU."""

    def __init__(self, spec: ModelSpec, *, rms_eps: float, rngs: nnx.Rngs, std: float):
        self.input_layernorm = RMSNorm(spec.hidden, rms_eps)
        self.self_attn = Attention(spec, rms_eps=rms_eps, rngs=rngs, std=std)
        self.post_attention_layernorm = RMSNorm(spec.hidden, rms_eps)
        self.mlp = MLP(spec, rngs=rngs, std=std)

    def __call__(self, x, cos, sin, positions, cache_kv, hooks: Hooks, layer: int):
        a, kv = self.self_attn(self.input_layernorm(x), cos, sin, positions, cache_kv, hooks, layer)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x), hooks, layer), kv


class Backbone(nnx.Module):
    """Hugging Face's ``model``: embeddings, decoder layers and the final norm."""

    def __init__(self, spec: ModelSpec, *, rms_eps: float, rngs: nnx.Rngs, std: float):
        self.embed_tokens = Embedding(spec.vocab, spec.hidden, rngs=rngs, std=std)
        self.layers = nnx.List([DecoderLayer(spec, rms_eps=rms_eps, rngs=rngs, std=std) for _ in range(spec.n_layers)])
        self.norm = RMSNorm(spec.hidden, rms_eps)


class DecoderLM(nnx.Module):
    """A causal decoder LM built from a :class:`ModelSpec`.

    Args:
      spec: the shape (layers, widths, heads, vocabulary, tied embeddings, q/k/v bias, q/k norm).
      rope_theta: RoPE base frequency (``rope_theta`` of config.json).
      rms_eps: RMSNorm epsilon (``rms_norm_eps``).
      rngs: random streams for the initial parameters (normal, std ``init_std``; norms at one).
      init_std: standard deviation of the initial weights (``initializer_range`` of transformers).
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        rope_theta: float = 10000.0,
        rms_eps: float = 1e-6,
        rngs: nnx.Rngs,
        init_std: float = 0.02,
    ):
        if spec.head_dim % 2:
            raise ValueError(f"model {spec.id!r}: head_dim={spec.head_dim} must be even for RoPE")
        if not rope_theta > 0:
            raise ValueError(f"rope_theta={rope_theta!r} must be positive")
        if not rms_eps > 0:
            raise ValueError(f"rms_eps={rms_eps!r} must be positive")
        self.spec = spec
        self.rope_theta = float(rope_theta)
        self.rms_eps = float(rms_eps)
        self.model = Backbone(spec, rms_eps=rms_eps, rngs=rngs, std=init_std)
        if not spec.tied_embeddings:
            self.lm_head = Linear(spec.hidden, spec.vocab, bias=False, rngs=rngs, std=init_std)

    def linear(self, layer: int, op: str) -> Linear:
        """The linear of matmul ``op`` (a name of :data:`cimjax.workload.precision.LINEAR_OPS`) in ``layer``."""
        block = self.model.layers[layer]
        if op in ("gate", "up", "down"):
            return getattr(block.mlp, f"{op}_proj")
        return getattr(block.self_attn, f"{op}_proj")

    def _run(self, tokens, positions, cache: KVCache | None, hooks: Hooks):
        cos, sin = rope_tables(positions, self.spec.head_dim, self.rope_theta)
        x = self.model.embed_tokens(tokens)
        new_k, new_v = [], []
        for i, layer in enumerate(self.model.layers):
            cache_kv = None if cache is None else (cache.k[i], cache.v[i], cache.length)
            x, (k, v) = layer(x, cos, sin, positions, cache_kv, hooks, i)
            new_k.append(k)
            new_v.append(v)
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight[...] if self.spec.tied_embeddings else self.lm_head.weight[...]
        return x @ head.T, new_k, new_v

    def __call__(self, tokens: jax.Array, hooks: Hooks = IDENTITY) -> jax.Array:
        """Logits ``(batch, time, vocab)`` of a full causal forward pass over ``tokens`` ``(batch, time)``."""
        logits, _, _ = self._run(tokens, jnp.arange(tokens.shape[1]), None, hooks)
        return logits

    def init_cache(self, batch: int, max_len: int, dtype=jnp.float32) -> KVCache:
        """An empty KV cache for ``batch`` sequences of up to ``max_len`` tokens."""
        shape = (batch, max_len, self.spec.n_kv_heads, self.spec.head_dim)
        zeros = tuple(jnp.zeros(shape, dtype) for _ in range(self.spec.n_layers))
        return KVCache(k=zeros, v=zeros, length=jnp.zeros((), jnp.int32))

    def decode(self, tokens: jax.Array, cache: KVCache, hooks: Hooks = IDENTITY) -> tuple[jax.Array, KVCache]:
        """Logits for ``tokens`` ``(batch, time)`` that follow the cached ones, and the extended cache.

        The caller keeps ``cache.length + time <= max_len``; positions past the end would be dropped.
        """
        positions = cache.length + jnp.arange(tokens.shape[1])
        logits, k, v = self._run(tokens, positions, cache, hooks)
        return logits, KVCache(k=tuple(k), v=tuple(v), length=cache.length + tokens.shape[1])


def token_nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean next-token negative log-likelihood in nats/token (the LM loss the proxy predicts changes of)."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], axis=-1))


@dataclasses.dataclass(frozen=True)
class Builder:
    """Rebuilds a :class:`DecoderLM` from a flat ``{Hugging Face name: array}`` dict (traceable).

    Hashable, and equal for models of the same structure, so it can be a static ``jax.jit`` argument:
    functions jitted at module level then compile once per model shape, not once per call.
    """

    graphdef: nnx.GraphDef
    paths: tuple[tuple, ...]

    def __call__(self, params: dict[str, jax.Array]) -> DecoderLM:
        flat = [(path, params[".".join(map(str, path))]) for path in self.paths]
        return nnx.merge(self.graphdef, nnx.State.from_flat_path(flat))


def functional(model: DecoderLM) -> tuple[Builder, dict[str, jax.Array]]:
    """The model as a pure function of a flat ``{Hugging Face name: array}`` dict, for jit/grad/optax/orbax.

    Returns:
      ``(build, params)``: ``build(params)`` returns a :class:`DecoderLM` holding ``params``, and ``params``
      are the model's current parameters.
    """
    graphdef, state = nnx.split(model)
    flat = list(state.flat_state())
    return Builder(graphdef, tuple(path for path, _ in flat)), {".".join(map(str, p)): v[...] for p, v in flat}
