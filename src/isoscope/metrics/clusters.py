"""k-means with silhouette model selection, the silhouette curve and the Maximum Mean Silhouette.

The silhouette is O(n^2), so it is computed on a seeded subsample (recorded); the k-means fit
uses every given point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from isoscope._validation import check_vectors
from isoscope.errors import InputError

__all__ = ["silhouette_samples", "silhouette", "ClusterResult", "kmeans_silhouette"]


def _pairwise_euclidean(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    d2 = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * (A @ B.T)
    return np.sqrt(np.clip(d2, 0.0, None))


def silhouette_samples(
    X: np.ndarray | None,
    labels: np.ndarray,
    *,
    chunk: int = 2048,
    distances: np.ndarray | None = None,
) -> np.ndarray:
    """Silhouette coefficient of every point (Euclidean), Rousseeuw 1987.

    s(i) = (b - a) / max(a, b) with a the mean distance to the other members of its cluster and
    b the smallest mean distance to another cluster; 0 for members of singleton clusters.

    Parameters
    ----------
    X : array-like of shape (n, d)
    labels : array-like of int, shape (n,), at least 2 distinct labels
    chunk : int
        Rows of the distance matrix held at once.
    distances : ndarray of shape (n, n), optional
        Precomputed Euclidean distance matrix (then ``X`` may be None); lets one matrix serve
        every k of a model selection.

    Returns
    -------
    ndarray of shape (n,)
    """
    if distances is None:
        X = check_vectors(X, name="vectors", min_rows=2, dtype=np.float64)
        n = X.shape[0]
    else:
        n = distances.shape[0]
    _, lab = np.unique(np.asarray(labels), return_inverse=True)
    lab = lab.ravel()
    k = int(lab.max()) + 1
    if k < 2 or k >= n:
        raise InputError(
            f"The silhouette needs between 2 and n-1 clusters, got {k} clusters for {n} points."
        )
    onehot = np.zeros((n, k))
    onehot[np.arange(n), lab] = 1.0
    counts = onehot.sum(0)
    out = np.empty(n)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        if distances is None:
            assert X is not None
            D = _pairwise_euclidean(X[s:e], X)
        else:
            D = np.array(distances[s:e], dtype=np.float64)
        D[np.arange(e - s), np.arange(s, e)] = 0.0
        sums = D @ onehot  # (m, k) summed distance to every cluster
        own = lab[s:e]
        own_n = counts[own] - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            a = sums[np.arange(e - s), own] / own_n
            mean_other = sums / counts
        mean_other[np.arange(e - s), own] = np.inf
        b = mean_other.min(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            sil = (b - a) / np.maximum(a, b)
        out[s:e] = np.where(own_n > 0, np.nan_to_num(sil, nan=0.0), 0.0)
    return out


def silhouette(X: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient (same value as ``sklearn.metrics.silhouette_score``)."""
    return float(np.mean(silhouette_samples(X, labels)))


def _kmeans(
    X: np.ndarray, k: int, *, seed: int, n_init: int, backend: str, max_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and exact cluster means (of the final assignment) of a k-means fit."""
    if backend not in ("auto", "faiss", "sklearn"):
        raise InputError(f"Unknown k-means backend {backend!r}; use auto, faiss or sklearn.")
    use = backend
    if use == "auto":
        try:
            import faiss  # noqa: F401

            use = "faiss"
        except ImportError:  # pragma: no cover - faiss is a dependency
            use = "sklearn"
    if use == "faiss":
        import faiss

        X32 = np.ascontiguousarray(X, dtype=np.float32)
        km = faiss.Kmeans(
            X32.shape[1],
            k,
            niter=max_iter,
            nredo=n_init,
            seed=int(seed) + 1,
            max_points_per_centroid=X32.shape[0],  # never subsample the points
            min_points_per_centroid=1,  # small samples are fine; silences faiss's warning
            verbose=False,
        )
        km.train(X32)
        _, lab = km.index.search(X32, 1)
        lab = lab.ravel().astype(np.int64)
    else:
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed, max_iter=max_iter).fit(X)
        lab = km.labels_.astype(np.int64)
    # Relabel to 0..m-1 (an empty cluster would leave a gap) and use exact means.
    _, lab = np.unique(lab, return_inverse=True)
    lab = lab.ravel().astype(np.int64)
    m = int(lab.max()) + 1
    # Cluster sums as one sparse product (np.add.at is an unbuffered per-row loop).
    from scipy.sparse import csr_matrix

    onehot = csr_matrix((np.ones(len(lab)), (lab, np.arange(len(lab)))), shape=(m, len(lab)))
    sums = np.asarray(onehot @ np.asarray(X, dtype=np.float64))
    return lab, sums / np.bincount(lab, minlength=m)[:, None]


@dataclass
class ClusterResult:
    """k-means model selection by silhouette.

    Attributes
    ----------
    ks, scores : silhouette curve (mean silhouette on the subsample, per k).
    best_k : int
        k with the largest mean silhouette.
    mms : float
        Maximum Mean Silhouette (the best score).
    n_clusters : int
        Chosen |C|: ``best_k``, or 1 when ``min_mms`` is set and MMS is below it
        (Cai et al.'s "no real clusters" rule).
    labels, centers : assignment of every input point and cluster means for ``n_clusters``.
    sizes : list of int
    silhouette_n, seed, min_mms : settings recorded.
    """

    ks: list[int]
    scores: list[float]
    best_k: int
    mms: float
    n_clusters: int
    labels: np.ndarray = field(repr=False)
    centers: np.ndarray = field(repr=False)
    sizes: list[int]
    silhouette_n: int
    seed: int
    min_mms: float | None
    models: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {
            "n_clusters": self.n_clusters,
            "best_k": self.best_k,
            "mms": self.mms,
            "silhouette_curve": {"k": list(self.ks), "score": list(self.scores)},
            "cluster_sizes": list(self.sizes),
            "silhouette_n": self.silhouette_n,
        }

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Nearest chosen cluster mean of each row."""
        X = np.asarray(X, dtype=np.float64)
        if self.n_clusters == 1:
            return np.zeros(X.shape[0], dtype=np.int64)
        return np.argmin(_pairwise_euclidean(X, self.centers), axis=1).astype(np.int64)


def kmeans_silhouette(
    X: np.ndarray,
    k_range: tuple[int, int] = (2, 15),
    *,
    silhouette_sample: int | None = 3000,
    seed: int = 0,
    n_init: int = 3,
    min_mms: float | None = 0.1,
    backend: str = "auto",
    max_iter: int = 100,
) -> ClusterResult:
    """k-means for every k in ``k_range`` (inclusive); pick k by mean silhouette.

    Parameters
    ----------
    X : array-like of shape (n, d)
    k_range : (int, int)
        Smallest and largest k tried (Cai et al.: 2..15).
    silhouette_sample : int or None
        Points (seeded uniform subsample) on which the silhouette is computed; None = all.
    seed : int
        Seeds k-means and the subsample.
    n_init : int
        k-means restarts.
    min_mms : float or None
        If the Maximum Mean Silhouette is below this, report |C| = 1 (Cai et al. used 0.1);
        None disables the rule.
    backend : {"auto", "faiss", "sklearn"}
        k-means implementation (faiss by default: much faster on a busy CPU); both run Lloyd
        iterations from k-means++ (sklearn) or random (faiss) seeds, best of ``n_init``.
    max_iter : int
        Lloyd iterations per restart.

    Returns
    -------
    ClusterResult
    """
    X = check_vectors(X, name="vectors", min_rows=3, dtype=np.float64)
    k_lo, k_hi = int(k_range[0]), int(k_range[1])
    if k_lo < 2 or k_hi < k_lo:
        raise InputError(f"The k range must satisfy 2 <= k_min <= k_max, got {k_lo}..{k_hi}.")
    n = X.shape[0]
    if k_hi >= n:
        raise InputError(f"k-means up to k={k_hi} needs more than {k_hi} points, got {n}.")
    n_distinct = np.unique(X, axis=0).shape[0] if n <= 50000 else n
    if n_distinct <= k_lo:
        raise InputError(
            f"Only {n_distinct} distinct vectors: too few for k-means with at least {k_lo} clusters."
        )
    k_hi = min(k_hi, n_distinct - 1)
    rng = np.random.default_rng(seed)
    if silhouette_sample is not None and silhouette_sample < n:
        sub = np.sort(rng.choice(n, size=silhouette_sample, replace=False))
    else:
        sub = np.arange(n)
    ks, scores, models = [], [], {}
    D_sub: np.ndarray | None = None
    for k in range(k_lo, k_hi + 1):
        lab, cen = _kmeans(X, k, seed=seed, n_init=n_init, backend=backend, max_iter=max_iter)
        if np.unique(lab[sub]).size < 2:
            score = float("nan")
        else:
            if D_sub is None:  # one distance matrix serves every k
                D_sub = _pairwise_euclidean(X[sub], X[sub])
            score = float(np.mean(silhouette_samples(None, lab[sub], distances=D_sub)))
        ks.append(k)
        scores.append(score)
        models[k] = (lab, cen)
    finite = np.isfinite(scores)
    if not finite.any():
        raise InputError(
            "The silhouette is undefined for every k: the sample has too few distinct points."
        )
    best_i = int(np.nanargmax(np.where(finite, scores, -np.inf)))
    best_k, mms = ks[best_i], float(scores[best_i])
    if min_mms is not None and mms < min_mms:
        n_clusters = 1
        labels = np.zeros(n, dtype=np.int64)
        centers = X.mean(axis=0, keepdims=True)
    else:
        n_clusters = best_k
        labels, centers = models[best_k]
    sizes = np.bincount(labels, minlength=n_clusters).tolist()
    return ClusterResult(
        ks=ks,
        scores=[float(s) for s in scores],
        best_k=best_k,
        mms=mms,
        n_clusters=n_clusters,
        labels=labels,
        centers=centers,
        sizes=sizes,
        silhouette_n=int(sub.size),
        seed=seed,
        min_mms=min_mms,
        models=models,
    )
