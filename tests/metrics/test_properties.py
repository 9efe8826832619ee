"""Invariances the measures promise (hypothesis): rotation, permutation, documented scaling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isoscope.metrics import (
    isoscore,
    lid_mle,
    partition_isotropy,
    s_inter,
    s_intra,
    silhouette,
    spectrum,
    twonn,
)

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)


def _data(seed: int, n: int = 120, d: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * rng.uniform(0.2, 2.0, d) + rng.normal(0, 1, d)


def _rotation(seed: int, d: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed + 1000).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


@SETTINGS
@given(seed=st.integers(0, 10_000))
def test_rotation_invariance(seed: int) -> None:
    X = _data(seed)
    Q = _rotation(seed, X.shape[1])
    Y = X @ Q
    assert s_inter(Y) == pytest.approx(s_inter(X), abs=1e-10)
    assert isoscore(Y) == pytest.approx(isoscore(X), abs=1e-9)
    for norm in ("raw", "centered", "unit"):
        assert partition_isotropy(Y, normalisation=norm).log10 == pytest.approx(
            partition_isotropy(X, normalisation=norm).log10, rel=1e-7, abs=1e-9
        )
    np.testing.assert_allclose(
        spectrum(Y).eigenvalues, spectrum(X).eigenvalues, rtol=1e-8, atol=1e-10
    )
    assert lid_mle(Y, k=10).mean == pytest.approx(lid_mle(X, k=10).mean, rel=1e-4)
    labels = np.arange(X.shape[0]) % 3
    assert silhouette(Y, labels) == pytest.approx(silhouette(X, labels), abs=1e-9)


@SETTINGS
@given(seed=st.integers(0, 10_000))
def test_permutation_invariance(seed: int) -> None:
    X = _data(seed)
    perm = np.random.default_rng(seed).permutation(X.shape[0])
    words = np.array(list("abcdef"))[np.arange(X.shape[0]) % 6]
    assert s_inter(X[perm]) == pytest.approx(s_inter(X), abs=1e-12)
    assert s_intra(X[perm], words[perm], cap=None).value == pytest.approx(
        s_intra(X, words, cap=None).value, abs=1e-12
    )
    assert isoscore(X[perm]) == pytest.approx(isoscore(X), abs=1e-10)
    assert partition_isotropy(X[perm]).log10 == pytest.approx(partition_isotropy(X).log10, rel=1e-9)
    assert lid_mle(X[perm], k=10).mean == pytest.approx(lid_mle(X, k=10).mean, rel=1e-6)
    assert twonn(X[perm]) == pytest.approx(twonn(X), rel=1e-6)


@SETTINGS
@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 100.0))
def test_scale_behaviour(seed: int, scale: float) -> None:
    """Cosines, IsoScore, LID and the spectrum ratios are scale-free; raw I(V) is not."""
    X = _data(seed)
    Y = X * scale
    assert s_inter(Y) == pytest.approx(s_inter(X), abs=1e-10)
    assert isoscore(Y) == pytest.approx(isoscore(X), abs=1e-9)
    assert lid_mle(Y, k=10).mean == pytest.approx(lid_mle(X, k=10).mean, rel=1e-4)
    np.testing.assert_allclose(
        spectrum(Y).explained_variance_ratio, spectrum(X).explained_variance_ratio, atol=1e-10
    )
    assert partition_isotropy(Y, normalisation="unit").log10 == pytest.approx(
        partition_isotropy(X, normalisation="unit").log10, rel=1e-9
    )
    # log I(V) for centred vectors scales like the spread: larger vectors, less isotropic (documented).
    if scale > 1.5:
        assert partition_isotropy(Y).log10 < partition_isotropy(X).log10
