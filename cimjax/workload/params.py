"""Weight tensor shapes and parameter counts of a :class:`ModelSpec`, matching Hugging Face checkpoints.

Shapes follow ``transformers``: a linear layer's weight is ``(out_features, in_features)``. Phi-3 stores
q/k/v as one fused ``qkv_proj`` and gate/up as one ``gate_up_proj``; the fused matrices hold exactly the
unfused ones stacked, so they are listed unfused here and every count is the same.
"""

from __future__ import annotations

import math

from cimjax.workload.spec import ModelSpec

# Tensors that occur once per model; every other entry of tensor_shapes occurs once per layer.
MODEL_TENSORS = ("embed_tokens", "norm", "lm_head")

# The seven projection matrices of one decoder layer (the matrix-vector work of a CIM array).
LINEAR_WEIGHTS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def tensor_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """The shapes of one decoder layer's tensors, plus the model-level tensors in ``MODEL_TENSORS``.

    Args:
      spec: the model.

    Returns:
      Name -> shape. Per-layer names are the seven ``LINEAR_WEIGHTS``; ``q_proj.bias``,
      ``k_proj.bias``, ``v_proj.bias`` when ``spec.qkv_bias``; ``q_norm``, ``k_norm`` when
      ``spec.qk_norm``; ``input_layernorm`` and ``post_attention_layernorm``. Model-level names are
      ``embed_tokens``, the final ``norm`` and ``lm_head`` (absent when the embeddings are tied).
    """
    h, q, kv, f = spec.hidden, spec.q_dim, spec.kv_dim, spec.ffn
    shapes: dict[str, tuple[int, ...]] = {
        "q_proj": (q, h),
        "k_proj": (kv, h),
        "v_proj": (kv, h),
        "o_proj": (h, q),
        "gate_proj": (f, h),
        "up_proj": (f, h),
        "down_proj": (h, f),
    }
    if spec.qkv_bias:
        shapes.update({"q_proj.bias": (q,), "k_proj.bias": (kv,), "v_proj.bias": (kv,)})
    if spec.qk_norm:
        shapes.update({"q_norm": (spec.head_dim,), "k_norm": (spec.head_dim,)})
    shapes.update({"input_layernorm": (h,), "post_attention_layernorm": (h,)})
    shapes.update({"embed_tokens": (spec.vocab, h), "norm": (h,)})
    if not spec.tied_embeddings:
        shapes["lm_head"] = (spec.vocab, h)
    return shapes


def parameter_count(spec: ModelSpec, include_embeddings: bool = True) -> int:
    """The model's number of parameters, as ``transformers``' ``model.num_parameters()`` reports it.

    Args:
      spec: the model.
      include_embeddings: False drops the input embedding table, as
        ``num_parameters(exclude_embeddings=True)`` does; an untied ``lm_head`` is a projection the
        accelerator computes, so it is still counted.

    Returns:
      The total count; a tied LM head is counted once (with the embeddings).
    """
    total = 0
    for name, shape in tensor_shapes(spec).items():
        if name == "embed_tokens" and not include_embeddings:
            continue
        total += math.prod(shape) * (1 if name in MODEL_TENSORS else spec.n_layers)
    return total


def layer_linear_weights(spec: ModelSpec) -> int:
    """The number of weights in one layer's seven projection matrices (no biases or norms)."""
    shapes = tensor_shapes(spec)
    return sum(math.prod(shapes[name]) for name in LINEAR_WEIGHTS)
