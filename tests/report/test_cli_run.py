"""``isoscope run``, ``compare`` and ``report`` end to end on tiny models, plus their helpers."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from isoscope._validation import parse_tasks
from isoscope.cli import app
from isoscope.cli._report import load_results
from isoscope.cli._run import resolve_layer, slug
from isoscope.errors import InputError

runner = CliRunner()


def test_helpers():
    assert (
        slug("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers-all-MiniLM-L6-v2"
    )
    assert slug("minilm") == "minilm"
    layers = [0, 1, 2, 3]
    assert resolve_layer("last", layers) == 3 and resolve_layer("first", layers) == 0
    assert resolve_layer("-2", layers) == 2 and resolve_layer("1", layers) == 1
    for bad in ("7", "-9", "middle"):
        with pytest.raises(InputError):
            resolve_layer(bad, layers)
    assert parse_tasks(["stsb=a.csv", " wordsim = b.txt"]) == [
        ("stsb", "a.csv"),
        ("wordsim", "b.txt"),
    ]
    with pytest.raises(InputError, match="NAME=PATH"):
        parse_tasks(["stsb"])


def test_compare_reports_user_errors_in_one_sentence(tmp_path):
    res = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert res.exit_code == 2
    assert "has no results.json" in res.output and "Traceback" not in res.output
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{not json")
    with pytest.raises(InputError, match="results file .* is not valid JSON"):
        load_results(tmp_path / "bad")
    res = runner.invoke(app, ["compare", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "at least two" in res.output
    res = runner.invoke(app, ["run", "--task", "stsb", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "NAME=PATH" in res.output


@pytest.mark.slow
def test_run_then_compare(tiny_bert, corpus_file, tmp_path, make_results, build_store):
    pairs = tmp_path / "pairs.tsv"
    rows = [
        ("a cat sat on a mat .", 4.5),
        ("the dog chased the cat .", 2.0),
        ("isotropy means every direction is equally likely .", 0.2),
        ("the cat sat .", 3.8),
        ("language models map words to vectors .", 0.5),
    ]
    lines = ["sentence1\tsentence2\tscore"] + [
        f"the cat sat on the mat .\t{a}\t{b}" for a, b in rows
    ]
    pairs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_dir = tmp_path / "runs" / "bert"
    args = [
        "run",
        "--model",
        str(tiny_bert),
        "--corpus",
        f"text:{corpus_file}",
        "--max-tokens",
        "0",
        "--sample",
        "150",
        "--transform",
        "abtt:n_components=2",
        "--task",
        f"pairs={pairs}",
        "--fit-on",
        "corpus",
        "--word",
        "cat",
        "--seed",
        "3",
        "--out",
        str(run_dir),
        "--no-progress",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert f"report   {run_dir / 'report.html'}" in res.output
    results = json.loads((run_dir / "results.json").read_text())
    assert results["run"]["seed"] == 3 and results["run"]["layer"] == 3
    assert results["run"]["fit_on"] == "corpus" and results["settings"]["seed"] == 3
    assert len(results["layers"]) == 4
    (tr,) = results["transforms"]
    assert tr["layer"] == 3 and tr["fit"] == "inductive"
    assert {r["transform"] for r in results["evaluation"]} == {"none", "abtt:n_components=2"}
    html = (run_dir / "report.html").read_text()
    for sid in ("clouds", "evaluation", "repairs-0", "trajectories"):
        assert f'id="{sid}"' in html, sid
    assert "Words followed: cat" in html and "run.fit_on" in html
    assert "could not be drawn" not in html and "Not available" not in html
    assert (run_dir / "figures" / "layer_curves.svg").exists()
    assert (run_dir / "store" / "manifest.json").exists()

    # A second run finds the complete store and reuses it instead of extracting again.
    manifest = run_dir / "store" / "manifest.json"
    before = manifest.stat().st_mtime_ns
    res = runner.invoke(app, [a for a in args if a not in ("--task", f"pairs={pairs}")])
    assert res.exit_code == 0, res.output
    assert manifest.stat().st_mtime_ns == before

    # compare: the real run beside a synthetic one (its own store), by folder or by file.
    other = tmp_path / "runs" / "gpt"
    other.mkdir()
    build_store(other / "store", n_layers=13, model="tiny-gpt")
    (other / "results.json").write_text(json.dumps(make_results(13, 1, "tiny-gpt")))
    res = runner.invoke(
        app,
        [
            "compare",
            str(run_dir),
            str(other / "results.json"),
            "--out",
            str(tmp_path / "cmp"),
            "--title",
            "bert <vs> gpt",
        ],
    )
    assert res.exit_code == 0, res.output
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert "<title>isoscope — bert &lt;vs&gt; gpt</title>" in html
    assert "<h3>tiny-bert</h3>" in html and "<h3>tiny-gpt</h3>" in html
    assert 'id="clouds"' in html  # both stores were found and opened

    # The run's report can be drawn again from results.json and artefacts alone.
    assert (run_dir / "artefacts" / "index.json").exists()
    shutil.rmtree(run_dir / "store")
    (run_dir / "report.html").unlink()
    res = runner.invoke(app, ["report", str(run_dir / "results.json")])
    assert res.exit_code == 0, res.output
    html = (run_dir / "report.html").read_text()
    for sid in ("clouds", "trajectories", "repairs-0"):
        assert f'id="{sid}"' in html, sid
    assert "Words followed: cat" in html and "store.hidden_size" in html


def test_results_of_another_schema_version_are_refused_in_one_sentence(tmp_path):
    import json

    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "results.json").write_text(json.dumps({"layers": [{"layer": 0}]}))
    res = runner.invoke(app, ["report", str(tmp_path / "old")])
    assert res.exit_code == 2 and "schema version 1" in res.output and "reads version 2" in res.output
    assert "Traceback" not in res.output
