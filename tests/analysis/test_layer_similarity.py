"""``layer_similarity`` in analyze: the same rows in every layer, saved and read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from isoscope.analysis import AnalysisResult, analyze, derived_seeds, load_results
from isoscope.errors import InputError
from isoscope.metrics.similarity import cka_matrix, consecutive_overlap, knn_overlap_matrix

FAST = {"k_range": [2, 3], "silhouette_sample": 200, "lid_k": 8}


def _store(folder: Path):
    from isoscope.store import write_store

    rng = np.random.default_rng(2)
    n_sent, length, width = 40, 6, 12
    tok = pd.DataFrame([
        {"sentence_id": s, "position": p, "token_id": 5 + (s * p) % 9, "token": f"t{(s * p) % 9}",
         "word_id": p, "word": f"w{(s * p) % 9}", "is_special": False}
        for s in range(n_sent) for p in range(length)
    ])
    X0 = rng.standard_normal((len(tok), width))
    layers = {0: X0, 1: X0 @ rng.standard_normal((width, width)) + 0.3 * rng.standard_normal(X0.shape),
              2: rng.standard_normal((len(tok), width))}
    store = write_store(folder, {k: v.astype(np.float32) for k, v in layers.items()}, tok,
                        model="synthetic", corpus="synthetic")
    return store


def test_layer_similarity_is_the_metrics_on_the_seeded_rows(tmp_path: Path) -> None:
    store = _store(tmp_path / "store")
    res = analyze(store, sample=150, seed=4, progress=False, similarity_sample=100,
                  similarity_k=5, **FAST)
    sec = res.layer_similarity
    assert sec is not None and sec["layers"] == [0, 1, 2] and sec["n"] == 100 and sec["k"] == 5
    seed = derived_seeds(4)["similarity"]
    assert sec["seed"] == seed
    rows = np.sort(np.random.default_rng(seed).choice(res.sample_rows, 100, replace=False))
    reps = [np.asarray(store.layer(i)[rows], dtype=np.float64) for i in (0, 1, 2)]
    np.testing.assert_allclose(sec["cka_linear"], cka_matrix(reps), rtol=1e-10)
    np.testing.assert_allclose(sec["cka_debiased"], cka_matrix(reps, debiased=True), rtol=1e-10)
    np.testing.assert_allclose(sec["mutual_knn"], knn_overlap_matrix(reps, 5))
    np.testing.assert_allclose(sec["chi_overlap"], consecutive_overlap(reps, 5))
    assert sec["chi_pairs"] == [[0, 1], [1, 2]]
    assert sec["mutual_knn_chance"] == pytest.approx(5 / 99)
    # related layers are more similar than unrelated ones
    assert sec["cka_linear"][0][1] > 0.5 > sec["cka_linear"][0][2]

    path = res.to_json(tmp_path / "results.json")
    back = AnalysisResult.from_json(path)
    assert back.layer_similarity == load_results(path)["layer_similarity"]
    frame = back.similarity_frame()
    assert len(frame) == 9
    row = frame[(frame.layer_a == 0) & (frame.layer_b == 1)].iloc[0]
    assert row.cka_linear == pytest.approx(sec["cka_linear"][0][1])
    assert row.chi_overlap == pytest.approx(sec["chi_overlap"][0])
    assert np.isnan(frame[(frame.layer_a == 0) & (frame.layer_b == 2)].iloc[0].chi_overlap)


def test_layer_similarity_off_single_layer_and_damaged(tmp_path: Path) -> None:
    store = _store(tmp_path / "store")
    assert analyze(store, [1], sample=100, progress=False, **FAST).layer_similarity is None
    off = analyze(store, sample=100, progress=False, similarity_sample=0, **FAST)
    assert off.layer_similarity is None and "layer_similarity" not in off.to_dict()
    assert off.similarity_frame().empty
    with pytest.raises(InputError, match="similarity_sample"):
        analyze(store, sample=100, progress=False, similarity_sample=5, **FAST)
    d = analyze(store, sample=100, progress=False, similarity_sample=50, similarity_k=3,
                similarity_debiased=False, **FAST).to_dict()
    assert d["layer_similarity"]["cka_debiased"] is None
    d["layer_similarity"]["cka_linear"] = [[1.0, "x"]]
    with pytest.raises(InputError, match="layer_similarity's 'cka_linear' is not a 3 x 3"):
        AnalysisResult.from_dict(d)
