"""Streaming accumulators equal the in-memory measures and merge exactly."""

from __future__ import annotations

import numpy as np
import pytest

from isoscope.errors import InputError
from isoscope.metrics import (
    StreamingLogPartition,
    StreamingMoments,
    isoscore,
    partition_isotropy,
    rogue_dimensions,
    s_inter,
    stream_partition_isotropy,
)


def _chunks(X: np.ndarray, size: int):
    return lambda: (X[i : i + size] for i in range(0, len(X), size))


def test_moments_match_in_memory() -> None:
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((1003, 9)) * 2 + 1000.0).astype(np.float32)  # large mean offset
    acc = StreamingMoments()
    for c in _chunks(X, 97)():
        acc.update(c)
    Xd = X.astype(np.float64)
    np.testing.assert_allclose(acc.mean, Xd.mean(0), rtol=1e-12)
    np.testing.assert_allclose(acc.covariance(), np.cov(Xd, rowvar=False), rtol=1e-9, atol=1e-12)
    assert acc.s_inter() == pytest.approx(s_inter(Xd), abs=1e-12)
    np.testing.assert_allclose(acc.rogue_contributions(), rogue_dimensions(Xd)[1], atol=1e-14)
    assert acc.isoscore() == pytest.approx(isoscore(Xd), abs=1e-10)
    assert acc.mean_norm() == pytest.approx(np.linalg.norm(Xd, axis=1).mean())


def test_merge_is_order_independent() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((600, 5))
    a, b, c = (
        StreamingMoments().update(X[s]) for s in (slice(0, 100), slice(100, 450), slice(450, None))
    )
    ab_c = StreamingMoments().merge(a).merge(b).merge(c)
    c_ba = StreamingMoments().merge(c).merge(b).merge(a)
    np.testing.assert_allclose(ab_c.covariance(), c_ba.covariance(), rtol=1e-12)
    np.testing.assert_allclose(ab_c.covariance(), np.cov(X, rowvar=False), rtol=1e-12)
    assert ab_c.n == 600


@pytest.mark.parametrize("normalisation", ["raw", "centered", "unit"])
def test_streamed_partition_isotropy_matches(normalisation: str) -> None:
    rng = np.random.default_rng(2)
    X = rng.standard_normal((2000, 7)) * np.linspace(0.3, 1.2, 7) + 0.5
    streamed, _ = stream_partition_isotropy(_chunks(X, 333), normalisation=normalisation)
    direct = partition_isotropy(X, normalisation=normalisation)
    assert streamed.log10 == pytest.approx(direct.log10, rel=1e-9, abs=1e-12)


def test_log_partition_merge_and_huge_values() -> None:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 4)) * 400.0
    C = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    a = StreamingLogPartition(C).update(X[:200])
    b = StreamingLogPartition(C).update(X[200:])
    a.merge(b)
    from scipy.special import logsumexp

    np.testing.assert_allclose(a.log_z, logsumexp(X @ C, axis=0), rtol=1e-12)
    assert np.isfinite(a.log_z).all()


def test_streaming_bad_inputs() -> None:
    acc = StreamingMoments()
    with pytest.raises(InputError, match="NaN or Inf"):
        acc.update(np.array([[np.nan, 1.0]]))
    acc.update(np.ones((2, 3)))
    with pytest.raises(InputError, match="dimensions"):
        acc.update(np.ones((2, 4)))
    with pytest.raises(InputError, match="At least 2"):
        StreamingMoments().update(np.ones((1, 2))).covariance()
