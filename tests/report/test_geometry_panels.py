"""Issue 16's report panels draw exactly what results.json and the saved word samples hold."""

from __future__ import annotations

import html as htmllib
import json
import re
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest

from isoscope.errors import InputError
from isoscope.report import _geometry as G

matplotlib.use("Agg")


def _with_geometry(res: dict[str, Any]) -> dict[str, Any]:
    """Add planted issue-16 values to a synthetic results dict."""
    n = len(res["layers"])
    rng = np.random.default_rng(1)
    for i, e in enumerate(res["layers"]):
        e["max_abs_activation"] = 50.0 * 10**i
        e["median_abs_activation"] = 0.5
        e["massive_activation_top"] = [
            {"row": 40 + i, "token": "<first>" if i else "the", "position": 0, "dim": 7,
             "value": -e["max_abs_activation"], "massive": i >= 2},
            {"row": 3, "token": "cat", "position": 2, "dim": 2, "value": 1.5, "massive": False},
        ]
        e["outlier_dimensions"] = [] if i == 0 else [
            {"dim": 7, "mean_abs": 9.0 + i, "z": 4.5, "top_row": 40 + i, "top_token": "<first>",
             "top_value": 123.0}]
        e["details"]["gride_curve"] = {"n1": [1, 2, 4], "n2": [2, 4, 8],
                                       "id": [10.0 + i, 9.0 + i, 8.0 + i], "err": [0.5] * 3,
                                       "r": [1.0, 1.2, 1.5], "n_points": [300] * 3}
    M = np.clip(np.eye(n) + rng.uniform(0.2, 0.6, (n, n)), 0, 1)
    M = (M + M.T) / 2
    np.fill_diagonal(M, 1.0)
    res["layer_similarity"] = {
        "layers": [e["layer"] for e in res["layers"]], "cka_linear": M.tolist(),
        "cka_debiased": (M * 0.9).tolist(), "mutual_knn": (M * 0.5).tolist(),
        "mutual_knn_chance": 0.02, "chi_overlap": [0.4] * (n - 1),
        "chi_pairs": [[i, i + 1] for i in range(n - 1)], "n": 300, "k": 10, "seed": 5,
        "evidence": "sample",
    }
    return res


def test_figures_hold_the_results_values(make_results) -> None:
    res = _with_geometry(make_results(5, transforms=False, evaluation=False))
    fig = G.plot_layer_similarity(res)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(),
                               res["layer_similarity"]["cka_linear"])
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(),
                               res["layer_similarity"]["mutual_knn"])
    fig = G.plot_massive_activations(res)
    top = fig.axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(top, [e["max_abs_activation"] for e in res["layers"]])
    np.testing.assert_allclose(fig.axes[0].lines[2].get_ydata(), 500.0)  # 1000 x median
    dims = np.concatenate([c.get_offsets()[:, 1] for c in fig.axes[1].collections])
    assert set(dims) == {7.0, 2.0}
    fig = G.plot_gride_curve(res)
    lines = [ln for ln in fig.axes[0].lines if len(ln.get_xdata()) == 3]
    np.testing.assert_allclose(lines[0].get_ydata(), [10.0, 9.0, 8.0])
    np.testing.assert_allclose(lines[0].get_xdata(), [2, 4, 8])


def test_tables_name_tokens_and_dimensions(make_results) -> None:
    res = _with_geometry(make_results(3, transforms=False, evaluation=False))
    t = G.massive_table(res, per_layer=1)
    assert t["rows"] == [[0, 7, "-50", "the", 0, 40, "no"], [1, 7, "-500", "<first>", 0, 41, "no"],
                         [2, 7, "-5e+03", "<first>", 0, 42, "yes"]]
    o = G.outlier_table(res)
    assert o["rows"][0] == [0, "none", "", "", "", ""]
    assert o["rows"][1] == [1, 7, "4.5", "10", "<first>", "123"]


def test_panels_explain_a_missing_key(make_results) -> None:
    res = make_results(3, transforms=False, evaluation=False)
    for fn in (G.plot_layer_similarity, G.plot_gride_curve, G.outlier_table):
        with pytest.raises(InputError):
            fn(res)


def test_report_sections_show_the_panels(make_results, tmp_path: Path) -> None:
    from isoscope.report import write_report

    res = _with_geometry(make_results(4, transforms=False, evaluation=False))
    path = write_report(res, tmp_path, dpi=40)
    page = path.read_text(encoding="utf-8")
    for sid in ("layer-similarity", "massive", "gride", "outliers"):
        section = page.split(f'id="{sid}"', 1)[1].split("</section>", 1)[0]
        assert "How to read this." in section and "Not available" not in section, sid
    massive = page.split('id="massive"', 1)[1].split("</section>", 1)[0]
    assert 'data-figure="massive_activations"' in massive
    assert htmllib.escape("<first>") in massive and "<first>" not in massive
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td>", massive)
    assert ("3", "7") in rows
    assert 'data-figure="layer_similarity"' in page and 'data-figure="gride_curve"' in page
    assert "settings.layer_similarity" not in page and "layer_similarity.cka_linear" not in page


# ---------------------------------------------------------------------------------------------
# Across models: two tokenisers of the same sentences


SENTENCES = [["the", "cat", "sat", "on", "the", "mat"], ["unbelievably", "dogs", "run"],
             ["a", "bank", "rate", "rose"], ["the", "price", "of", "the", "stock"]] * 10


def _two_stores(root: Path, n_layers: tuple[int, int] = (3, 5)):
    """Store A: one token per word; store B: words longer than 3 letters split in two tokens."""
    from isoscope.store import write_store

    rng = np.random.default_rng(0)
    emb = {w: rng.normal(size=8) for s in SENTENCES for w in s}
    stores = []
    for which, layers in zip("ab", n_layers, strict=True):
        rows, vecs = [], []
        for sid, words in enumerate(SENTENCES):
            pos = 0
            for wid, w in enumerate(words):
                pieces = [w[:2], w[2:]] if which == "b" and len(w) > 3 else [w]
                for piece in pieces:
                    rows.append({"sentence_id": sid, "position": pos, "token_id": 1, "token": piece,
                                 "word_id": wid, "word": w.title() if which == "b" else w,
                                 "is_special": False})
                    vecs.append(emb[w] + 0.1 * rng.normal(size=8) + sid * 0.05)
                    pos += 1
        X = np.array(vecs)
        arrays = {lay: (X @ rng.normal(size=(8, 8)) * (1 + lay)).astype(np.float32)
                  for lay in range(layers)}
        stores.append(write_store(root / which, arrays, pd.DataFrame(rows), model=f"m{which}",
                                  corpus="same corpus", model_type="encoder"))
    return stores


def test_compare_aligns_words_across_tokenisers(tmp_path: Path) -> None:
    from isoscope.analysis import analyze
    from isoscope.analysis._crossmodel import compare_runs
    from isoscope.artefacts import compute_artefacts, load_artefacts
    from isoscope.metrics.similarity import cka_matrix, knn_overlap_matrix

    sa, sb = _two_stores(tmp_path)
    runs, samples = [], []
    for name, st in (("a", sa), ("b", sb)):
        res = analyze(st, sample=None, progress=False, k_range=[2, 3], lid_k=5,
                      similarity_sample=50, similarity_k=4)
        compute_artefacts(res, st, tmp_path / f"run_{name}", words=["cat"], n_words=60)
        d = res.to_dict()
        runs.append(d)
        samples.append(load_artefacts(tmp_path / f"run_{name}", d).words)
    ws_a, ws_b = samples
    assert ws_a is not None and ws_b is not None
    assert len(ws_a["word"]) == len(ws_b["word"]) >= 60  # whole sentences: the same ones
    assert (ws_b["n_tokens"] > 1).any() and (ws_a["n_tokens"] == 1).all()
    cross = compare_runs(runs, samples, ["ma", "mb"], k=4)
    assert cross["notes"] == []
    pair = cross["pairs"][0]
    assert pair["n_aligned"] == len(ws_a["word"])
    # every layer of the shallower model (A: 0, 1, 2 at depth 0, .5, 1) with B's nearest (0, 2, 4)
    assert pair["layers_a"] == [0, 1, 2] and pair["layers_b"] == [0, 2, 4]
    # the numbers are the metrics on B's mean-pooled tokens of the same words
    tok = sb.tokens()
    rows = ws_b["rows"]
    Xb = np.asarray(sb.layer(4)[rows], dtype=np.float64)
    pooled = np.array([Xb[ws_b["row_word"] == j].mean(axis=0) for j in range(len(ws_b["word"]))])
    np.testing.assert_allclose(pooled, ws_b["vectors"][4], rtol=2e-3, atol=2e-3)
    assert set(tok["word"].str.lower().to_numpy()[rows]) == set(ws_b["word"])
    Xa = np.asarray(ws_a["vectors"][2], dtype=np.float64)
    Xb4 = np.asarray(ws_b["vectors"][4], dtype=np.float64)
    key_b = {k: j for j, k in enumerate(zip(ws_b["sentence_id"].tolist(), ws_b["word"],
                                            ws_b["occurrence"].tolist(), strict=True))}
    order = [key_b[k] for k in zip(ws_a["sentence_id"].tolist(), ws_a["word"],
                                   ws_a["occurrence"].tolist(), strict=True)]
    assert pair["cka_linear"][2] == pytest.approx(cka_matrix([Xa, Xb4[order]])[0, 1], rel=1e-9)
    assert pair["mutual_knn"][2] == pytest.approx(knn_overlap_matrix([Xa, Xb4[order]], 4)[0, 1])
    # the second occurrence of "the" in a sentence is matched to the second one
    the = [i for i, w in enumerate(ws_a["word"]) if w == "the" and ws_a["sentence_id"][i] == 0]
    assert sorted(ws_a["occurrence"][the].tolist()) == [0, 1]


def test_compare_cli_writes_cross_model_json_and_says_how_many_aligned(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from isoscope.analysis import analyze
    from isoscope.artefacts import compute_artefacts
    from isoscope.cli import app

    for name, st in zip("ab", _two_stores(tmp_path), strict=True):
        res = analyze(st, sample=None, progress=False, k_range=[2, 3], lid_k=5,
                      similarity_sample=50, similarity_k=4)
        compute_artefacts(res, st, tmp_path / f"run_{name}", words=["cat"], n_words=40)
        res.to_json(tmp_path / f"run_{name}" / "results.json")
    out = tmp_path / "cmp"
    r = CliRunner().invoke(app, ["compare", str(tmp_path / "run_a"), str(tmp_path / "run_b"),
                                 "--out", str(out), "--format", "png"])
    assert r.exit_code == 0, r.output
    cross = json.loads((out / "cross_model.json").read_text())
    n = cross["pairs"][0]["n_aligned"]
    assert f"aligned  {n} words of ma" in r.output and n >= 40
    page = (out / "report.html").read_text(encoding="utf-8")
    section = page.split('id="cross-model"', 1)[1].split("</section>", 1)[0]
    assert f"{n} words aligned" in section and 'data-figure="cross_model"' in section


def test_compare_runs_says_why_a_pair_is_not_compared(make_results) -> None:
    from isoscope.analysis._crossmodel import compare_runs

    ws = {"vectors": {0: np.ones((3, 2))}, "sentence_id": np.array([0, 0, 1]),
          "word": ["a", "b", "c"], "occurrence": np.zeros(3, dtype=np.int64)}
    runs = [make_results(3, corpus="ptb"), make_results(3, corpus="wiki"),
            make_results(3, corpus="ptb")]
    out = compare_runs(runs, [ws, ws, None], ["x", "y", "z"])
    assert out["pairs"] == []
    assert out["notes"] == [
        "x and y are not compared across models: they read different corpora (ptb and wiki).",
        "x and z are not compared across models: z saved no word sample (re-run it with this "
        "isoscope).",
        "y and z are not compared across models: z saved no word sample (re-run it with this "
        "isoscope).",
    ]
    out = compare_runs(runs[:1] * 2, [ws, ws], ["x", "y"])
    assert out["notes"] == ["x and y are not compared across models: x and y share only 3 words "
                            "of their word samples; the runs must be of the same corpus (and "
                            "overlap in sentences)."]


@pytest.mark.slow
def test_run_two_real_tokenisers_and_compare(tiny_bert, tiny_gpt2, corpus_file, tmp_path) -> None:
    """WordPiece (BERT) and byte-level BPE (GPT-2) runs of one corpus share their words."""
    from typer.testing import CliRunner

    from isoscope.artefacts import load_artefacts
    from isoscope.cli import app

    runner = CliRunner()
    for name, model in (("bert", tiny_bert), ("gpt", tiny_gpt2)):
        r = runner.invoke(app, ["run", "--model", str(model), "--corpus", f"text:{corpus_file}",
                                "--max-tokens", "0", "--sample", "120", "--word", "cat",
                                "--out", str(tmp_path / name), "--no-progress"])
        assert r.exit_code == 0, r.output
        res = json.loads((tmp_path / name / "results.json").read_text())
        assert res["layer_similarity"]["layers"] == [0, 1, 2, 3]
    r = runner.invoke(app, ["compare", str(tmp_path / "bert"), str(tmp_path / "gpt"), "--out",
                            str(tmp_path / "cmp"), "--format", "png"])
    assert r.exit_code == 0, r.output
    cross = json.loads((tmp_path / "cmp" / "cross_model.json").read_text())
    (pair,) = cross["pairs"]
    words = [load_artefacts(tmp_path / n).words for n in ("bert", "gpt")]
    assert words[0] is not None and words[1] is not None
    # every corpus word is one word in both tokenisers here: all of them align
    keys = [set(zip(w["sentence_id"].tolist(), w["word"], w["occurrence"].tolist(), strict=True))
            for w in words]
    assert pair["n_aligned"] == len(keys[0] & keys[1]) > 0.9 * min(map(len, keys))
    assert (words[1]["n_tokens"] > 1).any() or (words[0]["n_tokens"] > 1).any()
    assert pair["layers_a"] == pair["layers_b"] == [0, 1, 2, 3]
    assert f"aligned  {pair['n_aligned']} words" in r.output


def test_panels_stay_legible_with_many_layers(make_results) -> None:
    # 31 layers (SmolLM2's hidden states): a colour bar names the layers instead of a legend,
    # the consecutive-layer ticks are thinned, and every colour bar says what it encodes.
    res = _with_geometry(make_results(31, transforms=False, evaluation=False))
    fig = G.plot_gride_curve(res)
    curves, by_layer, bar = fig.axes[0], fig.axes[1], fig.axes[2]
    assert curves.get_legend() is None and bar.get_ylabel() == "layer"
    # the right panel holds the same values against the layer, one line per scale
    at8 = by_layer.containers[2].lines[0]  # the data line of the third errorbar (2n = 8)
    np.testing.assert_allclose(at8.get_xdata(), range(31))
    np.testing.assert_allclose(at8.get_ydata(), [8.0 + i for i in range(31)])
    assert [t.get_text() for t in by_layer.get_legend().get_texts()] == [
        "2n = 2", "2n = 4", "2n = 8"]
    fig = G.plot_layer_similarity(res)
    labels = [t.get_text() for t in fig.axes[2].get_xticklabels()]
    assert len(labels) <= 12 and labels[0] == "0→1" and labels[1] == "3→4"
    assert {ax.get_ylabel() for ax in fig.axes[3:]} == {"linear CKA", "share of shared neighbours"}
    few = G.plot_gride_curve(_with_geometry(make_results(4, transforms=False, evaluation=False)))
    assert len(few.axes[0].get_legend().get_texts()) == 4
