"""hf: corpora read through Hugging Face datasets."""

from __future__ import annotations

import pytest

datasets = pytest.importorskip("datasets", reason="the hf extra (datasets) is not installed")

ROWS = {"text": ["the cat sat .", "a dog ran .", "", "words in a cone ."], "label": [0, 1, 0, 1]}


def test_saved_dataset_dict_split_and_column(tmp_path):
    from isoscope.corpora import load_corpus

    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(ROWS),
                               "test": datasets.Dataset.from_dict({"body": ["only test ."], "label": [1]})})
    dd.save_to_disk(str(tmp_path / "saved"))
    corpus = load_corpus(f"hf:{tmp_path / 'saved'}")
    assert corpus.sentences == ["the cat sat .", "a dog ran .", "words in a cone ."]
    assert corpus.info["split"] == "train" and corpus.info["blank_lines_dropped"] == 1
    assert load_corpus(f"hf:{tmp_path / 'saved'}#body", split="test").sentences == ["only test ."]


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_local_files_through_datasets(tmp_path, suffix):
    from isoscope.corpora import load_corpus

    ds = datasets.Dataset.from_dict(ROWS)
    path = tmp_path / f"data.{suffix}"
    ds.to_parquet(str(path)) if suffix == "parquet" else ds.to_json(str(path), lines=True)
    assert load_corpus(f"hf:{path}").sentences == ["the cat sat .", "a dog ran .", "words in a cone ."]


def test_hf_errors_are_one_sentence(tmp_path):
    from isoscope.corpora import load_corpus
    from isoscope.errors import InputError

    datasets.Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "one"))
    with pytest.raises(InputError, match="no column 'body'; it has text, label"):
        load_corpus(f"hf:{tmp_path / 'one'}#body")
    with pytest.raises(InputError, match="without splits"):
        load_corpus(f"hf:{tmp_path / 'one'}", split="test")
    with pytest.raises(InputError, match="column 'label'.*not a string"):
        load_corpus(f"hf:{tmp_path / 'one'}#label")
    with pytest.raises(InputError, match="hf: corpora only"):
        load_corpus("ptb", split="test")


def _store(tmp_path, dtype="float32"):
    import numpy as np
    import pandas as pd

    from isoscope.store import write_store

    rng = np.random.default_rng(0)
    arrays = {0: rng.normal(size=(37, 6)), 2: rng.normal(size=(37, 6))}
    tokens = pd.DataFrame({"sentence_id": np.repeat(np.arange(37) // 5, 1), "position": np.arange(37) % 5,
                           "token": [f"t{i}" for i in range(37)], "word": [f"w{i % 7}" for i in range(37)]})
    return write_store(tmp_path / "store", arrays, tokens, dtype=dtype), arrays


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_layer_to_dataset_matches_the_store(tmp_path, dtype):
    import numpy as np

    from isoscope.export import layer_to_dataset

    store, arrays = _store(tmp_path, dtype)
    ds = layer_to_dataset(store, -1, tmp_path / "out", chunk_rows=8)  # 5 chunks, the last partial
    assert len(ds) == 37 and ds.features["vector"].length == 6
    ds.set_format("numpy")
    np.testing.assert_array_equal(ds["vector"], np.asarray(store.layer(2), dtype=np.float32))
    np.testing.assert_allclose(ds["vector"], arrays[2], atol=1e-2 if dtype == "float16" else 1e-7)
    assert list(ds["token"]) == list(store.tokens()["token"]) and list(ds["position"]) == list(np.arange(37) % 5)
    assert ds.cache_files  # memory-mapped Arrow, not an in-memory table


def test_export_layer_command(tmp_path):
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from isoscope.cli import app

    store, arrays = _store(tmp_path)
    res = CliRunner().invoke(app, ["export-layer", str(store.path), "--layer", "0", "--out", str(tmp_path / "o"),
                                   "--chunk-rows", "10"])
    assert res.exit_code == 0, res.output
    pf = pq.ParquetFile(tmp_path / "o" / "layer_0.parquet")
    assert pf.metadata.num_row_groups == 4 and pf.metadata.num_rows == 37
    bad = CliRunner().invoke(app, ["export-layer", str(store.path), "--layer", "5", "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "not in store" in bad.output
