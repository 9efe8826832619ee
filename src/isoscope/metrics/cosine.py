"""Cosine structure: S_inter, S_intra, their per-cluster-centred variants, Ethayarajh's
self-similarity / intra-sentence similarity / MEV, and rogue dimensions.

All averages over pairs are exact: the mean cosine over all distinct pairs of a set of unit
vectors u_i follows from their sum s, ``(|s|^2 - n) / (n (n - 1))``, in O(n d).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from isoscope._validation import check_vectors
from isoscope.errors import InputError

__all__ = [
    "unit_rows",
    "s_inter",
    "s_intra",
    "IntraResult",
    "group_pairwise_cosine",
    "select_groups",
    "center_by_cluster",
    "rogue_dimensions",
    "intra_sentence_similarity",
    "mev",
    "ethayarajh",
]


def unit_rows(X: np.ndarray, *, name: str = "vectors") -> np.ndarray:
    """Rows scaled to unit length (float64); all-zero rows are an :class:`InputError`."""
    X = check_vectors(X, name=name, min_rows=1, allow_zero_rows=False, dtype=np.float64)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _mean_pair_cos_from_sum(s: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Mean cosine over distinct pairs from sums of unit vectors ``s`` (g, d) and counts ``m``."""
    return (np.einsum("ij,ij->i", s, s) - m) / (m * (m - 1.0))


def s_inter(X: np.ndarray) -> float:
    """Mean cosine similarity over all distinct pairs of rows (exact, O(n d)).

    Parameters
    ----------
    X : array-like of shape (n, d), n >= 2, no all-zero rows.

    Returns
    -------
    float
        In [-1/(n-1), 1]. Dominated by the common mean offset: see the centred variant.
    """
    U = unit_rows(X)
    if U.shape[0] < 2:
        raise InputError("S_inter needs at least 2 vectors.")
    n = float(U.shape[0])
    s = U.sum(axis=0)[None, :]
    return float(_mean_pair_cos_from_sum(s, np.array([n]))[0])


def group_pairwise_cosine(U: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean pairwise cosine within each group of unit rows.

    Parameters
    ----------
    U : ndarray of shape (n, d)
        Unit rows.
    codes : ndarray of int, shape (n,)
        Group code of each row (0..g-1, every code present).

    Returns
    -------
    values : ndarray of shape (g,)
        NaN for groups with fewer than 2 rows.
    counts : ndarray of shape (g,)
    """
    codes = np.asarray(codes)
    g = int(codes.max()) + 1
    sums = np.zeros((g, U.shape[1]))
    _grouped_sum(sums, U, codes)
    counts = np.bincount(codes, minlength=g).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        vals = np.where(counts >= 2, _mean_pair_cos_from_sum(sums, counts), np.nan)
    return vals, counts


def _grouped_sum(out: np.ndarray, U: np.ndarray, codes: np.ndarray) -> None:
    order = np.argsort(codes, kind="stable")
    sc = codes[order]
    starts = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
    out[sc[starts]] = np.add.reduceat(U[order], starts, axis=0)


def select_groups(
    keys: np.ndarray | pd.Series,
    *,
    min_occurrences: int = 5,
    cap: int | None = 50,
    max_groups: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Choose rows for per-type measures: types with enough occurrences, capped, seeded.

    Parameters
    ----------
    keys : array-like of shape (n,)
        Type of every row (word string, token id...). Missing keys (None/NaN) are ignored.
    min_occurrences : int
        Types with fewer occurrences are left out.
    cap : int or None
        At most this many occurrences per type (seeded uniform choice).
    max_groups : int or None
        At most this many types (seeded uniform choice).
    seed : int

    Returns
    -------
    rows : ndarray of int64
        Selected row indices, sorted.
    codes : ndarray of int64
        Group code (0..g-1) of each selected row.
    names : ndarray of object
        Type of each group.
    """
    if min_occurrences < 2:
        raise InputError(f"min_occurrences must be at least 2, got {min_occurrences}.")
    codes_all, uniques = pd.factorize(pd.Series(np.asarray(keys, dtype=object)), sort=True)
    codes_all = np.asarray(codes_all)
    valid = codes_all >= 0
    counts = np.bincount(codes_all[valid], minlength=len(uniques))
    eligible = np.flatnonzero(counts >= min_occurrences)
    rng = np.random.default_rng(seed)
    if max_groups is not None and eligible.size > max_groups:
        eligible = np.sort(rng.choice(eligible, size=max_groups, replace=False))
    if eligible.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, dtype=object)
    remap = np.full(len(uniques), -1, dtype=np.int64)
    remap[eligible] = np.arange(eligible.size)
    idx = np.flatnonzero(valid)
    idx = idx[remap[codes_all[idx]] >= 0]
    grp = remap[codes_all[idx]]
    if cap is not None:
        # Random priority per row, keep the `cap` smallest within each group: seeded and O(n log n).
        prio = rng.random(idx.size)
        order = np.lexsort((prio, grp))
        g_sorted = grp[order]
        starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
        rank = np.arange(g_sorted.size) - np.repeat(starts, np.diff(np.r_[starts, g_sorted.size]))
        chosen = order[rank < cap]
        idx, grp = idx[chosen], grp[chosen]
    order = np.argsort(idx, kind="stable")
    return idx[order].astype(np.int64), grp[order].astype(np.int64), np.asarray(uniques)[eligible]


@dataclass
class IntraResult:
    """S_intra: mean over types of the mean pairwise cosine between a type's occurrences."""

    value: float | None
    n_types: int
    n_vectors: int
    per_type: np.ndarray

    def to_dict(self) -> dict:
        """JSON-ready scalars."""
        return {"s_intra": self.value, "n_types": self.n_types, "n_vectors": self.n_vectors}


def s_intra(
    X: np.ndarray,
    keys: np.ndarray,
    *,
    min_occurrences: int = 5,
    cap: int | None = 50,
    max_types: int | None = None,
    seed: int = 0,
) -> IntraResult:
    """Mean cosine between occurrences of the same type, averaged over types (Cai et al.).

    Parameters
    ----------
    X : array-like of shape (n, d)
        One vector per occurrence.
    keys : array-like of shape (n,)
        Type of each row (word or token id).
    min_occurrences, cap, max_types, seed :
        Selection of types and occurrences, see :func:`select_groups`.

    Returns
    -------
    IntraResult
        ``value`` is None when no type has ``min_occurrences`` occurrences.
    """
    X = check_vectors(X, name="vectors", min_rows=1, dtype=np.float64)
    keys = np.asarray(keys, dtype=object)
    if keys.shape[0] != X.shape[0]:
        raise InputError(f"Got {keys.shape[0]} word keys for {X.shape[0]} vectors.")
    rows, codes, _ = select_groups(
        keys, min_occurrences=min_occurrences, cap=cap, max_groups=max_types, seed=seed
    )
    if rows.size == 0:
        return IntraResult(None, 0, 0, np.empty(0))
    vals, _ = group_pairwise_cosine(unit_rows(X[rows]), codes)
    return IntraResult(float(np.mean(vals)), int(vals.size), int(rows.size), vals)


def center_by_cluster(
    X: np.ndarray, labels: np.ndarray, centers: np.ndarray | None = None
) -> np.ndarray:
    """Subtract from each row the mean of its cluster (Cai et al.'s per-cluster centring).

    Parameters
    ----------
    X : array-like of shape (n, d)
    labels : array-like of int, shape (n,)
    centers : ndarray of shape (n_clusters, d), optional
        Cluster means to subtract (e.g. fitted on a sample); by default the means of ``X``.

    Returns
    -------
    ndarray of shape (n, d), float64
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if centers is None:
        k = int(labels.max()) + 1
        sums = np.zeros((k, X.shape[1]))
        np.add.at(sums, labels, X)
        counts = np.bincount(labels, minlength=k)[:, None]
        centers = sums / np.maximum(counts, 1)
    return X - np.asarray(centers, dtype=np.float64)[labels]


def rogue_dimensions(X: np.ndarray, top: int = 5) -> tuple[list[dict], np.ndarray]:
    """Per-dimension contribution to the mean pairwise cosine (Timkey & van Schijndel 2021).

    The mean cosine over distinct pairs decomposes exactly over dimensions:
    ``c_j = (s_j^2 - sum_i u_ij^2) / (n (n - 1))`` with ``s = sum_i u_i``; ``sum_j c_j = S_inter``.

    Parameters
    ----------
    X : array-like of shape (n, d), n >= 2
    top : int
        Number of dimensions to list.

    Returns
    -------
    rogue : list of dict
        ``{"dim", "contribution", "share"}`` for the ``top`` dimensions by contribution,
        share = contribution / S_inter.
    contributions : ndarray of shape (d,)
    """
    U = unit_rows(X)
    n = float(U.shape[0])
    if n < 2:
        raise InputError("Rogue dimensions need at least 2 vectors.")
    s = U.sum(axis=0)
    c = (s * s - (U * U).sum(axis=0)) / (n * (n - 1.0))
    total = float(c.sum())
    order = np.argsort(-c, kind="stable")[:top]
    rogue = [
        {
            "dim": int(j),
            "contribution": float(c[j]),
            "share": float(c[j] / total) if total != 0 else None,
        }
        for j in order
    ]
    return rogue, c


def intra_sentence_similarity(X: np.ndarray, sentence_ids: np.ndarray) -> float:
    """Ethayarajh's intra-sentence similarity: mean cosine of each token with its sentence mean.

    Averaged over tokens within a sentence, then over sentences with at least 2 tokens.
    """
    X = check_vectors(X, name="vectors", min_rows=2, dtype=np.float64)
    sid = np.asarray(sentence_ids)
    if sid.shape[0] != X.shape[0]:
        raise InputError(f"Got {sid.shape[0]} sentence ids for {X.shape[0]} vectors.")
    codes, _ = pd.factorize(sid)
    g = int(codes.max()) + 1
    sums = np.zeros((g, X.shape[1]))
    _grouped_sum(sums, X, codes)
    counts = np.bincount(codes, minlength=g)
    means = sums / counts[:, None]
    mnorm = np.linalg.norm(means, axis=1)
    xnorm = np.linalg.norm(X, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.einsum("ij,ij->i", X, means[codes]) / (xnorm * mnorm[codes])
    cos = np.where(np.isfinite(cos), cos, np.nan)
    per_sentence = pd.Series(cos).groupby(codes).mean().to_numpy()
    per_sentence = per_sentence[counts >= 2]
    per_sentence = per_sentence[np.isfinite(per_sentence)]
    if per_sentence.size == 0:
        raise InputError("Intra-sentence similarity needs a sentence with at least 2 tokens.")
    return float(per_sentence.mean())


def mev(X: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Maximum explainable variance of each group (Ethayarajh 2019).

    The fraction of the occurrence matrix's variance that its first principal direction
    explains, ``sigma_1^2 / sum sigma_i^2`` of the uncentred occurrence matrix.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    codes : ndarray of int, shape (n,)
        Group (0..g-1) of every row.

    Returns
    -------
    ndarray of shape (g,)
    """
    X = np.asarray(X, dtype=np.float64)
    codes = np.asarray(codes)
    order = np.argsort(codes, kind="stable")
    sc = codes[order]
    bounds = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1], True])
    out = np.full(int(codes.max()) + 1, np.nan)
    for a, b in zip(bounds[:-1], bounds[1:], strict=False):
        A = X[order[a:b]]
        ev = np.linalg.eigvalsh(A @ A.T)  # m x m Gram: m is at most the occurrence cap
        tot = ev.clip(min=0).sum()
        out[sc[a]] = ev[-1] / tot if tot > 0 else np.nan
    return out


def ethayarajh(
    X: np.ndarray,
    keys: np.ndarray,
    *,
    sentence_X: np.ndarray | None = None,
    sentence_ids: np.ndarray | None = None,
    baseline: float | None = None,
    min_occurrences: int = 5,
    cap: int | None = 50,
    max_types: int | None = None,
    seed: int = 0,
) -> dict[str, float | None]:
    """Ethayarajh (2019)'s self-similarity, intra-sentence similarity and MEV, with baselines.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Occurrence vectors.
    keys : array-like of shape (n,)
        Word type of every row.
    sentence_X, sentence_ids : optional
        All token vectors of a set of whole sentences and their sentence ids, for the
        intra-sentence similarity (None: not computed).
    baseline : float, optional
        Mean cosine between random token pairs (the anisotropy baseline subtracted by
        the ``*_adjusted`` values); by default S_inter of ``X``.
    min_occurrences, cap, max_types, seed :
        Type and occurrence selection (:func:`select_groups`). The MEV baseline is the MEV of
        random groups of the same sizes drawn from all rows with the same seed.

    Returns
    -------
    dict
        ``self_similarity``, ``self_similarity_adjusted``, ``intra_sentence_similarity``,
        ``intra_sentence_similarity_adjusted``, ``mev``, ``mev_adjusted``, ``mev_baseline``,
        ``anisotropy_baseline``, ``n_types`` (None where not computable).
    """
    X = check_vectors(X, name="vectors", min_rows=2, dtype=np.float64)
    if baseline is None:
        baseline = s_inter(X)
    out: dict[str, float | None] = {
        "self_similarity": None,
        "self_similarity_adjusted": None,
        "intra_sentence_similarity": None,
        "intra_sentence_similarity_adjusted": None,
        "mev": None,
        "mev_adjusted": None,
        "mev_baseline": None,
        "anisotropy_baseline": float(baseline),
        "n_types": 0,
    }
    rows, codes, _ = select_groups(
        np.asarray(keys, dtype=object),
        min_occurrences=min_occurrences,
        cap=cap,
        max_groups=max_types,
        seed=seed,
    )
    if rows.size:
        vals, _ = group_pairwise_cosine(unit_rows(X[rows]), codes)
        ss = float(np.mean(vals))
        m = mev(X[rows], codes)
        rng = np.random.default_rng(seed + 1)
        perm = rng.permutation(X.shape[0])[: rows.size]
        # Random groups with the same size distribution: shuffle which rows fill each group.
        m_base = mev(X[perm], codes)
        out.update(
            self_similarity=ss,
            self_similarity_adjusted=ss - baseline,
            mev=float(np.nanmean(m)),
            mev_baseline=float(np.nanmean(m_base)),
            mev_adjusted=float(np.nanmean(m) - np.nanmean(m_base)),
            n_types=int(vals.size),
        )
    if sentence_X is not None and sentence_ids is not None:
        iss = intra_sentence_similarity(sentence_X, sentence_ids)
        out.update(intra_sentence_similarity=iss, intra_sentence_similarity_adjusted=iss - baseline)
    return out
