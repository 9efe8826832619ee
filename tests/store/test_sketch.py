"""Sketch stores (``--keep sample:N``): moments of every token, a bottom-k sample that merges."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from isoscope.errors import InputError, StoreError
from isoscope.sketch import (
    BottomKSample,
    StoreSketch,
    group_codes,
    parse_keep,
    priorities,
    selected_groups,
)
from isoscope.store import open_store
from tests.conftest import TRAIN_TEXT

TEXT = TRAIN_TEXT[:60]  # the six fixture sentences, ten times
MOMENT_KEYS = ("n_tokens", "s_inter", "mean_norm", "isoscore", "pca_dims_80", "effective_rank",
               "rankme", "anisotropy_top1", "anisotropy_top1_centered", "max_abs_activation",
               "n_outlier_dimensions", "n_null_directions")
SETTINGS = {"sample": 60, "seed": 1, "k_range": (2, 3), "lid_k": 5, "s_intra_min_occurrences": 2,
            "ethayarajh_sentences": 4, "threads": 1}


@pytest.fixture(scope="module")
def stores(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from isoscope.corpora import Corpus
    from isoscope.extract import extract

    root = tmp_path_factory.mktemp("sketch")
    corpus = Corpus("train", TEXT, {})
    kw = {"dtype": "float32", "progress": False, "batch_size": 8}
    return {
        "full": extract(str(tiny_bert), corpus, root / "full", chunk_tokens=97, **kw),
        "sketch": extract(str(tiny_bert), corpus, root / "sketch", keep="sample:150", seed=3,
                          chunk_tokens=97, **kw),
        "sketch_other_chunks": extract(str(tiny_bert), corpus, root / "sketch2", keep="sample:150",
                                       seed=3, chunk_tokens=400, **kw),
    }


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def _chunk(rng: np.random.Generator, first: int, n: int, d: int, layers: list[int]) -> tuple:
    rows = np.arange(first, first + n)
    arrays = {layer: rng.normal(size=(n, d)).astype(np.float32) * (layer + 1) for layer in layers}
    pos = rng.integers(0, 4, size=n)
    table = pa.table({"sentence_id": pa.array(rows // 4, pa.int32()), "position": pa.array(pos, pa.int32()),
                      "token_id": pa.array(rows % 7, pa.int32()), "token": [f"t{r % 7}" for r in rows],
                      "word_id": pa.array(rows % 3, pa.int32()), "word": [f"w{r % 5}" for r in rows],
                      "is_special": pa.array(rng.random(n) < 0.2, pa.bool_())})
    return rows, arrays, table


def test_parse_keep() -> None:
    assert parse_keep("all") is None
    assert parse_keep("sample:50") == 50
    for bad in ("sample:0", "sample:x", "some"):
        with pytest.raises(InputError, match="--keep"):
            parse_keep(bad)


def test_groups_cover_the_candidate_rows() -> None:
    special = np.array([True, True, False, False])
    position = np.array([0, 3, 0, 5])
    codes = group_codes(special, position)
    for inc in (False, True):
        for drop in (False, True):
            want = (inc | ~special) & (~drop | (position != 0))
            assert np.array_equal(np.isin(codes, selected_groups(inc, drop)), want)


def test_priorities_are_a_keyed_bijection() -> None:
    rows = np.arange(10_000)
    p = priorities(rows, 7)
    assert np.unique(p).size == rows.size
    assert np.array_equal(p, priorities(rows, 7))
    assert not np.array_equal(p, priorities(rows, 8))
    # The hash of a row does not depend on the rows it comes with.
    assert np.array_equal(priorities(rows[5000:], 7), p[5000:])


def test_merged_halves_equal_one_pass() -> None:
    rng = np.random.default_rng(0)
    layers, d = [0, 2], 6
    chunks = [_chunk(rng, first, n, d, layers) for first, n in ((0, 50), (50, 31), (81, 70), (151, 9))]
    one = StoreSketch(layers, d, n=40, seed=5)
    for c in chunks:
        one.update(*c)
    a, b = StoreSketch(layers, d, n=40, seed=5), StoreSketch(layers, d, n=40, seed=5)
    for c in chunks[2:]:
        a.update(*c)  # shards in another order
    for c in chunks[:2]:
        b.update(*c)
    merged = a.merge(b)
    for layer in layers:
        for inc in (False, True):
            for drop in (False, True):
                m1, m2 = one.moments(layer, inc, drop), merged.moments(layer, inc, drop)
                assert m1.n == m2.n
                for x, y in ((m1.mean_, m2.mean_), (m1.m2_, m2.m2_), (m1.sum_unit_, m2.sum_unit_),
                             (m1.sum_abs_, m2.sum_abs_)):
                    np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-12 * np.abs(x).max())
                assert _rel(m1.sum_norm_, m2.sum_norm_) < 1e-12
                assert np.array_equal(m1.max_row_, m2.max_row_)
                np.testing.assert_array_equal(m1.max_abs_, m2.max_abs_)
    assert np.array_equal(one.sample.rows, merged.sample.rows)
    assert np.array_equal(one.sample.vectors[2], merged.sample.vectors[2])
    assert one.sample.tokens.equals(merged.sample.tokens)
    assert one.word_counts.sort_index().equals(merged.word_counts.sort_index())
    # Against a direct formula: the sample is the 40 rows of smallest priority, the moments
    # those of numpy over the selected rows.
    every = np.arange(160)
    assert np.array_equal(one.sample.rows, np.sort(every[np.argsort(priorities(every, 5))[:40]]))
    X = np.concatenate([c[1][2] for c in chunks]).astype(np.float64)
    special = np.concatenate([c[2].column("is_special").to_numpy(zero_copy_only=False) for c in chunks])
    m = one.moments(2, False, False)
    np.testing.assert_allclose(m.covariance(), np.cov(X[~special].T), rtol=1e-10, atol=1e-12)


def test_sample_merge_refuses_overlap_and_other_seeds() -> None:
    rng = np.random.default_rng(1)
    c = _chunk(rng, 0, 20, 3, [0])
    a = BottomKSample(5, 0, [0]).update(c[0], c[1], c[2])
    with pytest.raises(InputError, match="share rows"):
        a.merge(BottomKSample(5, 0, [0]).update(c[0], c[1], c[2]))
    with pytest.raises(InputError, match="seeds"):
        a.merge(BottomKSample(5, 1, [0]))


def test_sketch_file_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    sk = StoreSketch([1], 4, n=10, seed=0)
    sk.update(*_chunk(rng, 0, 30, 4, [1]))
    back = StoreSketch.load(sk.save(tmp_path / "sk").parent)
    for g1, g2 in zip(sk.layer_sketches[1].groups, back.layer_sketches[1].groups, strict=True):
        assert g1.n == g2.n and np.array_equal(g1.m2_, g2.m2_) and np.array_equal(g1.max_row_, g2.max_row_)
    assert np.array_equal(sk.sample.vectors[1], back.sample.vectors[1])
    assert sk.sample.tokens.equals(back.sample.tokens)
    assert back.merge(StoreSketch([1], 4, n=10, seed=0)).n_tokens == 30


def test_sketch_store_moments_equal_the_full_store(stores: dict) -> None:
    from isoscope.analysis import analyze

    full, sketch = stores["full"], stores["sketch"]
    assert sketch.is_sketch and not full.is_sketch
    assert sketch.n_tokens == 150 and sketch.manifest["n_tokens_total"] == full.n_tokens
    for over in ({}, {"include_special": True, "drop_position_zero": True}):
        rf = analyze(full, layers=[0, 3], **SETTINGS, **over)
        rs = analyze(sketch, layers=[0, 3], **SETTINGS, **over)
        for ef, es in zip(rf.layers, rs.layers, strict=True):
            for key in MOMENT_KEYS:
                assert ef[key] is not None, key
                assert _rel(float(ef[key]), float(es[key])) < 1e-9, (key, ef[key], es[key])
            assert [r["dim"] for r in ef["rogue_dims"]] == [r["dim"] for r in es["rogue_dims"]]
            top = [(t["row"], t["token"], t["position"], t["dim"], t["value"]) for t in ef["massive_activation_top"]]
            assert top == [(t["row"], t["token"], t["position"], t["dim"], t["value"])
                           for t in es["massive_activation_top"]]
            assert ef["outlier_dimensions"] == es["outlier_dimensions"] or all(
                a["dim"] == b["dim"] and a["top_row"] == b["top_row"] and a["top_token"] == b["top_token"]
                for a, b in zip(ef["outlier_dimensions"], es["outlier_dimensions"], strict=True))
        assert rs.settings["n_candidates"] == rf.settings["n_candidates"]


def test_analyze_reports_evidence_and_keep(stores: dict, tmp_path: Path) -> None:
    from isoscope.analysis import analyze

    res = analyze(stores["sketch"], layers=[3], **SETTINGS)
    data = res.to_dict()
    assert data["source"]["keep"] == {"mode": "sample", "n": 150, "seed": 3}
    assert data["measures"]["s_inter"]["evidence"] == "all tokens"
    assert data["measures"]["isotropy_partition"]["evidence"] == "sample"
    assert data["measures"]["lid_mle"]["evidence"] == "distinct sample"
    assert data["layers"][0]["lid_mle"] is not None
    assert data["settings"]["n_sample_candidates"] <= 150 < data["settings"]["n_candidates"]
    sample_only = analyze(stores["sketch"], layers=[3], full_layer_stats=False, **SETTINGS).to_dict()
    assert sample_only["measures"]["s_inter"]["evidence"] == "sample"
    assert analyze(stores["full"], layers=[3], **SETTINGS).to_dict()["source"]["keep"] == {"mode": "all"}


def test_sample_independent_of_chunking_and_seeded(stores: dict) -> None:
    a, b = stores["sketch"], stores["sketch_other_chunks"]
    assert np.array_equal(a.sketch.sample_rows, b.sketch.sample_rows)
    assert np.array_equal(np.asarray(a.layer(2)), np.asarray(b.layer(2)))
    assert a.tokens().equals(b.tokens())
    every = np.arange(a.manifest["n_tokens_total"])
    assert np.array_equal(a.sketch.sample_rows, np.sort(every[np.argsort(priorities(every, 3))[:150]]))
    assert not np.array_equal(a.sketch.sample_rows, np.sort(every[np.argsort(priorities(every, 4))[:150]]))
    # The stored rows are the full store's rows at the sampled positions, with corpus counts.
    full = stores["full"]
    rows = a.sketch.sample_rows
    np.testing.assert_array_equal(np.asarray(a.layer(3)), np.asarray(full.layer(3))[rows])
    ft = full.tokens().iloc[rows].reset_index(drop=True)
    assert a.tokens().equals(ft)


def test_disk_much_smaller(stores: dict) -> None:
    def layer_bytes(store: object) -> int:
        return sum(p.stat().st_size for p in (Path(store.path) / "layers").iterdir())  # type: ignore[attr-defined]

    full, sketch = stores["full"], stores["sketch"]
    assert layer_bytes(sketch) * 4 < layer_bytes(full)
    assert sketch.n_tokens * 4 < full.n_tokens


def test_damaged_sketch_refused(stores: dict, tmp_path: Path) -> None:
    import shutil

    from isoscope.sketch import SKETCH_FILE

    copy = tmp_path / "copy"
    shutil.copytree(stores["sketch"].path, copy)
    path = copy / SKETCH_FILE
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    store = open_store(copy)  # sizes still match: opening is cheap
    with pytest.raises(StoreError, match=r"^Store .* is damaged \(sketch\.safetensors does not match") as e:
        _ = store.sketch
    assert "\n" not in str(e.value)
    path.write_bytes(b"{not a sketch")
    with pytest.raises(StoreError, match="sketch.safetensors holds"):
        open_store(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["sketch_file"]["bytes"] = len(b"{not a sketch")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="damaged or not an isoscope sketch"):
        StoreSketch.load_file(path)


def test_exact_partition_over_every_token(stores: dict) -> None:
    from isoscope.analysis import analyze
    from isoscope.metrics.isotropy import partition_isotropy

    full = stores["full"]
    res = analyze(full, layers=[2], exact_partition=True, **SETTINGS)
    rows = np.flatnonzero(full.row_mask())
    X = np.asarray(full.layer(2)[rows], dtype=np.float64)
    X = X[np.linalg.norm(X, axis=1) > 0]
    for norm, suffix in (("raw", ""), ("centered", "_centered"), ("unit", "_unit")):
        want = partition_isotropy(X, normalisation=norm)
        assert _rel(res.layers[0][f"isotropy_partition{suffix}_log10"], want.log10) < 1e-9
    assert res.to_dict()["measures"]["isotropy_partition"]["evidence"] == "all tokens"
    # The sketch here was extracted from a Corpus object, which a second pass cannot re-open
    # (tests/analysis/test_exact_partition_sketch.py runs that pass on corpus files).
    with pytest.raises(InputError, match="corpus 'train' cannot be re-opened") as e:
        analyze(stores["sketch"], layers=[2], exact_partition=True, **SETTINGS)
    assert "\n" not in str(e.value)


def test_cli_keep_and_analyze(stores: dict, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from isoscope.cli import app

    runner = CliRunner()
    bad = runner.invoke(app, ["extract", "--out", str(tmp_path / "x"), "--corpus", "text:none.txt",
                              "--keep", "sample:zero"])
    assert bad.exit_code == 2 and "--keep must be 'all' or 'sample:N'" in bad.output
    info = runner.invoke(app, ["info", str(stores["sketch"].path)])
    assert info.exit_code == 0 and "sample of 150 token rows (seed 3)" in info.output
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["analyze", str(stores["sketch"].path), "--layers", "3", "--sample", "60",
                              "--lid-k", "5", "--k-max", "3", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["source"]["keep"]["mode"] == "sample"
    assert data["layers"][0]["s_inter"] == pytest.approx(
        stores["sketch"].sketch.moments(3).s_inter(), rel=1e-12)
