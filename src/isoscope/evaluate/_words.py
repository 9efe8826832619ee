"""Word vectors for word tasks: a static table, or a contextual model's view of each word.

Sources (``word_vectors=`` in :func:`isoscope.evaluate.evaluate`):

- a static table (GloVe, word2vec, .npy): the table itself, in its row order (which matters for
  gensim's ``restrict_vocab``);
- ``"input"``: the contextual model's input (token) embedding matrix; a word split into several
  word pieces gets the mean of its pieces' rows;
- ``"alone"``: the word encoded on its own as a one-word sentence, pooled over its non-special
  tokens at the chosen layer(s);
- a store path (or an opened store): the word's contextual vectors averaged over all its
  occurrences in the store, per layer (words absent from the store are out of vocabulary).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from isoscope.errors import InputError
from isoscope.evaluate._encode import EmbeddingCache, Pooling, pool_tokens, token_vectors


@dataclass
class WordTable:
    """Words and their vectors, in the row order the scorers use.

    Attributes
    ----------
    words : list of str
        One word per row.
    vectors : numpy.ndarray
        (V, d) float32.
    source : str
        How the vectors were made (recorded in results).
    """

    words: list[str]
    vectors: np.ndarray
    source: str


def static_table(static: Any) -> WordTable:
    """A :func:`isoscope.models.load_static` table as a :class:`WordTable`."""
    return WordTable(list(static.words), np.asarray(static.vectors), f"static:{getattr(static, 'name', 'table')}")


def input_embedding_words(encoder: Any, words: Sequence[str]) -> WordTable:
    """Each word as the mean of its word pieces' rows in the model's input embedding matrix."""
    model = getattr(encoder, "model", None)
    tokenizer = getattr(encoder, "tokenizer", None)
    if model is None or tokenizer is None or not hasattr(model, "get_input_embeddings"):
        raise InputError("Input-embedding word vectors need a transformer encoder with a tokenizer.")
    weight = model.get_input_embeddings().weight.detach().float().cpu().numpy()
    words = list(dict.fromkeys(words))
    out = np.empty((len(words), weight.shape[1]), dtype=np.float32)
    for i, w in enumerate(words):
        ids = tokenizer(w, add_special_tokens=False)["input_ids"]
        if not ids:
            ids = [tokenizer.unk_token_id or 0]
        out[i] = weight[ids].mean(axis=0)
    return WordTable(words, out, "input-embeddings (mean of word pieces)")


def encoded_words(
    encoder: Any,
    words: Sequence[str],
    pooling: Pooling,
    *,
    cache: bool | str | os.PathLike[str] | EmbeddingCache | None = True,
    batch_size: int = 64,
) -> WordTable:
    """Each word encoded on its own, mean-pooled over its non-special tokens at ``pooling.layers``."""
    words = list(dict.fromkeys(words))
    tv = token_vectors(encoder, words, pooling, cache=cache, batch_size=batch_size)
    vecs = pool_tokens(tv, Pooling("mean", pooling.layers, False))
    layers = ",".join(map(str, pooling.layers))
    return WordTable(words, vecs, f"word encoded alone, mean of its tokens, layer(s) {layers}")


def store_words(store: Any, words: Sequence[str], layer: int) -> WordTable:
    """Words' contextual vectors averaged over their occurrences in an embedding store.

    Look-up is by lower-cased word; each occurrence is first mean-pooled over its word pieces.
    Words that never occur are left out (out of vocabulary for the scorers).
    """
    if isinstance(store, (str, os.PathLike)):
        from isoscope.store import open_store

        store = open_store(store)
    X, frame = store.word_vectors(layer, pooling="mean")
    keys = frame["word"].astype(str).str.lower().to_numpy()
    wanted = {w.lower() for w in words}
    sel = np.flatnonzero(np.isin(keys, list(wanted)))
    if sel.size == 0:
        raise InputError(f"None of the task's words occurs in the store at {store.path}.")
    uniq, inverse = np.unique(keys[sel], return_inverse=True)
    sums = np.zeros((len(uniq), X.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, np.asarray(X[sel], dtype=np.float64))
    counts = np.bincount(inverse, minlength=len(uniq))[:, None]
    return WordTable(
        [str(u) for u in uniq],
        (sums / counts).astype(np.float32),
        f"store {store.path}: mean over occurrences, layer {layer}",
    )
