"""A killed single-process sketch extraction resumes from its last checkpoint, to the same store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from isoscope._sketch_checkpoint import CHECKPOINT_DIR
from isoscope.sketch import SKETCH_FILE, StoreSketch
from tests.conftest import TRAIN_TEXT

TEXT = TRAIN_TEXT[:60]
KW = {"dtype": "float32", "progress": False, "batch_size": 8, "chunk_tokens": 97, "keep": "sample:150",
      "seed": 3}


def _corpus():
    from isoscope.corpora import Corpus

    return Corpus("train", TEXT, {})


def _same_store(a, b) -> None:
    assert a.tokens().equals(b.tokens())
    for layer in a.layers:
        np.testing.assert_array_equal(np.asarray(a.layer(layer)), np.asarray(b.layer(layer)))
    from safetensors import safe_open

    with safe_open(str(Path(a.path) / SKETCH_FILE), "numpy") as fa, \
            safe_open(str(Path(b.path) / SKETCH_FILE), "numpy") as fb:
        meta_a, meta_b = fa.metadata(), fb.metadata()
        assert meta_a == meta_b, {k: (meta_a[k], meta_b.get(k)) for k in meta_a if meta_a[k] != meta_b.get(k)}
        assert sorted(fa.keys()) == sorted(fb.keys())
        for key in fa.keys():  # noqa: SIM118 - safe_open has no __iter__
            np.testing.assert_array_equal(fa.get_tensor(key), fb.get_tensor(key), err_msg=key)
    assert a.manifest["n_tokens_total"] == b.manifest["n_tokens_total"]


class Killed(Exception):
    """Stands for a kill: nothing after the chunk that raises it runs."""


def _counting(monkeypatch: pytest.MonkeyPatch, die_at: int | None = None) -> dict[str, int]:
    """Count the chunks folded into a sketch, raising :class:`Killed` at chunk ``die_at``."""
    calls = {"n": 0}
    update = StoreSketch.update

    def counted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == die_at:
            raise Killed
        return update(self, *args, **kwargs)

    monkeypatch.setattr(StoreSketch, "update", counted)
    return calls


def test_killed_sketch_extraction_resumes_after_its_checkpoint(
        tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from isoscope.extract import extract

    whole_calls = _counting(monkeypatch)
    whole = extract(str(tiny_bert), _corpus(), tmp_path / "whole", **KW)
    n_chunks = whole_calls["n"]
    assert n_chunks >= 5  # enough chunks to kill in the middle

    _counting(monkeypatch, die_at=4)
    with pytest.raises(Killed):
        extract(str(tiny_bert), _corpus(), tmp_path / "cut", sketch_checkpoint_s=0, **KW)
    assert (tmp_path / "cut" / CHECKPOINT_DIR).is_dir()

    rerun = _counting(monkeypatch)
    resumed = extract(str(tiny_bert), _corpus(), tmp_path / "cut", **KW)
    assert rerun["n"] == n_chunks - 3  # chunks 1-3 came from the checkpoint
    _same_store(whole, resumed)
    assert not (tmp_path / "cut" / CHECKPOINT_DIR).exists()


def test_checkpoint_of_another_seed_is_ignored(tiny_bert: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from isoscope import _sketch_checkpoint
    from isoscope.extract import extract

    whole_calls = _counting(monkeypatch)
    whole = extract(str(tiny_bert), _corpus(), tmp_path / "whole", **KW)
    n_chunks = whole_calls["n"]
    out = tmp_path / "cut"
    _counting(monkeypatch, die_at=3)
    with pytest.raises(Killed):
        extract(str(tiny_bert), _corpus(), out, sketch_checkpoint_s=0, **KW)
    # The checkpoint's record says another seed: it is dropped and the run starts afresh.
    record = out / CHECKPOINT_DIR / _sketch_checkpoint.RECORD
    record.write_text(record.read_text(encoding="utf-8").replace('"seed": 3', '"seed": 4'), encoding="utf-8")
    rerun = _counting(monkeypatch)
    _same_store(whole, extract(str(tiny_bert), _corpus(), out, **KW))
    assert rerun["n"] == n_chunks
