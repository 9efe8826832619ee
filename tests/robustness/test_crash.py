"""Crashes during extraction: a full disk and a second writer (SIGKILL resume is covered by
tests/store/test_extract.py).

A full disk is simulated with ``RLIMIT_FSIZE`` (no root or tmpfs needed): a write past the limit
fails with EFBIG ("File too large") where a full disk gives ENOSPC; both take the same path.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

import isoscope.extract
from isoscope.cli import app
from isoscope.errors import StoreError
from isoscope.extract import extract
from isoscope.store import MANIFEST, open_store

runner = CliRunner()
# Chunks end where packed batches end, so both are small here: the real command line, with
# several chunks committed before a failure.
SETTINGS = {"chunk_tokens": 64, "batch_tokens": 64}
PATCH = ("import functools, isoscope.extract as e; "
         f"e.extract = functools.partial(e.extract, **{SETTINGS!r}); ")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    words = "the cat sat on the mat a dog chased it across the garden".split()
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("crash") / "corpus.txt"
    path.write_text("\n".join(" ".join(rng.choices(words, k=rng.randint(3, 12))) for _ in range(150)))
    return path


@pytest.fixture(scope="module")
def reference(tiny_bert: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same extraction, uninterrupted."""
    out = tmp_path_factory.mktemp("reference") / "store"
    extract(str(tiny_bert), str(corpus), out, progress=False, **SETTINGS)
    return out


def _cli_argv(model: Path, corpus: Path, out: Path, prelude: str = "") -> list[str]:
    code = prelude + PATCH + "from isoscope.cli import app; app()"
    return [sys.executable, "-c", code, "extract", "--model", str(model), "--corpus", str(corpus),
            "--out", str(out), "--no-progress"]


@contextlib.contextmanager
def _file_size_limit(limit: int) -> Iterator[None]:
    """Files of this process cannot grow past ``limit`` bytes: writes fail with EFBIG."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, do not kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1"}


def _invoke_extract(model: Path, corpus: Path, out: Path):
    return runner.invoke(app, ["extract", "--model", str(model), "--corpus", str(corpus),
                               "--out", str(out), "--no-progress"])


@pytest.mark.parametrize("limit", [600, 20_000], ids=["while-creating", "mid-extraction"])
def test_full_disk_is_one_sentence_and_the_store_resumes(tiny_bert, corpus, reference, tmp_path,
                                                         store_files, monkeypatch, one_sentence,
                                                         limit) -> None:
    out = tmp_path / "store"
    monkeypatch.setattr(isoscope.extract, "extract", partial(extract, **SETTINGS))
    with _file_size_limit(limit):
        full = _invoke_extract(tiny_bert, corpus, out)
    one_sentence(full, rf"^error: Could not write store {re.escape(str(out))}: File too large; "
                       r"free some space and run the same command again to resume it\.$", code=3)
    # Nothing unfinished is claimed as finished: readers refuse the store.
    with pytest.raises(StoreError, match=r"is incomplete|no manifest\.json"):
        open_store(out)
    if limit > 10_000:
        committed = open_store(out, allow_incomplete=True).n_tokens
        assert 0 < committed < open_store(reference).n_tokens  # some chunks were committed
    # Space is back: the same command resumes and finishes what an uninterrupted run gives.
    again = _invoke_extract(tiny_bert, corpus, out)
    assert again.exit_code == 0 and "complete    True" in again.output, again.output
    assert store_files(out) == store_files(reference)


@pytest.mark.slow
def test_second_extraction_is_refused_naming_the_holder(tiny_bert, corpus, reference, tmp_path,
                                                        store_files, monkeypatch,
                                                        one_sentence) -> None:
    out = tmp_path / "store"
    slow = ("import time, isoscope.store as s; _append = s.StoreWriter.append; "
            "s.StoreWriter.append = lambda self, *a, **k: (time.sleep(0.2), _append(self, *a, **k))[1]; ")
    first = subprocess.Popen(_cli_argv(tiny_bert, corpus, out, prelude=slow), env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        holder = f"pid {first.pid} on "
        while not ((out / ".lock").exists() and (out / ".lock").read_text().startswith(holder)
                   and (out / MANIFEST).exists()):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first extraction never took the lock"
            time.sleep(0.05)
        monkeypatch.setattr(isoscope.extract, "extract", partial(extract, **SETTINGS))
        second = runner.invoke(app, ["extract", "--model", str(tiny_bert), "--corpus", str(corpus),
                                     "--out", str(out), "--no-progress"])
        one_sentence(second, rf"is being written by pid {first.pid} on .*; wait for it to finish")
        assert first.poll() is None, "the first extraction finished before the second was tried"
    finally:
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert "complete    True" in stdout
    assert store_files(out) == store_files(reference)  # the refused writer changed nothing


def _rows(n: int, first: int = 0):
    import pyarrow as pa

    return pa.table({
        "sentence_id": pa.array([first] * n, pa.int32()), "position": pa.array(range(n), pa.int32()),
        "token_id": pa.array([1] * n, pa.int32()), "token": ["a"] * n,
        "word_id": pa.array(range(n), pa.int32()), "word": ["a"] * n, "is_special": [False] * n,
    })


def _write(path: Path) -> None:
    import numpy as np

    from isoscope.store import StoreWriter

    manifest = {"layers": [0, 2], "hidden_size": 3, "dtype": "float32", "model": "m"}
    with StoreWriter(path, manifest) as w:
        if w.complete:
            return
        for c in range(w.n_chunks, 3):
            w.append({0: np.full((2, 3), c, np.float32), 2: np.full((2, 3), -c, np.float32)}, _rows(2, c), 1)
        w.finalize()


@pytest.mark.parametrize("moment", ["after-manifest", "after-skeleton", "after-complete"])
def test_crash_at_the_edges_of_a_store_still_resumes(tmp_path, store_files, moment) -> None:
    """Kills at the two moments the SIGKILL loop rarely hits: right after the manifest is
    written, and after the store is marked complete but before its chunk files are removed."""
    from isoscope.store import PROGRESS

    reference = tmp_path / "reference"
    _write(reference)
    out = tmp_path / "store"
    if moment == "after-complete":
        _write(out)
        (out / "tokens").mkdir()
        (out / "tokens" / "chunk_000000.parquet").write_bytes(b"stale")
        (out / PROGRESS).write_text('{"n_chunks": 3, "n_tokens": 6, "n_sentences": 3}')
    else:
        (out).mkdir()
        (out / MANIFEST).write_text(json.dumps({"layers": [0, 2], "hidden_size": 3, "dtype": "float32",
                                                "model": "m", "format_version": 2, "complete": False}))
        if moment == "after-skeleton":
            (out / "layers").mkdir()
            (out / "layers" / "layer_000.bin").write_bytes(b"\x01" * 5)
            (out / "tokens").mkdir()
            (out / "tokens" / "chunk_000004.parquet").write_bytes(b"stale")
    _write(out)
    assert store_files(out) == store_files(reference)
    assert open_store(out).n_tokens == 6
