"""Frequency structure: correlation of top principal components and norms with log frequency.

Liang et al. (2021) found the first principal component of contextual embeddings strongly
correlated with word frequency. Principal directions have no intrinsic sign; here each is
oriented so that its largest-magnitude loading is positive (scikit-learn's ``svd_flip``
convention), so the sign of a PC correlation is reproducible but conventional; its
magnitude is what rotation and permutation leave unchanged.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from isoscope._validation import check_vectors
from isoscope.errors import InputError
from isoscope.metrics.spectrum import floored_eigh

__all__ = ["principal_directions", "frequency_correlations"]


def principal_directions(X: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Top principal directions of ``X`` (columns) with a deterministic sign, and the mean."""
    X = np.asarray(X, dtype=np.float64)
    mu = X.mean(axis=0)
    Xc = X - mu
    _, V, _ = floored_eigh(Xc.T @ Xc)
    V = V[:, :n_components]
    flip = np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])])
    return V * np.where(flip == 0, 1.0, flip), mu


def _corr(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float | None]:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None, None
    return float(stats.pearsonr(a, b)[0]), float(stats.spearmanr(a, b)[0])


def frequency_correlations(
    X: np.ndarray,
    frequency: np.ndarray,
    *,
    n_components: int = 3,
    n_bins: int = 3,
    log: bool = True,
) -> dict:
    """Pearson and Spearman correlation of PC projections and norms with log frequency.

    Parameters
    ----------
    X : array-like of shape (n, d)
        One vector per token occurrence (or per word type).
    frequency : array-like of shape (n,)
        Corpus count (``log=True``, natural log taken) or already a log frequency such as
        a Zipf value (``log=False``). Rows with non-positive counts are ignored.
    n_components : int
        Number of top principal components correlated.
    n_bins : int
        Frequency quantile bins (rare ... frequent) summarised in ``regions``.

    Returns
    -------
    dict
        ``freq_pc{i}_pearson`` / ``freq_pc{i}_spearman`` for i = 1..n_components,
        ``freq_norm_pearson`` / ``freq_norm_spearman``, ``n`` and ``regions``: per bin the
        log-frequency range and the mean PC1, PC2 and norm (where frequent and rare words sit).
    """
    X = check_vectors(X, name="vectors", min_rows=3, dtype=np.float64)
    f = np.asarray(frequency, dtype=np.float64)
    if f.shape != (X.shape[0],):
        raise InputError(f"Got {f.size} frequencies for {X.shape[0]} vectors.")
    ok = np.isfinite(f) & ((f > 0) if log else True)
    X, f = X[ok], f[ok]
    if X.shape[0] < 3:
        raise InputError("Frequency correlations need at least 3 vectors with a known frequency.")
    lf = np.log(f) if log else f
    if np.ptp(lf) == 0:
        raise InputError(
            "All vectors have the same frequency (a single word type), so frequency "
            "correlations are undefined."
        )
    n_components = min(n_components, X.shape[1])
    V, mu = principal_directions(X, n_components)
    P = (X - mu) @ V
    out: dict = {"n": int(X.shape[0])}
    for i in range(n_components):
        p, s = _corr(P[:, i], lf)
        out[f"freq_pc{i + 1}_pearson"], out[f"freq_pc{i + 1}_spearman"] = p, s
    norms = np.linalg.norm(X, axis=1)
    out["freq_norm_pearson"], out["freq_norm_spearman"] = _corr(norms, lf)
    edges = np.quantile(lf, np.linspace(0, 1, n_bins + 1))
    bins = np.clip(np.searchsorted(edges, lf, side="right") - 1, 0, n_bins - 1)
    regions = []
    for b in range(n_bins):
        m = bins == b
        if not m.any():
            continue
        regions.append(
            {
                "log_freq_min": float(lf[m].min()),
                "log_freq_max": float(lf[m].max()),
                "n": int(m.sum()),
                "pc1_mean": float(P[m, 0].mean()),
                "pc2_mean": float(P[m, 1].mean()) if n_components > 1 else None,
                "norm_mean": float(norms[m].mean()),
            }
        )
    out["regions"] = regions
    return out
