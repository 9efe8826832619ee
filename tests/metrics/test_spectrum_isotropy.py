"""Spectrum, partition isotropy and IsoScore against direct computations and the isoscore package."""

from __future__ import annotations

import numpy as np
import pytest

from isoscope.errors import InputError
from isoscope.metrics import (
    floored_eigh,
    isoscore,
    isoscore_star,
    n_components_for,
    partition_isotropy,
    spectrum,
)


def _direct_isotropy(V: np.ndarray) -> float:
    _, _, Wt = np.linalg.svd(V, full_matrices=False)
    C = np.hstack([Wt.T, -Wt.T])
    Z = np.exp(V @ C).sum(axis=0)
    return float(Z.min() / Z.max())


@pytest.mark.parametrize("normalisation", ["raw", "centered", "unit"])
def test_partition_isotropy_matches_direct_z(normalisation: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 10)) * np.linspace(0.2, 1.0, 10) + 0.3
    if normalisation == "centered":
        V = X - X.mean(0)
    elif normalisation == "unit":
        V = X / np.linalg.norm(X, axis=1, keepdims=True)
    else:
        V = X
    res = partition_isotropy(X, normalisation=normalisation)
    assert res.value == pytest.approx(_direct_isotropy(V), rel=1e-9)
    assert res.log10 == pytest.approx(np.log10(res.value), rel=1e-9)
    assert res.normalisation == normalisation


def test_partition_isotropy_ground_truth_and_no_overflow() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20000, 8)) * 0.1
    assert partition_isotropy(X).value > 0.95
    # GPT-scale norms: naive exp overflows, log-sum-exp does not.
    big = rng.standard_normal((2000, 16)) * 300.0
    big[:, 0] *= 5
    res = partition_isotropy(big, normalisation="raw")
    assert res.value == 0.0  # underflows as a float ...
    assert np.isfinite(res.log10) and res.log10 < -100  # ... but its log10 is finite
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.exp(big @ np.eye(16)).sum(0)).all()


def test_both_signs_matter() -> None:
    # Skewed along one axis: Z(c) != Z(-c); using one sign of each eigenvector would miss it.
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.exponential(1.0, 5000), rng.standard_normal(5000)])
    res = partition_isotropy(X, normalisation="centered")
    _, U, _ = floored_eigh((X - X.mean(0)).T @ (X - X.mean(0)))
    V = X - X.mean(0)
    for sign in (1, -1):
        Z = np.exp(V @ (sign * U)).sum(0)
        assert res.value <= Z.min() / Z.max() + 1e-12
    assert res.value == pytest.approx(_direct_isotropy(V), rel=1e-9)


def test_spectrum_dims_and_floor() -> None:
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((2000, 4)) * np.array([2.0, 1.0, 1.0, 1.0])
    X = Z @ np.linalg.qr(rng.standard_normal((30, 4)))[0].T  # rank 4 in 30 dims
    sp = spectrum(X)
    assert sp.n_null == 26
    assert (sp.eigenvalues >= 0).all()
    assert sp.explained_variance_ratio.sum() == pytest.approx(1.0)
    assert sp.dims_80 == 3  # 4/7 + 1/7 + 1/7 >= 0.8 > 5/7
    assert n_components_for(np.array([0.5, 0.3, 0.2])) == 2
    assert n_components_for(np.array([0.5, 0.29, 0.21])) == 3


def _package_isoscore(X: np.ndarray) -> float:
    mod = pytest.importorskip("IsoScore.IsoScore")
    # The package takes (num_samples, dimension) in v2 (it took the transpose in v1).
    return float(mod.IsoScore(X))


def test_isoscore_matches_package() -> None:
    rng = np.random.default_rng(4)
    for scale in (np.ones(12), np.linspace(0.1, 3, 12), np.r_[10.0, np.full(11, 0.1)]):
        X = rng.standard_normal((3000, 12)) * scale
        assert isoscore(X) == pytest.approx(_package_isoscore(X), abs=1e-6)


def test_isoscore_star_matches_package() -> None:
    mod = pytest.importorskip("IsoScore.IsoScore")
    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 20)) * np.linspace(0.5, 2, 20)
    C0 = np.cov(rng.standard_normal((5000, 20)) * np.linspace(0.5, 2, 20), rowvar=False)
    ref = float(mod.IsoScore_star(X, C0, 0.3))
    assert isoscore_star(X, C0=C0, zeta=0.3) == pytest.approx(ref, abs=1e-6)
    ref_id = float(mod.IsoScore_star(X, np.eye(20), 0.5))
    assert isoscore_star(X, C0="identity", zeta=0.5) == pytest.approx(ref_id, abs=1e-6)


def test_isoscore_ground_truth() -> None:
    rng = np.random.default_rng(6)
    assert isoscore(rng.standard_normal((20000, 10))) > 0.99
    line = np.outer(rng.standard_normal(500), rng.standard_normal(10))
    assert isoscore(line) == pytest.approx(0.0, abs=1e-9)
    # n < d: IsoScore biased low; IsoScore* with a good reference corrects it.
    X = rng.standard_normal((20, 50))
    assert isoscore(X) < 0.5
    assert isoscore_star(X, C0=np.eye(50), zeta=0.5) > isoscore(X)


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="Unknown normalisation"):
        partition_isotropy(np.eye(3), normalisation="whiten")
    with pytest.raises(InputError, match="zero variance"):
        isoscore(np.ones((10, 3)))
    with pytest.raises(InputError, match="zeta"):
        isoscore_star(np.eye(3), zeta=2)
    with pytest.raises(InputError, match="all zero"):
        partition_isotropy(np.zeros((4, 3)), normalisation="unit")
