"""Fixes for problems the robustness pass found in the evaluation and run commands."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from isoscope.cli import app
from isoscope.errors import InputError
from isoscope.evaluate import load_sick, load_stsb

runner = CliRunner()


@pytest.mark.parametrize("score", ["7.5", "-1"])
def test_stsb_score_out_of_range_names_file_and_line(tmp_path, score) -> None:
    f = tmp_path / "sts-test.csv"
    f.write_text(f"g\tf\t2012\t1\t3.0\ta b\tc d\ng\tf\t2012\t2\t{score}\ta\tb\n")
    with pytest.raises(InputError, match=r"sts-test.csv.*line 2.*outside \[0, 5\]"):
        load_stsb(f)


def test_sick_score_out_of_range(tmp_path) -> None:
    f = tmp_path / "SICK_test_annotated.txt"
    f.write_text("pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
                 "1\ta b\tc d\t0.5\tNEUTRAL\n")
    with pytest.raises(InputError, match=r"outside \[1, 5\]"):
        load_sick(f, split=None)


@pytest.mark.parametrize("layers", [[1, 2], [{"layer": "x"}], "0,1"])
def test_compare_refuses_malformed_results(tmp_path, layers) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"layers": layers}))
    r = runner.invoke(app, ["compare", str(run), str(run), "--out", str(tmp_path / "cmp")])
    assert r.exit_code == 2 and "not an isoscope results file" in r.output, r.output
    assert "Traceback" not in r.output
