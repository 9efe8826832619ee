"""Token clouds and word trajectories computed from a small store (isoscope.artefacts), drawn."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from isoscope.errors import InputError  # noqa: E402
from isoscope.report import (  # noqa: E402
    cloud_from_arrays,
    plot_pca_cloud,
    plot_word_trajectories,
    token_cloud,
    word_trajectories,
)


def test_token_cloud_matches_an_independent_pca(tiny_store):
    c = token_cloud(tiny_store, 2, n=100, seed=3)
    assert c.n == 100 and c.coords.shape == (100, 3) and c.layer == 2
    X, rows = tiny_store.sample(2, 100, 3)
    Xc = X.astype(np.float64) - X.mean(axis=0)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    np.testing.assert_allclose(c.explained_variance_ratio, (s**2 / (s**2).sum())[:3], rtol=1e-6)
    # Same subspace up to the sign of each axis.
    for j in range(3):
        ref = Xc @ vt[j]
        assert abs(np.corrcoef(ref, c.coords[:, j])[0, 1]) == pytest.approx(1.0, abs=1e-6)
    counts = tiny_store.tokens()["word_count"].to_numpy()[rows]
    np.testing.assert_allclose(c.log_freq, np.log10(counts))
    assert not any(lbl.startswith("[CLS]") for lbl in c.labels)


def test_token_cloud_is_seeded_and_uses_the_same_tokens_in_every_layer(tiny_store):
    a, b = token_cloud(tiny_store, 1, n=50, seed=7), token_cloud(tiny_store, 1, n=50, seed=7)
    np.testing.assert_array_equal(a.coords, b.coords)
    other_layer = token_cloud(tiny_store, 3, n=50, seed=7)
    assert other_layer.labels == a.labels
    assert token_cloud(tiny_store, 1, n=50, seed=8).labels != a.labels
    z = token_cloud(tiny_store, 1, n=50, seed=7, frequency="zipf")
    assert "Zipf" in z.freq_label
    with pytest.raises(InputError, match="Layer 9"):
        token_cloud(tiny_store, 9)
    with pytest.raises(InputError):
        token_cloud(tiny_store, 1, frequency="bogus")


def test_cloud_from_arrays_subsamples_and_validates():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    c = cloud_from_arrays(X, log_freq=np.linspace(0, 3, 300), n=120, seed=1, n_components=2)
    assert c.coords.shape == (120, 2) and c.n_total == 300
    assert np.all(np.diff(c.log_freq) > 0)  # rows keep their order
    with pytest.raises(InputError):
        cloud_from_arrays(X, log_freq=np.zeros(3))
    X[0, 0] = np.nan
    with pytest.raises(InputError):
        cloud_from_arrays(X)


def test_pca_cloud_figure_has_labelled_axes_and_colourbar(tiny_store):
    clouds = [token_cloud(tiny_store, lay, n=80, seed=0) for lay in (0, 3)]
    fig = plot_pca_cloud(clouds)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert len(panels) == 2
    for ax in panels:
        assert ax.get_xlabel().startswith("PC1 (") and "% of variance" in ax.get_ylabel()
    cbar = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert cbar and "log10" in cbar[0].get_ylabel()


def test_trajectories_self_similarity_matches_pairwise_cosines(tiny_store):
    from sklearn.metrics.pairwise import cosine_similarity

    data = word_trajectories(tiny_store, ["market", "the"], max_occurrences=10_000, seed=0)
    assert data["words"] == ["market", "the"]
    occ = tiny_store.occurrences("market", 2)
    S = cosine_similarity(occ)
    expected = (S.sum() - np.trace(S)) / (len(S) * (len(S) - 1))
    assert data["self_similarity"]["market"][2] == pytest.approx(expected, rel=1e-5)
    assert data["paths"]["market"].shape == (len(occ), 4, 2)
    assert np.all(np.abs(data["baseline"]) <= 1)


def test_trajectories_align_identical_layers(tmp_path, build_store):
    from isoscope.store import write_store

    base = build_store(tmp_path / "a", n_layers=1)
    X = np.asarray(base.layer(0))
    same = write_store(tmp_path / "b", {0: X, 1: X, 2: X}, base.tokens())
    data = word_trajectories(same, ["market"], seed=0)
    P = data["paths"]["market"]
    np.testing.assert_allclose(P[:, 1], P[:, 0], atol=1e-8)
    np.testing.assert_allclose(P[:, 2], P[:, 0], atol=1e-8)


def test_trajectory_figure_with_unusual_words(tiny_store):
    fig = plot_word_trajectories(
        word_trajectories(tiny_store, ["$5", "café", "market"], max_occurrences=5)
    )
    fig.savefig(io.BytesIO(), format="png", dpi=40)
    ax1, ax2 = fig.axes[:2]
    words = {t.get_text().split(" (")[0] for t in ax2.get_legend().get_texts()}
    assert words == {r"\$5", "café", "market", "random token pairs"}
    assert len(ax1.get_lines()) > 3
    assert "cosine" in ax2.get_ylabel()
    with pytest.raises(InputError):
        word_trajectories(tiny_store, ["notaword"])
    with pytest.raises(InputError, match="draws computed trajectories"):
        plot_word_trajectories(tiny_store)  # the figure never reads a store
