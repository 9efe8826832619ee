"""The per-layer measures of issue 16, each against a direct formula or an independent library."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from isoscope.analysis import analyze, measure_vectors
from isoscope.metrics.streaming import StreamingMoments

FAST = {"k_range": [2, 4], "silhouette_sample": 300, "lid_k": 8}


def _entry(X: np.ndarray, **settings) -> dict:
    return analyze(X, sample=None, progress=False, **{**FAST, **settings}).layers[0]


# ---------------------------------------------------------------------------------------------
# The accumulator


def test_moments_track_sum_and_max_of_abs_across_merges() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((700, 6))
    X[123, 4] = -40.0
    ids = np.arange(700) + 1000
    parts = [StreamingMoments().update(X[s], rows=ids[s])
             for s in (slice(0, 100), slice(100, 450), slice(450, None))]
    acc = StreamingMoments().merge(parts[2]).merge(parts[0]).merge(parts[1])
    np.testing.assert_allclose(acc.mean_abs(), np.abs(X).mean(axis=0), rtol=1e-12)
    top, value, row = acc.max_abs()
    np.testing.assert_allclose(top, np.abs(X).max(axis=0))
    np.testing.assert_array_equal(row, ids[np.abs(X).argmax(axis=0)])
    np.testing.assert_allclose(value, X[np.abs(X).argmax(axis=0), np.arange(6)])
    assert row[4] == 1123 and value[4] == -40.0
    # without row ids the rows are stream positions
    _, _, pos = StreamingMoments().update(X[:300]).update(X[300:]).max_abs()
    np.testing.assert_array_equal(pos, np.abs(X).argmax(axis=0))
    from isoscope.errors import InputError

    with pytest.raises(InputError, match="rows has shape"):
        StreamingMoments().update(X[:5], rows=np.arange(4))


# ---------------------------------------------------------------------------------------------
# anisotropy_top1


def test_anisotropy_top1_is_the_top_squared_singular_value_share_of_the_uncentred_layer() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 12)) * np.linspace(0.2, 2.0, 12) + 3.0
    X = X.astype(np.float32).astype(np.float64)  # the layer pass reads float32
    e = _entry(X)
    s = np.linalg.svd(X, compute_uv=False)
    assert e["anisotropy_top1"] == pytest.approx(s[0] ** 2 / np.sum(s**2), rel=1e-9)
    sc = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    assert e["anisotropy_top1_centered"] == pytest.approx(sc[0] ** 2 / np.sum(sc**2), rel=1e-9)
    # the common offset dominates the uncentred layer, not the centred one
    assert e["anisotropy_top1"] > 0.8 > 0.3 > e["anisotropy_top1_centered"]


def test_anisotropy_top1_centered_matches_llm_microscope() -> None:
    torch = pytest.importorskip("torch")
    spec = importlib.util.find_spec("llm_microscope")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-microscope is not installed (pip install --no-deps llm-microscope)")
    # Its __init__ runs `from logit_lens import *` (an absolute import that fails when
    # installed); the function lives in llm_microscope/functions.py.
    path = Path(next(iter(spec.submodule_search_locations))) / "functions.py"
    fspec = importlib.util.spec_from_file_location("_llm_microscope_functions", path)
    mod = importlib.util.module_from_spec(fspec)
    fspec.loader.exec_module(mod)
    rng = np.random.default_rng(2)
    X = (rng.standard_normal((300, 10)) * np.linspace(0.5, 3.0, 10) + 1.0).astype(np.float32)
    theirs = mod.calculate_anisotropy_torch(torch.tensor(X, dtype=torch.float64))
    assert _entry(X)["anisotropy_top1_centered"] == pytest.approx(theirs, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Massive activations and outlier dimensions


def test_massive_activations_find_the_planted_values() -> None:
    rng = np.random.default_rng(3)
    X = (0.5 * rng.standard_normal((600, 16))).astype(np.float32)
    X[17, 5] = 2500.0  # massive: > 100 and > 1000 x median
    X[300, 9] = -800.0  # massive (negative)
    X[40, 2] = 150.0  # > 100 but below 1000 x the median |a| (about 0.34 -> 337)
    e = _entry(X)
    median = np.median(np.abs(X))
    assert 150.0 < 1000 * median < 800.0
    assert e["massive_activations"] == 2 and e["massive_activation_dims"] == 2
    assert e["median_abs_activation"] == pytest.approx(median)
    assert e["max_abs_activation"] == 2500.0
    assert e["massive_activation_ratio"] == pytest.approx(2500.0 / median)
    top = e["massive_activation_top"]
    assert [(t["row"], t["dim"], t["value"], t["massive"]) for t in top[:3]] == [
        (17, 5, 2500.0, True), (300, 9, -800.0, True), (40, 2, 150.0, False)]
    assert len(top) == 10 and top[0]["token"] is None and top[0]["position"] is None


def test_outlier_dimensions_are_the_planted_dimensions() -> None:
    rng = np.random.default_rng(4)
    X = rng.standard_normal((800, 50))
    X[:, [4, 17]] *= 20.0
    X[:, 30] += 3.0  # shifted, but its mean |a| is not 3 sigma out
    X = X.astype(np.float32).astype(np.float64)
    e = _entry(X)
    ma = np.abs(X).mean(axis=0)
    z = (ma - ma.mean()) / ma.std()
    expected = [int(j) for j in np.argsort(-ma) if z[j] > 3]
    assert expected == sorted([4, 17], key=lambda j: -ma[j])
    got = e["outlier_dimensions"]
    assert [o["dim"] for o in got] == expected and e["n_outlier_dimensions"] == 2
    for o in got:
        assert o["mean_abs"] == pytest.approx(ma[o["dim"]])
        assert o["z"] == pytest.approx(z[o["dim"]])
        assert abs(X[o["top_row"], o["dim"]]) == np.abs(X[:, o["dim"]]).max()
    # an isotropic layer has none
    assert _entry(rng.standard_normal((800, 50)))["n_outlier_dimensions"] == 0


# ---------------------------------------------------------------------------------------------
# A small causal-like store: position 0 carries a sink and a massive activation


def _causal_store(folder: Path, drop: bool = False):
    from isoscope.store import write_store

    rng = np.random.default_rng(5)
    n_sent, length, width = 60, 8, 16
    rows = []
    for s in range(n_sent):
        for pos in range(length):
            w = int(rng.integers(0, 12))
            rows.append({"sentence_id": s, "position": pos, "token_id": 10 + w,
                         "token": f"t{w}" if pos else "<first>", "word_id": pos,
                         "word": f"w{w}", "is_special": False})
    tok = pd.DataFrame(rows)
    X = rng.standard_normal((len(tok), width))
    first = tok["position"].to_numpy() == 0
    X[first, 3] += 40.0  # the sink direction
    X[8 * 7, 3] = 3000.0  # sentence 7, position 0
    return write_store(folder, {0: X.astype(np.float32)}, tok, model="synthetic",
                       corpus="synthetic", model_type="causal"), X.astype(np.float32), first, tok


def test_sink_share_and_token_names_on_a_store(tmp_path: Path) -> None:
    store, X, first, tok = _causal_store(tmp_path / "store")
    e = analyze(store, sample=None, progress=False, **FAST).layers[0]
    X = X.astype(np.float64)
    norm2 = (X**2).sum(axis=1)
    assert e["sink_share"] == pytest.approx(norm2[first].sum() / norm2.sum(), rel=1e-6)
    assert e["sink_token_share"] == pytest.approx(first.mean())
    Xc = X - X.mean(axis=0)
    u = np.linalg.svd(Xc, full_matrices=False)[2][0]
    p2 = (Xc @ u) ** 2
    assert e["sink_share_pc1"] == pytest.approx(p2[first].sum() / p2.sum(), rel=1e-5)
    assert e["sink_share_pc1"] > 0.9 and e["sink_token_share"] == pytest.approx(1 / 8)
    top = e["massive_activation_top"][0]
    assert top == {"row": 56, "token": "<first>", "position": 0, "dim": 3, "value": 3000.0,
                   "massive": True}
    assert e["outlier_dimensions"][0]["dim"] == 3
    assert e["outlier_dimensions"][0]["top_token"] == "<first>"
    # the sample path (moments of the sample) names the same row
    r2 = analyze(store, sample=200, progress=False, full_layer_stats=False, **FAST)
    top2 = r2.layers[0]["massive_activation_top"][0]
    assert top2["row"] in r2.sample_rows and top2["dim"] == 3
    assert (top2["token"], top2["position"]) == ("<first>", 0)
    assert X[top2["row"], 3] == top2["value"] == np.abs(X[r2.sample_rows, 3]).max()


def test_sink_share_is_none_without_position_zero_or_positions(tmp_path: Path) -> None:
    store, X, _, _ = _causal_store(tmp_path / "store")
    e = analyze(store, sample=None, progress=False, drop_position_zero=True, **FAST).layers[0]
    assert e["sink_share"] is None and e["sink_share_pc1"] is None
    assert _entry(X)["sink_share"] is None  # a plain array has no positions


# ---------------------------------------------------------------------------------------------
# TwoNN and GRIDE


def _manifold(n: int = 1500, dim: int = 5, width: int = 20, seed: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((width, dim)))[0]
    return rng.standard_normal((n, dim)) @ Q.T + 1e-3 * rng.standard_normal((n, width))


def test_gride_smallest_scale_is_the_twonn_mle_and_ids_track_the_dimension() -> None:
    X = _manifold()
    e = _entry(X, lid_k=20)
    curve = e["details"]["gride_curve"]
    assert curve["n1"] == [1, 2, 4, 8] and curve["n2"] == [2, 4, 8, 16]
    assert e["id_gride"] == curve["id"][-1]
    # n1 = 1, n2 = 2: the GRIDE likelihood's root is N / Σ log(r2 / r1)
    from isoscope.metrics._neighbors import exact_knn

    D = exact_knn(X.astype(np.float32), 2).distances
    mu = D[:, 1] / D[:, 0]
    assert curve["id"][0] == pytest.approx(mu.size / np.log(mu).sum(), rel=1e-6)
    # TwoNN: linear fit through the origin on the 90 % smallest ratios
    m = np.sort(mu)[: int(0.9 * mu.size)]
    y = -np.log1p(-np.arange(1, m.size + 1) / mu.size)
    assert e["id_twonn"] == pytest.approx(np.log(m) @ y / (np.log(m) @ np.log(m)), rel=1e-6)
    assert 4.0 < e["id_twonn"] < 6.0 and 4.0 < e["id_gride"] < 6.0
    assert e["id_twonn"] == pytest.approx(e["lid_twonn"])  # same estimator with the defaults
    # with cosine LID neighbours, TwoNN and GRIDE still use Euclidean distances
    c = _entry(X, lid_k=20, lid_metric="cosine")
    assert c["id_twonn"] == pytest.approx(e["id_twonn"], rel=1e-6)
    assert c["details"]["gride_curve"]["id"] == pytest.approx(curve["id"], rel=1e-6)


def _dadapy_id_estimation():
    """dadapy's IdEstimation, or a skip with the reason.

    dadapy 0.3.4 pins numpy<2 and jax 0.4.30, so it is not in the test extra: the Makefile
    installs it with ``pip install --no-deps dadapy``. Its ID estimators are pure Python: when
    its compiled clustering extensions fail to import (built against numpy 1), the module
    ``dadapy.id_estimation`` is loaded without the package ``__init__``.
    """
    if "dadapy.id_estimation" in sys.modules:
        return sys.modules["dadapy.id_estimation"].IdEstimation
    spec = importlib.util.find_spec("dadapy")
    if spec is None:
        pytest.skip("dadapy is not installed (pip install --no-deps dadapy)")
    try:
        from dadapy.id_estimation import IdEstimation
    except ImportError:
        for name in [m for m in sys.modules if m == "dadapy" or m.startswith("dadapy.")]:
            del sys.modules[name]
        pkg = types.ModuleType("dadapy")
        pkg.__path__ = list(spec.submodule_search_locations or [])
        sys.modules["dadapy"] = pkg
        try:
            IdEstimation = importlib.import_module("dadapy.id_estimation").IdEstimation
        except ImportError as exc:  # pragma: no cover - depends on the install
            pytest.skip(f"dadapy.id_estimation cannot be imported: {exc}")
    return IdEstimation


@pytest.mark.parametrize("dim", [3, 8])
def test_twonn_and_gride_match_dadapy_on_the_same_points(dim: int) -> None:
    IdEstimation = _dadapy_id_estimation()
    X = _manifold(n=1200, dim=dim, seed=dim)
    e = _entry(X, lid_k=20)
    ie = IdEstimation(coordinates=np.asarray(X, dtype=np.float64))
    twonn_id, _, _ = ie.compute_id_2NN()
    # the same estimator; distances differ only by float32 rounding
    assert e["id_twonn"] == pytest.approx(twonn_id, rel=1e-3)
    ids, errs, rs = ie.return_id_scaling_gride(range_max=16)
    curve = e["details"]["gride_curve"]
    # dadapy solves with (N - 1)/d instead of the likelihood's N/d and drops extreme ratios:
    # within 0.5 % at N = 1200
    np.testing.assert_allclose(curve["id"], ids, rtol=5e-3)
    np.testing.assert_allclose(curve["err"], errs, rtol=2e-2)
    np.testing.assert_allclose(curve["r"], rs, rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# Zipfian symmetry


def test_zipf_symmetry_scores_match_the_direct_formula() -> None:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((500, 8)) * np.linspace(0.5, 2.0, 8) + 0.7
    f = rng.zipf(1.5, size=500).astype(np.float64)
    e = measure_vectors(X, FAST, frequency=f)
    p = f / f.sum()
    mu = p @ X
    assert e["zipf_sym1"] == pytest.approx(1 - np.linalg.norm(mu) / (p @ np.linalg.norm(X, axis=1)),
                                           rel=1e-9)
    C = (X - mu).T @ np.diag(p) @ (X - mu)
    lam = np.linalg.eigvalsh(C)
    q = lam / lam.sum()
    assert e["zipf_sym2"] == pytest.approx(-np.sum(q * np.log(q)) / np.log(8), rel=1e-9)
    # a frequency-symmetric set (x and -x equally frequent) with an isotropic spread scores 1
    Y = np.vstack([np.eye(8), -np.eye(8)]) * 3.0
    Y = np.vstack([Y] * 20) + 1e-9 * rng.standard_normal((320, 8))
    sym = measure_vectors(Y, {**FAST, "lid_k": 4}, frequency=np.ones(320))
    assert sym["zipf_sym1"] == pytest.approx(1.0, abs=1e-6)
    assert sym["zipf_sym2"] == pytest.approx(1.0, abs=1e-6)
    # zipf values are log10 frequencies
    z = measure_vectors(X, {**FAST, "frequency_source": "zipf"}, frequency=np.log10(f))
    assert z["zipf_sym1"] == pytest.approx(e["zipf_sym1"], rel=1e-9)
    # without frequencies the scores are None
    assert measure_vectors(X, FAST)["zipf_sym1"] is None
