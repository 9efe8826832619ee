"""Approximate neighbours and their audit, against the exact search as the oracle."""

from __future__ import annotations

import numpy as np
import pytest

from isoscope.analysis import analyze
from isoscope.errors import InputError
from isoscope.metrics._approx import approximate_knn, audit_neighbors, query_knn
from isoscope.metrics._neighbors import exact_knn
from isoscope.metrics.lid import lid_mle_from_distances


def _points(n: int = 800, d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((6, d)) * 4
    return (centres[rng.integers(0, 6, n)] + rng.standard_normal((n, d))).astype(np.float32)


def test_query_knn_equals_exact_self_knn() -> None:
    X = _points(300)
    rows = np.array([0, 5, 17, 299])
    d, i = query_knn(X, rows, 7)
    want = exact_knn(X, 7)
    np.testing.assert_array_equal(i, want.indices[rows])
    np.testing.assert_allclose(d, want.distances[rows], rtol=1e-12)


@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_audit_matches_an_independent_oracle(method: str) -> None:
    X = _points()
    k = 10
    approx = approximate_knn(X, k, method=method, seed=1)
    assert approx.indices.shape == (X.shape[0], k)
    assert not (approx.indices == np.arange(X.shape[0])[:, None]).any()
    audit = audit_neighbors(X, approx, size=150, seed=4)
    # Oracle: the exact search over every point, scored on the same seeded subsample.
    rows = np.sort(np.random.default_rng(4).choice(X.shape[0], size=150, replace=False))
    exact = exact_knn(X, k)
    recall = np.mean([len(set(a) & set(e)) / k for a, e in
                      zip(approx.indices[rows], exact.indices[rows], strict=True)])
    lid_a = lid_mle_from_distances(approx.distances[rows])[0]
    lid_e = lid_mle_from_distances(exact.distances[rows])[0]
    assert audit["knn_recall_at_k"] == pytest.approx(recall, rel=1e-12)
    assert audit["knn_lid_difference"] == pytest.approx(np.mean(lid_a - lid_e), rel=1e-9,
                                                        abs=1e-12)
    assert audit["knn_audit_size"] == 150 and audit["knn_audit_seed"] == 4
    assert 0.0 < audit["knn_recall_at_k"] <= 1.0


def test_ivf_with_few_probes_reports_a_cost() -> None:
    # Well-separated clusters probed a tenth at a time miss true neighbours across cells.
    X = np.random.default_rng(2).standard_normal((1500, 8)).astype(np.float32)
    approx = approximate_knn(X, 10, method="ivf", seed=0)
    audit = audit_neighbors(X, approx, size=300, seed=0)
    assert audit["knn_recall_at_k"] < 1.0
    assert audit["knn_lid_difference"] != 0.0


def test_analyze_reports_the_audit_and_exact_reports_none() -> None:
    X = _points(600).astype(np.float64)
    kw = {"sample": None, "seed": 0, "lid_k": 5, "k_range": [2, 3]}
    exact = analyze(X, **kw).layers[0]
    approx = analyze(X, neighbors="hnsw", neighbors_audit=100, **kw)
    entry = approx.layers[0]
    assert exact["knn_recall_at_k"] is None and exact["knn_audit_size"] is None
    assert entry["knn_audit_size"] == 100
    assert entry["knn_audit_seed"] == approx.settings["seeds"]["neighbor_audit"]
    assert 0.0 < entry["knn_recall_at_k"] <= 1.0
    with pytest.raises(InputError, match="neighbors"):
        analyze(X, neighbors="lsh", **kw)
