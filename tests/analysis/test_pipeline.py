"""The shared pipeline: run settings, the run-folder lock, layer choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from isoscope._runlock import RunLock
from isoscope.cli import app
from isoscope.errors import InputError
from isoscope.pipeline import RunSettings, resolve_layer


def test_a_second_run_into_a_locked_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):
        r = CliRunner().invoke(app, ["run", "--out", str(out), "--max-tokens", "100"])
    assert r.exit_code == 2, r.output
    assert "being written by another isoscope process" in r.output
    assert not (out / "store").exists()


def test_resolve_layer() -> None:
    layers = [0, 1, 2, 3]
    assert resolve_layer("last", layers) == 3 and resolve_layer("first", layers) == 0
    assert resolve_layer("-2", layers) == 2 and resolve_layer(1, layers) == 1
    with pytest.raises(InputError, match="out of range"):
        resolve_layer("-9", layers)
    with pytest.raises(InputError, match="not in the store"):
        resolve_layer("7", layers)


def test_run_settings_record_tasks_as_name_path() -> None:
    s = RunSettings(tasks=[("stsb", "a.csv")], transforms=["abtt"])
    d = s.to_dict()
    assert d["tasks"] == ["stsb=a.csv"] and d["transforms"] == ["abtt"] and d["seed"] == 0
