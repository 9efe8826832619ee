"""The store records a hash of the model's weights and refuses a reuse after they changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from isoscope.errors import StoreError
from isoscope.extract import extract


def test_changed_weights_are_refused_and_recorded(tiny_bert: Path, corpus_file: Path,
                                                   tmp_path: Path) -> None:
    import torch
    from transformers import AutoModel

    model_dir = tmp_path / "bert"
    shutil.copytree(tiny_bert, model_dir)
    store = extract(str(model_dir), f"text:{corpus_file}", tmp_path / "s", progress=False)
    digest = store.manifest["model_sha256"]
    assert len(digest) == 64
    # the same weights: reused as is
    assert extract(str(model_dir), f"text:{corpus_file}", tmp_path / "s",
                   progress=False).manifest["model_sha256"] == digest
    # retrain (change one weight) and save to the same folder: refused in one sentence
    m = AutoModel.from_pretrained(model_dir)
    with torch.no_grad():
        m.embeddings.word_embeddings.weight[5, 0] += 1.0
    m.save_pretrained(model_dir)
    with pytest.raises(StoreError, match="other weights of model"):
        extract(str(model_dir), f"text:{corpus_file}", tmp_path / "s", progress=False)


def test_static_tables_are_hashed_too() -> None:
    import numpy as np

    from isoscope.extract import weights_hash

    class Table:
        vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
        words = ["a", "b", "c"]

    class Enc:
        model = None
        table = Table()

    a = weights_hash(Enc())
    Enc.table.vectors = Enc.table.vectors + 1
    assert a is not None and weights_hash(Enc()) != a
