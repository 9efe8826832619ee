"""Local Intrinsic Dimension: the kNN maximum-likelihood estimator and TwoNN.

LID(p) = -( (1/k) sum_i log(d_i / d_k) )^-1 (Amsaleg et al. 2015) with true, not squared,
distances from the shared exact neighbour backend. Exact duplicate rows are removed first
(and counted); remaining distances at or below ``zero_tol * d_k`` (near-duplicates whose
float32 distance rounds to zero) are treated as the same point and left out of the sum,
so the estimate never collapses to 0 through ``log(0)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from isoscope._validation import check_vectors
from isoscope.errors import InputError
from isoscope.metrics._neighbors import Neighbors, exact_knn, unique_rows

__all__ = ["LIDResult", "lid_mle", "lid_mle_from_distances", "twonn", "twonn_from_distances"]


def lid_mle_from_distances(
    distances: np.ndarray, *, variant: str = "amsaleg", zero_tol: float = 1e-6
) -> tuple[np.ndarray, int]:
    """Per-point MLE of the local intrinsic dimension from sorted neighbour distances.

    Parameters
    ----------
    distances : ndarray of shape (n, k)
        True distances to the k nearest neighbours, ascending per row.
    variant : {"amsaleg", "levina_bickel"}
        ``"amsaleg"``: k / sum log(d_k/d_i) (Amsaleg et al. 2015, used by Cai et al.);
        ``"levina_bickel"``: (k-1) / sum log(d_k/d_i) (Levina & Bickel 2004, as scikit-dimension).
    zero_tol : float
        Distances ``<= zero_tol * d_k`` count as zero (the same point) and are left out.

    Returns
    -------
    lid : ndarray of shape (n,)
        Per-point estimates; NaN where undefined (all neighbours at distance zero, or all
        at exactly the same distance).
    n_zero : int
        Number of neighbour distances treated as zero.
    """
    if variant not in ("amsaleg", "levina_bickel"):
        raise InputError(f"Unknown LID variant {variant!r}; use amsaleg or levina_bickel.")
    D = np.asarray(distances, dtype=np.float64)
    if D.ndim != 2 or D.shape[1] < 2:
        raise InputError("LID needs a 2-D array of at least 2 neighbour distances per point.")
    dk = D[:, -1:]
    positive = D > zero_tol * dk
    positive &= dk > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(
            positive, np.log(np.where(positive, D, 1.0) / np.where(dk > 0, dk, 1.0)), 0.0
        )
    kk = positive.sum(axis=1).astype(np.float64)
    s = -logs.sum(axis=1)  # >= 0
    num = kk if variant == "amsaleg" else kk - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        lid = np.where((s > 0) & (kk >= 2), num / s, np.nan)
    n_zero = int(D.size - positive.sum())
    return lid, n_zero


@dataclass
class LIDResult:
    """Local intrinsic dimension estimates of one point set.

    Attributes
    ----------
    values : ndarray
        Per-point LID of the distinct points (NaN where undefined).
    mean, median : float
        Aggregates over the defined per-point values.
    k, metric, variant : settings used.
    n_points : int
        Rows given; ``n_duplicates`` of them exactly repeated an earlier row and were removed.
    n_zero_distances : int
        Neighbour distances treated as zero (near-duplicates) and left out of the sums.
    n_undefined : int
        Points whose LID is undefined (excluded from mean/median).
    """

    values: np.ndarray
    mean: float
    median: float
    k: int
    metric: str
    variant: str
    n_points: int
    n_duplicates: int
    n_zero_distances: int
    n_undefined: int
    neighbors: Neighbors | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """Scalars only (JSON-ready)."""
        return {
            "lid_mle": self.mean,
            "lid_mle_median": self.median,
            "lid_k": self.k,
            "lid_metric": self.metric,
            "lid_variant": self.variant,
            "n_points": self.n_points,
            "n_duplicates": self.n_duplicates,
            "n_zero_distances": self.n_zero_distances,
            "n_undefined": self.n_undefined,
        }


def _distinct(X: np.ndarray, duplicates: str) -> tuple[np.ndarray, int]:
    if duplicates not in ("drop", "keep"):
        raise InputError(f"Unknown duplicates option {duplicates!r}; use drop or keep.")
    keep, _ = unique_rows(X)
    n_dup = X.shape[0] - keep.size
    if duplicates == "drop" and n_dup:
        X = X[keep]
    return X, int(n_dup)


def lid_mle(
    X: np.ndarray,
    k: int = 20,
    *,
    metric: str = "euclidean",
    variant: str = "amsaleg",
    duplicates: str = "drop",
    zero_tol: float = 1e-6,
    backend: str = "auto",
    neighbors: Neighbors | None = None,
    timings: dict | None = None,
) -> LIDResult:
    """kNN maximum-likelihood LID of every point (Amsaleg et al. 2015), with mean and median.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Vectors, one per row.
    k : int
        Number of neighbours.
    metric : {"euclidean", "cosine"}
        Distance; ``"cosine"`` uses chordal distances between unit vectors.
    variant : {"amsaleg", "levina_bickel"}
        Normalisation of the estimator (see :func:`lid_mle_from_distances`).
    duplicates : {"drop", "keep"}
        ``"drop"`` (default) removes exact duplicate rows before the search; ``"keep"``
        leaves them (their zero distances are then skipped by the zero guard). The count is
        reported either way.
    zero_tol : float
        Relative tolerance below which a neighbour distance counts as zero.
    backend : {"auto", "symmetric", "faiss", "sklearn"}
        Neighbour backend (see :func:`~isoscope.metrics.exact_knn`).
    neighbors : Neighbors, optional
        Precomputed neighbours of the (de-duplicated) rows; skips the search.
    timings : dict, optional
        Diagnostic: receives the seconds spent per phase (``"knn.*"`` for the search).

    Returns
    -------
    LIDResult
    """
    clock = time.perf_counter
    t0 = clock()
    X = check_vectors(X, name="vectors", min_rows=2, dtype=np.float32)
    n = X.shape[0]
    Xd, n_dup = _distinct(X, duplicates)
    t1 = clock()
    knn_tm: dict = {}
    if neighbors is None:
        if Xd.shape[0] <= k:
            raise InputError(
                f"LID with k={k} needs more than {k} distinct points, got {Xd.shape[0]}."
            )
        neighbors = exact_knn(Xd, k, metric=metric, backend=backend, timings=knn_tm)
    t2 = clock()
    values, n_zero = lid_mle_from_distances(neighbors.distances, variant=variant, zero_tol=zero_tol)
    ok = np.isfinite(values)
    if not ok.any():
        raise InputError("LID is undefined for every point: all neighbour distances are zero.")
    mean, median = float(np.mean(values[ok])), float(np.median(values[ok]))
    if timings is not None:
        timings.update(
            validate_dedupe=t1 - t0,
            knn=t2 - t1,
            **{f"knn.{key}": v for key, v in knn_tm.items()},
            estimate=clock() - t2,
        )
    return LIDResult(
        values=values,
        mean=mean,
        median=median,
        k=neighbors.k,
        metric=neighbors.metric,
        variant=variant,
        n_points=n,
        n_duplicates=n_dup,
        n_zero_distances=n_zero,
        n_undefined=int((~ok).sum()),
        neighbors=neighbors,
    )


def twonn_from_distances(
    r1: np.ndarray,
    r2: np.ndarray,
    *,
    discard_fraction: float = 0.1,
    method: str = "linear",
) -> float:
    """TwoNN intrinsic dimension (Facco et al. 2017) from first and second neighbour distances.

    Parameters
    ----------
    r1, r2 : ndarray of shape (n,)
        Distances to the first and second nearest neighbours. Points with ``r1 == 0`` have
        no defined ratio and are dropped.
    discard_fraction : float
        Fraction of the largest ratios discarded (the paper's heuristic, 0.1).
    method : {"linear", "mle"}
        ``"linear"``: slope through the origin of ``-log(1 - F(mu))`` against ``log mu``
        (Facco et al.); ``"mle"``: unbiased censored maximum likelihood.

    Returns
    -------
    float
    """
    if method not in ("linear", "mle"):
        raise InputError(f"Unknown TwoNN method {method!r}; use linear or mle.")
    if not 0 <= discard_fraction < 1:
        raise InputError(f"discard_fraction must be in [0, 1), got {discard_fraction}.")
    r1 = np.asarray(r1, dtype=np.float64)
    r2 = np.asarray(r2, dtype=np.float64)
    ok = r1 > 0
    mu = np.sort(r2[ok] / r1[ok])
    N = mu.size
    n_keep = int(N * (1 - discard_fraction))
    if n_keep < 2:
        raise InputError(f"TwoNN needs at least 2 usable points, got {n_keep}.")
    log_mu = np.log(mu[:n_keep])
    if method == "mle":
        denom = log_mu.sum() + (N - n_keep) * log_mu[-1]
        return float((n_keep - 1) / denom) if denom > 0 else float("nan")
    F = np.arange(1, n_keep + 1) / N
    y = -np.log1p(-F)
    denom = float(log_mu @ log_mu)
    return float((log_mu @ y) / denom) if denom > 0 else float("nan")


def twonn(
    X: np.ndarray,
    *,
    metric: str = "euclidean",
    discard_fraction: float = 0.1,
    method: str = "linear",
    duplicates: str = "drop",
    backend: str = "auto",
    neighbors: Neighbors | None = None,
) -> float:
    """TwoNN intrinsic dimension of a point set, from the shared exact neighbour backend.

    Parameters
    ----------
    X : array-like of shape (n, d)
    metric : {"euclidean", "cosine"}
    discard_fraction, method : see :func:`twonn_from_distances`.
    duplicates : {"drop", "keep"}
        Exact duplicates are removed first by default.
    backend : {"auto", "symmetric", "faiss", "sklearn"}
    neighbors : Neighbors, optional
        Precomputed neighbours (at least 2 per point) of the de-duplicated rows.

    Returns
    -------
    float
    """
    X = check_vectors(X, name="vectors", min_rows=3, dtype=np.float32)
    Xd, _ = _distinct(X, duplicates)
    if neighbors is None:
        if Xd.shape[0] < 3:
            raise InputError(f"TwoNN needs at least 3 distinct points, got {Xd.shape[0]}.")
        neighbors = exact_knn(Xd, 2, metric=metric, backend=backend)
    return twonn_from_distances(
        neighbors.distances[:, 0],
        neighbors.distances[:, 1],
        discard_fraction=discard_fraction,
        method=method,
    )
