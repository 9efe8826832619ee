"""Every repair makes a strongly anisotropic synthetic cone more isotropic.

Isotropy is measured on held-out vectors (fitted on one sample, measured on another) with
the two measures of the issue: the partition-function isotropy I(V) of Mu & Viswanath on
the raw (uncentred) vectors, and IsoScore (Rudman et al.). IsoScore is computed from the
covariance, so it cannot change under a pure translation: for mean centring it must stay
equal, for every other repair both measures must rise.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from isoscope.transforms import from_spec

try:  # the project's own measures
    from isoscope.metrics.isotropy import isoscore as _isoscore
    from isoscope.metrics.isotropy import partition_isotropy as _partition_isotropy

    def log_partition_isotropy(X: np.ndarray) -> float:
        return _partition_isotropy(X, normalisation="raw").log10

    def isoscore(X: np.ndarray) -> float:
        return _isoscore(X)

except ImportError:  # a self-contained computation of the same two quantities
    from scipy.special import logsumexp

    def log_partition_isotropy(X: np.ndarray) -> float:
        """log10 of min_c Z(c) / max_c Z(c), c over +/- eigenvectors of X^T X (log-sum-exp)."""
        _, U = np.linalg.eigh(X.T @ X)
        log_z = logsumexp(X @ np.hstack([U, -U]), axis=0)
        return float((log_z.min() - log_z.max()) / np.log(10))

    def isoscore(X: np.ndarray) -> float:
        """IsoScore from the PCA variance vector (Rudman et al. 2022, Algorithm 1)."""
        lam = np.clip(np.linalg.eigvalsh(np.cov(X.T)), 0, None)
        n = lam.size
        lam_hat = np.sqrt(n) * lam / np.linalg.norm(lam)
        delta = np.linalg.norm(lam_hat - 1) / np.sqrt(2 * (n - np.sqrt(n)))
        phi = (n - delta**2 * (n - np.sqrt(n))) ** 2 / n**2
        return float((n * phi - 1) / (n - 1))


SPECS = [
    "center",
    "abtt:n_components=3",
    "cluster:n_clusters=3,n_components=3",
    "learned:n_components=3",
    "whiten",
    "whiten:n_components=8",
    "zipf",
    "standardize",
]


def test_the_cone_is_strongly_anisotropic(cone):
    assert log_partition_isotropy(cone) < -10
    assert isoscore(cone) < 0.3


@pytest.mark.parametrize("spec", SPECS)
def test_repair_raises_isotropy_on_held_out_vectors(cone, cone_eval, spec):
    est = from_spec(spec)
    freq = np.random.default_rng(5).zipf(2.0, size=len(cone)).astype(float)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LearnedRemoval was fitted without")
        if spec == "zipf":
            est.fit(cone, sample_weight=freq)
        else:
            est.fit(cone)
    Z = est.transform(cone_eval)
    before_pi, after_pi = log_partition_isotropy(cone_eval), log_partition_isotropy(Z)
    before_iso, after_iso = isoscore(cone_eval), isoscore(Z)
    assert after_pi > before_pi + 2, (before_pi, after_pi)  # I(V) at least 100x higher
    if spec == "center":
        assert after_iso == pytest.approx(before_iso, abs=1e-9)
    else:
        assert after_iso > before_iso + 0.3, (before_iso, after_iso)
