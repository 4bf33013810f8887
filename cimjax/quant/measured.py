"""What was measured on one checkpoint, kept together so it can move between machines.

A :class:`Measured` holds a checkpoint's sensitivities (:mod:`cimjax.quant.sensitivity`), the measured loss
increase of uniform W=A=KV assignments at 2..8 bits (the *measured budgets*: ``int8`` is what uniform INT8
really costs) and the measured losses of mixed assignments (the fit set of the interaction-aware proxy),
each both as a loss increase and as the mean per-token KL divergence from the full-precision model (the
two budget *targets*, :data:`TARGETS`).
Two sets of windows of the pydoc corpus are used (:mod:`cimjax.quant.calibration`): every loss of a whole
assignment (budgets, fit set, verification) is measured on *check* windows of the validation split; the
sensitivities come from random windows of the training split or (``Calibration.sensitivity_split``) some of
the check windows. Measured on the windows the curves came from, an assignment can exploit their noise (the
trained LM's INT8-budget assignment measured a loss *decrease* of 0.0013 nats/token there; docs/joint.md).

It is written as one JSON file (``cimjax proxy sensitivities --out FILE``), read back with checks
(:func:`load`: a malformed or mismatched file raises :class:`MeasuredFileError` naming the field), and
cached under ``$CIMJAX_CACHE/sensitivities`` keyed by the checkpoint's content hash, the calibration and
the quantiser. A quantiser that smooths activations (``QuantScheme.smooth``) measured the smoothed model, and
one with GPTQ weights (``QuantScheme.gptq``) the model holding them: whoever measures more with it (the
verification) takes the model from :meth:`Measured.model`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import jax.numpy as jnp
import numpy as np

import cimjax.validation as validation
from cimjax.cache import cache_dir, kept_if_possible
from cimjax.files import atomic_write, check_output_file
from cimjax.lm.checkpoint import TOKENIZER_FILE
from cimjax.lm.model import DecoderLM
from cimjax.quant import gptq
from cimjax.quant.calibration import Calibration
from cimjax.quant.measured_file import (
    MAX_FILE_BYTES,
    UNIFORM_WIDTHS,
    MeasuredFileError,
    read_array,
    read_scheme,
    read_uniform,
    shape_of,
)
from cimjax.quant.paired import paired
from cimjax.quant.quantizers import CLIPPED_SCHEME, DEFAULT_SCHEME, GPTQ_WIDTHS, QuantScheme
from cimjax.quant.sensitivity import BIT_GRID, Progress, Sensitivities, estimate
from cimjax.quant.smoothing import smooth
from cimjax.workload.precision import LINEAR_OPS, N_POINTS, POINTS
from cimjax.workload.spec import ModelSpec

FORMAT = "cimjax-measured-sensitivities"
VERSION = 4  # 4: the KL divergence of the uniform and mixed assignments (uniform_kl, joint.kl)
CHECKPOINT_SCHEME = dataclasses.replace(CLIPPED_SCHEME, gptq=True)
"""The quantiser of measured checkpoints: MSE-clipped per-channel weight scales (they raised the gains,
docs/joint.md) and GPTQ's codes on that grid (Hessians from 128 evenly spaced training-split windows,
act-order; chosen by weight-only KL on windows it never saw, docs/quantisation.md)."""
TARGETS = ("loss", "kl")
"""What a budget measures: the loss increase, or the mean per-token KL divergence from full precision
(both nats/token, on the check windows)."""
MAX_FIT = 10_000
"""Most random assignments measured to fit the interaction proxy (``n_fit``; each one forward pass over the
check windows; the default is 64)."""


def loss_and_kl(
    model: DecoderLM, windows: np.ndarray, tables: np.ndarray, scheme: QuantScheme = DEFAULT_SCHEME
) -> tuple[np.ndarray, np.ndarray, float]:
    """Real loss increase and mean per-token ``KL(p_full || p_quantised)`` (nats/token) of each bit table
    ``(n, L, 17)`` on ``windows``, and the full-precision loss (:func:`cimjax.quant.paired.paired`, which
    also gives their standard errors).

    Both come from the same forward pass; the KL divergence is non-negative and, on the same windows, far
    less noisy than a loss difference when the assignment changes the model little (INT8).
    """
    m = paired(model, windows, tables, scheme)
    return m.loss, m.kl, m.base


def checkpoint_scheme(gptq: bool | None = None) -> QuantScheme:
    """:data:`CHECKPOINT_SCHEME`, with GPTQ weights (``gptq`` True or None, the default) or rounded (False)."""
    return CHECKPOINT_SCHEME if gptq is None else dataclasses.replace(CHECKPOINT_SCHEME, gptq=gptq)


def check_target(target: str) -> str:
    """``target`` if it is one of :data:`TARGETS`, else a ValueError naming it and what is allowed."""
    if target not in TARGETS:
        raise ValueError(f"target = {target!r} is not known; allowed: {', '.join(TARGETS)}")
    return target


def memory_bytes(spec: ModelSpec, windows: int, seq_len: int, gptq: bool = False) -> float:
    """Rough peak memory of the sensitivity estimate: float32 logits and per-layer activations (about 16
    vectors of the wider of hidden and FFN per token and layer) kept for a backward pass (x3), plus the
    parameters with their gradients and Hessian-vector products (x4); with ``gptq``, plus the model's float32
    GPTQ copies of every decoder linear at each of :data:`GPTQ_WIDTHS`."""
    tokens = windows * seq_len
    activations = tokens * (spec.vocab + 16 * spec.n_layers * max(spec.hidden, spec.ffn))
    params = spec.n_layers * (4 * spec.hidden * spec.q_dim + 3 * spec.hidden * spec.ffn) + spec.vocab * spec.hidden
    linear = spec.n_layers * spec.hidden * (2 * spec.q_dim + 2 * spec.kv_dim + 3 * spec.ffn)
    return 4.0 * (3 * activations + 4 * params + (len(GPTQ_WIDTHS) * linear if gptq else 0))


@dataclasses.dataclass
class Measured:
    """Sensitivities and measured losses of one checkpoint on one :class:`Calibration`.

    Attributes:
      spec: the model's shape.
      checkpoint_hash: :func:`checkpoint_hash` of the directory measured.
      calibration: the windows the numbers below were measured on.
      sens: the per-point sensitivities.
      uniform_loss: measured loss increase of uniform W=A=KV at each of :data:`UNIFORM_WIDTHS`.
      joint_tables, joint_loss: mixed assignments ``(n, L, 17)`` and their measured loss increases.
      uniform_kl, joint_kl: the same assignments' measured KL divergence from full precision.
      scheme: the quantiser every number above was measured with (the verification must use it too).
    """

    spec: ModelSpec
    checkpoint_hash: str
    calibration: Calibration
    sens: Sensitivities
    uniform_loss: dict[int, float]
    joint_tables: np.ndarray
    joint_loss: np.ndarray
    uniform_kl: dict[int, float]
    joint_kl: np.ndarray
    scheme: QuantScheme = DEFAULT_SCHEME

    def model(self, weights: DecoderLM) -> DecoderLM:
        """The checkpoint's model as every number here was measured (:func:`prepared`)."""
        return prepared(weights, self.scheme, self.calibration)

    def uniform(self, target: str) -> dict[int, float]:
        """The measured ``target`` (:data:`TARGETS`) of uniform W=A=KV at each of :data:`UNIFORM_WIDTHS`."""
        return {"loss": self.uniform_loss, "kl": self.uniform_kl}[check_target(target)]

    def joint(self, target: str) -> np.ndarray:
        """The measured ``target`` of the mixed assignments :attr:`joint_tables`."""
        return {"loss": self.joint_loss, "kl": self.joint_kl}[check_target(target)]

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": dataclasses.asdict(self.spec),
            "checkpoint_hash": self.checkpoint_hash,
            "calibration": dataclasses.asdict(self.calibration),
            "calibration_text": self.calibration.describe(self.spec.vocab, self.scheme.gptq),
            "uniform_loss": {str(b): v for b, v in self.uniform_loss.items()},
            "uniform_kl": {str(b): v for b, v in self.uniform_kl.items()},
            "joint": {
                "tables": np.asarray(self.joint_tables).tolist(),
                "loss": np.asarray(self.joint_loss).tolist(),
                "kl": np.asarray(self.joint_kl).tolist(),
            },
            "sensitivities": {f.name: np.asarray(getattr(self.sens, f.name)).tolist() for f in _SENS_FIELDS},
            "scheme": dataclasses.asdict(self.scheme),
        }

    def report(self, checkpoint: str | Path) -> dict:
        """What ``cimjax proxy sensitivities`` prints: the checkpoint, its calibration, the uniform budgets
        of the two measured proxies and the measured ones, and :meth:`Sensitivities.summary`."""
        from cimjax.quant.proxy import make_proxy, uniform_budgets

        n_layers = self.spec.n_layers
        return {
            "checkpoint": str(checkpoint),
            "checkpoint_hash": self.checkpoint_hash,
            "n_layers": n_layers,
            "calibration": self.calibration.describe(self.spec.vocab, self.scheme.gptq),
            "budgets": {
                name: uniform_budgets(make_proxy(name, self.sens), n_layers)
                for name in ("hessian_measured", "loss_curves")
            },
            "measured_budgets": {name: self.uniform_loss[b] for name, b in (("int8", 8), ("int6", 6), ("int4", 4))},
            "measured_kl_budgets": {name: self.uniform_kl[b] for name, b in (("int8", 8), ("int6", 6), ("int4", 4))},
            "scheme": dataclasses.asdict(self.scheme),
            **self.sens.summary(),
        }

    def save(self, path: str | Path, flag: str = "path") -> Path:
        """Writes the sensitivities file (for ``cimjax optimize --sensitivities``); a path that cannot be
        written is refused first, naming ``flag``."""
        path = check_output_file(path, flag)
        atomic_write(path, json.dumps(self.to_json()) + "\n")  # a temporary file of its own: savers never mix
        return path


_SENS_FIELDS = dataclasses.fields(Sensitivities)


def from_json(payload, source: str = "sensitivities file") -> Measured:
    """A :class:`Measured` from its JSON object, every field checked (raises :class:`MeasuredFileError`)."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MeasuredFileError(f"{source}: not a cimjax sensitivities file (expected 'format': {FORMAT!r})")
    if payload.get("version") != VERSION:
        raise MeasuredFileError(f"{source}: 'version'={payload.get('version')!r}; this cimjax reads {VERSION}")
    missing = [k for k in ("model", "checkpoint_hash", "calibration", "uniform_loss", "uniform_kl", "joint",
                           "sensitivities") if k not in payload]  # fmt: skip
    if missing:
        raise MeasuredFileError(f"{source}: missing field(s) {', '.join(missing)}")
    try:
        spec = ModelSpec(**payload["model"])
        calibration = Calibration(**({"gptq_windows": None} | payload["calibration"]))  # None: as before the field
    except (TypeError, ValueError) as e:
        raise MeasuredFileError(f"{source}: 'model' or 'calibration' is malformed: {e}") from None
    if not isinstance(payload["checkpoint_hash"], str):
        raise MeasuredFileError(f"{source}: 'checkpoint_hash' = {payload['checkpoint_hash']!r} is not a string")
    sens_in = payload["sensitivities"]
    if not isinstance(sens_in, dict):
        raise MeasuredFileError(f"{source}: 'sensitivities' must be an object")
    sens = {}
    for f in _SENS_FIELDS:
        if f.name not in sens_in:
            raise MeasuredFileError(f"{source}: 'sensitivities' lacks '{f.name}'")
        sens[f.name] = jnp.asarray(read_array(sens_in[f.name], f.name, shape_of(f.name, spec.n_layers), source))
    uniform_loss, uniform_kl = (read_uniform(payload[f"uniform_{t}"], f"uniform_{t}", source, t) for t in TARGETS)
    joint = payload["joint"]
    if not isinstance(joint, dict) or not {"tables", "loss", "kl"} <= set(joint):
        raise MeasuredFileError(f"{source}: 'joint' must hold 'tables', 'loss' and 'kl'")
    n = len(joint["loss"]) if isinstance(joint["loss"], list) else -1
    if n < 0:
        raise MeasuredFileError(f"{source}: 'joint.loss' must be a list")
    shape = (n, spec.n_layers, N_POINTS)
    tables = read_array(joint["tables"], "joint.tables", shape, source) if n else np.zeros(shape)
    return Measured(
        spec=spec,
        checkpoint_hash=payload["checkpoint_hash"],
        calibration=calibration,
        sens=Sensitivities(**sens),
        uniform_loss=uniform_loss,
        joint_tables=tables,
        joint_loss=read_array(joint["loss"], "joint.loss", (n,), source, "loss"),
        uniform_kl=uniform_kl,
        joint_kl=read_array(joint["kl"], "joint.kl", (n,), source, "kl"),
        scheme=read_scheme(payload.get("scheme"), source),
    )


def load(path: str | Path) -> Measured:
    """Reads a sensitivities file written by :meth:`Measured.save` (raises :class:`MeasuredFileError`)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise MeasuredFileError(
                f"sensitivities file {path} is larger than {MAX_FILE_BYTES // 2**20} MiB; allowed: a file written "
                "by `cimjax proxy sensitivities --out`"
            )
        payload = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise MeasuredFileError(f"sensitivities file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MeasuredFileError(f"sensitivities file {path} is not readable JSON: {e}") from None
    return from_json(payload, source=f"sensitivities file {path}")


def checkpoint_hash(directory: str | Path) -> str:
    """SHA-256 of a checkpoint's JSON and safetensors files (config, index, weights: names and bytes)."""
    directory = Path(directory)
    digest = hashlib.sha256()
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith((".safetensors", ".json")))
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def measure(
    model: DecoderLM,
    calibration: Calibration,
    checkpoint: str,
    joint_tables: np.ndarray | None = None,
    scheme: QuantScheme = DEFAULT_SCHEME,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> Measured:
    """Measures everything :class:`Measured` holds for ``model`` on ``calibration``'s windows, quantised
    with ``scheme`` (the model :func:`prepared` for it first); ``progress(done, total)`` counts the forward
    passes of the single-point curves, then those of the whole assignments."""
    say = log or (lambda msg: None)
    say(f"measuring {calibration.describe(model.spec.vocab, scheme.gptq)} ...")  # before GPTQ: minutes on large models
    model = prepared(model, scheme, calibration)
    tokens = calibration.sensitivity_tokens()
    sens = prepared_sensitivities(model, tokens, scheme, calibration.samples, calibration.seed, progress)
    n_layers = model.spec.n_layers
    joint_tables = np.zeros((0, n_layers, N_POINTS)) if joint_tables is None else np.asarray(joint_tables)
    uniform = np.stack([np.full((n_layers, N_POINTS), float(b)) for b in UNIFORM_WIDTHS])
    say(f"measuring {len(uniform)} uniform and {len(joint_tables)} mixed assignments ...")
    m = paired(model, calibration.check_tokens(), np.concatenate([uniform, joint_tables]), scheme, progress)
    loss, kl, n = m.loss, m.kl, len(uniform)
    return Measured(
        spec=model.spec,
        checkpoint_hash=checkpoint,
        calibration=calibration,
        sens=sens,
        uniform_loss={b: float(v) for b, v in zip(UNIFORM_WIDTHS, loss[:n], strict=True)},
        joint_tables=joint_tables,
        joint_loss=loss[n:],
        uniform_kl={b: float(v) for b, v in zip(UNIFORM_WIDTHS, kl[:n], strict=True)},
        joint_kl=kl[n:],
        scheme=scheme,
    )


def smoothed(model: DecoderLM, scheme: QuantScheme, calibration: Calibration) -> DecoderLM:
    """``model`` with ``scheme``'s activation smoothing folded in (factors from ``calibration``'s training-split
    windows, :mod:`cimjax.quant.smoothing`), or ``model`` itself when the scheme does not smooth."""
    return model if scheme.smooth is None else smooth(model, calibration.tokens(), scheme.smooth)


def prepared(model: DecoderLM, scheme: QuantScheme, calibration: Calibration) -> DecoderLM:
    """``model`` as ``scheme`` quantises it: :func:`smoothed`, then holding GPTQ's weight copies when the scheme
    says so (:func:`cimjax.quant.gptq.prepare`, Hessians from ``calibration``'s training-split windows)."""
    model = smoothed(model, scheme, calibration)
    if not scheme.gptq:
        return model
    return gptq.prepare(model, calibration.gptq_tokens(), scheme.weight, scheme.gptq_act_order)


def prepared_sensitivities(
    model: DecoderLM,
    tokens: np.ndarray,
    scheme: QuantScheme,
    n_samples: int,
    seed: int,
    progress: Progress | None = None,
) -> Sensitivities:
    """:func:`estimate` on ``tokens`` of a model :func:`prepared` for ``scheme``, its weight errors those of
    the GPTQ copies when the scheme has them (:func:`gptq_errors`)."""
    sens = estimate(model, tokens, scheme, n_samples=n_samples, seed=seed, progress=progress)
    return gptq_errors(sens, model) if scheme.gptq else sens


def gptq_errors(sens: Sensitivities, model: DecoderLM) -> Sensitivities:
    """``sens`` whose weights' error energies ``||Q_b(W) - W||^2`` are those of the GPTQ copies ``model`` holds
    (:func:`estimate`'s hooks see the full-precision weights and measure round to nearest's)."""
    assert tuple(BIT_GRID) == GPTQ_WIDTHS  # the copies are the curves' widths
    err = np.array(sens.err)
    for layer in range(model.spec.n_layers):
        for column, op in enumerate(LINEAR_OPS):  # the weight columns of the bit table, in this order
            linear = model.linear(layer, op)
            diff = np.asarray(linear.quantised[...], np.float64) - np.asarray(linear.weight[...], np.float64)
            err[layer, column] = np.sum(diff**2, axis=(1, 2))
    return dataclasses.replace(sens, err=jnp.asarray(err))


def cache_path(digest: str, calibration: Calibration, scheme: QuantScheme = DEFAULT_SCHEME) -> Path:
    """The cache file of a checkpoint's content hash, calibration and quantiser (:data:`DEFAULT_SCHEME`'s key
    is the calibration's alone, as before quantisers were chosen; ``smooth`` at None, ``gptq`` off, and
    ``gptq_act_order`` and the calibration's ``gptq_windows`` with ``gptq`` off or at their values from before
    they existed (index order, the sensitivity windows) are left out, so existing entries stay valid)."""
    off = {"smooth": None, "gptq": False, "gptq_act_order": False if scheme.gptq else scheme.gptq_act_order}
    fields = {k: v for k, v in dataclasses.asdict(scheme).items() if not (k in off and v is off[k])}
    key = calibration.key(scheme.gptq) | ({} if scheme == DEFAULT_SCHEME else {"scheme": fields})
    key = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / "sensitivities" / f"{digest[:32]}-{key}-v{VERSION}.json"


def fit_tables(n: int, n_layers: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` mixed assignments ``(n, L, 17)`` spread over the region the optimiser explores.

    Each draws a base width (4..8 for every point), moves a random fraction (10-60 %) of the points by
    -3..+3 bits, and lifts a random fraction (0-50 %) of activations and KV entries to 16 bits (W-A16-style
    designs are cheap on the accelerator); weights stay within 2..8, the rest within 2..16.
    """
    is_weight = np.array([kind == "weight" for kind, _ in POINTS])
    tables = np.empty((n, n_layers, N_POINTS))
    for i in range(n):
        base = rng.integers(4, 9)
        moved = rng.random((n_layers, N_POINTS)) < rng.uniform(0.1, 0.6)
        offset = rng.integers(-3, 4, size=(n_layers, N_POINTS)) * moved
        table = base + offset
        wide = (rng.random((n_layers, N_POINTS)) < rng.uniform(0.0, 0.5)) & ~is_weight
        table = np.where(wide, 16, table)
        tables[i] = np.clip(table, 2, np.where(is_weight, 8, 16))
    return tables.astype(np.float32)


def with_tokenizer(calibration: Calibration, directory: str | Path) -> Calibration:
    """``calibration`` in the ids of the checkpoint ``directory``'s ``tokenizer.json`` if it has one (its
    windows are then the model's own sub-word tokens), else in byte ids."""
    path = Path(directory) / TOKENIZER_FILE
    return dataclasses.replace(calibration, tokenizer=str(path) if path.is_file() else None)


def for_checkpoint(
    directory: str | Path,
    calibration: Calibration | None = None,
    n_fit: int = 64,
    log: Callable[[str], None] | None = None,
    scheme: QuantScheme = CHECKPOINT_SCHEME,
    progress: Progress | None = None,
) -> Measured:
    """The checkpoint's :class:`Measured` quantised with ``scheme``, from the cache when this content,
    calibration and quantiser were measured with ``n_fit`` fit assignments (``progress``: see :func:`measure`).

    Raises:
      cimjax.lm.CheckpointError: the checkpoint cannot be loaded.
    """
    from cimjax.lm.checkpoint import checkpoint_directory, load_checkpoint

    directory = checkpoint_directory(directory)
    calibration = validation.instance("calibration", calibration, Calibration, Calibration)
    scheme = validation.instance("scheme", scheme, QuantScheme, lambda: CHECKPOINT_SCHEME)
    validation.count("n_fit", n_fit, 1, MAX_FIT)
    validation.callback("log", log, "each progress message")
    validation.callback("progress", progress)
    calibration = with_tokenizer(calibration, directory)
    digest = checkpoint_hash(directory)
    path = cache_path(digest, calibration, scheme)
    if path.is_file():
        try:
            cached = load(path)
            if cached.checkpoint_hash == digest and cached.scheme == scheme and len(cached.joint_tables) == n_fit:
                return dataclasses.replace(cached, calibration=calibration)  # this directory's tokenizer path
        except MeasuredFileError:
            pass  # a stale or damaged cache entry is measured again
    model = load_checkpoint(directory)
    tables = fit_tables(n_fit, model.spec.n_layers, np.random.default_rng(calibration.seed))
    measured = measure(model, calibration, digest, tables, scheme, log=log, progress=progress)
    with kept_if_possible():
        measured.save(path)
    return measured
