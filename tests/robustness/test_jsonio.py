"""The one JSON writer, cleaner and reader (isoscope._jsonio), and the JSONL corpus reader on it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

import isoscope._jsonio as jsonio
from isoscope._jsonio import (
    MAX_DEPTH,
    clean_json,
    parse_json,
    read_json,
    write_atomic,
    write_json,
    write_text_atomic,
)
from isoscope.corpora import load_corpus
from isoscope.errors import InputError, StoreError


def test_clean_json_makes_standard_json() -> None:
    data = {
        1: np.float32(0.5),
        "nan": float("nan"),
        "inf": np.float64("-inf"),
        "ints": np.arange(3, dtype=np.int64),
        "flags": (np.bool_(True), False),
        "path": Path("/a/b"),
        "nested": [{"x": np.int8(-2)}],
        "text": "é",
        "none": None,
    }
    cleaned = clean_json(data)
    assert cleaned == {"1": 0.5, "nan": None, "inf": None, "ints": [0, 1, 2],
                       "flags": [True, False], "path": "/a/b", "nested": [{"x": -2}], "text": "é",
                       "none": None}
    assert type(cleaned["ints"][0]) is int and type(cleaned["flags"][0]) is bool
    json.dumps(cleaned, allow_nan=False)


def test_write_json_round_trips_and_leaves_no_temporary_file(tmp_path) -> None:
    path = tmp_path / "r.json"
    assert write_json(path, {"b": 1, "a": "é"}, sort_keys=True) == path
    assert path.read_text(encoding="utf-8") == '{\n  "a": "é",\n  "b": 1\n}\n'
    assert read_json(path, "results file") == {"a": "é", "b": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    # The mode an ordinary open() would give, not mkstemp's private 0600.
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~jsonio._UMASK


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": object()}], ids=["nan", "object"])
def test_write_json_failure_keeps_the_old_file_and_no_temporary(tmp_path, bad) -> None:
    path = tmp_path / "r.json"
    write_json(path, {"old": True})
    with pytest.raises((ValueError, TypeError)):
        write_json(path, bad)
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_write_json_failure_while_writing_removes_the_temporary(tmp_path, monkeypatch) -> None:
    path = tmp_path / "r.json"
    write_json(path, {"old": True})

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_json(path, {"new": True})
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_two_writers_use_different_temporary_files(tmp_path, monkeypatch) -> None:
    """A second write while the first is between writing and renaming does not clobber it."""
    path = tmp_path / "r.json"
    seen: list[str] = []
    real_replace = os.replace

    def replace(src: str, dst: object) -> None:
        seen.append(os.path.basename(src))
        if len(seen) == 1:
            write_json(path, {"writer": 2})  # runs while writer 1's temporary file exists
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    write_json(path, {"writer": 1})
    assert len(set(seen)) == 2 and all(n.startswith(".r.json.") for n in seen)
    assert json.loads(path.read_text()) == {"writer": 1}


def test_write_text_atomic_and_write_atomic(tmp_path) -> None:
    path = tmp_path / "page.html"
    assert write_text_atomic(path, "<p>é</p>") == path
    assert path.read_text(encoding="utf-8") == "<p>é</p>"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~jsonio._UMASK
    blob = tmp_path / "fig.png"
    write_atomic(blob, lambda p: p.write_bytes(b"\x89PNG"))
    assert blob.read_bytes() == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png", "page.html"]


def test_write_atomic_failure_in_the_writer_keeps_the_old_file(tmp_path) -> None:
    path = tmp_path / "fig.png"
    path.write_bytes(b"old")

    def half_written(p: Path) -> None:
        p.write_bytes(b"ne")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, half_written)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"^The results file .*r\.json does not exist\.$"),
        (b"{", r"^The results file .*r\.json is not valid JSON \(Expecting .* at line 1, column 2\)\.$"),
        (b"\xff\xfe\x00", r"is not valid JSON"),
        (b"[" * 200_000 + b"]" * 200_000, r"is nested more than 100 levels deep\.$"),
        (b'{"a":' * 150 + b"1" + b"}" * 150, r"is nested more than 100 levels deep\.$"),
    ],
    ids=["missing", "truncated", "not-utf8", "recursion", "deep"],
)
def test_read_json_failures_are_one_sentence(tmp_path, content, message) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_json(path, "results file")


def test_read_json_folder_size_and_error_class(tmp_path) -> None:
    with pytest.raises(InputError, match=r"is a folder, not a file\.$"):
        read_json(tmp_path, "manifest")
    path = tmp_path / "big.json"
    path.write_text("[" + "1," * 600 + "1]")
    with pytest.raises(StoreError, match=r"^The manifest .* is larger than 1,000 bytes"):
        read_json(path, "manifest", error=StoreError, max_bytes=1000)
    nested = [[[1]]]
    path.write_text(json.dumps(nested))
    assert read_json(path, "manifest", max_depth=3) == nested
    with pytest.raises(InputError, match="nested more than 2 levels"):
        read_json(path, "manifest", max_depth=2)


def test_parse_json_names_where(tmp_path) -> None:
    assert parse_json('{"a": [1]}', "x:1") == {"a": [1]}
    with pytest.raises(InputError, match=r"^x:4: not valid JSON \(Expecting"):
        parse_json("{", "x:4")
    with pytest.raises(InputError, match=rf"^x:5: nested more than {MAX_DEPTH} levels deep\.$"):
        parse_json("[" * 100_000, "x:5")


@pytest.mark.parametrize("depth", [150, 1_000_000], ids=["deep", "recursion"])
def test_deeply_nested_jsonl_line_is_one_sentence_with_its_line_number(tmp_path, depth) -> None:
    # Before: a RecursionError traceback for the deepest line; the shallower one was accepted.
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "fine"}\n' + '{"text": "x", "deep": ' + "[" * depth + "]" * depth
                      + "}\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"c\.jsonl:2: nested more than {MAX_DEPTH} levels deep\.$"):
        load_corpus(f"jsonl:{corpus}")


def test_jsonl_invalid_line_keeps_its_line_number(tmp_path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "a"}\n\n{"text": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.jsonl:3: not valid JSON"):
        load_corpus(f"jsonl:{corpus}")


def test_deeply_nested_jsonl_corpus_through_the_cli(tmp_path, one_sentence) -> None:
    from typer.testing import CliRunner

    from isoscope.cli import app

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "a"}\n{"text": "b"}\n{"t": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    result = CliRunner().invoke(app, ["extract", "--model", "no-such-model", "--corpus",
                                      f"jsonl:{corpus}", "--out", str(tmp_path / "s"),
                                      "--no-progress"])
    one_sentence(result, rf"c\.jsonl:3: nested more than {MAX_DEPTH} levels deep\.$")
