"""One shared exact k-nearest-neighbour backend for the self-kNN of a point set.

Every measure that needs neighbours (LID, TwoNN) goes through :func:`exact_knn` so that the
same neighbours, the same distance definition and the same duplicate handling are used
everywhere. The default backend (``"symmetric"``) exploits that a point set's distance
matrix is symmetric: each pair of row blocks is multiplied once (float32 BLAS GEMM) and the
block serves the neighbour lists of its rows and, transposed, of its columns, so half the
multiply-adds of faiss's exact search are done. faiss ``IndexFlatL2`` and scikit-learn brute
force remain selectable.
"""

from __future__ import annotations

import time
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
        ``"symmetric"``, ``"faiss"`` or ``"sklearn"``.
    n_recomputed : int
        Rows whose float32 candidate list could not be certified exact against the float32
        rounding bound and were searched again in float64 (``"symmetric"`` backend only).
    """

    distances: np.ndarray
    indices: np.ndarray
    metric: str
    backend: str
    n_recomputed: int = 0

    @property
    def k(self) -> int:
        """Number of neighbours per point."""
        return int(self.distances.shape[1])


def available_backends() -> list[str]:
    """Return the neighbour backends usable here (the default, ``"symmetric"``, first)."""
    out = ["symmetric"]
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


def _refine_sq(
    X: np.ndarray, Ind: np.ndarray, rows: np.ndarray | None = None, chunk: int = 128
) -> np.ndarray:
    """Squared neighbour distances recomputed from differences in float64.

    Row i of ``Ind`` holds neighbours of point ``rows[i]`` (of point i without ``rows``).

    A GEMM computes ``|x|^2 + |y|^2 - 2 x.y`` in float32, which loses all precision for close
    points with large norms (GPT-scale hidden states); differences do not. The difference of
    two float32 values is exact in float64. Small chunks keep the temporaries in cache.
    """
    n, k = Ind.shape
    out = np.empty((n, k), dtype=np.float64)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        diff = X[Ind[s:e]].astype(np.float64)
        diff -= X[s:e, None, :] if rows is None else X[rows[s:e], None, :]
        out[s:e] = np.einsum("ijk,ijk->ij", diff, diff)
    return out


def _refine(X: np.ndarray, Ind: np.ndarray, chunk: int = 128) -> np.ndarray:
    """True neighbour distances recomputed from differences in float64 (see :func:`_refine_sq`)."""
    return np.sqrt(_refine_sq(X, Ind, chunk=chunk))


def _sort_rows(D: np.ndarray, Ind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by distance, ties by neighbour index (deterministic for any block size)."""
    o = np.argsort(Ind, axis=1, kind="stable")
    D = np.take_along_axis(D, o, axis=1)
    Ind = np.take_along_axis(Ind, o, axis=1)
    o = np.argsort(D, axis=1, kind="stable")
    return np.take_along_axis(D, o, axis=1), np.take_along_axis(Ind, o, axis=1)


def _smallest(D: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The m smallest entries of each row (unordered) and their column positions."""
    sel = np.argpartition(D, m - 1, axis=1)[:, :m]
    return np.take_along_axis(D, sel, axis=1), sel


class _TopK:
    """Running k-smallest lists (float32 distance, int64 index) of n rows, unsorted per row.

    ``thr[i]`` is the largest distance in row i's list once it is full (``inf`` before), so
    a new candidate can only enter the list if its distance is below ``thr[i]``.
    """

    def __init__(self, n: int, kk: int) -> None:
        self.kk = kk
        self.dist = np.full((n, kk), np.inf, dtype=np.float32)
        self.idx = np.full((n, kk), -1, dtype=np.int64)
        self.thr = np.full(n, np.inf, dtype=np.float32)
        self.pos = np.zeros(n, dtype=np.int64)  # where the maximum sits (compiled kernels)

    def merge(self, q: np.ndarray, nb: np.ndarray, dist: np.ndarray) -> None:
        """Offer candidates ``(query q, neighbour nb, distance)``; no pair may repeat."""
        if q.size == 0:
            return
        kk = self.kk
        o = np.argsort(q, kind="stable")
        qs = q[o]
        start = np.concatenate([[0], np.flatnonzero(qs[1:] != qs[:-1]) + 1])
        count = np.diff(np.append(start, qs.size))
        crowded = int(count.max()) > kk
        if crowded:
            # A row needs at most its kk best new candidates: order by query, then distance
            # (two stable passes; np.lexsort is many times slower) and drop the rest, so the
            # padded merge matrix is never wider than 2 kk.
            o = np.argsort(dist, kind="stable")
            o = o[np.argsort(q[o], kind="stable")]
        nb, dist = nb[o], dist[o]
        rows = qs[start]
        g = np.repeat(np.arange(rows.size), count)
        rank = np.arange(qs.size) - start[g]
        if crowded:
            keep = rank < kk
            g, rank, nb, dist = g[keep], rank[keep], nb[keep], dist[keep]
        width = kk + min(int(count.max()), kk)
        PD = np.full((rows.size, width), np.inf, dtype=np.float32)
        PI = np.empty((rows.size, width), dtype=np.int64)
        PD[:, :kk] = self.dist[rows]
        PI[:, :kk] = self.idx[rows]
        PD[g, kk + rank] = dist
        PI[g, kk + rank] = nb
        PD, sel = _smallest(PD, kk)
        self.dist[rows] = PD
        self.idx[rows] = np.take_along_axis(PI, sel, axis=1)
        self.thr[rows] = PD.max(axis=1)


# Unit roundoff of float32.
_U32 = 2.0**-24


def _centered(X: np.ndarray, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """float32 rows minus their float64 mean, and the float64 norms of the rounded rows.

    Distances do not change under translation; centring shrinks the norms, and with them the
    float32 rounding error of ``|x|^2 + |y|^2 - 2 x.y`` (large for a common offset, as in
    transformer layers).
    """
    n, d = X.shape
    mu = X.mean(axis=0, dtype=np.float64)
    Xc = np.empty((n, d), dtype=np.float32)
    sq = np.empty(n, dtype=np.float64)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        Xc[s:e] = X[s:e] - mu
        c = Xc[s:e].astype(np.float64)
        sq[s:e] = np.einsum("ij,ij->i", c, c)
    return Xc, sq


def _kernels():
    """The compiled selection kernels, or None where numba is not installed."""
    try:
        from isoscope.metrics import _knn_kernels
    except ImportError:
        return None
    return _knn_kernels


def _symmetric_candidates(
    Xc: np.ndarray,
    sq: np.ndarray,
    kk: int,
    block: int,
    timings: dict | None = None,
    compiled: bool = True,
) -> _TopK:
    """The kk nearest other rows of every row by float32 squared distance, half the GEMM work.

    Squared distances come out of one GEMM per block pair by augmenting the rows:
    ``[-2x, |x|^2, 1] . [y, 1, |y|^2] = |x|^2 + |y|^2 - 2 x.y``. Diagonal blocks go first, so
    every list holds kk entries (and a finite threshold) before the off-diagonal blocks, in
    which only entries below a row's or a column's threshold are gathered and merged. The GEMM
    of the next block pair runs in a second thread while this one's entries are selected.
    With numba, one compiled pass per block offers the entries to the lists in place
    (``compiled=False`` forces the numpy path). ``timings``, if given, receives the seconds
    spent per phase in the main thread.
    """
    from concurrent.futures import ThreadPoolExecutor

    kern = _kernels() if compiled else None
    if kern is not None:
        kern.warm_up()

    clock = time.perf_counter
    tm = {"wait_gemm": 0.0, "diagonal_select": 0.0, "threshold_select": 0.0, "merge": 0.0}
    n, d = Xc.shape
    Bm = np.empty((n, d + 2), dtype=np.float32)
    Bm[:, :d] = Xc
    Bm[:, d] = 1.0
    Bm[:, d + 1] = sq
    starts = [(s, min(s + block, n)) for s in range(0, n, block)]
    pairs = [(a, a) for a in range(len(starts))]
    pairs += [(a, b) for a in range(len(starts)) for b in range(a + 1, len(starts))]
    bufs = [np.empty((block, block), dtype=np.float32) for _ in range(2)]

    def gemm(j: int) -> np.ndarray:
        (s, e), (s2, e2) = starts[pairs[j][0]], starts[pairs[j][1]]
        A = np.empty((e - s, d + 2), dtype=np.float32)
        np.multiply(Xc[s:e], -2.0, out=A[:, :d])
        A[:, d] = sq[s:e]
        A[:, d + 1] = 1.0
        return np.matmul(A, Bm[s2:e2].T, out=bufs[j % 2][: e - s, : e2 - s2])

    top = _TopK(n, kk)
    with ThreadPoolExecutor(max_workers=1) as pool:
        job = pool.submit(gemm, 0)
        for j, (a, b) in enumerate(pairs):
            t0 = clock()
            D = job.result()
            t1 = clock()
            tm["wait_gemm"] += t1 - t0
            if j + 1 < len(pairs):
                job = pool.submit(gemm, j + 1)  # fills the other buffer meanwhile
            (s, e), (s2, e2) = starts[a], starts[b]
            if kern is not None:
                kern.select_rows(D, s, s2, a == b, top.dist, top.idx, top.thr, top.pos)
                if a != b:
                    kern.select_cols(D, s, s2, top.dist, top.idx, top.thr, top.pos, 8)
                tm["compiled_select"] = tm.get("compiled_select", 0.0) + clock() - t1
                continue
            if a == b:
                np.fill_diagonal(D, np.inf)  # the point itself; exact duplicates of it stay
                m = min(kk, e - s - 1)
                if m > 0:
                    top.dist[s:e, :m], sel = _smallest(D, m)
                    top.idx[s:e, :m] = sel + s
                    if m == kk:
                        top.thr[s:e] = top.dist[s:e].max(axis=1)
                tm["diagonal_select"] += clock() - t1
                continue
            w = e2 - s2
            flat = D.reshape(-1)
            # Row side: block entry (r, c) is a candidate neighbour s2+c of point s+r; column
            # side: the same entry is a candidate neighbour s+r of point s2+c.
            fr = np.flatnonzero(D < top.thr[s:e, None])
            fc = np.flatnonzero(D < top.thr[None, s2:e2])
            r, c = np.divmod(fr, w)
            r2, c2 = np.divmod(fc, w)
            cand = (
                np.concatenate([r + s, c2 + s2]),
                np.concatenate([c + s2, r2 + s]),
                np.concatenate([flat[fr], flat[fc]]),
            )
            t2 = clock()
            top.merge(*cand)
            tm["threshold_select"] += t2 - t1
            tm["merge"] += clock() - t2
    if timings is not None:
        timings.update(tm)
    return top


def _float64_search(
    X: np.ndarray, rows: np.ndarray, kk: int, chunk: int = 8192, row_chunk: int = 256,
    start: int = 0, stop: int | None = None,
) -> np.ndarray:
    """Indices of the kk nearest other rows of ``X[rows]`` by float64 squared distance.

    ``start:stop`` limits the searched rows to one block (default: all); a block then
    needs more than ``kk`` rows besides the query itself.
    """
    n = X.shape[0] if stop is None else int(stop)
    mu = X.mean(axis=0, dtype=np.float64)
    out = np.empty((rows.size, kk), dtype=np.int64)
    for r0 in range(0, rows.size, row_chunk):
        rr = rows[r0 : r0 + row_chunk]
        Q = X[rr].astype(np.float64) - mu
        qsq = np.einsum("ij,ij->i", Q, Q)
        best_d = np.full((rr.size, 0), np.inf)
        best_i = np.zeros((rr.size, 0), dtype=np.int64)
        for s in range(int(start), n, chunk):
            e = min(s + chunk, n)
            C = X[s:e].astype(np.float64) - mu
            D = qsq[:, None] + np.einsum("ij,ij->i", C, C)[None, :] - 2.0 * (Q @ C.T)
            own = (rr >= s) & (rr < e)
            D[np.flatnonzero(own), rr[own] - s] = np.inf
            best_d = np.concatenate([best_d, D], axis=1)
            best_i = np.concatenate([best_i, np.broadcast_to(np.arange(s, e), D.shape)], axis=1)
            if best_d.shape[1] > kk:
                sel = np.argpartition(best_d, kk - 1, axis=1)[:, :kk]
                best_d = np.take_along_axis(best_d, sel, axis=1)
                best_i = np.take_along_axis(best_i, sel, axis=1)
        out[r0 : r0 + rr.size] = best_i
    return out


def _symmetric_knn(
    X: np.ndarray,
    k: int,
    *,
    block: int | None = None,
    margin: int = 3,
    timings: dict | None = None,
    compiled: bool = True,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Exact self-kNN: float32 candidates (symmetric blocks), float64 refinement, certificate.

    ``k + margin`` candidates are kept per row by float32 squared distance, then their
    distances are recomputed from float64 differences and sorted. The result is certified
    exact for a row when its refined k-th squared distance lies below the float32 value of
    its last candidate minus a rigorous bound on the float32 error (every point left out has
    a float32 value at least that large); uncertified rows (near-ties at the boundary far
    from the origin, masses of duplicates) are searched again in float64. The default block
    (n/8 rows, 1024 to 4096) balances the diagonal blocks' full selections (work ~ n block)
    against the number of merges (~ n^2 / block).
    """
    if block is None:
        block = int(np.clip(X.shape[0] // 8 // 256 * 256, 1024, 4096))
    clock = time.perf_counter
    tm: dict = {}
    t0 = clock()
    n, d = X.shape
    kk = min(k + margin, n - 1)
    Xc, sq = _centered(X)
    t1 = clock()
    top = _symmetric_candidates(Xc, sq, kk, min(block, n), timings=tm, compiled=compiled)
    del Xc
    t2 = clock()
    Ind = top.idx
    D2 = _refine_sq(X, Ind)
    D2, Ind = _sort_rows(D2, Ind)
    t3 = clock()
    if kk == n - 1:
        bad = np.zeros(0, dtype=np.int64)
    else:
        # |fl(a.b) - a.b| <= gamma_m sum|a_t b_t| for the (d+2)-term augmented product, and
        # sum|a_t b_t| <= (|x| + |y|)^2; a few more u for rounding the centred rows and norms.
        # Only a y with |y| < |x| + d_k can be closer than the k-th neighbour, so the error
        # that matters is at most gamma (2|x| + d_k)^2.
        gamma = (d + 8) * _U32 / (1.0 - (d + 8) * _U32)
        reach = 2.0 * np.sqrt(sq) + np.sqrt(D2[:, k - 1])
        err = gamma * (reach * (1.0 + 1e-6)) ** 2
        ok = D2[:, k - 1] <= top.thr.astype(np.float64) - err
        bad = np.flatnonzero(~ok)
    if bad.size:
        Ib = _float64_search(X, bad, kk)
        Db, Ib = _sort_rows(_refine_sq(X, Ib, bad), Ib)
        D2[bad], Ind[bad] = Db, Ib
    if timings is not None:
        timings.update(
            center=t1 - t0,
            candidates=t2 - t1,
            **{f"candidates.{key}": v for key, v in tm.items()},
            refine_sort=t3 - t2,
            certify_recompute=clock() - t3,
        )
    return np.sqrt(D2[:, :k]), Ind[:, :k], int(bad.size)


def exact_knn(
    X: np.ndarray,
    k: int,
    *,
    metric: str = "euclidean",
    backend: str = "auto",
    refine: bool = True,
    timings: dict | None = None,
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
    backend : {"auto", "symmetric", "faiss", "sklearn"}
        ``"auto"`` is ``"symmetric"``: isoscope's blocked search over the symmetric distance
        matrix (half the multiply-adds of a full search), float64 refinement of ``k + 3``
        float32 candidates per row and a per-row exactness certificate (rows that fail it are
        searched again in float64); it always refines. ``"faiss"`` is ``IndexFlatL2``,
        ``"sklearn"`` scikit-learn brute force.
    refine : bool
        For ``"faiss"`` and ``"sklearn"``: recompute the returned distances from float64
        differences (default). faiss returns squared float32 distances; they are
        square-rooted after clipping at 0 either way.
    timings : dict, optional
        Diagnostic: receives the seconds spent per phase of the ``"symmetric"`` search.

    Returns
    -------
    Neighbors
        Distances ascending, true (not squared) distances.
    """
    if metric not in _METRICS:
        raise InputError(f"Unknown neighbour metric {metric!r}; use one of {', '.join(_METRICS)}.")
    if backend not in ("auto", "symmetric", "faiss", "sklearn"):
        raise InputError(
            f"Unknown neighbour backend {backend!r}; use auto, symmetric, faiss or sklearn."
        )
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
    if use == "symmetric":
        D, Ind, n_re = _symmetric_knn(X, k, timings=timings)
        return Neighbors(distances=D, indices=Ind, metric=metric, backend=use, n_recomputed=n_re)
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
        D, Ind = _sort_rows(_refine(X, Ind), Ind)
    return Neighbors(distances=D, indices=Ind, metric=metric, backend=use)
