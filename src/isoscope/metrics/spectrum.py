"""PCA spectrum: explained-variance curve, components for 80 %, floored eigenvalues."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isoscope._validation import check_vectors
from isoscope.errors import InputError

__all__ = ["covariance", "floored_eigh", "Spectrum", "spectrum", "n_components_for"]


def covariance(X: np.ndarray, *, center: bool = True) -> np.ndarray:
    """Covariance (``center=True``, divisor n-1) or raw second moment ``X^T X / n`` in float64."""
    X = check_vectors(X, name="vectors", min_rows=2, dtype=np.float64)
    if center:
        Xc = X - X.mean(axis=0)
        return (Xc.T @ Xc) / (X.shape[0] - 1)
    return (X.T @ X) / X.shape[0]


def floored_eigh(C: np.ndarray, *, rtol: float | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Eigen-decomposition of a symmetric PSD matrix, descending, with tiny eigenvalues floored.

    ``eigh`` returns tiny negative eigenvalues for singular covariances (LayerNorm outputs have
    null directions); eigenvalues below ``rtol * max`` are set to exactly 0.

    Parameters
    ----------
    C : ndarray of shape (d, d)
        Symmetric positive semi-definite matrix.
    rtol : float, optional
        Relative floor; default ``10 * d * eps(float64)``.

    Returns
    -------
    eigenvalues : ndarray of shape (d,), descending, >= 0
    eigenvectors : ndarray of shape (d, d), columns matching the eigenvalues
    n_null : int
        Number of floored (null) directions.
    """
    C = np.asarray(C, dtype=np.float64)
    C = (C + C.T) / 2.0
    w, V = np.linalg.eigh(C)
    w, V = w[::-1], V[:, ::-1]
    if rtol is None:
        rtol = 10 * C.shape[0] * np.finfo(np.float64).eps
    floor = rtol * max(float(w[0]), 0.0)
    null = w <= floor
    w = np.where(null, 0.0, w)
    return w, V, int(null.sum())


def n_components_for(explained_variance_ratio: np.ndarray, threshold: float = 0.8) -> int:
    """Smallest number of leading components whose explained variance reaches ``threshold``."""
    if not 0 < threshold <= 1:
        raise InputError(f"The variance threshold must be in (0, 1], got {threshold}.")
    c = np.cumsum(explained_variance_ratio)
    # Tolerance so that e.g. exactly 80 % of variance in 4 components gives 4, not 5.
    return min(int(np.searchsorted(c, threshold - 1e-12)) + 1, int(c.size))


@dataclass
class Spectrum:
    """PCA spectrum of a point set."""

    eigenvalues: np.ndarray
    explained_variance_ratio: np.ndarray
    dims_80: int
    n_null: int

    def to_dict(self, n_ratio: int = 100) -> dict:
        """JSON-ready: ``pca_dims_80``, ``n_null_directions``, first ``n_ratio`` ratios."""
        return {
            "pca_dims_80": self.dims_80,
            "n_null_directions": self.n_null,
            "explained_variance_ratio": [float(v) for v in self.explained_variance_ratio[:n_ratio]],
        }


def spectrum(
    X: np.ndarray | None = None, *, cov: np.ndarray | None = None, threshold: float = 0.8
) -> Spectrum:
    """Explained-variance spectrum of ``X`` (or of a given covariance matrix).

    Parameters
    ----------
    X : array-like of shape (n, d), optional
    cov : ndarray of shape (d, d), optional
        Covariance, e.g. from :class:`~isoscope.metrics.StreamingMoments`.
    threshold : float
        Variance fraction for ``dims_80``.

    Returns
    -------
    Spectrum
    """
    if cov is None:
        if X is None:
            raise InputError("Give either vectors or a covariance matrix.")
        cov = covariance(X)
    w, _, n_null = floored_eigh(cov)
    total = w.sum()
    if total <= 0:
        raise InputError("The vectors have zero variance (all rows identical).")
    evr = w / total
    return Spectrum(w, evr, n_components_for(evr, threshold), n_null)
