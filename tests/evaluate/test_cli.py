"""`isoscope evaluate` end to end on a small static table written as GloVe text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from isoscope.cli import app

runner = CliRunner()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def glove_txt(tmp_path, tiny_table) -> Path:
    rows = [f"{w} " + " ".join(f"{v:.6f}" for v in vec) for w, vec in zip(tiny_table.words, tiny_table.vectors, strict=True)]
    return write(tmp_path / "tiny.txt", "\n".join(rows) + "\n")


def test_cli_table_and_json(tmp_path, glove_txt):
    ws = write(tmp_path / "EN-TINY.txt", "cat dog 8\nking queen 9\nman woman 8.5\ncar truck 7\nroad animal 1\n")
    pairs = write(tmp_path / "mine.tsv", "sentence1\tsentence2\tscore\nthe cat\ta dog\t4\nred car\tblue truck\t3\n"
                                         "king man\tqueen woman\t5\napple\troad\t0\n")
    out = tmp_path / "eval.json"
    result = runner.invoke(app, [
        "evaluate", "--model", str(glove_txt), "--task", f"wordsim={ws}", "--task", f"pairs={pairs}",
        "--transform", "none,center", "--transductive", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "Spearman x 100" in result.stdout
    assert "wordsim:EN-TINY" in result.stdout and "pairs:mine" in result.stdout
    data = json.loads(out.read_text())
    rows = data["results"]
    assert len(rows) == 4
    assert {r["fit"] for r in rows if r["transform"] == "center"} == {"transductive"}
    for r in rows:
        assert {"task", "dataset", "transform", "fit", "spearman", "pearson", "n", "oov"} <= set(r)
        assert r["spearman"] is None or np.isfinite(r["spearman"])


def test_cli_malformed_task_file_is_one_sentence(tmp_path, glove_txt):
    ws = write(tmp_path / "bad.txt", "cat dog 8\nking queen\n")
    result = runner.invoke(app, ["evaluate", "--model", str(glove_txt), "--task", f"wordsim={ws}"])
    assert result.exit_code == 2
    assert "at line 2" in result.output and "Traceback" not in result.output


def test_cli_bad_task_syntax(tmp_path, glove_txt):
    result = runner.invoke(app, ["evaluate", "--model", str(glove_txt), "--task", "wordsim"])
    assert result.exit_code == 2 and "NAME=PATH" in result.output
    result = runner.invoke(app, ["evaluate", "--model", str(glove_txt), "--task", f"wordsim={tmp_path}/x.txt",
                                 "--layer", "a,b"])
    assert result.exit_code == 2
