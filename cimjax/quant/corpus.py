"""Real English text that every Python install has offline: the topic help of ``pydoc_data``, as tokens.

``pydoc_data.topics.topics`` maps ~80 help topics to long documentation strings (about 0.47 MB of text).
Topics are joined in sorted order and encoded as UTF-8. Tokens are either the bytes (vocabulary 256) or
the ids of a sub-word tokenizer (a Hugging Face ``tokenizer.json``; :func:`train_tokenizer` trains a
byte-level BPE one on the training split). The split is deterministic: the last ``val_fraction`` of the
byte stream is the validation set, so no topic text is shuffled across the boundary and both splits are
identical on every machine with the same Python; with a tokenizer each side of the same cut is encoded
on its own.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

VOCAB = 256
TOKENIZER_FILE = "tokenizer.json"  # the Hugging Face name, beside config.json in a checkpoint (as lm.checkpoint)


def corpus_bytes() -> np.ndarray:
    """The whole corpus as a uint8 array of byte tokens."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _cut(val_fraction: float) -> int:
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r} must lie strictly between 0 and 1")
    return int(len(corpus_bytes()) * (1.0 - val_fraction))


def split(val_fraction: float = 0.1, tokenizer: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) token arrays (int32), the validation set being the last ``val_fraction``.

    Args:
      val_fraction: the share of the byte stream that is validation text.
      tokenizer: a ``tokenizer.json`` whose ids the tokens are (None: byte ids).
    """
    cut = _cut(val_fraction)
    if tokenizer is not None:
        path = Path(tokenizer)
        return _encoded(str(path), os.stat(path).st_mtime_ns, cut)
    data = corpus_bytes().astype(np.int32)
    return data[:cut], data[cut:]


def texts(val_fraction: float = 0.1) -> tuple[str, str]:
    """(train, validation) text: the two sides of :func:`split`'s cut (a character cut in two is dropped)."""
    data, cut = corpus_bytes().tobytes(), _cut(val_fraction)
    return data[:cut].decode("utf-8", "ignore"), data[cut:].decode("utf-8", "ignore")


@functools.lru_cache(maxsize=4)
def _encoded(path: str, _mtime_ns: int, cut: int) -> tuple[np.ndarray, np.ndarray]:
    """Both sides of the cut encoded with the tokenizer at ``path`` (keyed by its modification time too)."""
    tok = load_tokenizer(path)
    data = corpus_bytes().tobytes()
    sides = (data[:cut].decode("utf-8", "ignore"), data[cut:].decode("utf-8", "ignore"))
    return tuple(np.asarray(tok.encode(text).ids, np.int32) for text in sides)


def load_tokenizer(path: str | Path):
    """A ``tokenizers.Tokenizer`` from a ``tokenizer.json`` (raises ValueError naming the file if it cannot)."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ValueError(
            f"{path}: a sub-word tokenizer needs the tokenizers package (pip install tokenizers)"
        ) from None
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # the Rust side raises a bare Exception for a malformed file
        raise ValueError(f"{path}: not a readable tokenizer.json ({e})") from None


def train_tokenizer(vocab: int, path: str | Path, val_fraction: float = 0.1) -> Path:
    """Trains a byte-level BPE tokenizer (GPT-2 style: any text encodes, no unknown token) of ``vocab`` ids on
    the training text of :func:`texts`, one topic paragraph at a time, and saves it as ``path``.

    Raises:
      ValueError: ``vocab`` below the 256 byte symbols, or merges ran out before ``vocab`` ids.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if not isinstance(vocab, int) or vocab <= VOCAB:
        raise ValueError(f"vocab={vocab!r} must be an integer above the {VOCAB} byte symbols")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(texts(val_fraction)[0].split("\n\n"), trainer)
    if tok.get_vocab_size() != vocab:
        raise ValueError(f"vocab={vocab}: the training text gives only {tok.get_vocab_size()} sub-word ids")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


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
