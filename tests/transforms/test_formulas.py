"""Each repair against a direct computation of its published formula on small matrices."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from isoscope.errors import InputError
from isoscope.transforms import (
    AllButTheTop,
    ClusterIsotropy,
    Identity,
    LearnedRemoval,
    MeanCenter,
    Standardize,
    Whitening,
    ZipfianWhitening,
    from_spec,
    spec_of,
)
from isoscope.transforms._base import default_abtt_components
from isoscope.transforms._cluster import default_cluster_components

RTOL, ATOL = 1e-9, 1e-9


def _abtt_direct(X_fit: np.ndarray, X: np.ndarray, D: int) -> np.ndarray:
    """ABTT with scikit-learn's PCA for the directions (independent of our eigh path)."""
    pca = PCA(n_components=D, svd_solver="full").fit(X_fit)
    Xc = X - X_fit.mean(axis=0)
    U = pca.components_
    return Xc - Xc @ U.T @ U


def _same_up_to_column_signs(A: np.ndarray, B: np.ndarray) -> None:
    signs = np.sign(np.sum(A * B, axis=0))
    np.testing.assert_allclose(A, B * signs, rtol=1e-7, atol=1e-7)


def test_identity_and_mean_center(full_rank):
    np.testing.assert_array_equal(Identity().fit_transform(full_rank), full_rank)
    Z = MeanCenter().fit(full_rank[:200]).transform(full_rank[200:])
    np.testing.assert_allclose(Z, full_rank[200:] - full_rank[:200].mean(axis=0), rtol=RTOL)


@pytest.mark.parametrize("D", [1, 3, 7])
def test_abtt_matches_pca_formula(full_rank, D):
    fit, new = full_rank[:200], full_rank[200:]
    est = AllButTheTop(n_components=D).fit(fit)
    np.testing.assert_allclose(est.transform(new), _abtt_direct(fit, new, D), rtol=1e-7, atol=1e-8)
    # The removed directions are orthonormal and the output has no component along them.
    np.testing.assert_allclose(est.components_ @ est.components_.T, np.eye(D), atol=1e-12)
    np.testing.assert_allclose(est.transform(new) @ est.components_.T, 0.0, atol=1e-9)


def test_abtt_default_rule_is_d_over_100():
    assert default_abtt_components(768) == 8
    assert default_abtt_components(4096) == 41
    rng = np.random.default_rng(0)
    assert AllButTheTop().fit(rng.normal(size=(50, 300))).n_components_ == 3
    assert AllButTheTop().fit(rng.normal(size=(20, 16))).n_components_ == 1


def test_standardize_matches_standard_scaler(full_rank):
    X = full_rank.copy()
    X[:, 2] = 5.0  # a constant dimension must not divide by zero
    ours = Standardize().fit(X[:200])
    ref = StandardScaler().fit(X[:200])
    Z = ours.transform(X[200:])
    assert np.all(np.isfinite(Z))
    keep = np.arange(8) != 2
    np.testing.assert_allclose(Z[:, keep], ref.transform(X[200:])[:, keep], rtol=1e-9)
    assert ours.n_floored_ == 1


def test_whitening_matches_su_et_al_and_gives_identity_covariance(full_rank):
    X = full_rank
    Z = Whitening().fit_transform(X)
    np.testing.assert_allclose(np.cov(Z.T), np.eye(8), atol=1e-9)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-9)
    # Su et al.'s code: W = U diag(1/sqrt(s)) from svd(np.cov(X.T)), y = (x - mu) W.
    u, s, _ = np.linalg.svd(np.cov(X.T))
    _same_up_to_column_signs(Z, (X - X.mean(axis=0)) @ (u / np.sqrt(s)))
    # Reduced to k dimensions: the first k whitened axes.
    Zk = Whitening(n_components=3).fit_transform(X)
    assert Zk.shape == (300, 3)
    np.testing.assert_allclose(np.cov(Zk.T), np.eye(3), atol=1e-9)
    _same_up_to_column_signs(Zk, Z[:, :3])


def test_zipfian_whitening_gives_identity_weighted_covariance(full_rank):
    X = full_rank
    freq = np.random.default_rng(3).zipf(1.5, size=len(X)).astype(float)
    Z = ZipfianWhitening().fit(X, sample_weight=freq).transform(X)
    p = freq / freq.sum()
    np.testing.assert_allclose(p @ Z, 0.0, atol=1e-8)
    np.testing.assert_allclose((Z * p[:, None]).T @ Z, np.eye(8), atol=1e-8)
    # Yokoi et al.'s formulation: SVD of sqrt(p)-scaled centred vectors.
    mu = p @ X
    _, S, Vt = np.linalg.svd(np.sqrt(p)[:, None] * (X - mu), full_matrices=False)
    _same_up_to_column_signs(Z, (X - mu) @ Vt.T / S)
    # Frequencies are only relative, and uniform weights give the unweighted statistics.
    np.testing.assert_allclose(
        ZipfianWhitening().fit(X, sample_weight=freq * 7).transform(X), Z, atol=1e-9
    )
    uniform = ZipfianWhitening().fit(X).transform(X)
    np.testing.assert_allclose(uniform.T @ uniform / len(X), np.eye(8), atol=1e-9)


def test_zipfian_whitening_rejects_bad_frequencies(full_rank):
    with pytest.raises(InputError, match="at least one non-zero"):
        ZipfianWhitening().fit(full_rank, sample_weight=np.zeros(len(full_rank)))
    with pytest.raises(InputError, match="Negative values"):
        ZipfianWhitening().fit(full_rank, sample_weight=-np.ones(len(full_rank)))


def test_whitening_floors_null_directions_of_layernorm_like_vectors():
    """LayerNorm outputs sum to zero per row: the covariance is singular."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 12)) @ rng.normal(size=(12, 12))
    X = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)
    for est in (Whitening(), ZipfianWhitening(), Standardize()):
        Z = est.fit_transform(X)
        assert np.all(np.isfinite(Z)), type(est).__name__
    est = Whitening().fit(X)
    assert est.n_floored_ == 1
    Z = est.transform(X)
    np.testing.assert_allclose(np.cov(Z[:, :11].T), np.eye(11), atol=1e-8)
    np.testing.assert_allclose(Z[:, 11], 0.0)
    # Also with fewer vectors than dimensions, and for vectors off the fitted span.
    est = Whitening().fit(X[:5])
    assert est.n_floored_ == 12 - 4
    assert np.all(np.isfinite(est.transform(rng.normal(size=(10, 12)))))


def test_cluster_with_one_cluster_equals_abtt(full_rank):
    fit, new = full_rank[:200], full_rank[200:]
    for D in (1, 4):
        ours = ClusterIsotropy(n_clusters=1, n_components=D).fit(fit)
        np.testing.assert_allclose(
            ours.transform(new), AllButTheTop(n_components=D).fit(fit).transform(new), atol=1e-10
        )


def test_cluster_matches_per_cluster_formula():
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=10, size=(3, 6))
    X = np.vstack([c + rng.normal(size=(60, 6)) * [4, 2, 1, 1, 1, 1] for c in centres])
    new = np.vstack([c + rng.normal(size=(5, 6)) for c in centres])
    est = ClusterIsotropy(n_clusters=3, n_components=2, random_state=0).fit(X)
    km = KMeans(n_clusters=3, n_init=10, random_state=0).fit(X)  # the paper's 10 restarts
    np.testing.assert_allclose(est.cluster_centers_, km.cluster_centers_)
    # New vectors go to the nearest centroid and use that cluster's mean and directions.
    labels = np.argmin(((new[:, None, :] - est.cluster_centers_[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(est.predict(new), labels)
    expected = np.empty_like(new)
    fit_labels = est.predict(X)
    for c in range(3):
        members = X[fit_labels == c]
        expected[labels == c] = _abtt_direct(members, new[labels == c], 2)
    np.testing.assert_allclose(est.transform(new), expected, rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(est.cluster_sizes_, np.bincount(fit_labels, minlength=3))


def test_cluster_handles_clusters_too_small_for_d_directions():
    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(size=(40, 5)), [[50.0, 50, 50, 50, 50], [51.0, 50, 49, 50, 50]]])
    est = ClusterIsotropy(n_clusters=2, n_components=3).fit(X)
    small = int(np.argmin(est.cluster_sizes_))
    assert est.cluster_sizes_[small] == 2
    assert est.cluster_n_components_[small] == 1  # a 2-vector cluster has 1 direction
    assert est.cluster_n_components_[1 - small] == 3
    Z = est.transform(X)
    assert np.all(np.isfinite(Z))
    np.testing.assert_allclose(Z[-2:], 0.0, atol=1e-9)
    # As many clusters as vectors: every cluster is a singleton, centred onto 0.
    tiny = ClusterIsotropy(n_clusters=4).fit(X[:4])
    assert tiny.n_clusters_ == 4
    np.testing.assert_allclose(tiny.transform(X[:4]), 0.0, atol=1e-12)


def test_cluster_refuses_more_clusters_than_fit_vectors():
    """Regression (issue 18): n_clusters above the number of fit points was silently capped."""
    X = np.random.default_rng(2).normal(size=(4, 5))
    with pytest.raises(InputError, match="n_clusters=27 is more than the 4 fit vectors") as info:
        ClusterIsotropy(n_clusters=27).fit(X)
    assert str(info.value).count(". ") == 0 and str(info.value).endswith(".")
    with pytest.raises(InputError, match="n_clusters=5 is more than the 4 fit vectors"):
        ClusterIsotropy(n_clusters=5, n_components=1).fit(X)


def test_cluster_defaults_are_the_papers_and_scaled_is_a_named_option(cone):
    """Rajaee & Pilehvar: C = 27, D = 12 at every width, sklearn KMeans with 10 inits."""
    est = from_spec("cluster")
    assert (est.n_clusters, est.n_components, est.n_init) == (27, 12, 10)
    assert ClusterIsotropy(n_clusters=4).fit(cone).n_components_ == 12  # width 16: still 12
    # isoscope's width-scaled variant: D = round(12 d / 768), at least 1.
    assert default_cluster_components(768) == 12
    assert default_cluster_components(384) == 6
    assert default_cluster_components(1024) == 16
    assert default_cluster_components(16) == 1
    scaled = from_spec("cluster:n_clusters=4,n_components=scaled")
    assert scaled.n_components == "scaled"
    assert scaled.fit(cone).n_components_ == 1
    assert spec_of(scaled) == "cluster:n_clusters=4,n_components=scaled"
    with pytest.raises(InputError, match="positive integer or 'scaled'"):
        ClusterIsotropy(n_clusters=4, n_components="auto").fit(cone)
    with pytest.raises(InputError, match="positive integer or 'scaled'"):
        ClusterIsotropy(n_clusters=4, n_components=None).fit(cone)


def test_cluster_default_runs_ten_kmeans_initialisations(cone):
    """The best of 10 k-means++ starts, exactly as scikit-learn's KMeans(n_init=10)."""
    est = ClusterIsotropy(n_clusters=5, random_state=0).fit(cone)
    km = KMeans(n_clusters=5, n_init=10, random_state=0).fit(cone)
    np.testing.assert_allclose(est.cluster_centers_, km.cluster_centers_)
    one = ClusterIsotropy(n_clusters=5, n_init=1, random_state=0).fit(cone)
    km1 = KMeans(n_clusters=5, n_init=1, random_state=0).fit(cone)
    np.testing.assert_allclose(one.cluster_centers_, km1.cluster_centers_)


def test_abtt_refuses_to_remove_every_direction(cone):
    """Regression (issue 18): n_components at or above the width zeroed every vector."""
    for D in (16, 17):
        with pytest.raises(InputError, match=f"n_components={D} must be below the width") as info:
            AllButTheTop(n_components=D).fit(cone)
        assert str(info.value).count(". ") == 0 and str(info.value).endswith(".")
    assert AllButTheTop(n_components=15).fit(cone).n_components_ == 15
    # The default rule never removes every direction either (width 1: only centring).
    one = AllButTheTop().fit(cone[:, :1])
    assert one.n_components_ == 0
    assert np.any(one.transform(cone[:, :1]) != 0)


def test_cluster_is_reproducible_with_a_seed(cone):
    a = ClusterIsotropy(n_clusters=4, random_state=3).fit_transform(cone)
    b = ClusterIsotropy(n_clusters=4, random_state=3).fit_transform(cone)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "est",
    [MeanCenter(), AllButTheTop(2), ClusterIsotropy(n_clusters=2), Whitening(), Standardize()],
    ids=lambda e: type(e).__name__,
)
def test_wrong_width_is_one_clear_sentence(full_rank, est):
    est.fit(full_rank)
    with pytest.raises(InputError) as info:
        est.transform(full_rank[:, :5])
    msg = str(info.value)
    assert msg == f"X has 5 features, but {type(est).__name__} is expecting 8 features as input."
    assert isinstance(info.value, ValueError)


def test_nan_input_is_a_user_error(full_rank):
    X = full_rank.copy()
    X[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        AllButTheTop().fit(X)


def test_float32_in_float32_out(full_rank):
    X = full_rank.astype(np.float32)
    for name in ("center", "abtt", "cluster:n_clusters=2", "whiten", "zipf", "standardize"):
        assert from_spec(name).fit_transform(X).dtype == np.float32, name


def test_learned_removal_with_unit_weights_equals_abtt(full_rank):
    fit, new = full_rank[:200], full_rank[200:]
    with pytest.warns(UserWarning, match="equals all-but-the-top"):
        est = LearnedRemoval(n_components=3).fit(fit)
    assert est.trained_ is False
    np.testing.assert_array_equal(est.weights_, np.ones(3))
    abtt = AllButTheTop(n_components=3).fit(fit)
    np.testing.assert_allclose(est.transform(new), abtt.transform(new), atol=1e-12)
    # Direct formula with arbitrary weights: v' = v~ - sum_i w_i (u_i . v~) u_i.
    est.weights_ = np.array([0.2, 1.0, 0.5])
    Vc = new - fit.mean(axis=0)
    expected = Vc - sum(
        w * np.outer(Vc @ u, u) for w, u in zip(est.weights_, abtt.components_, strict=True)
    )
    np.testing.assert_allclose(est.transform(new), expected, atol=1e-9)


def _word_pairs(X: np.ndarray, n_pairs: int, seed: int):
    """Pairs whose human score depends on the dominant direction, which ABTT removes."""
    rng = np.random.default_rng(seed)
    A = X[rng.integers(0, len(X), n_pairs)]
    B = X[rng.integers(0, len(X), n_pairs)]
    top = PCA(1).fit(X).components_[0]
    mu = X.mean(axis=0)
    scores = -np.abs((A - mu) @ top - (B - mu) @ top) + rng.normal(scale=0.5, size=n_pairs)
    return A, B, scores


@pytest.mark.parametrize("objective", ["pearson", "soft_spearman"])
def test_learned_removal_beats_abtt_on_its_training_pairs(cone, objective):
    A, B, s = _word_pairs(cone, 150, seed=0)
    est = LearnedRemoval(n_components=3, objective=objective).fit(cone, pairs=(A, B, s))
    assert est.trained_ and est.n_train_pairs_ == 150
    assert np.all((est.weights_ >= 0) & (est.weights_ <= 1))
    assert est.weights_[0] < 0.9  # it learns to keep (part of) the informative direction
    assert est.train_spearman_ > est.train_spearman_abtt_ + 0.05
    # The closed-form cosines used in training agree with transform().
    Za, Zb = est.transform(A), est.transform(B)
    cos = np.sum(Za * Zb, 1) / np.linalg.norm(Za, axis=1) / np.linalg.norm(Zb, axis=1)
    from scipy.stats import spearmanr

    assert spearmanr(cos, s).statistic == pytest.approx(est.train_spearman_, abs=1e-9)


def test_learned_removal_keeps_training_and_evaluation_pairs_apart(cone):
    A, B, s = _word_pairs(cone, 60, seed=0)
    est = LearnedRemoval(n_components=2).fit(cone, pairs=(A[:40], B[:40], s[:40]))
    est.check_disjoint(A[40:], B[40:])  # held-out pairs are fine
    with pytest.raises(InputError, match="1 of 3 evaluation pairs were used to train"):
        est.check_disjoint(np.vstack([A[45:47], B[5]]), np.vstack([B[45:47], A[5]]))


def test_learned_removal_rejects_malformed_pairs(cone):
    A, B, s = _word_pairs(cone, 20, seed=0)
    with pytest.raises(InputError, match="A_vectors, B_vectors, scores"):
        LearnedRemoval().fit(cone, pairs=(A, B))
    with pytest.raises(InputError, match="training pair vectors have 5 dimensions"):
        LearnedRemoval().fit(cone, pairs=(A[:, :5], B[:, :5], s))
    with pytest.raises(InputError, match="one score per pair"):
        LearnedRemoval().fit(cone, pairs=(A, B, s[:-1]))
    with pytest.raises(InputError, match="objective must be one of"):
        LearnedRemoval(objective="mse").fit(cone, pairs=(A, B, s))


def test_split_pairs_shares_no_pair_or_word():
    from isoscope.transforms import split_pairs

    a = ["cat", "dog", "car", "sun", "tea", "dog", "red", "sea", "map", "ink"]
    b = ["dog", "cat", "bus", "moon", "cup", "cat", "blue", "sky", "pen", "pen"]
    train, ev = split_pairs(a, b, eval_fraction=0.3, seed=0)
    assert len(np.intersect1d(train, ev)) == 0 and len(train) + len(ev) == 10
    pair = lambda i: frozenset((a[i], b[i]))  # noqa: E731
    assert not {pair(i) for i in train} & {pair(i) for i in ev}
    np.testing.assert_array_equal(split_pairs(a, b, eval_fraction=0.3, seed=0)[1], ev)
    train, ev = split_pairs(a, b, eval_fraction=0.5, seed=1, disjoint_words=True)
    words = lambda idx: {a[i] for i in idx} | {b[i] for i in idx}  # noqa: E731
    assert not words(train) & words(ev)
    with pytest.raises(InputError, match="eval_fraction"):
        split_pairs(a, b, eval_fraction=1.0)


def test_lanczos_and_full_eigh_give_the_same_directions():
    """Wide inputs with few directions take the ARPACK path; check it against full eigh."""
    from isoscope.transforms._base import sorted_eigh, top_directions

    rng = np.random.default_rng(4)
    X = rng.normal(size=(150, 96)) * np.linspace(3, 0.5, 96)
    Xc = X - X.mean(axis=0)
    U, var = top_directions(Xc, 5)  # 5 <= 96 // 4: Lanczos
    evals, evecs = sorted_eigh(Xc.T @ Xc / 149)
    np.testing.assert_allclose(var, evals[:5], rtol=1e-10)
    np.testing.assert_allclose(U, evecs[:, :5].T, atol=1e-8)


@pytest.mark.parametrize("tau", [None, 0.05])
def test_learned_removal_gradient_matches_finite_differences(cone, tau):
    from scipy.optimize import check_grad

    from isoscope.transforms._learned import _objective, _projection_stats

    A, B, s = _word_pairs(cone, 80, seed=3)
    est = AllButTheTop(n_components=4).fit(cone)
    stats = _projection_stats(A, B, est.mean_, est.components_)
    f = lambda t: _objective(t, stats, s, 0.1, tau)[0]  # noqa: E731
    g = lambda t: _objective(t, stats, s, 0.1, tau)[1]  # noqa: E731
    for t in (np.full(4, 0.3), np.array([0.9, 0.1, 0.5, 0.7])):
        assert check_grad(f, g, t, epsilon=1e-7) < 1e-5 * max(1.0, np.linalg.norm(g(t)))


def test_top_directions_of_identical_points_fall_back_to_eigh() -> None:
    """A cluster of duplicates has a zero covariance; Lanczos cannot start from it."""
    from isoscope.transforms._base import top_directions

    X = np.zeros((5, 128))
    V, var = top_directions(X, 3)
    assert V.shape == (3, 128) and np.allclose(var, 0.0)
    np.testing.assert_allclose(V @ V.T, np.eye(3), atol=1e-12)


def test_cluster_repair_with_a_cluster_of_duplicates() -> None:
    from isoscope.transforms import ClusterIsotropy

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(200, 96)), np.tile(rng.normal(size=96) * 50, (20, 1))])
    out = ClusterIsotropy(n_clusters=4, n_components=2, random_state=0).fit_transform(X)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[200:], 0.0, atol=1e-8)  # a duplicate cluster centres to zero
