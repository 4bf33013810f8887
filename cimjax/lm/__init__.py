"""The flax nnx decoder language model and its Hugging Face checkpoint loading."""

from cimjax.lm.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_weights,
    model_tensors,
    save_checkpoint,
)
from cimjax.lm.model import IDENTITY, DecoderLM, Hooks, KVCache, functional, token_nll

__all__ = [
    "IDENTITY",
    "CheckpointError",
    "DecoderLM",
    "Hooks",
    "KVCache",
    "functional",
    "load_checkpoint",
    "load_weights",
    "model_tensors",
    "save_checkpoint",
    "token_nll",
]
