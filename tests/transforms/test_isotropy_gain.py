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

from isoscope.metrics import isoscore, partition_isotropy
from isoscope.transforms import from_spec


def log_partition_isotropy(X: np.ndarray) -> float:
    """log10 I(V) on the raw vectors, as Mu & Viswanath computed it."""
    return partition_isotropy(X, normalisation="raw").log10


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
