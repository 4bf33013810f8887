"""The calibration windows every measurement of a checkpoint uses, in the checkpoint's token ids.

Two sets of windows of the pydoc corpus: random *calibration* windows of the training split (the
activation-smoothing factors and, by default, the sensitivities come from them) and consecutive *check*
windows from the start of the validation split, on which every loss of a whole assignment is measured.
With ``sensitivity_split="check"`` the sensitivities come from the check windows instead: text the model was
not trained on, as every budget, fit value and verification is (a model that memorised its training text
has single-point curves there that describe text it has seen; docs/joint.md, "Calibration text").
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cimjax.quant import corpus
from cimjax.validation import MAX_SEED

GPTQ_WINDOWS = 128
"""GPTQ's Hessian windows by default: the reference's 128 calibration samples (Frantar et al.), here of the
model's own window length (128 x 128 = 16,384 tokens on the byte LM, ~43 tokens per input of its widest
linear, the FFN down projection's 384), against 2,048 tokens of the 16 sensitivity windows."""

SENSITIVITY_SPLITS = ("train", "check")
"""Where the sensitivity windows come from (:attr:`Calibration.sensitivity_split`)."""


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The calibration windows every measurement of a checkpoint uses (all of it but ``tokenizer`` keys the
    cache; the tokenizer's content is part of the checkpoint's hash).

    ``windows`` random windows of ``seq_len`` tokens from the training split (seeded by ``seed``) for the
    sensitivities; ``samples`` Hutchinson / output-MSE samples; ``check_windows`` consecutive windows from
    the start of the validation split, on which whole assignments are measured. ``tokenizer``: the
    checkpoint's ``tokenizer.json`` whose ids the windows are (:func:`for_checkpoint` sets it when the
    directory has one), or None for byte ids. ``gptq_windows``: how many windows of the training split,
    evenly spaced and independent of ``seed`` (:meth:`gptq_tokens`), GPTQ's Hessians come from; None: the
    sensitivity windows (:meth:`tokens`), as before the field existed (files without it mean that).
    ``sensitivity_split``: where the sensitivity windows come from (:meth:`sensitivity_tokens`): ``"train"``
    (the random training-split windows, as before the field existed) or ``"check"`` (``windows`` of the check
    windows, drawn by ``seed``).
    """

    windows: int = 16
    seq_len: int = 128
    samples: int = 4
    seed: int = 0
    check_windows: int = 64
    tokenizer: str | None = None
    gptq_windows: int | None = GPTQ_WINDOWS
    sensitivity_split: str = "train"

    def __post_init__(self):
        for field in ("windows", "seq_len", "samples", "check_windows", "gptq_windows"):
            value = getattr(self, field)
            if field == "gptq_windows" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"calibration {field}={value!r} must be a positive integer")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"calibration seed={self.seed!r} must be an integer in [0, {MAX_SEED}]")
        if self.sensitivity_split not in SENSITIVITY_SPLITS:
            allowed = ", ".join(SENSITIVITY_SPLITS)
            raise ValueError(
                f"calibration sensitivity_split={self.sensitivity_split!r} is not known; allowed: {allowed}"
            )
        if self.sensitivity_split == "check" and self.windows > self.check_windows:
            raise ValueError(
                f"calibration windows={self.windows} sensitivity windows do not fit in the {self.check_windows} "
                "check windows (sensitivity_split='check')"
            )
        if self.tokenizer is not None and not isinstance(self.tokenizer, str):
            raise ValueError(f"calibration tokenizer={self.tokenizer!r} must be a path or None")

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """The corpus's (train, validation) tokens, in this calibration's ids."""
        return corpus.split(tokenizer=self.tokenizer)

    def tokens(self) -> np.ndarray:
        """The windows ``(windows, seq_len + 1)`` (inputs plus next-token targets)."""
        train_tokens, _ = self.split()
        if len(train_tokens) <= self.seq_len + 1:
            raise ValueError(f"calibration seq_len={self.seq_len} is longer than the corpus")
        starts = np.random.default_rng(self.seed).integers(0, len(train_tokens) - self.seq_len - 1, size=self.windows)
        return train_tokens[starts[:, None] + np.arange(self.seq_len + 1)[None, :]]

    def sensitivity_tokens(self) -> np.ndarray:
        """The windows the sensitivities are measured on ``(windows, seq_len + 1)``: :meth:`tokens` (``"train"``)
        or ``windows`` of the check windows (``"check"``), drawn without replacement by ``seed``, in order.

        As many as from the training split, so the text is all that changes (same cost and memory)."""
        if self.sensitivity_split == "train":
            return self.tokens()
        pick = np.random.default_rng(self.seed).choice(self.check_windows, self.windows, replace=False)
        return self.check_tokens()[np.sort(pick)]

    def gptq_tokens(self) -> np.ndarray:
        """GPTQ's Hessian windows ``(gptq_windows, seq_len + 1)``: evenly spaced over the training split, the
        same at every seed (or the sensitivity windows, :meth:`tokens`, when ``gptq_windows`` is None)."""
        if self.gptq_windows is None:
            return self.tokens()
        train_tokens, _ = self.split()
        return train_tokens[gptq_starts(len(train_tokens), self.seq_len, self.gptq_windows)[:, None]
                            + np.arange(self.seq_len + 1)[None, :]]  # fmt: skip

    def check_tokens(self) -> np.ndarray:
        """The check windows ``(check_windows, seq_len + 1)`` of the validation split."""
        return corpus.windows(self.split()[1], self.seq_len, self.check_windows)

    def describe(self, vocab: int, gptq: bool = False) -> str:
        """The windows in words; with ``gptq``, GPTQ's Hessian windows too."""
        if self.tokenizer is not None:
            note = " (the checkpoint's tokenizer.json)"
        else:
            note = "" if vocab == corpus.VOCAB else " (byte ids, not this model's tokenizer)"
        where = "training-split" if self.sensitivity_split == "train" else "check-window (validation-split)"
        text = (
            f"pydoc_data corpus{note}: sensitivities on {self.windows} x {self.seq_len} {where} tokens "
            f"(seed {self.seed}), losses on {self.check_windows} x {self.seq_len} validation-split tokens"
        )
        if not gptq:
            return text
        if self.gptq_windows is None:
            return text + "; GPTQ Hessians on the sensitivity windows"
        return text + f"; GPTQ Hessians on {self.gptq_windows} x {self.seq_len} evenly spaced training-split tokens"

    def key(self, gptq: bool = False) -> dict:
        """What keys the cache: every field but the tokenizer's path, ``gptq_windows`` only for a quantiser
        with GPTQ weights (``gptq``) and not at None, and ``sensitivity_split`` only when not ``"train"``, so the
        other keys are those from before these fields existed."""
        left_out = {"tokenizer"}
        if not gptq or self.gptq_windows is None:
            left_out.add("gptq_windows")
        if self.sensitivity_split == "train":
            left_out.add("sensitivity_split")
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in left_out}


def gptq_starts(n_tokens: int, seq_len: int, n_windows: int) -> np.ndarray:
    """Starts of ``n_windows`` windows of ``seq_len + 1`` tokens spread evenly over ``n_tokens`` (first at 0,
    last at the end), raising a ValueError when the corpus is too short to hold them without overlap."""
    span = seq_len + 1
    if n_windows * span > n_tokens:
        raise ValueError(
            f"calibration gptq_windows={n_windows} x {span} tokens do not fit the {n_tokens}-token training split"
        )
    return np.linspace(0, n_tokens - span, n_windows).astype(np.int64)
