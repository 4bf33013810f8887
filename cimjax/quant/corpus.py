"""Real English text that every Python install has offline: the topic help of ``pydoc_data``, as bytes.

``pydoc_data.topics.topics`` maps ~80 help topics to long documentation strings (about 0.47 MB of text).
Topics are joined in sorted order, encoded as UTF-8 and used as byte tokens (vocabulary 256). The split is
deterministic: the last ``val_fraction`` of the byte stream is the validation set, so no topic text is
shuffled across the boundary and both splits are identical on every machine with the same Python.
"""

from __future__ import annotations

import numpy as np

VOCAB = 256


def corpus_bytes() -> np.ndarray:
    """The whole corpus as a uint8 array of byte tokens."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def split(val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) token arrays (int32), the validation set being the last ``val_fraction``."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r} must lie strictly between 0 and 1")
    data = corpus_bytes().astype(np.int32)
    cut = int(len(data) * (1.0 - val_fraction))
    return data[:cut], data[cut:]


def windows(tokens: np.ndarray, seq_len: int, n: int | None = None) -> np.ndarray:
    """Non-overlapping windows ``(n, seq_len + 1)`` from the start of ``tokens`` (inputs plus targets).

    Args:
      tokens: a 1-D token array.
      seq_len: tokens per input sequence.
      n: how many windows; all that fit when None.
    """
    fit = (len(tokens) - 1) // seq_len
    n = fit if n is None else n
    if not 1 <= n <= fit:
        raise ValueError(f"n={n} windows of seq_len={seq_len} do not fit in {len(tokens)} tokens (at most {fit})")
    idx = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return tokens[idx]
