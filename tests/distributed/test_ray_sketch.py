"""Sketch stores (``--keep sample:N``) extracted on Ray Data against the single process.

Each shard folds its rows into a sketch over the corpus's global row ids; the driver merges
the shard sketches in shard order. The merged store must hold the single process's sample
rows (row ids, token rows, vector bytes) and its moments to 1e-12 relative to each
accumulator's largest entry (counts, maxima and their rows exactly), and analyze must give the same results on both to 1e-9. The cluster is
conftest's ``cluster`` fixture (a head and two one-CPU worker nodes).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from isoscope.distributed import extract_ray
from isoscope.extract import extract
from isoscope.sketch import GROUPS, SKETCH_FILE, StoreSketch
from isoscope.store import open_store
from tests.distributed.conftest import SETTINGS, assert_same

pytestmark = pytest.mark.ray

N, SEED = 40, 7  # of about 450 tokens: the sample is a real choice among the rows
KEEP = f"sample:{N}"
EXACT = ("max_abs_", "max_value_", "max_row_")  # maxima and the rows behind them
ROUNDED = ("mean_", "m2_", "sum_unit_", "sum_unit_sq_", "sum_abs_")


def _single_sketch(model: Path, corpus: Path, out: Path):
    """The single-process sketch store, on one torch thread like each actor."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return extract(str(model), str(corpus), out, keep=KEEP, seed=SEED, progress=False, **SETTINGS)
    finally:
        torch.set_num_threads(threads)


def _same_sketch_store(a: Path, b: Path) -> None:
    sa, sb = open_store(a), open_store(b)
    assert sa.is_sketch and sb.is_sketch
    assert sa.n_tokens == sb.n_tokens == N
    assert sa.manifest["n_tokens_total"] == sb.manifest["n_tokens_total"] > 5 * N
    assert sa.manifest["keep"] == sb.manifest["keep"] == {"mode": "sample", "n": N, "seed": SEED}
    assert sa.tokens().equals(sb.tokens())  # the sample's token rows, corpus-wide frequencies
    for layer in sa.layers:
        name = f"layer_{layer:03d}.bin"
        assert (a / "layers" / name).read_bytes() == (b / "layers" / name).read_bytes(), name
    ka, kb = StoreSketch.load_file(a / SKETCH_FILE), StoreSketch.load_file(b / SKETCH_FILE)
    np.testing.assert_array_equal(ka.sample_rows, kb.sample_rows)
    np.testing.assert_array_equal(ka.sample.priority, kb.sample.priority)
    assert ka.n_tokens == kb.n_tokens and ka.word_counts.sort_index().equals(kb.word_counts.sort_index())
    np.testing.assert_array_equal(ka.info_rows, kb.info_rows)
    np.testing.assert_array_equal(ka.info_token, kb.info_token)
    compared = 0
    for layer in ka.layers:
        for name, ga, gb in zip(GROUPS, ka.layer_sketches[layer].groups, kb.layer_sketches[layer].groups,
                                strict=True):
            where = f"layer {layer} {name}"
            assert (ga.n, ga.n_zero) == (gb.n, gb.n_zero), where
            if ga.n == 0:
                continue
            assert gb.sum_norm_ == pytest.approx(ga.sum_norm_, rel=1e-12, abs=0), where
            for field in EXACT:
                np.testing.assert_array_equal(getattr(ga, field), getattr(gb, field), err_msg=where)
            for field in ROUNDED:
                # Relative to the accumulator's largest entry: an entry that cancels to about 0
                # (a covariance of 1e-18 beside entries of 1e-4) has no relative digits in
                # either pass, and the merge of shards sums in another order than one pass.
                want, got = getattr(ga, field), getattr(gb, field)
                err = float(np.max(np.abs(got - want)))
                assert err <= 1e-12 * float(np.max(np.abs(want))), (where, field, err)
            compared += 1
    assert compared >= 2 * len(ka.layers)  # at least two non-empty token groups per layer
    assert not (b / "shards").exists()


class _DriverKilled(BaseException):
    """Stands for a SIGKILL of the driver (nothing of the driver's own cleanup runs on it)."""


def _killed_then_resumed(model: Path, corpus: Path, out: Path, monkeypatch, **kw):
    """A driver killed once every shard sketch but the last is committed, then rerun."""
    import isoscope.sketch

    def killed(*args, **kwargs):
        raise _DriverKilled

    # Killed after every commit, before the store is written ...
    with monkeypatch.context() as m:
        m.setattr(isoscope.sketch, "write_sketch_store", killed)
        with pytest.raises(_DriverKilled):
            extract_ray(str(model), str(corpus), out, workers=2, **kw)
    assert not open_store(out, allow_incomplete=True).manifest["complete"]
    kept = sorted((out / "shards").glob("shard_*"))
    assert len(kept) >= 3
    # ... as if before the last shard's commit: the rerun extracts it and reloads the others.
    shutil.rmtree(kept[-1])
    store = extract_ray(str(model), str(corpus), out, workers=1, **kw)
    record = store.manifest["extraction"]["ray"]
    assert (record["shards"], record["shards_this_run"]) == (len(kept), 1)
    return store


@pytest.mark.parametrize(("model", "chunks_per_shard", "resumed"),
                         [("tiny_bert", 3, True), ("tiny_gpt2", 2, False)])
def test_ray_sketch_equals_single_process(cluster, model, chunks_per_shard, resumed, corpus, tmp_path,
                                          request, monkeypatch):
    """Straight through (GPT-2), and killed then rerun (BERT: the cheaper test that covers both
    the reload of committed shard sketches and the merge of new ones)."""
    from isoscope.analysis import analyze

    folder = request.getfixturevalue(model)
    single = _single_sketch(folder, corpus, tmp_path / "single")
    kw = {"keep": KEEP, "seed": SEED, "chunks_per_shard": chunks_per_shard, "progress": False, **SETTINGS}
    if resumed:
        ray_store = _killed_then_resumed(folder, corpus, tmp_path / "ray", monkeypatch, **kw)
    else:
        ray_store = extract_ray(str(folder), str(corpus), tmp_path / "ray", workers=2, **kw)
        record = ray_store.manifest["extraction"]["ray"]
        assert record["shards"] > 2 and record["shards_this_run"] == record["shards"]
        assert sum(w["tokens"] for w in record["per_worker"]) == single.manifest["n_tokens_total"]
    assert ray_store.manifest["extraction"]["ray"]["chunks_per_shard"] == chunks_per_shard
    _same_sketch_store(tmp_path / "single", tmp_path / "ray")
    settings = {"sample": None, "seed": 1, "k_range": (2, 3), "lid_k": 5, "threads": 1}
    local, dist = analyze(single, **settings), analyze(ray_store, **settings)
    assert local.layers[0]["s_inter"] is not None and local.layers[0]["lid_mle"] is not None
    assert assert_same(local.layers, dist.layers, "layers") > 50 * len(local.layers)


def test_chunks_per_shard_on_the_cli(tiny_bert, corpus, tmp_path):
    from typer.testing import CliRunner

    from isoscope.cli import app

    base = ["extract", "--model", str(tiny_bert), "--corpus", str(corpus), "--out", str(tmp_path / "s")]
    runner = CliRunner()
    zero = runner.invoke(app, [*base, "--engine", "ray", "--chunks-per-shard", "0"])
    assert zero.exit_code == 2 and "--chunks-per-shard must be a positive integer, got 0." in zero.output
    single = runner.invoke(app, [*base, "--chunks-per-shard", "2"])
    assert single.exit_code == 2 and "--chunks-per-shard only apply with --engine ray" in single.output
    assert not (tmp_path / "s").exists()
