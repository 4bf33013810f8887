"""Hugging Face checkpoints on disk (config.json + safetensors) <-> :class:`DecoderLM`.

Tensor names are the nnx state paths joined with dots, which are exactly the ``transformers`` names
(``model.layers.0.self_attn.q_proj.weight``, ...). Loading checks that every tensor the model needs is
present with the right shape; extra tensors that ``transformers`` also ignores (``rotary_emb.inv_freq``)
are skipped, any other extra tensor is an error so that a wrong architecture does not load silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx
from safetensors import SafetensorError
from safetensors.numpy import load_file, save

from cimjax.files import atomic_write, check_output_dir, path_text
from cimjax.lm.model import DecoderLM, functional
from cimjax.validation import fail, number, read_json
from cimjax.workload.spec import ModelSpec

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


class CheckpointError(ValueError):
    """A checkpoint directory that is missing, incomplete or does not match its config."""


def model_tensors(model: DecoderLM) -> dict[str, np.ndarray]:
    """The model's parameters under their Hugging Face names, as float32 numpy arrays."""
    return {name: np.asarray(value) for name, value in functional(model)[1].items()}


def _config_dict(model: DecoderLM) -> dict:
    """A config.json that ``transformers`` and :func:`cimjax.workload.hf_config.load_hf_config` both read."""
    s = model.spec
    model_type, arch = "llama", "LlamaForCausalLM"
    if s.qkv_bias:
        model_type, arch = "qwen2", "Qwen2ForCausalLM"
    if s.qk_norm:
        model_type, arch = "qwen3", "Qwen3ForCausalLM"
    if s.qkv_bias and s.qk_norm:
        raise CheckpointError(f"model {s.id!r}: no Hugging Face family has both q/k/v bias and q/k norm")
    return {
        "architectures": [arch],
        "model_type": model_type,
        "name_or_path": s.id,
        "hidden_size": s.hidden,
        "intermediate_size": s.ffn,
        "num_hidden_layers": s.n_layers,
        "num_attention_heads": s.n_heads,
        "num_key_value_heads": s.n_kv_heads,
        "head_dim": s.head_dim,
        "vocab_size": s.vocab,
        "tie_word_embeddings": s.tied_embeddings,
        "rms_norm_eps": model.rms_eps,
        "rope_theta": model.rope_theta,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "torch_dtype": "float32",
    }


def save_checkpoint(
    model: DecoderLM, directory: str | Path, max_shard_bytes: int | None = None, tokenizer: str | Path | None = None
) -> Path:
    """Writes config.json and the weights as safetensors (sharded with an index if over ``max_shard_bytes``),
    and a copy of the model's ``tokenizer`` file as ``tokenizer.json`` when it has one.

    Returns:
      The directory.
    """
    if not isinstance(model, DecoderLM):
        raise fail("model", model, "allowed: a cimjax.lm.DecoderLM")
    out = check_output_dir(directory, "directory")
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer is not None:
        atomic_write(out / TOKENIZER_FILE, Path(tokenizer).read_text(encoding="utf-8"))
    atomic_write(out / "config.json", json.dumps(_config_dict(model), indent=2) + "\n")
    tensors = model_tensors(model)
    metadata = {"format": "pt"}
    if max_shard_bytes is None or sum(t.nbytes for t in tensors.values()) <= max_shard_bytes:
        atomic_write(out / SINGLE_FILE, save(tensors, metadata=metadata))
        return out
    shards: list[dict[str, np.ndarray]] = [{}]
    for name, t in tensors.items():
        if shards[-1] and sum(x.nbytes for x in shards[-1].values()) + t.nbytes > max_shard_bytes:
            shards.append({})
        shards[-1][name] = t
    weight_map = {}
    for i, shard in enumerate(shards):
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        atomic_write(out / file, save(shard, metadata=metadata))
        weight_map.update(dict.fromkeys(shard, file))
    index = {"metadata": {"total_size": sum(t.nbytes for t in tensors.values())}, "weight_map": weight_map}
    atomic_write(out / INDEX_FILE, json.dumps(index, indent=2) + "\n")
    return out


def _read_tensors(directory: Path) -> dict[str, np.ndarray]:
    """All tensors of a single-file or index-sharded safetensors checkpoint."""
    index_file = directory / INDEX_FILE
    if index_file.is_file():
        files = _shard_names(index_file)
    elif (directory / SINGLE_FILE).is_file():
        files = [SINGLE_FILE]
    else:
        files = sorted(p.name for p in directory.glob("*.safetensors"))
        if not files:
            raise CheckpointError(f"no *.safetensors weights in {directory}")
    tensors: dict[str, np.ndarray] = {}
    for name in files:
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"{index_file.name} names shard {name!r}, which is missing from {directory}")
        try:
            tensors.update(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"cannot read safetensors file {path}: {e}") from e
    return tensors


def _shard_names(index_file: Path) -> list[str]:
    """The shard files an index names: its ``weight_map`` must map tensor names to plain file names in the
    checkpoint directory (an absolute or ``../`` path would read a file outside it)."""
    try:
        index = read_json(index_file, "safetensors index")
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(
            f"{index_file}: 'weight_map' = {weight_map!r} is not allowed; allowed: an object of tensor name: shard file"
        )
    for tensor, name in weight_map.items():
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise CheckpointError(
                f"{index_file}: weight_map[{tensor!r}] = {name!r} is not allowed; allowed: a file name inside "
                f"{index_file.parent} (no directories)"
            )
    return sorted(set(weight_map.values()))


def _hyperparameter(cfg: dict, key: str, default: float, path: Path) -> float:
    """A float of config.json: finite and positive (``rope_theta``, ``rms_norm_eps``)."""
    value = cfg.get(key, default)
    try:
        return number(f"config.json at {path}: {key!r}", value, 0.0, low_open=True)
    except ValueError as e:
        raise CheckpointError(str(e)) from None


def checkpoint_directory(directory: str | Path) -> Path:
    """``directory`` as the path of an existing directory; CheckpointError naming it otherwise (a number or
    None in its place too, not a TypeError from :class:`pathlib.Path`)."""
    text = path_text(directory)
    if text is None or not text.strip():
        allowed = "allowed: a checkpoint directory (str or pathlib.Path)"
        raise CheckpointError(f"checkpoint directory = {directory!r} is not allowed; {allowed}")
    path = Path(text)
    if not os.path.exists(path):  # os.path, not Path: a name too long for the file system is missing, not an OSError
        raise CheckpointError(f"checkpoint directory {path} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory {path} is a file, not a directory")
    return path


def load_checkpoint(directory: str | Path) -> DecoderLM:
    """Builds a :class:`DecoderLM` from a local Hugging Face checkpoint directory.

    Raises:
      CheckpointError: the directory or config.json is missing or invalid, a tensor is missing or has the
        wrong shape (the message names the tensor and both shapes), or a tensor is unexpected.
    """
    from cimjax.workload.hf_config import ConfigError, load_hf_config

    path = checkpoint_directory(directory)
    try:
        spec: ModelSpec = load_hf_config(path)
    except ConfigError as e:
        raise CheckpointError(str(e)) from e
    cfg = read_json(path / "config.json", "config.json")  # load_hf_config checked it is a readable object
    rope_theta = _hyperparameter(cfg, "rope_theta", 10000.0, path)
    rms_eps = _hyperparameter(cfg, "rms_norm_eps", 1e-6, path)
    model = nnx.eval_shape(lambda: DecoderLM(spec, rope_theta=rope_theta, rms_eps=rms_eps, rngs=nnx.Rngs(0)))
    return load_weights(model, _read_tensors(path), source=str(path))


def load_weights(model: DecoderLM, tensors: dict[str, np.ndarray], source: str = "tensors") -> DecoderLM:
    """A copy of ``model`` with every parameter taken from ``tensors`` (Hugging Face names), checked."""
    graphdef, state = nnx.split(model)
    expected = {".".join(map(str, p)): var for p, var in state.flat_state()}
    missing = [n for n in expected if n not in tensors]
    if missing:
        more = " ..." if len(missing) > 5 else ""
        raise CheckpointError(f"{source}: missing tensor(s) {', '.join(missing[:5])}{more}")
    unexpected = [n for n in tensors if n not in expected and not n.endswith(_IGNORED_SUFFIXES)]
    if unexpected:
        raise CheckpointError(
            f"{source}: unexpected tensor(s) {', '.join(sorted(unexpected)[:5])} for a "
            f"{model.spec.n_layers}-layer model (tied_embeddings={model.spec.tied_embeddings}, "
            f"qkv_bias={model.spec.qkv_bias}, qk_norm={model.spec.qk_norm})"
        )
    for name, var in expected.items():
        value = tensors[name]
        if tuple(value.shape) != tuple(var.shape):
            raise CheckpointError(
                f"{source}: tensor {name!r} has shape {tuple(value.shape)}; config implies {tuple(var.shape)}"
            )
        if not np.isfinite(value).all():  # NaN/inf weights would make every sensitivity NaN
            raise CheckpointError(f"{source}: tensor {name!r} holds NaN or infinite values; allowed: finite weights")
        var.set_value(jnp.asarray(value, jnp.float32))
    return nnx.merge(graphdef, state)
