"""Artefacts computed once from the store; the report drawn from results + artefacts alone."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from isoscope.artefacts import (
    compute_artefacts,
    fingerprint,
    load_artefacts,
    word_trajectories,
)
from isoscope.cli import app
from isoscope.errors import InputError
from isoscope.store import open_store

runner = CliRunner()


def make_run(analysed, root, **kw):
    """A run folder: a copy of the analysed store, results.json and artefacts."""
    store, result = analysed
    shutil.copytree(store.path, root / "store")
    copy = open_store(root / "store")
    art = compute_artefacts(result, copy, root, **kw)
    result.to_json(root / "results.json")
    return art


def drawn_clouds(monkeypatch):
    """Record every list of clouds the report hands to ``plot_pca_cloud``."""
    from isoscope.report import _figures

    seen: list[list] = []
    original = _figures.plot_pca_cloud

    def spy(clouds, **kw):
        seen.append(list(clouds))
        return original(clouds, **kw)

    monkeypatch.setattr(_figures, "plot_pca_cloud", spy)
    return seen


def test_report_from_results_and_artefacts_with_the_store_deleted(analysed, tmp_path, monkeypatch):
    store, result = analysed
    run = tmp_path / "run"
    make_run(analysed, run, cloud_n=120, repair_n=150, words=["market", "price"])
    shutil.rmtree(run / "store")  # nothing below may read it
    seen = drawn_clouds(monkeypatch)

    res = runner.invoke(app, ["report", str(run / "results.json"), "--out", str(run / "r.html")])
    assert res.exit_code == 0, res.output
    assert f"report   {run / 'r.html'}" in res.output
    html = (run / "r.html").read_text(encoding="utf-8")
    for sid in ("clouds", "trajectories", "repairs-0", "curves"):
        assert f'id="{sid}"' in html, sid
    assert "could not be drawn" not in html and "Not available" not in html
    assert "Words followed: market, price" in html and "store.hidden_size" in html
    assert sorted(p.name for p in (run / "figures").iterdir()) == sorted(
        f"{n}.png"
        for n in (
            "layer_curves",
            "pca_spectrum",
            "pca_cloud_2d",
            "clusters",
            "lid_distribution",
            "word_trajectories",
            "repairs",
            "repairs_clouds",
            "layer_similarity",
            "massive_activations",
            "gride_curve",
        )
    )

    # The repair panel shows the analysis' fitted repairs applied to measured rows: no refit.
    clouds_2d, repair_panel = seen
    assert [c.title for c in repair_panel] == [
        "original",
        "abtt [inductive]",
        "whiten [inductive]",
    ]
    layer = result.transforms[0]["layer"]
    rows = repair_panel[0].rows
    assert len(rows) == 150 and np.isin(rows, result.sample_rows).all()
    X = np.asarray(store.layer(layer)[rows], dtype=np.float64)
    for view in repair_panel[1:]:
        i = view.settings["transform"]
        np.testing.assert_array_equal(view.rows, rows)
        Y = np.asarray(result.fitted_repairs[i].transform(X), dtype=np.float64)
        np.testing.assert_allclose(
            view.coords, (Y - view.pca_mean) @ view.pca_components.T, atol=1e-9
        )
        np.testing.assert_allclose(view.pca_mean, Y.mean(axis=0), atol=1e-9)
        s = np.linalg.svd(Y - Y.mean(axis=0), compute_uv=False)
        np.testing.assert_allclose(view.explained_variance_ratio, (s**2 / (s**2).sum())[:2])
    # A refit on the shown rows (what the report used to do) gives another picture.
    from sklearn.base import clone

    abtt = result.fitted_repairs[0]
    refit = clone(abtt).fit(X)
    assert not np.allclose(refit.transform(X), abtt.transform(X))
    assert not np.isin(result.fit_rows, result.sample_rows).any()  # it was fitted elsewhere

    # The 3-D clouds are the measured rows too, the same in every layer.
    assert {c.layer for c in clouds_2d} == {0, 2, 3}
    assert all(np.array_equal(c.rows, clouds_2d[0].rows) for c in clouds_2d)
    assert np.isin(clouds_2d[0].rows, result.sample_rows).all() and clouds_2d[0].n == 120


def test_saved_repairs_and_views_round_trip(analysed, tmp_path):
    store, result = analysed
    art = make_run(analysed, tmp_path, cloud_n=80, cloud_layers=[1, 3])
    index = json.loads((tmp_path / "artefacts" / "index.json").read_text())
    assert index["seed"] == 0 and index["results_fingerprint"] == fingerprint(result.to_dict())
    assert [e["layer"] for e in index["clouds"]] == [1, 3]
    assert all(e["n"] == 80 for e in index["clouds"])
    assert [e["spec"] for e in index["repairs"]] == [t["spec"] for t in result.transforms]
    assert not list(tmp_path.glob("**/*.pkl")) and not list(tmp_path.glob(".artefacts-*"))

    back = load_artefacts(tmp_path, json.loads((tmp_path / "results.json").read_text()))
    assert back.notes == []
    np.testing.assert_array_equal(back.rows["sample_rows"], result.sample_rows)
    np.testing.assert_array_equal(back.rows["fit_rows"], result.fit_rows)
    for a, b in zip(art.clouds + art.repair_views, back.clouds + back.repair_views, strict=True):
        np.testing.assert_array_equal(a.coords, b.coords)
        np.testing.assert_array_equal(a.rows, b.rows)
        assert a.labels == b.labels and a.layer == b.layer and a.settings == b.settings
    X = np.asarray(store.layer(3)[result.sample_rows], dtype=np.float64)
    for fitted, loaded in zip(result.fitted_repairs, back.repairs, strict=True):
        np.testing.assert_allclose(loaded.transform(X), fitted.transform(X), atol=1e-10)
    for w in art.trajectories["words"]:
        np.testing.assert_array_equal(
            back.trajectories["self_similarity"][w], art.trajectories["self_similarity"][w]
        )
        assert [list(r) for r in back.trajectories["occurrence_rows"][w]] == [
            list(r) for r in art.trajectories["occurrence_rows"][w]
        ]

    # Computing again replaces the folder as a whole and gives the same numbers.
    again = compute_artefacts(
        result, open_store(tmp_path / "store"), tmp_path, cloud_n=80, cloud_layers=[1, 3]
    )
    np.testing.assert_array_equal(again.clouds[0].coords, art.clouds[0].coords)


def test_trajectory_self_similarity_is_computed_once_and_saved(analysed, tmp_path):
    from sklearn.metrics.pairwise import cosine_similarity

    store, result = analysed
    make_run(analysed, tmp_path, words=["market"], max_occurrences=10_000)
    data = load_artefacts(tmp_path).trajectories
    occ = store.occurrences("market", 2)
    S = cosine_similarity(occ)
    expected = (S.sum() - np.trace(S)) / (len(S) * (len(S) - 1))
    assert data["self_similarity"]["market"][2] == pytest.approx(expected, rel=1e-5)
    assert np.isin(data["background_rows"], result.sample_rows).all()


def test_missing_damaged_or_foreign_artefacts_leave_panels_out_with_a_note(analysed, tmp_path):
    run = tmp_path / "run"
    make_run(analysed, run, cloud_n=60, cloud_layers=[0, 3])
    shutil.rmtree(run / "store")
    folder = run / "artefacts"

    # One damaged cloud file: that cloud goes, the rest is drawn.
    (folder / "clouds" / "layer_0.safetensors").write_bytes(b"\x00garbage")
    art = load_artefacts(run)
    assert [c.layer for c in art.clouds] == [3] and len(art.repair_views) == 3
    assert any("layer 0" in n and "damaged" in n for n in art.notes)

    # Results of another analysis: nothing is drawn from these artefacts.
    results = json.loads((run / "results.json").read_text())
    results["settings"]["seed"] = 5
    (run / "other.json").write_text(json.dumps(results))
    res = runner.invoke(app, ["report", str(run / "other.json"), "--out", str(run / "o.html")])
    assert res.exit_code == 0, res.output
    html = (run / "o.html").read_text()
    assert "belong to another analysis" in html and 'id="clouds"' not in html

    # Hand-edited indexes: a file outside the folder, a record that is not one.
    index = json.loads((folder / "index.json").read_text())
    index["clouds"][1]["file"] = "../results.json"
    (folder / "index.json").write_text(json.dumps(index))
    art = load_artefacts(run)
    assert art.clouds == [] and any("points outside the artefacts folder" in n for n in art.notes)
    index["clouds"] = "layer_0.safetensors"
    (folder / "index.json").write_text(json.dumps(index))
    art = load_artefacts(run)
    assert art.empty and "is damaged (TypeError" in art.notes[0]

    # A damaged index, then no folder at all: a report without those panels, and a note.
    (folder / "index.json").write_text("{not json")
    res = runner.invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    html = (run / "report.html").read_text()
    assert "is not valid JSON" in html and 'id="clouds"' not in html and 'id="repairs-0"' in html
    shutil.rmtree(folder)
    res = runner.invoke(app, ["report", str(run / "results.json")])
    assert res.exit_code == 0 and "Traceback" not in res.output
    html = (run / "report.html").read_text()
    assert "No artefacts folder" in html and 'id="trajectories"' not in html


def test_report_command_user_errors(tmp_path, make_results):
    res = runner.invoke(app, ["report", str(tmp_path / "nope.json")])
    assert res.exit_code == 2 and "has no results.json" in res.output
    (tmp_path / "results.json").write_text(json.dumps(make_results(2, evaluation=False)))
    res = runner.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "is a folder" in res.output
    res = runner.invoke(app, ["report", str(tmp_path), "--format", "gif"])
    assert res.exit_code == 2 and "png, svg or pdf" in res.output


def test_compare_draws_each_run_from_its_artefacts(analysed, tmp_path, make_results):
    a = tmp_path / "a"
    make_run(analysed, a, cloud_n=60)
    shutil.rmtree(a / "store")
    b = tmp_path / "b"
    b.mkdir()
    (b / "results.json").write_text(json.dumps(make_results(5, 1, "deep", evaluation=False)))
    res = runner.invoke(
        app, ["compare", str(a), str(b / "results.json"), "--out", str(tmp_path / "cmp")]
    )
    assert res.exit_code == 0, res.output
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert 'id="clouds"' in html and 'id="repairs-0"' in html and 'id="repairs-1"' in html
    assert "deep: No artefacts folder" in html
    assert (tmp_path / "cmp" / "figures" / "repairs_clouds_0.svg").exists()
    assert not (tmp_path / "cmp" / "figures" / "repairs_clouds_1.png").exists()


def test_plain_results_dict_gets_no_repair_views(analysed, tmp_path):
    store, result = analysed
    art = compute_artefacts(result.to_dict(), store, None, cloud_n=50, seed=7)
    assert art.repair_views == [] and art.path is None
    assert any("never refitted" in n for n in art.notes)
    expected = store.sample_indices(200, 0, False, False)
    assert np.isin(art.clouds[0].rows, expected).all()
    with pytest.raises(InputError, match="not in the store"):
        compute_artefacts(result, store, None, cloud_layers=[9])
    with pytest.raises(InputError, match="None of the chosen words"):
        word_trajectories(store, ["notaword"])


def test_write_report_with_a_store_computes_the_artefacts_first(analysed, tmp_path):
    from isoscope.report import write_report

    store, result = analysed
    path = write_report(result, tmp_path, store=store, cloud_n=40, cloud_layers=[3], dpi=30)
    html = path.read_text(encoding="utf-8")
    assert 'id="clouds"' in html and (tmp_path / "figures" / "repairs_clouds.png").exists()
    art = load_artefacts(tmp_path, result.to_dict())
    assert art.notes == [] and [c.layer for c in art.clouds] == [3] and art.clouds[0].n == 40
    with pytest.raises(InputError, match="either artefacts or a store"):
        write_report(result, tmp_path, art, store=store)
    with pytest.raises(InputError, match="2 artefact sets for 1 results"):
        write_report(result, tmp_path, [art, art])
