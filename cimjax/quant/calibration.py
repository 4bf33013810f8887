"""The calibration windows every measurement of a checkpoint uses, in the checkpoint's token ids.

Two sets of windows of the pydoc corpus: random *calibration* windows of the training split (the
sensitivities and the activation-smoothing factors come from them) and consecutive *check* windows from the
start of the validation split, on which every loss of a whole assignment is measured.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cimjax.quant import corpus


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The calibration windows every measurement of a checkpoint uses (all of it but ``tokenizer`` keys the
    cache; the tokenizer's content is part of the checkpoint's hash).

    ``windows`` random windows of ``seq_len`` tokens from the training split (seeded by ``seed``) for the
    sensitivities; ``samples`` Hutchinson / output-MSE samples; ``check_windows`` consecutive windows from
    the start of the validation split, on which whole assignments are measured. ``tokenizer``: the
    checkpoint's ``tokenizer.json`` whose ids the windows are (:func:`for_checkpoint` sets it when the
    directory has one), or None for byte ids.
    """

    windows: int = 16
    seq_len: int = 128
    samples: int = 4
    seed: int = 0
    check_windows: int = 64
    tokenizer: str | None = None

    def __post_init__(self):
        for field in ("windows", "seq_len", "samples", "check_windows"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"calibration {field}={value!r} must be a positive integer")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"calibration seed={self.seed!r} must be an integer")
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

    def check_tokens(self) -> np.ndarray:
        """The check windows ``(check_windows, seq_len + 1)`` of the validation split."""
        return corpus.windows(self.split()[1], self.seq_len, self.check_windows)

    def describe(self, vocab: int) -> str:
        if self.tokenizer is not None:
            note = " (the checkpoint's tokenizer.json)"
        else:
            note = "" if vocab == corpus.VOCAB else " (byte ids, not this model's tokenizer)"
        return (
            f"pydoc_data corpus{note}: sensitivities on {self.windows} x {self.seq_len} training-split tokens "
            f"(seed {self.seed}), losses on {self.check_windows} x {self.seq_len} validation-split tokens"
        )

    def key(self) -> dict:
        """What keys the cache: every field but the tokenizer's path."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "tokenizer"}
