"""Real English text that every Python install has offline: the topic help of ``pydoc_data``, as tokens.

``pydoc_data.topics.topics`` maps ~80 help topics to long documentation strings (about 0.47 MB of text).
Topics are joined in sorted order and encoded as UTF-8. Tokens are either the bytes (vocabulary 256) or
the ids of a sub-word tokenizer (a Hugging Face ``tokenizer.json``; :func:`train_tokenizer` trains a
byte-level BPE one on the training split). The split is deterministic: the last ``val_fraction`` of the
byte stream is the validation set, so no topic text is shuffled across the boundary and both splits are
identical on every machine with the same Python; with a tokenizer each side of the same cut is encoded
on its own.

The validation split holds a few hundred windows; a measurement that needs more (the loss increase of an
INT8 assignment is far below the token-to-token spread of the loss) can continue into
:func:`docstrings`, other local text no model here is trained on (:func:`held_out_windows`).
"""

from __future__ import annotations

import ast
import functools
import os
import sysconfig
from pathlib import Path

import numpy as np

VOCAB = 256
DOCSTRING_MIN = 200  # characters: shorter docstrings (one-line summaries) are left out of :func:`docstrings`


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


@functools.lru_cache(maxsize=1)
def docstrings() -> str:
    """Every docstring of at least :data:`DOCSTRING_MIN` characters of the standard library's modules, classes
    and functions (read with ``ast`` from the ``.py`` files in sorted path order, never imported; test
    packages and site-packages left out), joined by blank lines: about 1.3 MB of English text on Python
    3.11, offline and deterministic for a given Python like ``pydoc_data``.

    It is documentation prose like the corpus but not the same text (more code examples; the byte-level LM's
    loss on it is 1.94 against 1.20 nats/byte on the validation split), so it is used only where the
    validation split runs out and the result says how many windows came from it.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if any(p in ("site-packages", "idle_test") or p.startswith("test") for p in parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= DOCSTRING_MIN:
                    found.append(doc)
    return "\n\n".join(found)


def held_out_windows(
    seq_len: int, skip: int, n: int, val_fraction: float = 0.1, tokenizer: str | Path | None = None
) -> tuple[np.ndarray, int]:
    """``n`` windows ``(n, seq_len + 1)`` of the validation split after its first ``skip`` windows, continued
    into :func:`docstrings` (in the same ids) when the split has fewer; and how many came from the split.

    Raises:
      ValueError: ``n`` windows do not fit even with the docstrings.
    """
    val = split(val_fraction, tokenizer)[1]
    own = max(0, (len(val) - 1) // seq_len - skip)
    parts = [windows(val, seq_len, skip + min(n, own))[skip:]] if own else []
    if n > own:
        text = docstrings()
        extra = (
            np.asarray(load_tokenizer(tokenizer).encode(text).ids, np.int32)
            if tokenizer is not None
            else np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)
        )
        parts.append(windows(extra, seq_len, n - own))
    return np.concatenate(parts), min(n, own)


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
