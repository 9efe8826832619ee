"""Pooling, layer choice, special-token handling and the on-disk cache, with a fake encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from isoscope.errors import InputError
from isoscope.evaluate import (
    EmbeddingCache,
    encode_sentences,
    encode_tokens,
    pool_tokens,
    resolve_pooling,
)

SENTS = ["a cat sat", "the dog", "a cat sat", "one two three four five"]


def expected(token_vec, sentence, layers, *, specials=True, how="mean", dim=4):
    words = sentence.lower().split()
    toks = ["[CLS]", *words, "[SEP]"] if specials else words
    vecs = np.stack([np.mean([token_vec(t, layer, dim) for layer in layers], axis=0) for t in toks])
    if how == "mean":
        return vecs.mean(axis=0)
    if how == "cls":
        return vecs[0]
    return vecs[-1]


def test_resolve_pooling_layers():
    assert resolve_pooling("mean", None, n_layers=7).layers == (6,)
    assert resolve_pooling("mean", -1, n_layers=7).layers == (6,)
    assert resolve_pooling("mean", [0, 3], n_layers=7).layers == (0, 3)
    fl = resolve_pooling("first_last", None, n_layers=7)
    assert fl.layers == (1, 6) and fl.describe()["special_tokens"] == "included"
    with pytest.raises(InputError, match="outside 0..6"):
        resolve_pooling("mean", 7, n_layers=7)
    with pytest.raises(InputError, match="Unknown pooling"):
        resolve_pooling("max", None, n_layers=7)
    with pytest.raises(InputError, match="drop --layer"):
        resolve_pooling("first_last", 3, n_layers=7)


@pytest.mark.parametrize(
    ("pooling", "layer", "include_special", "layers", "how", "specials"),
    [
        ("mean", None, None, [2], "mean", True),
        ("mean", None, False, [2], "mean", False),
        ("mean", 0, None, [0], "mean", True),
        ("mean", [0, 2], None, [0, 2], "mean", True),
        ("first_last", None, None, [1, 2], "mean", True),
        ("cls", None, None, [2], "cls", True),
        ("last", 1, None, [1], "last", False),  # last real (non-special) token
    ],
)
def test_pooling_by_hand(fake_encoder, token_vec, pooling, layer, include_special, layers, how, specials):
    E = encode_sentences(fake_encoder, SENTS, pooling, layer, include_special=include_special,
                         cache=False, batch_size=2)
    assert E.shape == (4, 4) and E.dtype == np.float32
    for i, s in enumerate(SENTS):
        np.testing.assert_allclose(E[i], expected(token_vec, s, layers, specials=specials, how=how),
                                   rtol=1e-5, atol=1e-5)


def test_drop_position_zero(fake_encoder_cls, token_vec):
    causal = fake_encoder_cls(is_causal=True)
    E = encode_sentences(causal, ["a cat sat", "one"], drop_position_zero=True, cache=False)
    want = np.mean([token_vec(w, 2, 4) for w in ("cat", "sat")], axis=0)
    np.testing.assert_allclose(E[0], want, rtol=1e-5)
    np.testing.assert_allclose(E[1], token_vec("one", 2, 4), rtol=1e-5)  # a lone token is kept
    with pytest.raises(InputError, match="cannot drop position 0"):
        resolve_pooling("cls", None, n_layers=3, drop_position_zero=True)
    assert resolve_pooling("mean", None, n_layers=3, drop_position_zero=True).describe()["drop_position_zero"]


def test_padding_and_batching_do_not_change_vectors(fake_encoder):
    a = encode_sentences(fake_encoder, SENTS, cache=False, batch_size=1)
    b = encode_sentences(fake_encoder, SENTS, cache=False, batch_size=3)
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_duplicates_are_encoded_once(fake_encoder):
    tv = encode_tokens(fake_encoder, SENTS, [2], batch_size=16)
    assert fake_encoder.calls == [3]  # three distinct sentences in one batch
    assert len(tv) == 4 and tv.offsets[-1] == tv.vectors.shape[0]
    np.testing.assert_array_equal(tv.sentence(0), tv.sentence(2))
    assert tv.special.sum() == 8  # [CLS] and [SEP] of each sentence


def test_cls_refused_without_leading_special(fake_encoder_cls):
    causal = fake_encoder_cls(is_causal=True)
    with pytest.raises(InputError, match="cls pooling needs"):
        encode_sentences(causal, SENTS, "cls", cache=False)
    last = encode_sentences(causal, ["a cat sat"], "last", cache=False)
    np.testing.assert_allclose(last[0], encode_tokens(causal, ["a cat sat"], [2]).vectors[-1])


def test_cache_roundtrip_without_pickle(tmp_path, fake_encoder):
    first = encode_sentences(fake_encoder, SENTS, "mean", 1, cache=tmp_path)
    n_calls = len(fake_encoder.calls)
    again = encode_sentences(fake_encoder, SENTS, "mean", 1, cache=tmp_path)
    assert len(fake_encoder.calls) == n_calls  # served from the cache
    np.testing.assert_array_equal(first, again)
    entries = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1
    meta = json.loads((entries[0] / "meta.json").read_text())
    assert meta["key"]["model"] == "fake-encoder" and meta["key"]["layers"] == [1]
    assert meta["key"]["pooling"] == "mean"
    np.load(entries[0] / "vectors.npy", allow_pickle=False)
    # a different pooling, layer or sentence list is a different entry
    encode_sentences(fake_encoder, SENTS, "cls", 1, cache=tmp_path)
    encode_sentences(fake_encoder, SENTS, "mean", 2, cache=tmp_path)
    encode_sentences(fake_encoder, SENTS[:2], "mean", 1, cache=tmp_path)
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 4


def test_damaged_cache_entry_is_recomputed(tmp_path, fake_encoder):
    cache = EmbeddingCache(tmp_path)
    first = encode_sentences(fake_encoder, SENTS, cache=cache)
    (entry,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    (entry / "vectors.npy").write_bytes(b"not an array")
    again = encode_sentences(fake_encoder, SENTS, cache=cache)
    np.testing.assert_array_equal(first, again)


def test_cache_dir_from_environment(tmp_path, monkeypatch, fake_encoder):
    monkeypatch.setenv("ISOSCOPE_CACHE", str(tmp_path))
    encode_sentences(fake_encoder, SENTS[:1], cache=True)
    assert any((tmp_path / "evaluate").iterdir())


def test_pool_tokens_rejects_empty_sentence():
    from isoscope.evaluate import TokenVectors

    tv = TokenVectors(np.zeros((1, 2), np.float32), np.array([0, 1, 1]), np.array([False]))
    with pytest.raises(InputError, match="no tokens"):
        pool_tokens(tv, "mean")


def test_empty_input():
    with pytest.raises(InputError, match="no sentences"):
        encode_tokens(object(), [], [0])


def test_input_embedding_words_average_word_pieces(tmp_path):
    from types import SimpleNamespace

    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from isoscope.evaluate import input_embedding_words

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cat", "dog", "##s", "car"]
    wp = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    wp.normalizer = normalizers.BertNormalizer(lowercase=True)
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok = PreTrainedTokenizerFast(tokenizer_object=wp, unk_token="[UNK]")
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=16))
    table = input_embedding_words(SimpleNamespace(model=model, tokenizer=tok), ["cats", "dog", "Cats"])
    W = model.get_input_embeddings().weight.detach().numpy()
    assert table.words == ["cats", "dog", "Cats"]
    np.testing.assert_allclose(table.vectors[0], (W[5] + W[7]) / 2, rtol=1e-6)
    np.testing.assert_allclose(table.vectors[1], W[6], rtol=1e-6)
    np.testing.assert_allclose(table.vectors[2], table.vectors[0])  # lower-cased by the tokenizer


def _entries(root):
    return [p for p in root.iterdir() if not p.name.startswith(".")]


def test_retrained_model_in_the_same_folder_gets_new_vectors(tiny_bert, tmp_path, monkeypatch):
    import shutil

    import torch
    from transformers import BertModel

    from isoscope.models import load_encoder

    monkeypatch.setenv("ISOSCOPE_ONEDNN", "0")
    folder = tmp_path / "model"
    shutil.copytree(tiny_bert, folder)
    sentences = ["the cat sat on the mat .", "a dog chased the cat !"]
    old = encode_sentences(load_encoder(str(folder)), sentences, cache=tmp_path / "cache")
    retrained = BertModel.from_pretrained(folder)
    with torch.no_grad():
        retrained.encoder.layer[2].output.dense.weight.mul_(1.5)  # "retrain": same name, path, shape
    retrained.save_pretrained(folder)
    encoder = load_encoder(str(folder))
    new = encode_sentences(encoder, sentences, cache=tmp_path / "cache")
    np.testing.assert_array_equal(new, encode_sentences(encoder, sentences, cache=False))
    assert not np.allclose(new, old)
    assert len(_entries(tmp_path / "cache")) == 2


def test_tokens_of_a_retrained_model_are_not_reused(tiny_bert, tmp_path, monkeypatch):
    from isoscope.evaluate._encode import resolve_pooling, token_vectors
    from isoscope.models import load_encoder

    monkeypatch.setenv("ISOSCOPE_ONEDNN", "0")
    encoder = load_encoder(str(tiny_bert))
    pooling = resolve_pooling("mean", None, n_layers=encoder.n_layers)
    first = token_vectors(encoder, SENTS, pooling, cache=tmp_path)
    import torch

    with torch.no_grad():
        encoder.model.encoder.layer[2].output.dense.bias.add_(1.0)  # changed in memory, in place
    second = token_vectors(encoder, SENTS, pooling, cache=tmp_path)
    assert not np.allclose(first.vectors, second.vectors)


def _lie_shuffled(entry):
    vectors = np.load(entry / "vectors.npy")
    np.save(entry / "vectors.npy", vectors[::-1].copy())  # same shape and dtype, wrong rows


def _lie_shape(entry):
    np.save(entry / "vectors.npy", np.zeros((2, 4), np.float32))


def _lie_consistently(entry):
    # A manifest that agrees with its arrays, but not with the sentences the key names.
    from isoscope.evaluate._encode import _checksum

    short = np.ones((3, 4), np.float32)
    np.save(entry / "vectors.npy", short)
    meta = json.loads((entry / "meta.json").read_text())
    meta["arrays"]["vectors"] = {"shape": [3, 4], "dtype": "float32", "blake2b": _checksum(short)}
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", [_lie_shuffled, _lie_shape, _lie_consistently])
def test_entry_that_disagrees_with_its_metadata_is_recomputed_and_replaced(tmp_path, fake_encoder, damage):
    first = encode_sentences(fake_encoder, SENTS, cache=tmp_path)
    (entry,) = _entries(tmp_path)
    damage(entry)
    n_calls = len(fake_encoder.calls)
    again = encode_sentences(fake_encoder, SENTS, cache=tmp_path)
    assert len(fake_encoder.calls) > n_calls  # recomputed, not served
    np.testing.assert_array_equal(again, first)
    (entry,) = _entries(tmp_path)  # replaced in place: one entry, no leftovers
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    n_calls = len(fake_encoder.calls)
    np.testing.assert_array_equal(encode_sentences(fake_encoder, SENTS, cache=tmp_path), first)
    assert len(fake_encoder.calls) == n_calls  # the rewritten entry is good


def test_damaged_token_entry_is_recomputed(tmp_path, fake_encoder):
    from isoscope.evaluate._encode import resolve_pooling, token_vectors

    pooling = resolve_pooling("mean", None, n_layers=fake_encoder.n_layers)
    first = token_vectors(fake_encoder, SENTS, pooling, cache=tmp_path)
    (entry,) = _entries(tmp_path)
    offsets = np.load(entry / "offsets.npy")
    np.save(entry / "offsets.npy", offsets[:-1].copy())
    again = token_vectors(fake_encoder, SENTS, pooling, cache=tmp_path)
    np.testing.assert_array_equal(again.offsets, first.offsets)
    np.testing.assert_array_equal(again.vectors, first.vectors)


def test_a_corrupt_cache_entry_does_not_change_the_score(tmp_path, fake_encoder):
    from pathlib import Path

    from isoscope.evaluate import evaluate
    from isoscope.evaluate._tasks import SentencePairs

    words = "a cat sat the dog ran one two three four five six".split()
    rng = np.random.default_rng(0)
    s1 = [" ".join(rng.choice(words, 4)) for _ in range(20)]
    s2 = [" ".join(rng.choice(words, 4)) for _ in range(20)]
    task = SentencePairs("pairs", "toy", s1, s2, rng.uniform(0, 5, 20), Path("toy.tsv"))
    want = evaluate(fake_encoder, [task], cache=False).records[0]["spearman"]
    assert evaluate(fake_encoder, [task], cache=tmp_path).records[0]["spearman"] == pytest.approx(want)
    for entry in _entries(tmp_path):
        _lie_shuffled(entry)
    assert evaluate(fake_encoder, [task], cache=tmp_path).records[0]["spearman"] == pytest.approx(want)


def test_input_embeddings_of_a_model_without_them_is_one_sentence():
    # Before: AttributeError ("'object' object has no attribute 'get_input_embeddings'").
    from types import SimpleNamespace

    from isoscope.errors import InputError
    from isoscope.models.static import input_embeddings

    encoder = SimpleNamespace(model=object(), tokenizer=object(), name="x")
    with pytest.raises(InputError, match=r"^Input embeddings need a transformer encoder; this model has none\.$"):
        input_embeddings(encoder)
