"""Approximate neighbours (faiss IVF or HNSW) with an audit against the exact search.

For point sets far beyond a million rows the exact self-kNN is quadratic; an approximate
index answers the same queries in far less time. What that costs is measured, not assumed:
a seeded subsample of the points is searched exactly (:func:`query_knn`, float64) and the
approximate lists are scored against it (recall@k, and the per-point LID difference).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from isoscope.errors import InputError
from isoscope.metrics._neighbors import (
    Neighbors,
    _float64_search,
    _refine_sq,
    _sort_rows,
    _unit,
    exact_knn,
)

__all__ = ["NEIGHBOR_METHODS", "approximate_knn", "audit_neighbors", "query_knn",
           "search_neighbors"]

#: Values of the ``neighbors`` analysis setting.
NEIGHBOR_METHODS = ("exact", "ivf", "hnsw")


def _prepare(X: np.ndarray, metric: str) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float32)
    if metric == "cosine":
        X = np.ascontiguousarray(_unit(X.astype(np.float64)).astype(np.float32))
    return X


def query_knn(X: np.ndarray, rows: np.ndarray, k: int, *, metric: str = "euclidean",
              margin: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest other rows of ``X[rows]`` among all rows of ``X`` (float64 search).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    rows : ndarray of int
        Query rows.
    k : int
    metric : {"euclidean", "cosine"}
    margin : int
        Extra float64 candidates kept before the distances are recomputed from differences.

    Returns
    -------
    distances, indices : ndarray of shape (len(rows), k)
        True distances ascending (ties by index) and row indices.
    """
    X = _prepare(X, metric)
    rows = np.asarray(rows, dtype=np.int64)
    kk = min(int(k) + margin, X.shape[0] - 1)
    ind = _float64_search(X, rows, kk)
    d2, ind = _sort_rows(_refine_sq(X, ind, rows), ind)
    return np.sqrt(d2[:, :k]), ind[:, :k]


def _faiss_index(X: np.ndarray, method: str, k: int, seed: int) -> Any:
    import faiss

    n, d = X.shape
    index: Any
    if method == "hnsw":
        index = faiss.IndexHNSWFlat(d, 32)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = max(64, 4 * int(k))
        index.add(X)
        return index
    nlist = int(np.clip(round(np.sqrt(n)), 1, max(1, n // 39)))
    quantizer = faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist)
    index.cp.seed = int(seed)
    index.train(X)
    index.add(X)
    index.nprobe = max(1, int(np.ceil(nlist / 10)))
    return index


def approximate_knn(X: np.ndarray, k: int, *, method: str = "hnsw", metric: str = "euclidean",
                    seed: int = 0) -> Neighbors:
    """k nearest other rows of every row from a faiss IVF or HNSW index.

    The returned distances are recomputed from float64 differences and sorted (ties by
    index); rows for which the index found fewer than k others are searched exactly.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    k : int
    method : {"ivf", "hnsw"}
        ``"ivf"``: ``IndexIVFFlat`` with round(sqrt n) lists (k-means seeded by ``seed``),
        a tenth of them probed; ``"hnsw"``: ``IndexHNSWFlat`` with 32 links, efSearch
        max(64, 4k).
    metric : {"euclidean", "cosine"}
    seed : int

    Returns
    -------
    Neighbors
        ``backend`` is ``"faiss-ivf"`` or ``"faiss-hnsw"``; ``n_recomputed`` counts the rows
        searched exactly.
    """
    if method not in ("ivf", "hnsw"):
        raise InputError(f"Unknown approximate neighbour method {method!r}; use ivf or hnsw.")
    Xp = _prepare(X, metric)
    n = Xp.shape[0]
    k = int(k)
    if k >= n:
        raise InputError(f"k={k} neighbours need at least {k + 1} points, got {n}.")
    index = _faiss_index(Xp, method, k, seed)
    _, ind = index.search(Xp, k + 1)
    ind = ind.astype(np.int64)
    own = ind == np.arange(n)[:, None]
    # Drop the point itself (or the last column where the index did not return it).
    keep = ~own
    keep[~own.any(axis=1), -1] = False
    ind = ind[keep].reshape(n, k)
    bad = np.flatnonzero((ind < 0).any(axis=1))
    ind[bad] = 0
    d2, ind = _sort_rows(_refine_sq(Xp, ind), ind)
    dist = np.sqrt(d2)
    if bad.size:
        dist[bad], ind[bad] = query_knn(Xp, bad, k)
    return Neighbors(distances=dist, indices=ind, metric=metric, backend=f"faiss-{method}",
                     n_recomputed=int(bad.size))


def audit_neighbors(X: np.ndarray, approx: Neighbors, *, size: int, seed: int,
                    variant: str = "amsaleg") -> dict[str, Any]:
    """Recall@k and LID difference of approximate neighbours on a seeded subsample.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        The searched points (as given to :func:`approximate_knn`).
    approx : Neighbors
        Its result.
    size : int
        Audited points (all when n is smaller), drawn with ``default_rng(seed)``.
    seed : int
    variant : str
        LID estimator (see :func:`~isoscope.metrics.lid.lid_mle_from_distances`).

    Returns
    -------
    dict
        ``knn_recall_at_k`` (mean share of each audited point's exact k neighbours the index
        found), ``knn_lid_difference`` (mean over audited points of approximate minus exact
        per-point LID), ``knn_audit_size`` and ``knn_audit_seed``.
    """
    from isoscope.metrics.lid import lid_mle_from_distances

    n, k = approx.indices.shape
    m = min(int(size), n)
    rows = np.sort(np.random.default_rng(int(seed)).choice(n, size=m, replace=False))
    d_exact, i_exact = query_knn(X, rows, k, metric=approx.metric)
    i_approx = approx.indices[rows]
    hits = [np.intersect1d(a, e).size for a, e in zip(i_approx, i_exact, strict=True)]
    lid_a, _ = lid_mle_from_distances(approx.distances[rows], variant=variant)
    lid_e, _ = lid_mle_from_distances(d_exact, variant=variant)
    ok = np.isfinite(lid_a) & np.isfinite(lid_e)
    return {
        "knn_recall_at_k": float(np.mean(hits) / k),
        "knn_lid_difference": float(np.mean(lid_a[ok] - lid_e[ok])) if ok.any() else None,
        "knn_audit_size": int(m),
        "knn_audit_seed": int(seed),
    }


def search_neighbors(
    X: np.ndarray,
    k: int,
    metric: str,
    *,
    method: str = "exact",
    audit: int = 1000,
    seed: int = 0,
    variant: str = "amsaleg",
    backend: str = "auto",
    exact: Callable[[np.ndarray, int, str], Neighbors] | None = None,
) -> tuple[Neighbors, dict[str, Any] | None]:
    """The neighbour search of the LID measures: exact, or approximate with its audit.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32
        Distinct points.
    k : int
    metric : {"euclidean", "cosine"}
    method : {"exact", "ivf", "hnsw"}
    audit, seed, variant : see :func:`audit_neighbors` (approximate methods only).
    backend : str
        Backend of the single-process exact search.
    exact : callable, optional
        ``exact(X, k, metric)`` replacing the single-process exact search (a distributed one).

    Returns
    -------
    neighbors : Neighbors
    audit : dict or None
        The audit of an approximate search (None for the exact one).
    """
    if method not in NEIGHBOR_METHODS:
        raise InputError(f"Unknown neighbour method {method!r}; use exact, ivf or hnsw.")
    if method == "exact":
        if exact is not None:
            return exact(X, k, metric), None
        return exact_knn(X, k, metric=metric, backend=backend), None
    nb = approximate_knn(X, k, method=method, metric=metric, seed=seed)
    return nb, audit_neighbors(X, nb, size=audit, seed=seed, variant=variant)
