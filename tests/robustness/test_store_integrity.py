"""A store that is checked, not trusted: manifest and token-table schemas, exact sizes,
checksums, corpus hashes on resume, and damaged complete stores that are never reused.

Every failure is one sentence with exit code 2 from the command line (``one_sentence``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from isoscope.cli import app
from isoscope.errors import StoreError
from isoscope.store import MANIFEST, PROGRESS, TOKENS, StoreWriter, open_store, write_store

runner = CliRunner()
FAST = ["--k-max", "4", "--silhouette-sample", "100", "--lid-k", "5", "--no-progress"]


def _store(path: Path, width: int = 32, n: int = 40, layers: tuple[int, ...] = (0, 1)):
    X = np.random.default_rng(0).standard_normal((n, width)).astype(np.float32)
    words = {"word": [f"w{i % 7}" for i in range(n)], "sentence_id": np.arange(n) // 5,
             "word_id": np.arange(n) % 5}
    return write_store(path, {layer: X + layer for layer in layers}, words)


def _edit(path: Path, drop: tuple[str, ...] = (), **changes) -> None:
    manifest = json.loads((path / MANIFEST).read_text())
    manifest.update(changes)
    for key in drop:
        del manifest[key]
    (path / MANIFEST).write_text(json.dumps(manifest))


def _refused_everywhere(path: Path, one_sentence, message: str) -> None:
    """``open_store``, ``info`` and ``analyze`` all refuse the store with the same sentence."""
    with pytest.raises(StoreError, match=message):
        open_store(path)
    for args in (["info", str(path)], ["analyze", str(path), *FAST]):
        one_sentence(runner.invoke(app, args), message)


# ------------------------------------------------------------------------------ manifest schema
@pytest.mark.parametrize(
    ("changes", "drop", "message"),
    [
        ({}, ("format_version",), r"has no format_version .*; delete it and extract it again"),
        ({"format_version": 9, "versions": {"isoscope": "0.9.0"}}, (),
         r"has format version 9, which isoscope \d+\.\d+\.\d+ cannot read \(it reads 1, 2\); "
         r"open it with isoscope 0\.9\.0"),
        ({"format_version": 0}, (), r"has format version 0, which isoscope .* cannot read"),
        ({"format_version": "2"}, (), r"format_version must be an integer, not '2'"),
        ({"complete": "yes"}, (), r"complete must be true or false, not 'yes'"),
        ({}, ("complete",), r"\(no 'complete'\)"),
        ({"hidden_size": 32.0}, (), r"hidden_size must be an integer, not 32\.0"),
        ({"hidden_size": "32"}, (), r"hidden_size must be an integer, not '32'"),
        ({"dtype": "int8"}, (), r"dtype must be 'float16' or 'float32', not 'int8'"),
        ({"layers": [0, 1, 2], "n_layers": 3}, (), r"layers lists 3 layers but layer_files records 2"),
        ({"layers": [0, 0]}, (), r"layers must be distinct hidden-state indices"),
        ({"n_layers": 1}, (), r"layer 1 is beyond the model's 1 hidden states"),
        # The same byte count as width 32 float32, read as width 64 float16.
        ({"hidden_size": 64, "dtype": "float16"}, (),
         r"layer 0 was written as \[40, 32\] float32, but the manifest says \[40, 64\] float16"),
        ({}, ("layer_files",), r"a complete store of format 2 must record layer_files"),
    ],
)
def test_manifest_that_disagrees_with_the_schema_or_its_files_is_refused(tmp_path, one_sentence,
                                                                         changes, drop, message) -> None:
    path = _store(tmp_path / "s").path
    _edit(path, drop, **changes)
    _refused_everywhere(path, one_sentence, message)


def test_format_1_store_is_still_read_and_its_sizes_checked(tmp_path, one_sentence) -> None:
    """A complete store written before checksums (format 1) opens, verifies its sizes and token
    table, and says that it records no checksums; a missing layer file is still found."""
    path = _store(tmp_path / "s").path
    _edit(path, ("layer_files", "tokens_file"), format_version=1)
    store = open_store(path)
    assert store.verify() == {"layers": 2, "tokens": 40, "checksums": False, "chunks": 0}
    info = runner.invoke(app, ["info", "--verify", str(path)])
    assert info.exit_code == 0, info.output
    assert "verify      ok: 2 layer files have their sizes" in info.output
    assert "records no checksums" in info.output
    _edit(path, layers=[0, 1, 2], n_layers=3)
    _refused_everywhere(path, one_sentence, r"its manifest lists layer 2 but layer_002\.bin is missing")


def test_layer_file_must_hold_exactly_its_rows(tmp_path, one_sentence) -> None:
    path = _store(tmp_path / "s").path
    with open(path / "layers" / "layer_001.bin", "ab") as fh:
        fh.write(b"\x00" * 32 * 4)  # one row too many
    _refused_everywhere(path, one_sentence,
                        r"layer_001\.bin holds 5248 bytes, but the manifest says 40 rows x 32 x 4 bytes = 5120")


# ------------------------------------------------------------------------------ checksums
def test_verify_reports_ok_with_the_counts(tmp_path) -> None:
    path = _store(tmp_path / "s").path
    result = runner.invoke(app, ["info", "--verify", str(path)])
    assert result.exit_code == 0, result.output
    assert "verify      ok: 2 layer files and the token table match their checksums (40 tokens)" in result.output


@pytest.mark.parametrize("target", ["layers/layer_001.bin", TOKENS])
def test_verify_finds_a_flipped_byte_that_keeps_the_size(tmp_path, one_sentence, target) -> None:
    path = _store(tmp_path / "s").path
    file = path / target
    data = bytearray(file.read_bytes())
    data[16] ^= 0x01  # in the first data page: the size and the parquet footer stay valid
    file.write_bytes(bytes(data))
    name = Path(target).name.replace(".", r"\.")
    one_sentence(runner.invoke(app, ["info", "--verify", str(path)]),
                 rf"is damaged \({name} does not match the checksum recorded when it was written\)")


def _unfinished(path: Path) -> dict:
    import pyarrow as pa

    manifest = {"layers": [0], "hidden_size": 4, "dtype": "float32", "model": "m", "corpus": "c"}
    rows = pa.table({"sentence_id": pa.array([0, 0], pa.int32()), "position": pa.array([0, 1], pa.int32()),
                     "token_id": pa.array([1, 2], pa.int32()), "token": ["a", "b"],
                     "word_id": pa.array([0, 1], pa.int32()), "word": ["a", "b"],
                     "is_special": [False, False]})
    with StoreWriter(path, manifest) as w:
        w.append({0: np.ones((2, 4), np.float32)}, rows, 1)
        w.append({0: np.full((2, 4), 2, np.float32)}, rows, 1)
    return manifest


def test_resume_checks_the_committed_chunks(tmp_path, one_sentence) -> None:
    path = tmp_path / "s"
    manifest = _unfinished(path)
    result = runner.invoke(app, ["info", "--verify", str(path)])
    assert result.exit_code == 0 and "verify      ok: 2 committed chunks match their checksums (4 tokens)" in result.output
    layer = path / "layers" / "layer_000.bin"
    data = bytearray(layer.read_bytes())
    data[2 * 16 + 1] ^= 0x40  # a byte of the second chunk's rows
    layer.write_bytes(bytes(data))
    message = r"the rows of committed chunk 1 in layer_000\.bin differ from what was committed"
    with pytest.raises(StoreError, match=message), StoreWriter(path, manifest):
        pass
    one_sentence(runner.invoke(app, ["info", "--verify", str(path)]), message)
    assert layer.read_bytes() == bytes(data)  # refused, not rewritten
    (path / "tokens" / "chunk_000000.sums.json").unlink()
    with pytest.raises(StoreError, match=r"checksums of committed chunk 0 \(chunk_000000\.sums\.json\) are missing"), \
            StoreWriter(path, manifest):
        pass


def test_unfinished_store_without_format_version_is_refused(tmp_path) -> None:
    path = tmp_path / "s"
    manifest = _unfinished(path)
    _edit(path, ("format_version",))
    with pytest.raises(StoreError, match=r"has no format_version"), StoreWriter(path, manifest):
        pass
    assert json.loads((path / PROGRESS).read_text())["n_chunks"] == 2


# ------------------------------------------------------------------------------ token table
def _rewrite_tokens(path: Path, edit) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(path / TOKENS)
    pq.write_table(edit(table), path / TOKENS)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing-column", r"its token table has no 'word' column"),
        ("wrong-type", r"column 'position' of its token table holds int64, not int32"),
        ("text-flags", r"column 'is_special' of its token table holds string, not bool"),
        ("nulls", r"column 'word' of its token table holds 3 missing values"),
    ],
)
def test_token_table_against_its_schema(tmp_path, one_sentence, damage, message) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    path = _store(tmp_path / "s").path

    def edit(table):
        if damage == "missing-column":
            return table.drop_columns(["word"])
        if damage == "wrong-type":
            return table.set_column(1, "position", table.column("position").cast(pa.int64()))
        if damage == "text-flags":
            i = table.schema.get_field_index("is_special")
            return table.set_column(i, "is_special", table.column("is_special").cast(pa.string()))
        i = table.schema.get_field_index("word")
        mask = pa.array([r % 15 == 0 for r in range(table.num_rows)])
        return table.set_column(i, "word", pc.if_else(mask, pa.scalar(None, pa.string()), table.column("word")))

    _rewrite_tokens(path, edit)
    _edit(path, ("tokens_file",), format_version=1, layer_files=None)  # no size record to trip first
    for args in (["info", str(path)], ["analyze", str(path), *FAST]):
        one_sentence(runner.invoke(app, args), message)


# ------------------------------------------------------------------------------ extraction
def _extract_cli(model: Path, corpus: Path, out: Path):
    return runner.invoke(app, ["extract", "--model", str(model), "--corpus", str(corpus), "--out", str(out),
                               "--no-progress"])


def _snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize("damage", ["truncated-layer", "deleted-tokens"])
def test_damaged_complete_store_is_not_reported_complete(tiny_bert, corpus_file, tmp_path, one_sentence,
                                                         damage) -> None:
    out = tmp_path / "s"
    assert _extract_cli(tiny_bert, corpus_file, out).exit_code == 0
    if damage == "truncated-layer":
        layer = out / "layers" / "layer_002.bin"
        os.truncate(layer, layer.stat().st_size - 64)
        message = r"is damaged \(layer_002\.bin holds \d+ bytes, but the manifest says"
    else:
        (out / TOKENS).unlink()
        message = r"is damaged \(its token table tokens\.parquet is missing\)"
    before = _snapshot(out)
    again = _extract_cli(tiny_bert, corpus_file, out)
    one_sentence(again, message + r".*; delete it and extract it again\.$")
    assert "complete    True" not in again.output
    assert _snapshot(out) == before  # never silently overwritten


def test_resume_with_an_edited_corpus_is_refused(tiny_bert, corpus_file, tmp_path, monkeypatch) -> None:
    """A corpus edited between a kill and the resume would mix two texts in one store."""
    import errno

    from isoscope.extract import extract
    from isoscope.store import StoreWriteError

    settings = {"chunk_tokens": 40, "batch_size": 4, "progress": False}
    original = StoreWriter._append
    calls = []

    def failing(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, *args)

    monkeypatch.setattr(StoreWriter, "_append", failing)
    out = tmp_path / "s"
    with pytest.raises(StoreWriteError):
        extract(str(tiny_bert), str(corpus_file), out, **settings)
    monkeypatch.setattr(StoreWriter, "_append", original)
    text = corpus_file.read_text()
    corpus_file.write_text(text.replace("the cat sat", "the dog sat", 1))  # same lines, same length
    before = _snapshot(out)
    with pytest.raises(StoreError, match=r"was made from another text of corpus .* \(the corpus changed "
                                         r"since\); restore that text or use a new --out folder\."):
        extract(str(tiny_bert), str(corpus_file), out, **settings)
    assert _snapshot(out) == before
    corpus_file.write_text(text)  # the original text resumes
    assert extract(str(tiny_bert), str(corpus_file), out, **settings).manifest["complete"] is True


def test_complete_store_of_an_edited_corpus_is_not_reused(tiny_bert, corpus_file, tmp_path, one_sentence) -> None:
    out = tmp_path / "s"
    assert _extract_cli(tiny_bert, corpus_file, out).exit_code == 0
    corpus_file.write_text(corpus_file.read_text().replace("garden", "meadow"))
    one_sentence(_extract_cli(tiny_bert, corpus_file, out), r"was made from another text of corpus")
