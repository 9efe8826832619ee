"""Similarity of two representations of the same points: CKA, mutual k-NN and χ overlap.

* **Linear CKA** (Kornblith et al., ICML 2019): with column-centred ``X`` and ``Y`` and
  ``K = X Xᵀ``, ``L = Y Yᵀ``, ``CKA = ⟨K, L⟩_F / (‖K‖_F ‖L‖_F)``, the biased HSIC estimator
  normalised. The **debiased** variant replaces each HSIC by the unbiased estimator of Song et
  al. (JMLR 2012), as Nguyen et al. (ICLR 2021) recommend for ``n`` not much larger than ``d``.
* **Mutual k-NN overlap** (Huh et al., ICML 2024, "The platonic representation hypothesis"):
  the mean over points of ``|N_A(i) ∩ N_B(i)| / k``, the k nearest neighbours of each point
  taken among the other points by cosine similarity in each representation.
* **Neighbourhood overlap χ** (Valeriani et al., NeurIPS 2023): the same overlap of the k
  nearest neighbours by Euclidean distance, used between consecutive layers.

:func:`cka_matrix` and :func:`knn_overlap_matrix` compute every pair of a list of
representations at once (one centred Gram matrix and one neighbour list per representation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from isoscope._validation import check_vectors
from isoscope.errors import InputError

KORNBLITH = "Kornblith et al. (ICML 2019), linear CKA"
SONG = "Song et al. (JMLR 2012) unbiased HSIC; Nguyen et al. (ICLR 2021), debiased CKA"
HUH = "Huh et al. (ICML 2024), mutual k-NN alignment"
VALERIANI = "Valeriani et al. (NeurIPS 2023), neighbourhood overlap χ"


def _same_rows(reps: Sequence[Any], what: str) -> list[np.ndarray]:
    out = [check_vectors(X, name=f"{what} {i}", min_rows=2) for i, X in enumerate(reps)]
    if len({X.shape[0] for X in out}) > 1:
        raise InputError(
            f"The {what}s must describe the same points; got {sorted({X.shape[0] for X in out})} "
            "rows."
        )
    return out


def centred_gram(X: np.ndarray) -> np.ndarray:
    """Linear Gram matrix ``Xc Xcᵀ`` of the column-centred rows, float64.

    Parameters
    ----------
    X : array-like of shape (n, d)

    Returns
    -------
    ndarray of shape (n, n)
    """
    Xc = np.asarray(X, dtype=np.float64)
    Xc = Xc - Xc.mean(axis=0)
    return Xc @ Xc.T


def cka_matrix(reps: Sequence[Any], *, debiased: bool = False) -> np.ndarray:
    """Linear CKA between every pair of representations of the same ``n`` points.

    Parameters
    ----------
    reps : sequence of array-like of shape (n, d_i)
        Representations (e.g. layers) of the same points in the same order; widths may differ.
    debiased : bool
        Use the unbiased HSIC estimator of Song et al. (needs ``n >= 4``) instead of the
        biased ``⟨K, L⟩_F / (n − 1)²`` of Kornblith et al. Data are centred first in both
        cases, as in Kornblith et al.'s ``feature_space_linear_cka``.

    Returns
    -------
    ndarray of shape (m, m)
        Symmetric; the diagonal is 1 (NaN for a representation with no variance). The
        debiased value can be slightly negative for unrelated representations.

    Notes
    -----
    With centred data the Gram matrices have zero row sums, so the unbiased estimator
    ``[tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2)·1ᵀK̃L̃1] / (n(n−3))`` (``K̃`` = ``K`` with
    its diagonal set to 0) reduces to the Frobenius products of the centred Gram matrices, their
    diagonals and their traces; the cost is one ``n × n`` Gram matrix per representation and one
    ``m × n²`` product.
    """
    arrays = _same_rows(reps, "representation")
    n = arrays[0].shape[0]
    if debiased and n < 4:
        raise InputError(f"Debiased CKA needs at least 4 points, got {n}.")
    m = len(arrays)
    G = np.empty((m, n * n), dtype=np.float64)
    diag = np.empty((m, n), dtype=np.float64)
    for i, X in enumerate(arrays):
        K = centred_gram(X)
        diag[i] = np.diagonal(K)
        G[i] = K.ravel()
    F = G @ G.T  # ⟨K_i, K_j⟩_F
    if debiased:
        dd = diag @ diag.T  # Σ_a K_i[a,a] K_j[a,a]; the zero-diagonal row sums are −diag
        tr = diag.sum(axis=1)  # 1ᵀK̃1 = −tr K for centred data
        H = (F - dd + np.outer(tr, tr) / ((n - 1) * (n - 2)) - 2.0 * dd / (n - 2)) / (n * (n - 3))
    else:
        H = F / (n - 1) ** 2
    d = np.sqrt(np.clip(np.diagonal(H), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = H / np.outer(d, d)
    out[~np.isfinite(out)] = np.nan
    return (out + out.T) / 2.0


def linear_cka(X: Any, Y: Any, *, debiased: bool = False) -> float:
    """Linear CKA of two representations of the same points (see :func:`cka_matrix`).

    Parameters
    ----------
    X : array-like of shape (n, d1)
    Y : array-like of shape (n, d2)
    debiased : bool

    Returns
    -------
    float
    """
    return float(cka_matrix([X, Y], debiased=debiased)[0, 1])


def knn_sets(X: Any, k: int, *, metric: str = "cosine", backend: str = "auto") -> np.ndarray:
    """Indices of the ``k`` nearest other points of every row (the shared exact backend).

    Parameters
    ----------
    X : array-like of shape (n, d)
    k : int
        Neighbours per point, ``1 <= k < n``.
    metric : {"cosine", "euclidean"}
    backend : str
        See :func:`isoscope.metrics.exact_knn`.

    Returns
    -------
    ndarray of int64 of shape (n, k)
    """
    from isoscope.metrics._neighbors import exact_knn

    A = check_vectors(X, name="vectors", min_rows=2)
    if not 1 <= int(k) < A.shape[0]:
        raise InputError(f"k must be between 1 and {A.shape[0] - 1} (points − 1), got {k}.")
    if metric == "cosine":
        norms = np.linalg.norm(A, axis=1)
        if not np.all(norms > 0):
            raise InputError("Cosine neighbours need non-zero vectors; drop all-zero rows first.")
    return np.asarray(exact_knn(A, int(k), metric=metric, backend=backend).indices, np.int64)


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of ``|a_i ∩ b_i| / k`` for two neighbour lists of shape (n, k).

    Parameters
    ----------
    a, b : ndarray of int of shape (n, k)

    Returns
    -------
    float
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise InputError(f"Neighbour lists must have the same (n, k) shape, got {a.shape} and {b.shape}.")
    hits = (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1)
    return float(hits.mean() / a.shape[1])


def knn_overlap_matrix(
    reps: Sequence[Any], k: int, *, metric: str = "cosine", backend: str = "auto"
) -> np.ndarray:
    """Mutual k-NN overlap between every pair of representations of the same points.

    Parameters
    ----------
    reps : sequence of array-like of shape (n, d_i)
    k : int
        Neighbours per point (the point itself excluded).
    metric : {"cosine", "euclidean"}
        Cosine is Huh et al.'s mutual k-NN; Euclidean is Valeriani et al.'s χ.
    backend : str
        Neighbour backend (:func:`isoscope.metrics.exact_knn`).

    Returns
    -------
    ndarray of shape (m, m)
        Symmetric, ones on the diagonal; chance level is about ``k / (n − 1)``.
    """
    arrays = _same_rows(reps, "representation")
    sets = [knn_sets(X, k, metric=metric, backend=backend) for X in arrays]
    m = len(sets)
    out = np.ones((m, m))
    for i in range(m):
        for j in range(i + 1, m):
            out[i, j] = out[j, i] = overlap(sets[i], sets[j])
    return out


def consecutive_overlap(
    reps: Sequence[Any], k: int, *, metric: str = "euclidean", backend: str = "auto"
) -> np.ndarray:
    """χ overlap of each representation with the next one (Valeriani et al.).

    Parameters
    ----------
    reps : sequence of array-like of shape (n, d_i)
    k : int
    metric : {"euclidean", "cosine"}
    backend : str

    Returns
    -------
    ndarray of shape (m − 1,)
    """
    arrays = _same_rows(reps, "representation")
    sets = [knn_sets(X, k, metric=metric, backend=backend) for X in arrays]
    return np.array([overlap(a, b) for a, b in zip(sets[:-1], sets[1:], strict=True)])


__all__ = [
    "HUH",
    "KORNBLITH",
    "SONG",
    "VALERIANI",
    "centred_gram",
    "cka_matrix",
    "consecutive_overlap",
    "knn_overlap_matrix",
    "knn_sets",
    "linear_cka",
    "overlap",
]
