"""The sub-word path of the trained LMs: a byte-level BPE tokenizer trained on the corpus, a model trained on
its ids, exported with its tokenizer.json, and calibration windows in the checkpoint's own ids."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from cimjax.lm import load_checkpoint, save_checkpoint
from cimjax.lm.checkpoint import TOKENIZER_FILE
from cimjax.quant import corpus
from cimjax.quant.measured import Calibration, cache_path, with_tokenizer
from cimjax.quant.train import TINY, TrainConfig, evaluate_loss, run_key, train

VOCAB = 300  # the 256 byte symbols and 44 merges: enough to exercise every path, fast to train


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return corpus.train_tokenizer(VOCAB, tmp_path_factory.mktemp("tok") / TOKENIZER_FILE)


def test_subword_split_encodes_each_side_of_the_byte_cut(tokenizer):
    train_ids, val_ids = corpus.split(0.1, tokenizer)
    train_text, val_text = corpus.texts(0.1)
    tok = corpus.load_tokenizer(tokenizer)
    assert tok.get_vocab_size() == VOCAB
    assert min(train_ids.min(), val_ids.min()) >= 0 and max(train_ids.max(), val_ids.max()) < VOCAB
    assert tok.decode(train_ids.tolist()) == train_text and tok.decode(val_ids.tolist()) == val_text
    assert len(train_ids) < len(train_text.encode())  # merges make fewer tokens than bytes
    byte_train, byte_val = corpus.split(0.1)  # byte ids are unchanged by the tokenizer path
    assert bytes(byte_train.astype(np.uint8)) + bytes(byte_val.astype(np.uint8)) == corpus.corpus_bytes().tobytes()


def test_tokenizer_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="vocab=200"):
        corpus.train_tokenizer(200, tmp_path / "t.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        corpus.split(0.1, bad)
    with pytest.raises(ValueError, match="vocab=100"):
        TrainConfig(vocab=100)


def test_subword_model_trains_exports_and_calibrates_in_its_ids(module_cache, tmp_path):
    config = dataclasses.replace(TINY, vocab=VOCAB)
    assert run_key(config) != run_key(TINY)
    trained = train(config, log=lambda msg: None)
    assert trained.tokenizer is not None and trained.model.spec.vocab == VOCAB
    out = save_checkpoint(trained.model, tmp_path / "ckpt", tokenizer=trained.tokenizer)
    assert (out / TOKENIZER_FILE).read_bytes() == trained.tokenizer.read_bytes()
    model = load_checkpoint(out)
    calibration = with_tokenizer(Calibration(windows=2, seq_len=32, samples=1, check_windows=4), out)
    assert calibration.tokenizer == str(out / TOKENIZER_FILE)
    check = calibration.check_tokens()
    np.testing.assert_array_equal(check, corpus.windows(corpus.split(tokenizer=out / "tokenizer.json")[1], 32, 4))
    assert "tokenizer.json" in calibration.describe(VOCAB)
    # the trained model predicts its own ids better than a uniform guess over the vocabulary
    assert evaluate_loss(model, check) < math.log(VOCAB)
    # the cache key is the content's: the tokenizer's path is not part of it
    assert cache_path("ab" * 32, calibration) == cache_path("ab" * 32, dataclasses.replace(calibration, tokenizer=None))
    assert with_tokenizer(calibration, tmp_path).tokenizer is None  # a directory without tokenizer.json: bytes
    # a damaged cached tokenizer is trained again (warning), to the same file: the cached model still fits it
    whole = trained.tokenizer.read_bytes()
    trained.tokenizer.write_bytes(whole[: len(whole) // 2])
    with pytest.warns(UserWarning, match=r"not a readable tokenizer.json \(.*\); it is trained again"):
        again = train(config, log=lambda msg: None)
    assert again.tokenizer.read_bytes() == whole and again.val_loss == trained.val_loss
