"""--quiet / --verbose / --progress on the commands, and --split of hf: corpora (tiny models)."""

from __future__ import annotations

import importlib
import logging

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from isoscope.cli import app

#: The commands that can run for more than a few seconds.
LONG = {"extract", "analyze", "run", "evaluate", "report", "compare", "export", "export-layer", "findings"}


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def terminal(monkeypatch):
    """Pretend stderr is a terminal, so progress bars are on by default."""
    # the module, not the Typer object that isoscope.cli exports under the same name
    monkeypatch.setattr(importlib.import_module("isoscope.cli.app"), "_terminal", lambda: True)


@pytest.fixture(scope="module")
def store(tiny_bert, tmp_path_factory):
    folder = tmp_path_factory.mktemp("out")
    text = folder / "corpus.txt"
    text.write_text("\n".join(["the cat sat on the mat .", "a dog chased the cat !",
                               "language models map words to vectors ."] * 8) + "\n")
    res = invoke("extract", "--model", tiny_bert, "--corpus", f"text:{text}", "--out", folder / "store",
                 "--dtype", "float32", "--quiet")
    assert res.exit_code == 0, res.output
    return folder / "store"


def test_every_command_has_the_shared_output_options():
    group = get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        params = {p.name: p for p in command.params}
        assert {"quiet", "verbose"} <= set(params), name
        assert params["quiet"].opts == ["--quiet", "-q"] and params["verbose"].opts == ["--verbose", "-v"]
        if name in LONG:
            assert params["progress"].opts == ["--progress"], name
            assert "never with --quiet" in params["progress"].help, name


def test_extract_bar_by_default_and_none_with_quiet(tiny_bert, corpus_file, tmp_path, terminal):
    shown = invoke("extract", "--model", tiny_bert, "--corpus", f"text:{corpus_file}", "--out", tmp_path / "a")
    assert shown.exit_code == 0, shown.output
    assert "extract" in shown.stderr and "tok" in shown.stderr  # the tqdm bar
    quiet = invoke("extract", "--model", tiny_bert, "--corpus", f"text:{corpus_file}", "--out", tmp_path / "b",
                   "--quiet")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == "" and "tokens" in quiet.stdout  # the summary is the result: kept


def test_analyze_and_export_layer_bars_hidden_by_quiet(store, tmp_path, terminal):
    args = ["analyze", store, "--layers", "0,2", "--sample", "60", "--lid-k", "5", "--k-max", "3"]
    shown = invoke(*args)
    assert shown.exit_code == 0, shown.output
    assert "isoscope analyze" in shown.stderr
    quiet = invoke(*args, "-q")
    assert quiet.exit_code == 0 and quiet.stderr == "" and "s_inter" in quiet.stdout.lower()
    shown = invoke("export-layer", store, "--layer", "1", "--out", tmp_path / "a")
    assert shown.exit_code == 0 and "layer 1 to parquet" in shown.stderr
    quiet = invoke("export-layer", store, "--layer", "1", "--out", tmp_path / "b", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == "" and "wrote" in quiet.stdout


def test_export_info_lines_hidden_by_quiet(tiny_bert, corpus_file, tmp_path):
    args = ["export", "--model", tiny_bert, "--transform", "center", "--fit-corpus", f"text:{corpus_file}"]
    shown = invoke(*args, "--out", tmp_path / "a")
    assert shown.exit_code == 0, shown.output
    assert "fitting center on" in shown.stderr and "exported" in shown.stderr  # isoscope.export info
    assert "debug" not in shown.stderr
    quiet = invoke(*args, "--out", tmp_path / "b", "--quiet")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == "" and "wrote" in quiet.stdout


def test_verbose_gives_debug_records(tiny_bert, corpus_file, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    res = invoke("extract", "--model", tiny_bert, "--corpus", f"text:{corpus_file}", "--out", tmp_path / "s",
                 "--verbose")
    assert res.exit_code == 0, res.output
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and r.name.startswith("isoscope")]
    assert {"isoscope.cli", "isoscope.extract"} <= {r.name for r in debug}
    assert "debug isoscope.extract:" in res.stderr and "25 sentences" in res.stderr
    caplog.clear()
    plain = invoke("extract", "--model", tiny_bert, "--corpus", f"text:{corpus_file}", "--out", tmp_path / "t")
    assert plain.exit_code == 0 and "debug" not in plain.stderr
    # the command's handler is gone afterwards, and the logger's level is back
    assert logging.getLogger("isoscope").level == logging.NOTSET
    assert not [h for h in logging.getLogger("isoscope").handlers if type(h).__name__ == "_StderrHandler"]


def test_quiet_keeps_errors_and_refuses_verbose_with_it(tmp_path):
    res = invoke("analyze", tmp_path / "missing.npy", "--quiet")
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    res = invoke("analyze", tmp_path / "missing.npy", "--quiet", "--verbose")
    assert res.exit_code == 2 and "contradict" in res.stderr


# -- --split of hf: corpora -------------------------------------------------------------------


@pytest.fixture
def datasets():
    return pytest.importorskip("datasets", reason="the hf extra (datasets) is not installed")


def test_extract_split_of_a_saved_dataset_dict(tiny_bert, tmp_path, datasets):
    rows = {"train": ["the cat sat .", "a dog ran ."], "validation": ["words in a cone .", "one more line .",
                                                                        "and a third ."]}
    datasets.DatasetDict({k: datasets.Dataset.from_dict({"sentence": v}) for k, v in rows.items()}).save_to_disk(
        str(tmp_path / "saved"))
    from isoscope.store import EmbeddingStore

    res = invoke("extract", "--model", tiny_bert, "--corpus", f"hf:{tmp_path / 'saved'}#sentence",
                 "--split", "validation", "--out", tmp_path / "store", "-q")
    assert res.exit_code == 0, res.output
    m = EmbeddingStore(tmp_path / "store").manifest
    assert m["n_sentences"] == 3 and m["corpus_info"]["split"] == "validation"
    assert m["corpus_info"]["column"] == "sentence"


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_extract_split_of_local_files(tiny_bert, tmp_path, suffix, datasets):
    ds = datasets.Dataset.from_dict({"text": ["the cat sat .", "a dog ran ."]})
    path = tmp_path / f"data.{suffix}"
    ds.to_parquet(str(path)) if suffix == "parquet" else ds.to_json(str(path), lines=True)
    base = ["extract", "--model", tiny_bert, "--corpus", f"hf:{path}", "-q"]
    ok = invoke(*base, "--split", "train", "--out", tmp_path / "a")
    assert ok.exit_code == 0, ok.output
    bad = invoke(*base, "--split", "test", "--out", tmp_path / "b")
    assert bad.exit_code == 2 and "has no split 'test'; it has train." in bad.stderr


def test_split_is_refused_for_plain_text_by_extract_and_run(corpus_file, tmp_path):
    for command in ("extract", "run"):
        res = invoke(command, "--corpus", f"text:{corpus_file}", "--split", "validation",
                     "--out", tmp_path / command, "-q")
        assert res.exit_code == 2 and "applies to hf: corpora only" in res.stderr, (command, res.output)


def test_run_settings_split_reaches_the_store(tiny_bert, tmp_path, datasets):
    from isoscope.pipeline import RunSettings, extract_store

    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["the cat sat ."]}),
                          "test": datasets.Dataset.from_dict({"text": ["a dog ran .", "words in a cone ."]})}
                         ).save_to_disk(str(tmp_path / "saved"))
    settings = RunSettings(model=str(tiny_bert), corpus=f"hf:{tmp_path / 'saved'}", split="test")
    store = extract_store(settings, tmp_path / "store")
    assert store.manifest["n_sentences"] == 2 and store.manifest["corpus_info"]["split"] == "test"
    assert settings.to_dict()["split"] == "test"
