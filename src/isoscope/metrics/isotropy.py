"""Partition-function isotropy I(V) (Mu & Viswanath 2018), IsoScore and IsoScore*.

I(V) = min_c Z(c) / max_c Z(c), Z(c) = sum_w exp(c^T v_w), over the eigenvectors c of
V^T V. ``eigh`` returns each eigenvector with an arbitrary sign and Z(c) != Z(-c), so both
signs of every direction are used. log Z is computed with log-sum-exp, so GPT-scale norms
neither overflow nor underflow; I(V) itself may underflow to 0, hence ``log10`` beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from isoscope._validation import check_vectors
from isoscope.errors import InputError
from isoscope.metrics.spectrum import covariance, floored_eigh

__all__ = [
    "NORMALISATIONS",
    "normalise",
    "log_partition",
    "PartitionIsotropy",
    "partition_isotropy",
    "isotropy_from_log_z",
    "isoscore",
    "isoscore_from_eigenvalues",
    "isoscore_star",
]

NORMALISATIONS = ("raw", "centered", "unit")


def normalise(X: np.ndarray, normalisation: str, mean: np.ndarray | None = None) -> np.ndarray:
    """Apply the named normalisation: ``raw`` (as is), ``centered`` (minus mean), ``unit`` (rows / norm)."""
    if normalisation not in NORMALISATIONS:
        raise InputError(
            f"Unknown normalisation {normalisation!r}; use one of {', '.join(NORMALISATIONS)}."
        )
    X = np.asarray(X, dtype=np.float64)
    if normalisation == "centered":
        return X - (X.mean(axis=0) if mean is None else mean)
    if normalisation == "unit":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise InputError(
                f"Unit normalisation needs non-zero vectors, but {int((norms == 0).sum())} rows are all zero."
            )
        return X / norms
    return X


def log_partition(V: np.ndarray, directions: np.ndarray, *, chunk: int = 16384) -> np.ndarray:
    """log Z(c) = log sum_w exp(c^T v_w) for every column c of ``directions`` (log-sum-exp).

    Parameters
    ----------
    V : ndarray of shape (n, d)
    directions : ndarray of shape (d, m)
    chunk : int
        Rows per block (bounds memory at ``chunk * m`` floats).

    Returns
    -------
    ndarray of shape (m,)
    """
    parts = []
    for s in range(0, V.shape[0], chunk):
        P = np.asarray(V[s : s + chunk], dtype=np.float64) @ directions
        parts.append(logsumexp(P, axis=0))
    return logsumexp(np.vstack(parts), axis=0)


@dataclass
class PartitionIsotropy:
    """I(V) with its log10, the extreme log Z values and the settings used."""

    value: float
    log10: float
    log_z_min: float
    log_z_max: float
    normalisation: str
    n_directions: int

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {
            "isotropy_partition": self.value,
            "isotropy_partition_log10": self.log10,
            "log_z_min": self.log_z_min,
            "log_z_max": self.log_z_max,
            "isotropy_normalisation": self.normalisation,
            "n_directions": self.n_directions,
        }


def isotropy_from_log_z(log_z: np.ndarray, normalisation: str) -> PartitionIsotropy:
    """Assemble :class:`PartitionIsotropy` from log Z over all directions (both signs)."""
    lo, hi = float(np.min(log_z)), float(np.max(log_z))
    log_i = lo - hi
    return PartitionIsotropy(
        value=float(np.exp(log_i)),
        log10=float(log_i / np.log(10.0)),
        log_z_min=lo,
        log_z_max=hi,
        normalisation=normalisation,
        n_directions=int(np.size(log_z)),
    )


def partition_isotropy(X: np.ndarray, *, normalisation: str = "centered") -> PartitionIsotropy:
    """Partition-function isotropy I(V) over both signs of the eigenvectors of V^T V.

    Parameters
    ----------
    X : array-like of shape (n, d)
    normalisation : {"raw", "centered", "unit"}
        Applied to the rows before anything else; recorded in the result.

    Returns
    -------
    PartitionIsotropy
        ``value`` in (0, 1]; 1 means perfectly isotropic. ``log10`` stays finite when
        ``value`` underflows.
    """
    X = check_vectors(X, name="vectors", min_rows=2, dtype=np.float64)
    V = normalise(X, normalisation)
    _, U, _ = floored_eigh(V.T @ V)
    log_z = log_partition(V, np.hstack([U, -U]))
    return isotropy_from_log_z(log_z, normalisation)


def isoscore_from_eigenvalues(eigenvalues: np.ndarray) -> float:
    """IsoScore (Rudman et al. 2022) from the covariance eigenvalues (the PCA variance vector).

    Parameters
    ----------
    eigenvalues : ndarray of shape (d,)
        Non-negative variances along the principal directions (all d, zeros included).

    Returns
    -------
    float
        In [0, 1]: 1 for equal variance in every direction, 0 for all variance in one.
    """
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    n = float(lam.size)
    if n < 2:
        raise InputError("IsoScore needs vectors of at least 2 dimensions.")
    norm = np.linalg.norm(lam)
    if norm == 0:
        raise InputError("IsoScore is undefined for vectors with zero variance.")
    lam_hat = lam * np.sqrt(n) / norm
    defect = np.linalg.norm(lam_hat - 1.0) / np.sqrt(2.0 * (n - np.sqrt(n)))
    score = ((n - defect**2 * (n - np.sqrt(n))) ** 2 - n) / (n * (n - 1.0))
    return float(np.clip(score, 0.0, 1.0))


def isoscore(X: np.ndarray | None = None, *, cov: np.ndarray | None = None) -> float:
    """IsoScore of a point cloud (rows are points) or of its covariance matrix.

    Biased low when there are fewer points than dimensions; see :func:`isoscore_star`.
    """
    if cov is None:
        if X is None:
            raise InputError("Give either vectors or a covariance matrix.")
        cov = covariance(X)
    w, _, _ = floored_eigh(cov)
    return isoscore_from_eigenvalues(w)


def isoscore_star(
    X: np.ndarray | None = None,
    *,
    cov: np.ndarray | None = None,
    C0: np.ndarray | str = "scaled_identity",
    zeta: float = 0.2,
) -> float:
    """IsoScore* (Rudman & Eickhoff 2024): IsoScore of the shrunk covariance ``(1-zeta) C + zeta C0``.

    Parameters
    ----------
    X : array-like of shape (n, d), optional
        Points (rows); or give ``cov``.
    cov : ndarray of shape (d, d), optional
    C0 : ndarray of shape (d, d) or {"identity", "scaled_identity"}
        Shrinkage target: ideally the covariance of a larger sample of the same distribution
        (the suite uses the whole streamed layer). ``"identity"`` is the isoscore package's
        fallback; ``"scaled_identity"`` is ``trace(C)/d * I`` (scale-free).
    zeta : float in [0, 1]
        Shrinkage weight.

    Returns
    -------
    float
    """
    if not 0 <= zeta <= 1:
        raise InputError(f"zeta must be in [0, 1], got {zeta}.")
    if cov is None:
        if X is None:
            raise InputError("Give either vectors or a covariance matrix.")
        cov = covariance(X)
    d = cov.shape[0]
    if isinstance(C0, str):
        if C0 == "identity":
            target = np.eye(d)
        elif C0 == "scaled_identity":
            target = np.eye(d) * (np.trace(cov) / d)
        else:
            raise InputError(f"Unknown C0 {C0!r}; give a matrix, identity or scaled_identity.")
    else:
        target = np.asarray(C0, dtype=np.float64)
        if target.shape != (d, d):
            raise InputError(f"C0 must be a {d} x {d} matrix, got shape {target.shape}.")
    w, _, _ = floored_eigh((1.0 - zeta) * cov + zeta * target)
    return isoscore_from_eigenvalues(w)
