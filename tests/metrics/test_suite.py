"""The per-layer suite on a small store built with write_store, on arrays and .npy files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from isoscope.errors import InputError, IsoscopeError
from isoscope.metrics import (
    AnalysisResult,
    analyze,
    isoscore,
    lid_mle,
    partition_isotropy,
    s_inter,
)
from isoscope.store import write_store

FAST = {
    "k_range": [2, 4],
    "silhouette_sample": 300,
    "lid_k": 8,
    "s_intra_max_types": 50,
    "ethayarajh_sentences": 40,
}


def _toy_tokens(rng: np.random.Generator, n_sent: int = 80, length: int = 10) -> pd.DataFrame:
    p = 1.0 / np.arange(1, 41)
    p /= p.sum()
    rows = []
    for s in range(n_sent):
        rows.append(
            {
                "sentence_id": s,
                "position": 0,
                "token_id": 101,
                "token": "[CLS]",
                "word_id": -1,
                "word": "",
                "is_special": True,
            }
        )
        for pos in range(1, length):
            w = int(rng.choice(40, p=p))
            rows.append(
                {
                    "sentence_id": s,
                    "position": pos,
                    "token_id": 1000 + w,
                    "token": f"w{w}",
                    "word_id": pos - 1,
                    "word": f"w{w}",
                    "is_special": False,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    rng = np.random.default_rng(0)
    tok = _toy_tokens(rng)
    n = len(tok)
    emb = rng.standard_normal((40, 16))
    base = emb[np.clip(tok["token_id"].to_numpy() - 1000, 0, 39)]
    arrays = {
        0: (base + 0.1 * rng.standard_normal((n, 16)) + 4.0).astype(np.float32),
        1: (base + rng.standard_normal((n, 16))).astype(np.float32),
    }
    arrays[0][tok["is_special"].to_numpy()] = 9.0  # every special identical, as [CLS] at layer 0
    return write_store(
        tmp_path_factory.mktemp("s") / "store", arrays, tok, model="toy", corpus="toy"
    )


def _no_timings(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "timings"}


def test_analyze_store_layout_and_values(store, tmp_path: Path) -> None:
    res = analyze(store, sample=500, seed=3, progress=False, **FAST)
    assert isinstance(res, AnalysisResult)
    d = res.to_dict()
    assert d["source"]["kind"] == "store" and d["source"]["model"] == "toy"
    assert d["settings"]["sample"] == 500 and d["settings"]["seed"] == 3
    assert d["settings"]["include_special"] is False
    assert [e["layer"] for e in d["layers"]] == [0, 1]
    for e in d["layers"]:
        for key in (
            "n_vectors",
            "s_inter",
            "s_inter_centered",
            "s_intra",
            "s_intra_centered",
            "isotropy_partition",
            "isotropy_partition_log10",
            "isoscore",
            "isoscore_star",
            "lid_mle",
            "lid_mle_median",
            "lid_twonn",
            "pca_dims_80",
            "n_clusters",
            "mms",
            "freq_pc1_spearman",
            "mean_norm",
            "self_similarity_adjusted",
            "mev_adjusted",
            "intra_sentence_similarity",
        ):
            assert e[key] is not None, key
        assert e["n_vectors"] == 500
        assert {
            "explained_variance_ratio",
            "silhouette_curve",
            "lid_values",
            "cluster_sizes",
        } <= set(e["details"])
        assert len(e["details"]["silhouette_curve"]["k"]) == 3
        assert e["rogue_dims"][0]["dim"] in range(16)
    # the numbers are those of the pure functions on the same seeded sample of non-special rows
    cand = np.flatnonzero(~store.tokens()["is_special"].to_numpy())
    rows = np.sort(np.random.default_rng(3).choice(cand, 500, replace=False))
    X = np.asarray(store.layer(1)[rows], dtype=np.float32)
    e1 = d["layers"][1]
    assert e1["isotropy_partition_log10"] == pytest.approx(
        partition_isotropy(X, normalisation="raw").log10, rel=1e-10)
    assert e1["isotropy_partition_centered_log10"] == pytest.approx(
        partition_isotropy(X, normalisation="centered").log10, rel=1e-10)
    assert e1["isotropy_partition_unit_log10"] == pytest.approx(
        partition_isotropy(X, normalisation="unit").log10, rel=1e-10)
    assert e1["lid_mle"] == pytest.approx(lid_mle(X, k=8).mean, rel=1e-10)
    # moment measures come from every non-special row, exactly
    full = np.asarray(store.layer(1)[cand], dtype=np.float64)
    assert e1["n_tokens"] == cand.size
    assert e1["s_inter"] == pytest.approx(s_inter(full), abs=1e-10)
    assert e1["isoscore"] == pytest.approx(isoscore(full), abs=1e-10)
    assert d["measures"]["s_inter"]["evidence"] == "all tokens"
    assert d["measures"]["lid_mle"]["evidence"] == "distinct sample"
    assert d["measures"]["isotropy_partition"]["evidence"] == "sample"
    # layer 0: S_inter high from the offset, centred variant near zero
    e0 = d["layers"][0]
    assert e0["s_inter"] > 0.8 and abs(e0["s_inter_centered"]) < 0.05
    assert e0["s_intra"] > 0.95
    path = res.to_json(tmp_path / "r.json")
    loaded = json.loads(path.read_text())
    json.dumps(loaded, allow_nan=False)
    assert loaded["layers"][1]["s_inter"] == e1["s_inter"]
    table = res.format_table().splitlines()
    assert "layer" in table[0] and len(table) >= 3
    assert any(line.strip().startswith("all tokens") and "S_inter" in line for line in table[3:])
    assert list(res.to_frame()["layer"]) == [0, 1]


def test_same_seed_same_numbers(store) -> None:
    a = analyze(store, layers=[1], sample=400, seed=1, progress=False, **FAST).to_dict()
    b = analyze(store, layers=[1], sample=400, seed=1, progress=False, **FAST).to_dict()
    assert _no_timings(a) == _no_timings(b)
    c = analyze(store, layers=[1], sample=400, seed=2, progress=False, **FAST).to_dict()
    assert c["layers"][0]["isotropy_partition"] != a["layers"][0]["isotropy_partition"]
    # moment measures read every token: the seed does not change them
    assert c["layers"][0]["s_inter"] == a["layers"][0]["s_inter"]


def test_specials_and_duplicates(store) -> None:
    res = analyze(store, layers=[0], sample=None, include_special=True, progress=False, **FAST)
    e = res.layers[0]
    assert e["n_vectors"] == store.n_tokens
    assert e["n_duplicates"] == 79  # 80 identical [CLS] rows
    assert e["s_inter_centered"] is not None
    assert np.isfinite(e["lid_mle"])
    dropped = analyze(
        store,
        layers=[0],
        sample=None,
        drop_position_zero=True,
        include_special=True,
        progress=False,
        **FAST,
    )
    assert dropped.layers[0]["n_duplicates"] == 0
    assert dropped.settings["drop_position_zero"] is True


def test_analyze_array_and_npy(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((600, 12)).astype(np.float32) + 2.0
    res = analyze(X, sample=400, progress=False, **FAST)
    e = res.to_dict()["layers"][0]
    assert res.source["kind"] == "array" and e["layer"] == 0
    assert e["s_intra"] is None and e["freq_pc1_spearman"] is None and e["self_similarity"] is None
    assert e["s_inter"] is not None and e["lid_mle"] is not None
    np.save(tmp_path / "x.npy", X)
    res2 = analyze(tmp_path / "x.npy", sample=400, progress=False, **FAST)
    assert _no_timings(res2.to_dict())["layers"] == _no_timings(res.to_dict())["layers"]
    assert res2.source["path"].endswith("x.npy")


def test_isotropic_and_blob_ground_truth() -> None:
    from sklearn.datasets import make_blobs

    rng = np.random.default_rng(6)
    iso = analyze(rng.standard_normal((3000, 8)), sample=None, progress=False, **FAST).layers[0]
    assert iso["isotropy_partition"] > 0.9 and abs(iso["s_inter"]) < 0.02 and iso["n_clusters"] == 1
    B, _ = make_blobs(900, n_features=10, centers=3, cluster_std=0.5, random_state=1)
    blobs = analyze(B, sample=None, progress=False, **FAST).layers[0]
    assert blobs["n_clusters"] == 3 and blobs["mms"] > 0.6


def test_transforms_inductive_and_transductive(store) -> None:
    res = analyze(
        store,
        layers=[0, 1],
        sample=300,
        progress=False,
        transforms=["center", "abtt:n_components=2"],
        **FAST,
    )
    tr = res.to_dict()["transforms"]
    assert [(t["name"], t["layer"], t["fit"]) for t in tr] == [
        ("center", 1, "inductive"),
        ("abtt", 1, "inductive"),
    ]
    t = tr[0]
    assert t["eval_n"] == 300 and t["fit_n"] == 300 and t["params"] == {}
    assert tr[1]["params"] == {"n_components": 2}
    # before and after are both measured on the evaluation sample alone (moments included)
    assert t["before"]["mms"] == res.layers[1]["mms"]
    assert t["before"]["n_tokens"] == 300 and res.layers[1]["n_tokens"] > 300
    assert abs(t["after"]["s_inter"]) < abs(t["before"]["s_inter"]) + 0.05
    full = analyze(
        store,
        layers=[0],
        sample=300,
        progress=False,
        transforms=["center"],
        transductive=True,
        **FAST,
    ).to_dict()["transforms"][0]
    assert full["fit"] == "transductive" and full["layer"] == 0
    # fitted on the measured sample itself, centring makes its mean exactly zero: S_inter ~ -1/(n-1)
    assert full["after"]["s_inter"] == pytest.approx(0.0, abs=0.02)
    assert full["before"]["s_inter"] > 0.8


def test_single_word_type_store(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    n = 300
    tok = pd.DataFrame(
        {
            "sentence_id": np.arange(n) // 10,
            "position": np.arange(n) % 10 + 1,
            "token_id": 7,
            "token": "the",
            "word_id": np.arange(n) % 10,
            "word": "the",
            "is_special": False,
        }
    )
    st = write_store(tmp_path / "one", {0: rng.standard_normal((n, 6)).astype(np.float32) + 1}, tok)
    e = analyze(st, sample=None, progress=False, **FAST).layers[0]
    assert e["s_intra"] is not None and e["s_intra_n_types"] == 1
    assert e["freq_pc1_spearman"] is None  # one frequency: correlation undefined, not NaN
    assert e["s_inter"] is not None


def test_bad_inputs(tmp_path: Path, store) -> None:
    with pytest.raises(IsoscopeError, match="does not exist"):
        analyze(tmp_path / "missing")
    np.save(tmp_path / "one.npy", np.ones(5))
    with pytest.raises(InputError, match="2-D"):
        analyze(tmp_path / "one.npy")
    bad = np.random.default_rng(0).standard_normal((100, 4))
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN or Inf"):
        analyze(bad, progress=False, **FAST)
    with pytest.raises(InputError, match="Layer 7"):
        analyze(store, layers=[7])
    with pytest.raises(InputError, match="Unknown analysis setting"):
        analyze(store, lid_kk=3)
    with pytest.raises(InputError, match="non-zero vectors to measure"):
        analyze(np.random.default_rng(0).standard_normal((10, 3)), progress=False)
    with pytest.raises(InputError, match="isotropy_partition, _centered, _unit"):
        analyze(bad, isotropy_normalisation="whiten")
