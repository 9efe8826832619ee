"""Cross-model similarity: the same words of the same sentences, in two models' layers.

Two models split text into different tokens, so their token rows cannot be matched. The
words can: a store's token table names, for every token, its sentence (the corpus index), its
word and the word's text (the characters of the sentence the word's tokens cover). A run
saves a **word sample** (:func:`word_sample`): the words of seeded sentences, each word's
vector the mean of its tokens' vectors, in every analysed layer. :func:`cross_model_similarity`
matches two runs' word samples on ``(sentence id, lower-cased word text, occurrence of that
text in the sentence)`` and compares the layers at matched relative depth with linear CKA and
mutual k-NN.

The sentences are chosen by a seeded hash of their corpus index (not by a draw over the
store's sentences), so two stores of one corpus with different token budgets choose the same
sentences wherever both hold them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from isoscope.errors import InputError

#: Words per run's word sample (float16 stores save float16: 1000 x 576 x 31 layers ≈ 36 MB).
N_WORDS = 1000
_META = "isoscope"


def _hash_order(ids: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of ``id + seed · φ``: a seeded order of sentence ids that any store repeats."""
    with np.errstate(over="ignore"):
        z = ids.astype(np.uint64) + np.uint64(int(seed) & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return np.argsort(z, kind="stable")


def word_sample(
    store: Any,
    layers: Sequence[int],
    *,
    n_words: int = N_WORDS,
    seed: int = 0,
    include_special: bool = False,
    drop_position_zero: bool = False,
) -> dict[str, Any] | None:
    """Word vectors (mean of each word's tokens) of seeded whole sentences, per layer.

    Parameters
    ----------
    store : EmbeddingStore
    layers : sequence of int
        Layers to save.
    n_words : int
        Sentences are taken in seeded-hash order until they hold at least this many words.
    seed : int
        Seed of the sentence order.
    include_special, drop_position_zero : bool
        Which tokens are pooled (the analysis' selection).

    Returns
    -------
    dict or None
        ``vectors`` (layer -> (m, d) array in the store's dtype), ``sentence_id``, ``word``,
        ``occurrence``, ``n_tokens`` (tokens pooled per word), ``rows`` (token row ids) and
        ``row_word`` (their word index); None when the store has no word ids.
    """
    tok = store.tokens(["sentence_id", "word_id", "word"])
    mask = np.asarray(store.row_mask(include_special, drop_position_zero)) & (
        tok["word_id"].to_numpy() >= 0
    )
    cand = np.flatnonzero(mask)
    if cand.size == 0:
        return None
    sid = tok["sentence_id"].to_numpy().astype(np.int64)
    uniq = np.unique(sid[cand])
    order = uniq[_hash_order(uniq, seed)]
    wid = tok["word_id"].to_numpy().astype(np.int64)
    key = sid[cand] << 32 | wid[cand]
    words_per_sentence = dict(zip(*np.unique(sid[cand][np.unique(key, return_index=True)[1]],
                                             return_counts=True), strict=True))
    chosen, total = [], 0
    for s in order:
        chosen.append(int(s))
        total += int(words_per_sentence[s])
        if total >= n_words:
            break
    rows = cand[np.isin(sid[cand], chosen)]
    wkey = sid[rows] << 32 | wid[rows]
    ukeys, row_word = np.unique(wkey, return_inverse=True)
    first = np.unique(row_word, return_index=True)[1]
    text = tok["word"].astype(str).str.strip().str.lower().to_numpy()[rows[first]]
    w_sid = sid[rows[first]]
    occurrence = np.zeros(ukeys.size, dtype=np.int64)
    seen: dict[tuple[int, str], int] = {}
    for i, (s, t) in enumerate(zip(w_sid.tolist(), text.tolist(), strict=True)):
        occurrence[i] = seen.get((s, t), 0)
        seen[(s, t)] = occurrence[i] + 1
    counts = np.bincount(row_word, minlength=ukeys.size)
    dtype = np.float16 if str(getattr(store, "dtype", "float32")) == "float16" else np.float32
    vectors = {}
    for layer in layers:
        X = np.asarray(store.layer(int(layer))[rows], dtype=np.float64)
        pooled = np.zeros((ukeys.size, X.shape[1]))
        np.add.at(pooled, row_word, X)
        vectors[int(layer)] = (pooled / counts[:, None]).astype(dtype)
    return {
        "vectors": vectors,
        "sentence_id": w_sid,
        "word": [str(t) for t in text],
        "occurrence": occurrence,
        "n_tokens": counts.astype(np.int64),
        "rows": rows.astype(np.int64),
        "row_word": row_word.astype(np.int64),
        "seed": int(seed),
        "n_sentences": len(chosen),
    }


def save_word_sample(path: Path, data: Mapping[str, Any]) -> dict[str, Any]:
    """Write a :func:`word_sample` as safetensors and return its ``index.json`` entry."""
    from safetensors.numpy import save_file

    tensors = {f"layer_{k}": np.ascontiguousarray(v) for k, v in data["vectors"].items()}
    for name in ("sentence_id", "occurrence", "n_tokens", "rows", "row_word"):
        tensors[name] = np.ascontiguousarray(data[name], dtype=np.int64)
    meta = {"word": list(data["word"]), "seed": data["seed"], "n_sentences": data["n_sentences"],
            "layers": [int(k) for k in data["vectors"]]}
    save_file(tensors, str(path), metadata={_META: json.dumps(meta)})
    return {
        "file": path.name,
        "layers": meta["layers"],
        "n_words": len(meta["word"]),
        "n_sentences": data["n_sentences"],
        "seed": data["seed"],
        "how": "whole sentences in the order of a seeded splitmix64 hash of their corpus index "
        "until they hold the requested words; each word's vector is the mean of its selected "
        "tokens' vectors (rows/row_word) in each layer; keys: sentence_id, lower-cased word "
        "text, occurrence of that text in the sentence",
    }


def load_word_sample(path: Path) -> dict[str, Any]:
    """Read a file written by :func:`save_word_sample`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as fh:
        meta = json.loads((fh.metadata() or {})[_META])
        arrays = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    words = [str(w) for w in meta["word"]]
    out = {name: arrays[name] for name in ("sentence_id", "occurrence", "n_tokens", "rows",
                                            "row_word")}
    if any(arrays[f"layer_{k}"].shape[0] != len(words) for k in meta["layers"]) or (
        out["sentence_id"].shape != (len(words),)
    ):
        raise ValueError("the word vectors do not match the word list")
    out.update(vectors={int(k): arrays[f"layer_{k}"] for k in meta["layers"]}, word=words,
               seed=int(meta["seed"]), n_sentences=int(meta["n_sentences"]))
    return out


def align(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the words two word samples share (same sentence, text and occurrence).

    Parameters
    ----------
    a, b : dict
        Word samples (:func:`word_sample`).

    Returns
    -------
    ia, ib : ndarray of int
        Matching word indices into ``a`` and ``b``, in ``a``'s order.
    """
    def keys(w: Mapping[str, Any]) -> list[tuple[int, str, int]]:
        return list(zip(np.asarray(w["sentence_id"]).tolist(), list(w["word"]),
                        np.asarray(w["occurrence"]).tolist(), strict=True))

    where_b = {k: j for j, k in enumerate(keys(b))}
    pairs = [(i, where_b[k]) for i, k in enumerate(keys(a)) if k in where_b]
    ia = np.array([p[0] for p in pairs], dtype=np.int64)
    ib = np.array([p[1] for p in pairs], dtype=np.int64)
    return ia, ib


def _depths(layers: Sequence[int], n_layers: int) -> np.ndarray:
    return np.asarray(layers, dtype=float) / max(int(n_layers) - 1, 1)


def cross_model_similarity(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    n_layers: tuple[int, int],
    k: int = 10,
    debiased: bool = True,
    names: tuple[str, str] = ("a", "b"),
) -> dict[str, Any]:
    """CKA and mutual k-NN between two models at matched relative depth, on shared words.

    Parameters
    ----------
    a, b : dict
        Word samples of the two runs (same corpus).
    n_layers : (int, int)
        Hidden states of each model (relative depth = layer / (n_layers − 1)).
    k : int
        Neighbours of the mutual k-NN overlap (clipped to aligned words − 1).
    debiased : bool
        Also compute debiased CKA.
    names : (str, str)
        Model names recorded in the output.

    Returns
    -------
    dict
        ``layers_a``, ``layers_b`` (the matched pairs: every layer of the shallower model with
        the layer of the other nearest in relative depth), ``depth``, ``cka_linear``,
        ``cka_debiased``, ``mutual_knn``, ``mutual_knn_chance``, ``k``, ``n_aligned``, the
        word sample sizes (``n_words``) and their sentence seeds (``seeds``).

    Raises
    ------
    InputError
        When fewer than ``max(k, 3) + 1`` words are shared.
    """
    from isoscope.analysis._similarity import compare_layers

    ia, ib = align(a, b)
    n = int(ia.size)
    if n <= max(int(k), 3):
        raise InputError(
            f"{names[0]} and {names[1]} share only {n} words of their word samples; the runs "
            "must be of the same corpus (and overlap in sentences)."
        )
    la, lb = sorted(a["vectors"]), sorted(b["vectors"])
    da, db = _depths(la, n_layers[0]), _depths(lb, n_layers[1])
    swap = len(lb) < len(la)
    ref, ref_d, oth, oth_d = (lb, db, la, da) if swap else (la, da, lb, db)
    matched = [oth[int(np.argmin(np.abs(oth_d - t)))] for t in ref_d]
    pairs = [(m, r) if swap else (r, m) for r, m in zip(ref, matched, strict=True)]
    out: dict[str, Any] = {
        "models": list(names), "layers_a": [int(p[0]) for p in pairs],
        "layers_b": [int(p[1]) for p in pairs], "depth": [float(t) for t in ref_d],
        "cka_linear": [], "cka_debiased": [] if debiased else None, "mutual_knn": [],
    }
    for pa_, pb_ in pairs:
        Xa = np.asarray(a["vectors"][pa_][ia], dtype=np.float64)
        Xb = np.asarray(b["vectors"][pb_][ib], dtype=np.float64)
        keep = (np.linalg.norm(Xa, axis=1) > 0) & (np.linalg.norm(Xb, axis=1) > 0)
        r = compare_layers([Xa[keep], Xb[keep]], k=k, debiased=debiased)
        out["cka_linear"].append(r["cka_linear"][0][1])
        if debiased:
            out["cka_debiased"].append(r["cka_debiased"][0][1] if r["cka_debiased"] else None)
        out["mutual_knn"].append(r["mutual_knn"][0][1])
        out["k"], out["mutual_knn_chance"] = r["k"], r["mutual_knn_chance"]
    out.update(
        n_aligned=n, n_words=[len(a["word"]), len(b["word"])],
        seeds=[a.get("seed"), b.get("seed")],
        alignment="words matched on (sentence id, lower-cased word text, occurrence of the text "
        "in the sentence); each word is the mean of its tokens' vectors; every layer of the "
        "model with fewer analysed layers is paired with the other model's layer nearest in "
        "relative depth (layer / (hidden states − 1))",
        evidence="word samples saved with the runs (artefacts/words.safetensors)",
    )
    return out


def compare_runs(
    results: Sequence[Mapping[str, Any]],
    word_samples: Sequence[Mapping[str, Any] | None],
    names: Sequence[str],
    *,
    k: int | None = None,
) -> dict[str, Any]:
    """:func:`cross_model_similarity` of every pair of runs that can be compared.

    Parameters
    ----------
    results : sequence of dict
        The runs' ``results.json`` contents (their corpus, layer count and similarity settings).
    word_samples : sequence of dict or None
        Each run's saved word sample (None where the run saved none).
    names : sequence of str
        Run names.
    k : int, optional
        Neighbours of the mutual k-NN (default: the first run's ``similarity_k``, else 10).

    Returns
    -------
    dict
        ``format``, ``format_version``, ``pairs`` (one :func:`cross_model_similarity` result
        per compared pair) and ``notes`` (why a pair was not compared).
    """
    from isoscope.report._figures import _n_layers as _layer_count

    st = results[0].get("settings") or {}
    kk = int(k if k is not None else st.get("similarity_k") or 10)
    debiased = bool(st.get("similarity_debiased", True))
    pairs: list[dict[str, Any]] = []
    notes: list[str] = []
    for i in range(len(results)):
        for j in range(i + 1, len(results)):
            a, b = word_samples[i], word_samples[j]
            what = f"{names[i]} and {names[j]}"
            ca = (results[i].get("source") or {}).get("corpus")
            cb = (results[j].get("source") or {}).get("corpus")
            if a is None or b is None:
                missing = names[i] if a is None else names[j]
                notes.append(f"{what} are not compared across models: {missing} saved no word "
                             "sample (re-run it with this isoscope).")
                continue
            if ca != cb:
                notes.append(f"{what} are not compared across models: they read different "
                             f"corpora ({ca} and {cb}).")
                continue
            try:
                pairs.append(cross_model_similarity(
                    a, b, n_layers=(_layer_count(results[i]), _layer_count(results[j])), k=kk,
                    debiased=debiased, names=(names[i], names[j])))
            except InputError as exc:
                notes.append(f"{what} are not compared across models: {exc}")
    return {"format": "isoscope-cross-model", "format_version": 1, "pairs": pairs,
            "notes": notes}


__all__ = [
    "N_WORDS",
    "compare_runs",
    "align",
    "cross_model_similarity",
    "load_word_sample",
    "save_word_sample",
    "word_sample",
]
