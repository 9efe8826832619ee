"""One shared exact k-nearest-neighbour backend (faiss exact by default, scikit-learn fallback).

Every measure that needs neighbours (LID, TwoNN) goes through :func:`exact_knn` so that the
same neighbours, the same distance definition and the same duplicate handling are used
everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isoscope._validation import check_vectors
from isoscope.errors import InputError

__all__ = ["Neighbors", "exact_knn", "unique_rows", "count_duplicates", "available_backends"]

_METRICS = ("euclidean", "cosine")


@dataclass(frozen=True)
class Neighbors:
    """Result of an exact k-nearest-neighbour search.

    Attributes
    ----------
    distances : ndarray of shape (n, k), float64
        True (not squared) distances to the k nearest other points, ascending.
        For ``metric="cosine"`` the distance is the Euclidean (chordal) distance between
        unit vectors, ``sqrt(2 - 2 cos)``, a true metric that is monotone in the angle.
    indices : ndarray of shape (n, k), int64
        Row indices of the neighbours in the searched array.
    metric : str
        ``"euclidean"`` or ``"cosine"``.
    backend : str
        ``"faiss"`` or ``"sklearn"``.
    """

    distances: np.ndarray
    indices: np.ndarray
    metric: str
    backend: str

    @property
    def k(self) -> int:
        """Number of neighbours per point."""
        return int(self.distances.shape[1])


def available_backends() -> list[str]:
    """Return the neighbour backends that can be imported here (``"faiss"`` first)."""
    out = []
    try:
        import faiss  # noqa: F401

        out.append("faiss")
    except ImportError:  # pragma: no cover - faiss is a dependency
        pass
    out.append("sklearn")
    return out


def _row_view(X: np.ndarray) -> np.ndarray:
    X = np.ascontiguousarray(X)
    return X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel()


def unique_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact de-duplication of rows.

    Parameters
    ----------
    X : ndarray of shape (n, d)

    Returns
    -------
    keep : ndarray of int64
        Sorted indices of the first occurrence of every distinct row.
    inverse : ndarray of int64, shape (n,)
        For every row, the position in ``keep`` of its distinct representative.
    """
    X = np.asarray(X)
    # -0.0 and 0.0 are the same vector; make their bytes equal before hashing bytes.
    Xc = X + np.zeros((), dtype=X.dtype) if np.issubdtype(X.dtype, np.floating) else X
    _, first, inverse = np.unique(_row_view(Xc), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order].astype(np.int64), rank[inverse.ravel()].astype(np.int64)


def count_duplicates(X: np.ndarray) -> int:
    """Number of rows that exactly repeat an earlier row (``n - n_distinct``)."""
    keep, _ = unique_rows(X)
    return int(np.asarray(X).shape[0] - keep.size)


def _unit(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InputError(
            f"Cosine neighbours need non-zero vectors, but {int((norms == 0).sum())} rows are all zero."
        )
    return X / norms


def _drop_self(D: np.ndarray, Ind: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each query's own row from a (n, k+1) result; with duplicates it may be anywhere."""
    n = Ind.shape[0]
    is_self = Ind == np.arange(n)[:, None]
    keep = ~is_self
    no_self = ~is_self.any(axis=1)
    keep[no_self, -1] = False
    return D[keep].reshape(n, k), Ind[keep].reshape(n, k)


def _refine(X: np.ndarray, Ind: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Recompute neighbour distances from differences in float64.

    faiss computes ``|x|^2 + |y|^2 - 2 x.y`` in float32, which loses all precision for close
    points with large norms (GPT-scale hidden states); differences do not.
    """
    n, k = Ind.shape
    out = np.empty((n, k), dtype=np.float64)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        diff = X[Ind[s:e]].astype(np.float64) - X[s:e, None, :].astype(np.float64)
        out[s:e] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    return out


def exact_knn(
    X: np.ndarray,
    k: int,
    *,
    metric: str = "euclidean",
    backend: str = "auto",
    refine: bool = True,
) -> Neighbors:
    """Exact k nearest neighbours of every row among the other rows.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Vectors, one per row; must be finite.
    k : int
        Number of neighbours (the point itself is excluded, duplicates of it are not).
    metric : {"euclidean", "cosine"}
        ``"cosine"`` searches among unit-normalised rows and returns chordal distances
        ``sqrt(2 - 2 cos)`` (not ``1 - cos``, whose ratios would halve a LID estimate).
    backend : {"auto", "faiss", "sklearn"}
        ``"auto"`` uses faiss ``IndexFlatL2`` when importable, else scikit-learn brute force.
    refine : bool
        Recompute the returned distances from float64 differences (default). faiss returns
        squared float32 distances; they are square-rooted after clipping at 0 either way.

    Returns
    -------
    Neighbors
        Distances ascending, true (not squared) distances.
    """
    if metric not in _METRICS:
        raise InputError(f"Unknown neighbour metric {metric!r}; use one of {', '.join(_METRICS)}.")
    if backend not in ("auto", "faiss", "sklearn"):
        raise InputError(f"Unknown neighbour backend {backend!r}; use auto, faiss or sklearn.")
    X = check_vectors(X, name="vectors", min_rows=2, dtype=np.float32)
    n = X.shape[0]
    k = int(k)
    if k < 1:
        raise InputError(f"The number of neighbours k must be at least 1, got {k}.")
    if k >= n:
        raise InputError(f"k={k} neighbours need at least {k + 1} points, got {n}.")
    if metric == "cosine":
        X = _unit(X.astype(np.float64)).astype(np.float32)
    X = np.ascontiguousarray(X, dtype=np.float32)
    use = backend
    if use == "auto":
        use = available_backends()[0]
    if use == "faiss":
        import faiss

        index = faiss.IndexFlatL2(X.shape[1])
        index.add(X)
        D2, Ind = index.search(X, k + 1)
        D = np.sqrt(np.clip(D2.astype(np.float64), 0.0, None))
        D, Ind = _drop_self(D, Ind.astype(np.int64), k)
    else:
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X)
        D, Ind = nn.kneighbors()
        D = D.astype(np.float64)
        Ind = Ind.astype(np.int64)
    if refine:
        D = _refine(X, Ind)
        order = np.argsort(D, axis=1, kind="stable")
        D = np.take_along_axis(D, order, axis=1)
        Ind = np.take_along_axis(Ind, order, axis=1)
    return Neighbors(distances=D, indices=Ind, metric=metric, backend=use)
