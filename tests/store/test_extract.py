"""Extraction into a store: alignment, resume after SIGKILL, locking, bad input."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from isoscope.cli import app
from isoscope.errors import StoreError, StoreLockedError
from isoscope.extract import extract
from isoscope.models import load_encoder
from isoscope.store import StoreLock, open_store, write_store

runner = CliRunner()


def test_store_rows_align_with_model_output(tiny_bert, corpus_file, tmp_path) -> None:
    store = extract(str(tiny_bert), str(corpus_file), tmp_path / "s", chunk_tokens=40, batch_size=4,
                    dtype="float32", progress=False)
    m = store.manifest
    assert m["complete"] and m["n_sentences"] == 25 and m["layers"] == [0, 1, 2, 3]
    tokens = store.tokens()
    assert len(tokens) == store.n_tokens == m["planned_tokens"]
    # Rows follow corpus order, and each sentence's vectors equal a direct forward pass.
    encoder = load_encoder(str(tiny_bert))
    for sid in (0, 1, 24):
        sentence = [s for s in corpus_file.read_text().splitlines() if s.strip()][sid]
        out = encoder.encode([sentence])
        rows = np.flatnonzero(tokens["sentence_id"].to_numpy() == sid)
        assert list(tokens["position"].iloc[rows]) == list(range(len(rows)))
        for layer in (0, 3):
            np.testing.assert_allclose(store.layer(layer)[rows], out.hidden_states[layer][0].numpy(), atol=1e-5)
    first = tokens[tokens["sentence_id"] == 1]
    assert first["is_special"].tolist()[0] and first["is_special"].tolist()[-1]
    words = first.loc[~first["is_special"], "word"].tolist()
    assert words[0] == "unbelievably" and "," in words  # sub-words carry their whole word
    assert (first.loc[first["is_special"], "word_id"] == -1).all()
    assert tokens.loc[tokens["word"] == "cat", "word_count"].iloc[0] == 10
    assert tokens.loc[tokens["word"] == "the", "zipf"].iloc[0] > 7


def test_selected_layers_and_float16(tiny_gpt2, corpus_file, tmp_path) -> None:
    store = extract(str(tiny_gpt2), str(corpus_file), tmp_path / "s", layers="0,2", progress=False)
    assert store.layers == [0, 2] and store.layer(2).dtype == np.float16
    assert store.model_type == "decoder"
    X, rows = store.sample(2, 10, seed=1, drop_position_zero=True)
    assert X.shape == (10, 32) and (store.tokens()["position"].to_numpy()[rows] != 0).all()
    again, rows2 = store.sample(2, 10, seed=1, drop_position_zero=True)
    np.testing.assert_array_equal(rows, rows2)


def test_max_tokens_keeps_whole_sentences(tiny_bert, corpus_file, tmp_path) -> None:
    store = extract(str(tiny_bert), str(corpus_file), tmp_path / "s", max_tokens=50, progress=False)
    assert store.n_tokens <= 50
    t = store.tokens()
    last = t["sentence_id"].max()
    assert t.loc[t["sentence_id"] == last, "is_special"].iloc[-1]  # ends with [SEP]: not cut mid-sentence


def test_max_tokens_plan_tokenises_only_what_it_needs(tiny_bert) -> None:
    # The cut is the same as on the whole corpus's lengths (whole sentences while the running
    # total stays within max_tokens), but sentences past the cut's step are never tokenised.
    from isoscope.extract import plan_extraction

    encoder = load_encoder(str(tiny_bert))
    rng = random.Random(0)
    sentences = [" ".join(rng.choice(["the", "cat", "sat", "on", "a", "mat"]) for _ in range(rng.randint(1, 9)))
                 for _ in range(1500)]
    full = plan_extraction(encoder, sentences, max_tokens=None, chunk_tokens=64)
    tokenised: list[int] = []
    flat = encoder.tokenize_flat
    encoder.tokenize_flat = lambda s: (tokenised.append(len(s)), flat(s))[1]
    for budget in (1, 300, 5000, 10**9):
        tokenised.clear()
        plan = plan_extraction(encoder, sentences, max_tokens=budget, chunk_tokens=64)
        n = max(1, int((np.cumsum(full.lengths) <= budget).sum()))
        assert plan.sentences == sentences[:n]
        assert plan.lengths.tolist() == full.lengths[:n].tolist()
        assert plan.tokens.ids.tolist() == full.tokens.select(0, n).ids.tolist()
        assert sum(tokenised) == (len(sentences) if budget == 10**9 else min(len(sentences), -(-(n + 1) // 256) * 256))


def test_truncation_is_counted(tiny_bert, tmp_path) -> None:
    f = tmp_path / "long.txt"
    f.write_text("short line .\n" + "the cat " * 50_000 + "\n")  # a 100,000-character line
    store = extract(str(tiny_bert), str(f), tmp_path / "s", progress=False)
    assert store.manifest["n_truncated"] == 1
    assert store.tokens().groupby("sentence_id").size().max() == 64


def test_complete_store_is_reused_and_other_settings_refused(tiny_bert, corpus_file, tmp_path) -> None:
    out = tmp_path / "s"
    extract(str(tiny_bert), str(corpus_file), out, progress=False)
    before = (out / "layers" / "layer_001.bin").stat().st_mtime_ns
    extract(str(tiny_bert), str(corpus_file), out, progress=False)
    assert (out / "layers" / "layer_001.bin").stat().st_mtime_ns == before
    with pytest.raises(StoreError, match="other settings"):
        extract(str(tiny_bert), str(corpus_file), out, dtype="float32", progress=False)


def test_another_seed_reuses_the_store(tiny_bert, corpus_file, tmp_path) -> None:
    """Issue 14, bug 1: extraction never uses the seed, so it is no part of the store's identity
    (``isoscope run`` and then ``isoscope run --seed 1`` into one folder)."""
    out = tmp_path / "s"
    extract(str(tiny_bert), str(corpus_file), out, seed=0, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    store = extract(str(tiny_bert), str(corpus_file), out, seed=1, progress=False)
    assert store.manifest["complete"] is True and store.manifest["seed"] == 0  # the seed it was made with
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".lock"} == before


def test_second_writer_is_refused(tiny_bert, corpus_file, tmp_path) -> None:
    out = tmp_path / "s"
    out.mkdir()
    holder = StoreLock(out)
    holder.acquire()
    try:
        with pytest.raises(StoreLockedError, match=r"being written by pid \d+"):
            extract(str(tiny_bert), str(corpus_file), out, progress=False)
    finally:
        holder.release()


def test_incomplete_and_damaged_stores_are_one_sentence(tmp_path) -> None:
    X = np.ones((4, 3), dtype=np.float32)
    store = write_store(tmp_path / "s", {0: X})
    (store.path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="damaged"):
        open_store(store.path)
    store = write_store(tmp_path / "t", {0: X})
    os.truncate(store.path / "layers" / "layer_000.bin", 8)
    with pytest.raises(StoreError, match=r"layer_000\.bin holds 8 bytes, but the manifest says 4 rows x 3 x 4 bytes = 48"):
        open_store(store.path)


def _extract_script(model: Path, corpus: Path, out: Path) -> list[str]:
    code = (
        "import sys; from isoscope.extract import extract; "
        f"extract({str(model)!r}, {str(corpus)!r}, {str(out)!r}, chunk_tokens=24, batch_size=2, progress=False)"
    )
    return [sys.executable, "-c", code]


def _store_bytes(path: Path) -> dict[str, bytes]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != ".lock")
    return {str(p.relative_to(path)): p.read_bytes() for p in files}


@pytest.mark.slow
def test_resume_after_sigkill_is_byte_identical(tiny_bert, tmp_path) -> None:
    corpus = tmp_path / "c.txt"
    words = "the cat sat on the mat a dog chased it across the garden".split()
    rng = random.Random(0)
    corpus.write_text("\n".join(" ".join(rng.choices(words, k=rng.randint(3, 14))) for _ in range(400)))
    reference = tmp_path / "ref"
    subprocess.run(_extract_script(tiny_bert, corpus, reference), check=True)
    out = tmp_path / "killed"
    kills = 0
    for _ in range(10):
        proc = subprocess.Popen(_extract_script(tiny_bert, corpus, out))
        time.sleep(rng.uniform(2.5, 6.0))  # interpreter start-up takes ~2-3 s, extraction a few more
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    subprocess.run(_extract_script(tiny_bert, corpus, out), check=True)
    assert kills >= 5, "the extraction finished too fast to be killed"
    assert _store_bytes(out) == _store_bytes(reference)


def test_cli_extract_info_and_bad_inputs(tiny_bert, corpus_file, tmp_path) -> None:
    out = tmp_path / "s"
    result = runner.invoke(app, ["extract", "--model", str(tiny_bert), "--corpus", str(corpus_file),
                                 "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "tokens" in result.output and "complete    True" in result.output
    info = runner.invoke(app, ["info", str(out)])
    assert info.exit_code == 0 and "word types" in info.output

    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")
    not_store = tmp_path / "busy"
    not_store.mkdir()
    (not_store / "notes.txt").write_text("mine")
    cases = [
        (["--model", str(tiny_bert), "--corpus", str(empty)], "contains no non-empty lines"),
        (["--model", "no-such-model", "--corpus", str(corpus_file)], "Unknown model"),
        (["--model", str(tmp_path), "--corpus", str(corpus_file)], "no config.json"),
        (["--model", str(tiny_bert), "--corpus", str(corpus_file), "--layers", "7"], "--layers must lie in 0..3"),
    ]
    for args, message in cases:
        r = runner.invoke(app, ["extract", *args, "--out", str(tmp_path / "new"), "--no-progress"])
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
        assert not (tmp_path / "new" / "manifest.json").exists()
    r = runner.invoke(app, ["extract", "--model", str(tiny_bert), "--corpus", str(corpus_file),
                            "--out", str(not_store)])
    assert r.exit_code == 2 and "not an isoscope store" in r.output
    assert (not_store / "notes.txt").read_text() == "mine"


@pytest.mark.integration
def test_minilm_last_layer_matches_sentence_transformers(tmp_path) -> None:
    import sentence_transformers as st

    from isoscope.models import bundled_path

    sentences = ["The geometry of embedding spaces is anisotropic.", "A cat sat on the mat."]
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(sentences) + "\n")
    store = extract("minilm", str(corpus), tmp_path / "s", layers="last", dtype="float32", progress=False)
    t = store.tokens()
    ours = np.stack([store.layer(6)[t["sentence_id"].to_numpy() == i].mean(axis=0) for i in range(2)])
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    model = st.SentenceTransformer(str(bundled_path("minilm")), device="cpu")
    ref = model.encode(sentences, normalize_embeddings=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_static_table_extracts_one_layer(tmp_path) -> None:
    from isoscope.models.static import StaticEmbeddings, StaticEncoder

    table = StaticEmbeddings(["the", "cat", "sat"], np.eye(3, dtype=np.float32), name="toy", lowercase=True)
    corpus = tmp_path / "c.txt"
    corpus.write_text("The cat sat on the mat\nunknown words only\ncat\n")
    store = extract(StaticEncoder(table), str(corpus), tmp_path / "s", progress=False)
    assert store.layers == [0] and store.model_type == "static"
    t = store.tokens()
    assert t["word"].tolist() == ["The", "cat", "sat", "the", "cat"]
    np.testing.assert_array_equal(store.layer(0)[1], [0, 1, 0])
    assert store.manifest["n_oov_skipped"] == 5  # on, mat, unknown, words, only


@pytest.mark.parametrize("model", ["tiny_bert", "tiny_gpt2"])
@pytest.mark.parametrize("packs", [True, False])
def test_flat_chunk_equals_batch_by_batch_tokenising(model, packs, request, corpus_file) -> None:
    # The pre-tokenised chunk path (packed or padded) gives the same token rows as tokenising
    # each batch again (the path static tables still take), and the same vectors.
    from isoscope.corpora import load_corpus
    from isoscope.extract import _encode_chunk, _run_chunk_flat, _token_table, plan_extraction

    encoder = load_encoder(str(request.getfixturevalue(model)))
    encoder.packs = packs
    sentences = load_corpus(str(corpus_file)).sentences
    plan = plan_extraction(encoder, sentences, max_tokens=None, chunk_tokens=10_000)
    layers = [0, 2, 3]
    new = _run_chunk_flat(encoder, plan.tokens, layers, np.dtype("float32"), batch_size=4, batch_tokens=40)
    new_table = _token_table(encoder, plan.sentences, plan.tokens, 7)
    old, old_table = _encode_chunk(encoder, plan.sentences, 7, layers, np.dtype("float32"), 4, 40, plan.lengths)
    assert new_table.equals(old_table)
    assert new_table.num_rows == plan.n_tokens and new_table["sentence_id"][0].as_py() == 7
    for layer in layers:
        np.testing.assert_allclose(new[layer], old[layer], atol=1e-5)


def test_float16_overflow_and_nan_are_refused_per_batch() -> None:
    import torch

    from isoscope.errors import InputError
    from isoscope.extract import _to_storage

    fine = _to_storage(torch.ones(3, 2), np.dtype("float16"), 4)
    assert fine.dtype == np.float16 and fine.shape == (3, 2)
    with pytest.raises(InputError, match="beyond the float16 range"):
        _to_storage(torch.full((3, 2), 1e6), np.dtype("float16"), 4)
    with pytest.raises(InputError, match="NaN or Inf values in 1 of 3"):
        _to_storage(torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [1.0, 1.0]]), np.dtype("float32"), 4)


def test_all_finite_reads_float16_bits() -> None:
    from isoscope.store import all_finite

    x = np.array([[0.0, -0.0, 6e-8, -65504.0, 65504.0, 1.0]], dtype=np.float16)  # subnormal, extremes
    assert all_finite(x) and all_finite(x.astype(np.float32)) and all_finite(x[:0])
    for bad in (np.inf, -np.inf, np.nan):
        for dtype in (np.float16, np.float32):
            y = x.astype(dtype)
            y[0, 2] = bad
            assert not all_finite(y)


def test_packed_batches_keep_order_and_bounds_and_avoid_a_tiny_last_run() -> None:
    from isoscope.extract import _packed_batches

    rng = np.random.default_rng(0)
    for _ in range(500):
        lengths = rng.integers(1, 600, size=int(rng.integers(1, 80)))
        batch_tokens, batch_size = int(rng.integers(600, 5000)), int(rng.integers(1, 50))
        runs = _packed_batches(lengths, batch_size, batch_tokens)
        np.testing.assert_array_equal(np.concatenate(runs), np.arange(len(lengths)))
        for run in runs:
            # A sentence longer than the bound runs alone.
            assert len(run) == 1 or (lengths[run].sum() <= batch_tokens and len(run) <= batch_size)
    # Greedy packing would end in a 100-token pass; the last two runs share the tokens instead.
    def sizes(lengths: list[int]) -> list[int]:
        return [int(np.sum(np.array(lengths)[r])) for r in _packed_batches(np.array(lengths), 64, 4096)]

    assert sizes([1000] * 4 + [100]) == [2000, 2100]
    assert sizes([500] * 8 + [100, 100]) == [2000, 2200]
    # A last run of at least half the bound stays as greedy packing left it.
    assert sizes([1000] * 5 + [3000]) == [4000, 4000]


def test_a_failed_commit_stops_extraction_and_the_store_resumes(tiny_bert, corpus_file, tmp_path,
                                                                 monkeypatch) -> None:
    # Commits run on a second thread; a disk error there must still end the call, after
    # which the same call resumes to the store an uninterrupted run writes.
    import errno

    from isoscope.store import StoreWriteError, StoreWriter

    settings = {"chunk_tokens": 40, "batch_size": 4, "progress": False}
    reference = extract(str(tiny_bert), str(corpus_file), tmp_path / "ref", **settings)
    original = StoreWriter._append
    calls = []

    def failing(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, *args)

    monkeypatch.setattr(StoreWriter, "_append", failing)
    out = tmp_path / "s"
    with pytest.raises(StoreWriteError, match="free some space"):
        extract(str(tiny_bert), str(corpus_file), out, **settings)
    assert not open_store(out, allow_incomplete=True).manifest["complete"]
    monkeypatch.setattr(StoreWriter, "_append", original)
    # Packed chunks end where batches end, so other batch settings cannot resume this store.
    with pytest.raises(StoreError, match="other batch settings"):
        extract(str(tiny_bert), str(corpus_file), out, **{**settings, "batch_size": 7})
    resumed = extract(str(tiny_bert), str(corpus_file), out, **settings)
    assert resumed.n_tokens == reference.n_tokens
    for layer in reference.layers:
        np.testing.assert_array_equal(resumed.layer(layer), reference.layer(layer))
    assert resumed.tokens().equals(reference.tokens())
