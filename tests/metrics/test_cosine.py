"""Cosine structure against direct O(n^2) averages and known ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from isoscope.errors import InputError
from isoscope.metrics import (
    center_by_cluster,
    ethayarajh,
    intra_sentence_similarity,
    mev,
    rogue_dimensions,
    s_inter,
    s_intra,
    select_groups,
)


def _direct_mean_cos(X: np.ndarray) -> float:
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    C = U @ U.T
    n = len(X)
    return float((C.sum() - np.trace(C)) / (n * (n - 1)))


def test_s_inter_equals_direct_pairwise_average() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((257, 12)) + 0.7
    assert s_inter(X) == pytest.approx(_direct_mean_cos(X), abs=1e-12)


def test_s_inter_ground_truth_isotropic_and_shifted() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4000, 64))
    assert abs(s_inter(X)) < 0.01
    shifted = X + 50.0
    assert s_inter(shifted) > 0.99
    centered = center_by_cluster(shifted, np.zeros(len(X), dtype=int))
    assert abs(s_inter(centered)) < 0.01


def test_s_intra_equals_direct_per_word_average() -> None:
    rng = np.random.default_rng(2)
    words = rng.choice(["a", "b", "c", "d", "e"], size=300, p=[0.4, 0.3, 0.2, 0.08, 0.02])
    onehot = words[:, None] == np.array(["a", "b", "c", "d", "e"])
    X = rng.standard_normal((300, 8)) + np.pad(onehot, ((0, 0), (0, 3))) * 2.0
    res = s_intra(X, words, min_occurrences=10, cap=None)
    direct = [_direct_mean_cos(X[words == w]) for w in "abcde" if (words == w).sum() >= 10]
    assert res.value == pytest.approx(np.mean(direct), abs=1e-12)
    assert res.n_types == len(direct)


def test_select_groups_caps_and_is_seeded() -> None:
    keys = np.array(["x"] * 100 + ["y"] * 7 + ["z"] * 3)
    rows, codes, names = select_groups(keys, min_occurrences=5, cap=20, seed=3)
    assert list(names) == ["x", "y"]
    assert np.bincount(codes).tolist() == [20, 7]
    assert np.all(np.diff(rows) > 0)
    rows2, _, _ = select_groups(keys, min_occurrences=5, cap=20, seed=3)
    np.testing.assert_array_equal(rows, rows2)
    rows3, _, _ = select_groups(keys, min_occurrences=5, cap=20, seed=4)
    assert not np.array_equal(rows, rows3)


def test_s_intra_none_when_no_type_repeats() -> None:
    X = np.random.default_rng(0).standard_normal((10, 3))
    assert s_intra(X, [str(i) for i in range(10)]).value is None


def test_rogue_dimensions_sum_to_s_inter_and_find_the_rogue() -> None:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 20))
    X[:, 7] += 30.0
    rogue, contrib = rogue_dimensions(X, top=3)
    assert contrib.sum() == pytest.approx(s_inter(X), abs=1e-12)
    assert rogue[0]["dim"] == 7 and rogue[0]["share"] > 0.95


def test_intra_sentence_similarity_direct() -> None:
    rng = np.random.default_rng(4)
    X = rng.standard_normal((30, 5))
    sid = np.repeat([0, 1, 2], 10)
    direct = []
    for s in range(3):
        S = X[sid == s]
        m = S.mean(0)
        direct.append(np.mean(S @ m / (np.linalg.norm(S, axis=1) * np.linalg.norm(m))))
    assert intra_sentence_similarity(X, sid) == pytest.approx(np.mean(direct), abs=1e-12)


def test_mev_matches_svd_and_bounds() -> None:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 6))
    codes = np.repeat([0, 1], 20)
    vals = mev(X, codes)
    for g in range(2):
        s = np.linalg.svd(X[codes == g], compute_uv=False)
        assert vals[g] == pytest.approx(s[0] ** 2 / (s**2).sum(), rel=1e-10)
    # identical direction: MEV 1
    line = np.outer(rng.uniform(1, 2, 10), rng.standard_normal(6))
    assert mev(line, np.zeros(10, dtype=int))[0] == pytest.approx(1.0)


def test_ethayarajh_adjusted_values() -> None:
    rng = np.random.default_rng(6)
    words = np.repeat([f"w{i}" for i in range(20)], 10)
    centers = rng.standard_normal((20, 16)) * 3
    X = centers[np.repeat(np.arange(20), 10)] + rng.standard_normal((200, 16))
    out = ethayarajh(X, words, sentence_X=X, sentence_ids=np.arange(200) // 8, seed=0)
    base = s_inter(X)
    assert out["anisotropy_baseline"] == pytest.approx(base)
    assert out["self_similarity_adjusted"] == pytest.approx(out["self_similarity"] - base)
    assert out["self_similarity"] > 0.6
    assert out["mev"] > out["mev_baseline"]
    assert out["intra_sentence_similarity"] is not None
    assert out["n_types"] == 20


def test_cosine_bad_inputs() -> None:
    with pytest.raises(InputError, match="all-zero rows"):
        s_inter(np.array([[0.0, 0.0], [1.0, 2.0]]))
    with pytest.raises(InputError, match="NaN or Inf"):
        s_inter(np.array([[np.inf, 0.0], [1.0, 2.0]]))
    with pytest.raises(InputError, match="word keys"):
        s_intra(np.ones((3, 2)), ["a", "b"])
