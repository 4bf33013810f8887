"""Trains the small byte-level LLaMA-style model that the accuracy proxy is validated against.

The run is keyed by its hyper-parameters and the corpus: it lives in ``$CIMJAX_CACHE/proxy-lm/<key>``
(default ``~/.cache/cimjax``), is checkpointed with orbax every ``ckpt_every`` steps, resumes from the last
checkpoint if interrupted, and is simply loaded when it has finished. Batches are a pure function of
``(seed, step)``, so a resumed run sees the same data as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

import cimjax.files as files
from cimjax.cache import cache_dir
from cimjax.lm.checkpoint import TOKENIZER_FILE
from cimjax.lm.model import Builder, DecoderLM, functional, token_nll
from cimjax.quant import corpus
from cimjax.workload.spec import ModelSpec


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Model shape and optimiser settings of a training run (all of it goes into the cache key)."""

    n_layers: int = 4
    hidden: int = 128
    n_heads: int = 4
    n_kv_heads: int = 2
    ffn: int = 384
    seq_len: int = 128
    batch: int = 16
    steps: int = 1000
    lr: float = 3e-3
    warmup: int = 100
    weight_decay: float = 0.1
    seed: int = 0
    rope_theta: float = 10000.0
    rms_eps: float = 1e-6
    val_fraction: float = 0.1
    ckpt_every: int = 250
    vocab: int | None = None  # sub-word ids of a byte-level BPE trained on the training split; None: bytes

    def __post_init__(self):
        for field in ("n_layers", "hidden", "n_heads", "n_kv_heads", "ffn", "seq_len", "batch", "steps"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{field}={value!r} must be a positive integer")
        if self.vocab is not None and (not isinstance(self.vocab, int) or self.vocab <= corpus.VOCAB):
            raise ValueError(f"TrainConfig.vocab={self.vocab!r} must be None (bytes) or above {corpus.VOCAB}")
        if self.hidden % self.n_heads:
            raise ValueError(f"TrainConfig.hidden={self.hidden} must be a multiple of n_heads={self.n_heads}")

    def spec(self) -> ModelSpec:
        """The model shape: byte (or sub-word) vocabulary, untied embeddings, LLaMA layout."""
        name = "proxy-lm" if self.vocab is None else f"proxy-lm-bpe{self.vocab}"
        return ModelSpec(
            id=name,
            name=name,
            n_layers=self.n_layers,
            hidden=self.hidden,
            n_heads=self.n_heads,
            n_kv_heads=self.n_kv_heads,
            head_dim=self.hidden // self.n_heads,
            ffn=self.ffn,
            vocab=self.vocab or corpus.VOCAB,
            tied_embeddings=False,
        )


# The benchmark-sized run (~0.86 M parameters, ~0.4 s/step on 2 CPU cores) and a seconds-long one for tests.
BENCHMARK = TrainConfig()
TINY = TrainConfig(
    n_layers=1, hidden=32, n_heads=2, n_kv_heads=1, ffn=64, seq_len=32, batch=8, steps=40, warmup=5, ckpt_every=20
)
# The second, larger model of the end-to-end check: twice the layers, a 1,024-id byte-level BPE tokenizer
# (~2.9 bytes per token, so a window sees ~3x the text of the byte model's), ~1.8 M parameters.
SUBWORD = TrainConfig(n_layers=8, steps=500, vocab=1024)


@dataclasses.dataclass
class TrainedModel:
    """A trained model with its provenance."""

    model: DecoderLM
    config: TrainConfig
    final_loss: float  # training loss of the last step, nats/token
    val_loss: float  # validation loss at full precision, nats/token
    train_seconds: float  # wall time spent training (summed over resumed sessions)
    n_params: int
    directory: Path
    tokenizer: Path | None = None  # the tokenizer.json of a sub-word model


def tokenizer_of(config: TrainConfig, directory: Path) -> Path | None:
    """The run's tokenizer file (trained on first use), or None for a byte-level run."""
    if config.vocab is None:
        return None
    path = directory / TOKENIZER_FILE
    if path.is_file():
        try:
            corpus.load_tokenizer(path)
            return path
        except ValueError as error:
            warnings.warn(f"{error}; it is trained again", stacklevel=2)
    return corpus.train_tokenizer(config.vocab, path, config.val_fraction)


def run_key(config: TrainConfig) -> str:
    """A short hash of the hyper-parameters and the corpus bytes (so another Python's pydoc differs); a field
    at None (``vocab`` of a byte-level run) is left out, so runs from before it keep their key."""
    fields = {k: v for k, v in dataclasses.asdict(config).items() if v is not None}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
    digest.update(corpus.corpus_bytes().tobytes())
    return digest.hexdigest()[:16]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@functools.cache
def _optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """AdamW with warm-up and cosine decay; cached so equal configs share one (hashable) transformation."""
    schedule = optax.warmup_cosine_decay_schedule(0.0, config.lr, config.warmup, config.steps, config.lr * 0.05)
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=config.weight_decay))


def _batch(train: np.ndarray, config: TrainConfig, step: int) -> np.ndarray:
    """Random windows ``(batch, seq_len + 1)``, a pure function of (seed, step)."""
    rng = np.random.default_rng([config.seed, step])
    starts = rng.integers(0, len(train) - config.seq_len - 1, size=config.batch)
    return train[starts[:, None] + np.arange(config.seq_len + 1)[None, :]]


@functools.partial(jax.jit, static_argnums=0)
def _mean_loss(build: Builder, params, windows):
    return token_nll(build(params)(windows[:, :-1]), windows[:, 1:])


@functools.partial(jax.jit, static_argnums=(0, 1))
def _train_step(build: Builder, tx: optax.GradientTransformation, state, batch):
    """One AdamW step on the mean token loss of ``batch``."""

    def loss_fn(p):
        return token_nll(build(p)(batch[:, :-1]), batch[:, 1:])

    loss, grads = jax.value_and_grad(loss_fn)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return {**state, "params": params, "opt_state": opt_state, "step": state["step"] + 1, "loss": loss}


def evaluate_loss(model: DecoderLM, windows: np.ndarray, batch: int = 64) -> float:
    """Mean next-token loss (nats/token) of ``model`` over windows ``(n, seq_len + 1)``."""
    build, params = functional(model)
    total = sum(
        float(_mean_loss(build, params, windows[i : i + batch])) * len(windows[i : i + batch])
        for i in range(0, len(windows), batch)
    )
    return total / len(windows)


def train(config: TrainConfig = BENCHMARK, *, log=_log) -> TrainedModel:
    """Trains ``config`` (or resumes / loads it from the cache) and returns the model.

    Args:
      config: the run's hyper-parameters.
      log: where progress lines go (stderr by default, so ``--json`` output stays clean).
    """
    directory = cache_dir() / "proxy-lm" / run_key(config)
    directory.mkdir(parents=True, exist_ok=True)
    with files.lock(directory, "CIMJAX_CACHE", wait=True):  # a second process waits, then loads the result
        tokenizer = tokenizer_of(config, directory)
        state, build = _train_locked(config, directory, tokenizer, log)
    model = build(state["params"])
    val_tokens = corpus.split(config.val_fraction, tokenizer)[1]
    val_loss = evaluate_loss(model, corpus.windows(val_tokens, config.seq_len))
    return TrainedModel(
        model=model,
        config=config,
        final_loss=float(state["loss"]),
        val_loss=val_loss,
        train_seconds=float(state["train_seconds"]),
        n_params=sum(int(np.prod(p.shape)) for p in state["params"].values()),
        directory=directory,
        tokenizer=tokenizer,
    )


def _saved(manager, step: int, state) -> bool:
    """Saves ``state`` as ``step``; False, with a warning, when the cache is full (the training goes on in memory
    and saves no more steps: a cache never fails a run)."""
    try:
        files.save_step(manager, step, state)
        return True
    except files.OutputError as error:
        warnings.warn(f"{error}; the cache keeps no step of this run, which goes on", stacklevel=4)
        return False


def _train_locked(config: TrainConfig, directory: Path, tokenizer: Path | None, log):
    """Trains (or resumes, or loads) ``config`` in ``directory``, which the caller holds locked."""
    files.atomic_write(directory / "config.json", json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    model = DecoderLM(config.spec(), rope_theta=config.rope_theta, rms_eps=config.rms_eps, rngs=nnx.Rngs(config.seed))
    build, params = functional(model)
    tx = _optimizer(config)
    state = {
        "params": params,
        "opt_state": tx.init(params),
        "step": jnp.zeros((), jnp.int32),
        "train_seconds": jnp.zeros((), jnp.float32),
        "loss": jnp.zeros((), jnp.float32),
    }
    options = ocp.CheckpointManagerOptions(max_to_keep=1, save_interval_steps=1, cleanup_tmp_directories=True)
    manager = ocp.CheckpointManager(directory / "orbax", options=options)
    try:
        restored = files.restore_newest(manager, state)  # a damaged step is deleted and trained again
        if restored is not None:
            state = restored
            log(f"proxy LM: restored step {int(state['step'])}/{config.steps} from {directory}")

        train_tokens, _ = corpus.split(config.val_fraction, tokenizer)
        step = int(state["step"])
        if step < config.steps:
            log(f"proxy LM: training {config.steps - step} steps into {directory}")
        t0, spent = time.perf_counter(), float(state["train_seconds"])
        saving = True
        while step < config.steps:
            state = _train_step(build, tx, state, jnp.asarray(_batch(train_tokens, config, step)))
            step += 1
            if step % config.ckpt_every == 0 or step == config.steps:
                state = {**state, "train_seconds": jnp.float32(spent + time.perf_counter() - t0)}
                saving = saving and _saved(manager, step, state)
                log(
                    f"proxy LM: step {step}/{config.steps} loss {float(state['loss']):.4f} nats/token "
                    f"({float(state['train_seconds']):.0f} s)"
                )
    finally:
        files.close_steps(manager)  # a save the full cache refused is not raised again
    return state, build
