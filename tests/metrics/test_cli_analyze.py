"""``isoscope analyze`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from isoscope._validation import parse_layers
from isoscope.cli import app
from isoscope.errors import InputError

runner = CliRunner()
FAST = ["--k-max", "4", "--silhouette-sample", "200", "--lid-k", "8", "--no-progress"]


def test_parse_layers() -> None:
    assert parse_layers("all") is None
    assert parse_layers("last") == [-1]
    assert parse_layers("0,3, 6") == [0, 3, 6]
    assert parse_layers("0-2,5") == [0, 1, 2, 5]
    with pytest.raises(InputError):
        parse_layers("a-b")


def test_cli_analyze_npy_writes_json(tmp_path: Path) -> None:
    X = np.random.default_rng(0).standard_normal((400, 10)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "r.json"
    r = runner.invoke(
        app,
        [
            "analyze",
            str(tmp_path / "x.npy"),
            "--threads",
            "1",
            "--sample",
            "300",
            "--seed",
            "2",
            "--out",
            str(out),
            *FAST,
        ],
    )
    assert r.exit_code == 0, r.output
    assert "S_inter" in r.output and "wrote" in r.output
    d = json.loads(out.read_text())
    assert d["settings"]["seed"] == 2 and d["settings"]["sample"] == 300
    assert d["settings"]["threads"] == 1
    assert d["layers"][0]["n_vectors"] == 300 and d["layers"][0]["s_intra"] is None


def test_cli_analyze_transform(tmp_path: Path) -> None:
    X = np.random.default_rng(1).standard_normal((500, 10)).astype(np.float32) + 3
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "r.json"
    r = runner.invoke(
        app,
        [
            "analyze",
            str(tmp_path / "x.npy"),
            "--sample",
            "200",
            "-t",
            "center",
            "-t",
            "abtt:n_components=1",
            "--out",
            str(out),
            *FAST,
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    assert [t["spec"] for t in d["transforms"]] == ["center", "abtt:n_components=1"]
    assert all(t["fit"] == "inductive" for t in d["transforms"])
    assert "center (inductive" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "/nonexistent/store"], "does not exist"),
        (["analyze", "{npy}", "--lid-variant", "whiten"], "Unknown LID variant"),
        (["analyze", "{npy}", "--layers", "x"], "Cannot read layers"),
        (["analyze", "{npy}", "-t", "nosuchrepair"], "Unknown transform"),
    ],
)
def test_cli_bad_input_is_one_sentence(tmp_path: Path, args: list[str], message: str) -> None:
    X = np.random.default_rng(2).standard_normal((100, 5))
    np.save(tmp_path / "x.npy", X)
    args = [a.replace("{npy}", str(tmp_path / "x.npy")) for a in args]
    r = runner.invoke(app, [*args, *FAST])
    assert r.exit_code == 2
    assert message in r.output
    assert "Traceback" not in r.output
    assert r.output.strip().startswith("error:") and r.output.count("\n") == 1
