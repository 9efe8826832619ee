"""Hostile and broken inputs on the command line: one clear sentence and exit code 2, or a
documented warning with a count; never a traceback, never a half-written store.

Cases already covered elsewhere are not repeated here: an empty or blank corpus, an unknown
model name, a folder without config.json, a bad --layers value and a non-store output folder
(tests/store/test_extract.py); malformed analyze options (tests/metrics/test_cli_analyze.py).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from isoscope.cli import app
from isoscope.store import MANIFEST, PROGRESS, StoreWriter, write_store

runner = CliRunner()
FAST = ["--k-max", "4", "--silhouette-sample", "100", "--lid-k", "5", "--no-progress"]


def _extract(model: Path, corpus: Path, out: Path, *extra: str):
    return runner.invoke(
        app, ["extract", "--model", str(model), "--corpus", str(corpus), "--out", str(out),
              "--no-progress", *extra]
    )


def _words_store(path: Path, X: np.ndarray, **kw):
    n = len(X)
    tokens = {"word": [f"w{i % 7}" for i in range(n)], "sentence_id": np.arange(n) // 5,
              "word_id": np.arange(n) % 5}
    return write_store(path, {0: X}, tokens, **kw)


# ------------------------------------------------------------------------------ corpora
def test_invalid_utf8_is_a_counted_warning(tiny_bert, tmp_path) -> None:
    corpus = tmp_path / "bytes.txt"
    corpus.write_bytes(b"the cat sat\n\xff\xfe on \x80 the mat\n")
    r = _extract(tiny_bert, corpus, tmp_path / "s")
    assert r.exit_code == 0, r.output
    assert "warning     3 invalid UTF-8 byte(s) in the corpus were replaced by U+FFFD" in r.output
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    assert manifest["corpus_info"]["invalid_utf8_replaced"] == 3 and manifest["n_sentences"] == 2


def test_single_token_sentences_extract_then_too_few_vectors_is_one_sentence(
    tiny_bert, tmp_path, one_sentence
) -> None:
    corpus = tmp_path / "single.txt"
    corpus.write_text("cat\ndog\nmat\n")
    r = _extract(tiny_bert, corpus, tmp_path / "s")
    assert r.exit_code == 0, r.output
    from isoscope.store import open_store

    t = open_store(tmp_path / "s").tokens()
    assert t["sentence_id"].nunique() == 3
    assert (t.loc[~t["is_special"]].groupby("sentence_id")["word_id"].nunique() == 1).all()
    # Three non-special vectors: fewer than the LID neighbours and the k-means range.
    r = runner.invoke(app, ["analyze", str(tmp_path / "s"), *FAST])
    one_sentence(r, r"(at least|need more than) \d+")


@pytest.mark.parametrize("line", ["the cat " * 12_500, "x" * 100_000], ids=["words", "one-word"])
def test_100k_character_line_is_truncated_and_counted(tiny_gpt2, tmp_path, line) -> None:
    corpus = tmp_path / "long.txt"
    corpus.write_text("a short line .\n" + line + "\n")
    r = _extract(tiny_gpt2, corpus, tmp_path / "s")
    assert r.exit_code == 0, r.output
    assert "(truncated at 64 tokens: 1)" in r.output
    assert json.loads((tmp_path / "s" / MANIFEST).read_text())["n_truncated"] == 1


# ------------------------------------------------------------------------------ models
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("no-weights", r"no file named model\.safetensors"),
        ("no-tokenizer", r"has no tokenizer files"),
        ("bad-config", r"not a valid JSON file"),
        ("half-safetensors", r"files look damaged"),
    ],
)
def test_damaged_model_folder_is_one_sentence(tiny_bert, corpus_file, tmp_path, one_sentence,
                                              damage, message) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_bert, folder)
    if damage == "no-weights":
        (folder / "model.safetensors").unlink()
    elif damage == "no-tokenizer":
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            (folder / name).unlink(missing_ok=True)
    elif damage == "bad-config":
        (folder / "config.json").write_text('{"model_type": "bert", ')
    else:
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    r = _extract(folder, corpus_file, tmp_path / "s")
    one_sentence(r, message)
    assert not (tmp_path / "s" / MANIFEST).exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--device", "banana", r"Device 'banana' is not available here"),
        ("--device", "cuda:99", r"Device 'cuda:99' is not available here"),
        ("--max-length", "1", r"--max-length for .* must be 3\.\.64 tokens, not 1"),
        ("--max-length", "0", r"must be 3\.\.64 tokens, not 0"),
        ("--max-length", "100000", r"must be 3\.\.64 tokens, not 100000"),
    ],
)
def test_impossible_device_or_length_is_one_sentence(tiny_bert, corpus_file, tmp_path, one_sentence,
                                                     option, value, message) -> None:
    one_sentence(_extract(tiny_bert, corpus_file, tmp_path / "s", option, value), message)
    assert not (tmp_path / "s" / MANIFEST).exists()


def test_shortest_max_length_truncates_every_sentence(tiny_bert, corpus_file, tmp_path) -> None:
    r = _extract(tiny_bert, corpus_file, tmp_path / "s", "--max-length", "3")
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    assert manifest["n_tokens"] == 3 * manifest["n_sentences"] == 75
    assert manifest["n_truncated"] == 25


def test_model_path_that_is_a_file_is_one_sentence(corpus_file, tmp_path, one_sentence) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF\x03\x00\x00\x00" + os.urandom(64))
    one_sentence(_extract(weights, corpus_file, tmp_path / "s"), r"is a file; give the model's folder")


def test_corrupt_gguf_is_one_sentence_and_caches_nothing(corpus_file, tmp_path, monkeypatch,
                                                         one_sentence) -> None:
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    from isoscope.models import gguf, registry

    folder = tmp_path / "gguf"
    folder.mkdir()
    (folder / "bad.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 200)
    cache = tmp_path / "cache"
    monkeypatch.setenv("ISOSCOPE_CACHE", str(cache))
    monkeypatch.setitem(gguf.GGUF_SOURCES, "smollm2", lambda: (folder, "bad.gguf"))
    monkeypatch.setattr(registry.BundledModel, "is_installed", lambda self: True)
    r = runner.invoke(app, ["extract", "--model", "smollm2", "--corpus", str(corpus_file),
                            "--out", str(tmp_path / "s"), "--no-progress"])
    one_sentence(r, r"Could not read the GGUF weights of smollm2")
    assert not list((cache / "models").glob("smollm2-f32*"))  # no half-written cache entry
    assert not (tmp_path / "s" / MANIFEST).exists()


# ------------------------------------------------------------------------------ stores
def test_output_that_is_a_file_is_refused_and_kept(tiny_bert, corpus_file, tmp_path,
                                                   one_sentence) -> None:
    target = tmp_path / "results.txt"
    target.write_text("precious")
    one_sentence(_extract(tiny_bert, corpus_file, target), r"exists and is not a folder")
    assert target.read_text() == "precious"


def _manifest_edit(path: Path, **changes) -> None:
    m = json.loads((path / MANIFEST).read_text())
    m.update(changes)
    (path / MANIFEST).write_text(json.dumps(m))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("json", r"manifest\.json is not valid JSON"),
        ("not-object", r"is not an object"),
        ("deep-json", r"manifest\.json is nested more than 100 levels deep"),
        ("no-layers", r"no 'layers'"),
        ("layers-text", r"layers must be a list, not '0,1'"),
        ("layers-path", r"layers\[0\] must be an integer, not '\.\./\.\./etc/passwd'"),
        ("layers-negative", r"layers\[0\] must be at least 0, not -1"),
        ("width-negative", r"hidden_size must be above 0, not -6"),
        ("n-tokens-text", r"n_tokens must be an integer, not '40'"),
        ("dtype-list", r"dtype must be 'float16' or 'float32', not \['float32'\]"),
        ("truncated-layer", r"layer_000\.bin holds 411 bytes, but the manifest says 40 rows x 6 x 4 bytes"),
        ("tokens-missing", r"token table tokens\.parquet is missing\); delete it and extract it again"),
        ("tokens-garbage", r"token table of store .* is damaged"),
        ("rows-mismatch", r"\(30 token rows for 40 vectors\)"),
        ("n-tokens-lie", r"layer 0 was written as \[40, 6\] float32, but the manifest says \[30, 6\]"),
    ],
)
def test_damaged_store_is_one_sentence(tmp_path, one_sentence, damage, message) -> None:
    X = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32)
    path = _words_store(tmp_path / "s", X).path
    if damage == "json":
        (path / MANIFEST).write_text('{"layers": [0], ')
    elif damage == "deep-json":
        (path / MANIFEST).write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "not-object":
        (path / MANIFEST).write_text("[0, 1]")
    elif damage == "no-layers":
        m = json.loads((path / MANIFEST).read_text())
        del m["layers"]
        (path / MANIFEST).write_text(json.dumps(m))
    elif damage == "layers-text":
        _manifest_edit(path, layers="0,1")
    elif damage == "layers-path":
        _manifest_edit(path, layers=["../../etc/passwd"])
    elif damage == "layers-negative":
        _manifest_edit(path, layers=[-1])
    elif damage == "width-negative":
        _manifest_edit(path, hidden_size=-6)
    elif damage == "n-tokens-text":
        _manifest_edit(path, n_tokens="40")
    elif damage == "dtype-list":
        _manifest_edit(path, dtype=["float32"])
    elif damage == "truncated-layer":
        os.truncate(path / "layers" / "layer_000.bin", 6 * 4 * 17 + 3)  # mid-row
    elif damage == "tokens-missing":
        (path / "tokens.parquet").unlink()
    elif damage == "tokens-garbage":
        (path / "tokens.parquet").write_bytes(b"PAR1" + b"\x00" * 64)
    elif damage == "rows-mismatch":
        import pyarrow.parquet as pq

        pq.write_table(pq.read_table(path / "tokens.parquet").slice(0, 30), path / "tokens.parquet")
    else:
        _manifest_edit(path, n_tokens=30)
    for args in (["analyze", str(path), *FAST], ["info", str(path)]):
        one_sentence(runner.invoke(app, args), message)


def test_interrupted_store_says_how_to_resume(tmp_path, one_sentence) -> None:
    """A store killed mid-chunk: readers refuse it with the fix, info shows it, resume cuts it."""
    import pyarrow as pa

    manifest = {"layers": [0], "hidden_size": 4, "dtype": "float32", "model": "m", "corpus": "c"}
    rows = pa.table({"sentence_id": pa.array([0, 0], pa.int32()), "position": pa.array([0, 1], pa.int32()),
                     "token_id": pa.array([1, 2], pa.int32()), "token": ["a", "b"],
                     "word_id": pa.array([0, 1], pa.int32()), "word": ["a", "b"],
                     "is_special": [False, False]})
    with StoreWriter(tmp_path / "s", manifest) as w:
        w.append({0: np.ones((2, 4), np.float32)}, rows, 1)
    layer = tmp_path / "s" / "layers" / "layer_000.bin"
    with open(layer, "ab") as fh:  # half of a second chunk reached the disk before the kill
        fh.write(b"\x01" * 20)
    one_sentence(runner.invoke(app, ["analyze", str(tmp_path / "s"), *FAST]),
                 r"is incomplete .* run the same extract command again to resume it")
    info = runner.invoke(app, ["info", str(tmp_path / "s")])
    assert info.exit_code == 0 and "complete    False" in info.output and "tokens      2" in info.output
    with StoreWriter(tmp_path / "s", manifest) as w:
        assert w.n_tokens == 2 and layer.stat().st_size == 2 * 4 * 4  # the partial chunk is cut off
        w.append({0: np.zeros((2, 4), np.float32)}, rows, 1)
        store = w.finalize()
    np.testing.assert_array_equal(store.layer(0), np.r_[np.ones((2, 4)), np.zeros((2, 4))])


def test_damaged_progress_record_is_one_sentence(tmp_path, one_sentence) -> None:
    manifest = {"layers": [0], "hidden_size": 4, "dtype": "float32"}
    with StoreWriter(tmp_path / "s", manifest):
        pass
    (tmp_path / "s" / PROGRESS).write_text('{"n_chunks": "three"}')
    one_sentence(runner.invoke(app, ["info", str(tmp_path / "s")]), r"progress record .* is damaged")
    from isoscope.errors import StoreError

    with pytest.raises(StoreError, match="progress record"), StoreWriter(tmp_path / "s", manifest):
        pass


# ------------------------------------------------------------------------------ vectors
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_vectors_are_one_sentence(tmp_path, one_sentence, value) -> None:
    from isoscope.errors import InputError

    X = np.random.default_rng(1).standard_normal((60, 6)).astype(np.float32)
    bad = X.copy()
    bad[7, 2] = value
    np.save(tmp_path / "x.npy", bad)
    one_sentence(runner.invoke(app, ["analyze", str(tmp_path / "x.npy"), *FAST]), r"NaN or Inf")
    # A store never takes them in ...
    with pytest.raises(InputError, match=r"Layer 0 holds NaN or Inf values in 1 of 60 vectors"):
        _words_store(tmp_path / "refused", bad)
    assert not (tmp_path / "refused" / "layers" / "layer_000.bin").stat().st_size
    # ... and one damaged on disk afterwards is still reported in one sentence.
    path = _words_store(tmp_path / "s", X).path
    with open(path / "layers" / "layer_000.bin", "r+b") as fh:
        fh.seek((7 * 6 + 2) * 4)
        fh.write(np.float32(value).tobytes())
    one_sentence(runner.invoke(app, ["analyze", str(path), *FAST]), r"NaN or Inf")


def test_values_beyond_float16_are_refused_not_stored_as_inf(tiny_bert, corpus_file, tmp_path,
                                                            one_sentence) -> None:
    from safetensors.numpy import load_file, save_file

    from isoscope.errors import InputError

    with pytest.raises(InputError, match=r"beyond the float16 range .* --dtype float32"):
        write_store(tmp_path / "direct", {0: np.full((4, 3), 1e5)}, dtype="float16")
    # A model whose embedding output is huge (a LayerNorm gain of 1e6).
    folder = tmp_path / "loud"
    shutil.copytree(tiny_bert, folder)
    weights = load_file(folder / "model.safetensors")
    key = next(k for k in weights if k.endswith("embeddings.LayerNorm.weight"))
    weights[key] = weights[key] * np.float32(1e6)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    one_sentence(_extract(folder, corpus_file, tmp_path / "s"),
                 r"Layer 0 holds values beyond the float16 range \(largest \|x\| = [0-9.e+]+\); "
                 r"extract again with --dtype float32 into a new --out folder")
    r = _extract(folder, corpus_file, tmp_path / "s32", "--dtype", "float32")
    assert r.exit_code == 0, r.output


def test_all_zero_vectors_are_dropped_and_counted(tmp_path) -> None:
    X = np.random.default_rng(2).standard_normal((80, 6)).astype(np.float32)
    X[::4] = 0.0
    path = _words_store(tmp_path / "s", X).path
    r = runner.invoke(app, ["analyze", str(path), "--sample", "0", "--out", str(tmp_path / "r.json"), *FAST])
    assert r.exit_code == 0, r.output
    layer = json.loads((tmp_path / "r.json").read_text())["layers"][0]
    assert layer["n_zero_rows"] == 20 and layer["n_vectors"] == 60


def test_only_zero_vectors_is_one_sentence(tmp_path, one_sentence) -> None:
    path = _words_store(tmp_path / "s", np.zeros((50, 6), np.float32)).path
    one_sentence(runner.invoke(app, ["analyze", str(path), *FAST]), r"non-zero vectors")


@pytest.mark.parametrize(("n", "args"), [(4, []), (12, ["--k-max", "15"])], ids=["lid-k", "clusters"])
def test_fewer_vectors_than_neighbours_or_clusters(tmp_path, one_sentence, n, args) -> None:
    X = np.random.default_rng(3).standard_normal((n, 6))
    np.save(tmp_path / "x.npy", X)
    r = runner.invoke(app, ["analyze", str(tmp_path / "x.npy"), *FAST, *args])
    one_sentence(r, r"need more than \d+ \(lid_k and the largest k\)")


def test_mostly_duplicates_are_measured_and_counted(tmp_path) -> None:
    rng = np.random.default_rng(4)
    X = np.r_[np.repeat(rng.standard_normal((1, 6)), 150, axis=0), rng.standard_normal((50, 6))]
    np.save(tmp_path / "x.npy", X.astype(np.float32))
    r = runner.invoke(app, ["analyze", str(tmp_path / "x.npy"), "--sample", "0",
                            "--out", str(tmp_path / "r.json"), *FAST])
    assert r.exit_code == 0, r.output
    layer = json.loads((tmp_path / "r.json").read_text())["layers"][0]
    assert layer["n_duplicates"] == 149
    assert np.isfinite(layer["lid_mle"]) and layer["lid_mle"] > 0


def test_only_duplicates_is_one_sentence(tmp_path, one_sentence) -> None:
    np.save(tmp_path / "x.npy", np.ones((100, 6)))
    one_sentence(runner.invoke(app, ["analyze", str(tmp_path / "x.npy"), *FAST]), r"zero variance|distinct")


# ------------------------------------------------------------------------------ transforms
@pytest.mark.parametrize("spec", ["center", "abtt:n_components=2", "cluster:n_clusters=2,n_components=1",
                                  "whiten", "zipf", "standardize"])
def test_saved_transform_on_vectors_of_the_wrong_width(tmp_path, spec) -> None:
    from isoscope.errors import InputError
    from isoscope.transforms import from_spec, load_transform, save_transform

    X = np.random.default_rng(5).standard_normal((60, 6))
    path = save_transform(from_spec(spec).fit(X), tmp_path / "t.safetensors")
    with pytest.raises(InputError, match=r"5 features.* expecting 6"):
        load_transform(path).transform(X[:, :5])


# ------------------------------------------------------------------------------ evaluation files
@pytest.fixture
def glove(tmp_path: Path) -> Path:
    path = tmp_path / "vectors.txt"
    path.write_text("cat 1 0 0\ndog 0.9 0.1 0\nmat 0 0 1\nsat 0.2 1 0\nrug 0 0.1 1\n")
    return path


@pytest.mark.parametrize(
    ("kind", "name", "content", "message"),
    [
        ("stsb", "sts-dev.csv", "main\tf\t2012\t1\t3.0\tonly one sentence\n", r"line 1: expected at least 7"),
        ("stsb", "sts-dev.csv", "main\tf\t2012\t1\tfive\ta\tb\n", r"line 1: the score 'five' is not a number"),
        ("sick", "SICK.txt", "pair_ID\tsentence_A\tsentence_B\nx\ty\tz\n", r"lacks the column\(s\) relatedness_score"),
        ("pairs", "p.csv", "sentence1,foo\na,b\n", r"needs sentence1, sentence2 and score columns"),
        ("pairs", "p.csv", "sentence1,sentence2,score\na,b,1\nc,d\n", r"line 3: expected at least 3 fields"),
        ("wordsim", "ws.txt", "cat dog 3\ncat dog\n", r"line 2: expected 'word1 word2 score'"),
        ("wordsim", "ws.txt", "cat dog nan\n", r"line 1: the score 'nan' is not finite"),
        ("wordsim", "ws.txt", b"cat dog \xff3\n", r"is not UTF-8 text"),
        ("analogy", "q.txt", ": capitals\ncat dog mat\n", r"line 2: expected 4 words, found 3"),
        ("analogy", "q.txt", "cat dog mat rug\n", r"comes before the first ': section' header"),
    ],
)
def test_malformed_evaluation_file_is_one_sentence(tmp_path, glove, one_sentence, kind, name,
                                                   content, message) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    r = runner.invoke(app, ["evaluate", "--task", f"{kind}={path}", "--model", str(glove), "--no-cache"])
    one_sentence(r, message)


def test_word_similarity_entirely_out_of_vocabulary(tmp_path, glove, one_sentence) -> None:
    path = tmp_path / "ws.txt"
    path.write_text("house tree 3\nriver lake 4\n")
    r = runner.invoke(app, ["evaluate", "--task", f"wordsim={path}", "--model", str(glove), "--no-cache"])
    one_sentence(r, r"No word of .*ws\.txt has a vector")
