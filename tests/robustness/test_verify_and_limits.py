"""``isoscope verify`` and ``analyze --verify``, size-limited task files and corpora, the format
version of saved repairs, and tokenizers that name their own code.

Every refusal is one sentence with exit code 2 from the command line (``one_sentence``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from isoscope.cli import app
from isoscope.errors import InputError, ModelNotAvailableError
from isoscope.store import TOKENS, StoreWriter, open_store, write_store

runner = CliRunner()
FAST = ["--k-max", "3", "--silhouette-sample", "50", "--lid-k", "5", "--sample", "0", "--no-progress"]


def _store(path: Path) -> Path:
    X = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
    words = {"word": [f"w{i % 7}" for i in range(40)], "sentence_id": np.arange(40) // 5,
             "word_id": np.arange(40) % 5}
    return write_store(path, {0: X, 1: X * 2}, words).path


def _flip(file: Path, offset: int) -> None:
    data = bytearray(file.read_bytes())
    data[offset] ^= 0x01
    file.write_bytes(bytes(data))


# ------------------------------------------------------------------------------ isoscope verify
def test_verify_command_says_ok_with_the_counts(tmp_path) -> None:
    path = _store(tmp_path / "s")
    result = runner.invoke(app, ["verify", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "ok: 2 layer files and the token table match their checksums (40 tokens)"


@pytest.mark.parametrize(("target", "offset"), [("layers/layer_001.bin", 100), (TOKENS, 16)])
def test_verify_command_names_the_damaged_file(tmp_path, one_sentence, target, offset) -> None:
    path = _store(tmp_path / "s")
    _flip(path / target, offset)
    name = Path(target).name.replace(".", r"\.")
    one_sentence(runner.invoke(app, ["verify", str(path)]),
                 rf"is damaged \({name} does not match the checksum recorded when it was written\)")
    # The cheap checks on open cannot see a flipped byte that keeps the size: only the full read can.
    assert open_store(path).n_tokens == 40


def test_verify_command_names_the_damaged_chunk_of_an_unfinished_store(tmp_path, one_sentence) -> None:
    import pyarrow as pa

    path = tmp_path / "s"
    rows = pa.table({"sentence_id": pa.array([0, 0], pa.int32()), "position": pa.array([0, 1], pa.int32()),
                     "token_id": pa.array([1, 2], pa.int32()), "token": ["a", "b"],
                     "word_id": pa.array([0, 1], pa.int32()), "word": ["a", "b"], "is_special": [False, False]})
    with StoreWriter(path, {"layers": [0], "hidden_size": 4, "dtype": "float32", "model": "m",
                            "corpus": "c"}) as w:
        for fill in (1, 2, 3):
            w.append({0: np.full((2, 4), fill, np.float32)}, rows, 1)
    ok = runner.invoke(app, ["verify", str(path)])
    assert ok.exit_code == 0 and ok.output.strip() == "ok: 3 committed chunks match their checksums (6 tokens)"
    _flip(path / "layers" / "layer_000.bin", 2 * 16 * 2 + 3)  # a byte of the third chunk
    one_sentence(runner.invoke(app, ["verify", str(path)]),
                 r"the rows of committed chunk 2 in layer_000\.bin differ from what was committed")


def test_verify_command_refuses_a_missing_store(tmp_path, one_sentence) -> None:
    one_sentence(runner.invoke(app, ["verify", str(tmp_path / "nothing")]), r"does not exist or is not a folder")


def test_analyze_verify_refuses_a_damaged_store_before_measuring(tmp_path, one_sentence) -> None:
    path = _store(tmp_path / "s")
    out = tmp_path / "results.json"
    ok = runner.invoke(app, ["analyze", str(path), "--verify", "--layers", "1", *FAST, "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert out.is_file()
    out.unlink()
    _flip(path / "layers" / "layer_001.bin", 100)
    # Without --verify the flipped byte is a plausible float and is measured: that is what the
    # full read is for.
    one_sentence(runner.invoke(app, ["analyze", str(path), "--verify", "--layers", "1", *FAST, "--out", str(out)]),
                 r"layer_001\.bin does not match the checksum")
    assert not out.exists()


def test_analyze_verify_needs_a_store(tmp_path, one_sentence) -> None:
    npy = tmp_path / "x.npy"
    np.save(npy, np.random.default_rng(0).standard_normal((30, 4)))
    one_sentence(runner.invoke(app, ["analyze", str(npy), "--verify", *FAST]),
                 r"--verify checks a store folder, and .*x\.npy is not one")


# ------------------------------------------------------------------------------ size limits
def test_task_file_over_the_size_limit_is_refused(tmp_path, monkeypatch, one_sentence) -> None:
    from isoscope.evaluate._loaders import load_task

    path = tmp_path / "EN-X.txt"
    path.write_text("cat dog 3.5\nsun moon 2\n")
    assert len(load_task("wordsim", path).scores) == 2
    monkeypatch.setenv("ISOSCOPE_MAX_TASK_BYTES", "10")
    with pytest.raises(InputError, match=r"The task file .*EN-X\.txt is larger than 10 bytes; set "
                                         r"\$ISOSCOPE_MAX_TASK_BYTES to a larger number of bytes to read it\."):
        load_task("wordsim", path)
    (tmp_path / "train.tsv").write_text("sentence\tlabel\na\t1\nb\t0\n")
    (tmp_path / "test.tsv").write_text("sentence\tlabel\na\t1\nb\t0\n")
    with pytest.raises(InputError, match=r"train\.tsv is larger than 10 bytes"):
        load_task("sst2", f"{tmp_path / 'train.tsv'},{tmp_path / 'test.tsv'}")
    monkeypatch.setenv("ISOSCOPE_MAX_TASK_BYTES", "lots")
    with pytest.raises(InputError, match=r"\$ISOSCOPE_MAX_TASK_BYTES must be a whole number of bytes, not 'lots'"):
        load_task("wordsim", path)


def test_corpus_over_the_size_limit_is_refused(tmp_path, monkeypatch, one_sentence) -> None:
    from isoscope.corpora import load_corpus

    path = tmp_path / "c.txt"
    path.write_text("one sentence .\nanother one .\n")
    assert len(load_corpus(str(path))) == 2
    with pytest.raises(InputError, match=r"The corpus file .*c\.txt is larger than 5 bytes"):
        load_corpus(str(path), max_bytes=5)
    monkeypatch.setenv("ISOSCOPE_MAX_CORPUS_BYTES", "5")
    for spec in (str(path), f"text:{path}", f"wikitext:{path}"):
        with pytest.raises(InputError, match=r"larger than 5 bytes; set \$ISOSCOPE_MAX_CORPUS_BYTES"):
            load_corpus(spec)
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"text": "a b c"}\n')
    with pytest.raises(InputError, match=r"c\.jsonl is larger than 5 bytes"):
        load_corpus(str(jsonl))
    assert len(load_corpus(str(jsonl), max_bytes=1000)) == 1  # the parameter wins over the variable
    one_sentence(runner.invoke(app, ["extract", "--corpus", str(path), "--out", str(tmp_path / "s"),
                                     "--no-progress"]), r"larger than 5 bytes")


def test_parser_failures_name_the_file_and_line(tmp_path) -> None:
    from isoscope.evaluate._loaders import load_task

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("sentence1,sentence2,score\na,b,1\n" + "c," + "x" * 200_000 + ",2\n")
    with pytest.raises(InputError, match=r"Malformed line in .*pairs\.csv at line 3: not a readable ',"
                                         r"'-separated row \(field larger than field limit"):
        load_task("pairs", pairs)
    labelled = tmp_path / "train.csv"
    labelled.write_text("text,label\na,1\nb,1\n" + "c," + "y" * 200_000 + "\n")
    (tmp_path / "test.csv").write_text("text,label\na,1\nb,0\n")
    with pytest.raises(InputError, match=r"Malformed line in .*train\.csv at line 4: not a readable delimited row"):
        load_task("classify", f"{labelled},{tmp_path / 'test.csv'}")
    sim = tmp_path / "EN-Y.txt"
    sim.write_bytes(b"cat dog 1\n" * 3000 + b"sun moon \xff2\n")  # past the first 8 KiB
    with pytest.raises(InputError, match=r"EN-Y\.txt is not UTF-8 text \(invalid start byte at line 3001, "
                                         r"byte 30009\)"):
        load_task("wordsim", sim)


def test_line_endings_are_read_as_before(tmp_path) -> None:
    """The bounded reader splits lines as the file reader did (\\n, \\r\\n and a lone \\r)."""
    from isoscope.evaluate._loaders import load_task

    path = tmp_path / "EN-Z.txt"
    path.write_bytes(b"# comment\r\ncat dog 1\rsun moon 2\n\xef\xbb\xbfcaf\xc3\xa9 tea 3\n")
    task = load_task("wordsim", path)
    assert task.word1 == ["cat", "sun", "\ufeffcaf\u00e9"]
    assert task.scores.tolist() == [1.0, 2.0, 3.0]


# ------------------------------------------------------------------------------ saved repairs
def _rewrite_header(path: Path, **changes) -> None:
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(path), framework="numpy") as fh:
        meta = json.loads(fh.metadata()["isoscope_transform"])
        arrays = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    save_file(arrays, str(path), metadata={"isoscope_transform": json.dumps(meta)})


@pytest.fixture
def saved_repair(tmp_path) -> Path:
    from isoscope.transforms import from_spec, save_transform

    X = np.random.default_rng(0).standard_normal((60, 5))
    return save_transform(from_spec("abtt:n_components=1").fit(X), tmp_path / "abtt.safetensors")


def test_saved_repair_records_its_format_and_isoscope_version(saved_repair) -> None:
    from safetensors import safe_open

    import isoscope
    from isoscope.transforms import load_transform

    with safe_open(str(saved_repair), framework="numpy") as fh:
        meta = json.loads(fh.metadata()["isoscope_transform"])
    assert meta["format_version"] == 1 and meta["isoscope_version"] == isoscope.__version__
    # A file of today's format without the writer's version (as saved before it was recorded).
    _rewrite_header(saved_repair, isoscope_version=None)
    assert type(load_transform(saved_repair)).__name__ == "AllButTheTop"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 2, "isoscope_version": "9.0.0"},
         r"abtt\.safetensors is a transform file of format version 2, which isoscope \S+ cannot read "
         r"\(it reads 1\); it was written by isoscope 9\.0\.0\."),
        ({"format_version": 0}, r"of format version 0, which isoscope \S+ cannot read \(it reads 1\); it was written"),
        ({"format_version": "1"}, r"of format version '1', which isoscope"),
        ({"format_version": True}, r"of format version True, which isoscope"),
        ({"format_version": None}, r"records no format_version, so it is not a transform file isoscope wrote"),
        ({"class": ["ABTT"]}, r"The header of the transform file .* is damaged \(TypeError"),
        ({"params": {"bogus": 1}}, r"The header of the transform file .* is damaged \(TypeError"),
        ({"n_features_in": None}, r"The header of the transform file .* is damaged \(KeyError"),
    ],
)
def test_saved_repair_of_another_version_or_damaged_header_is_one_sentence(saved_repair, changes,
                                                                          message) -> None:
    from isoscope.transforms import load_transform

    _rewrite_header(saved_repair, **changes)
    with pytest.raises(InputError, match=message) as info:
        load_transform(saved_repair)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------ tokenizer code
@pytest.fixture
def payload_marker(tmp_path: Path) -> Path:
    path = tmp_path / "TOKENIZER-CODE-RAN"
    yield path
    assert not path.exists(), "the tokenizer's own code was imported"


def test_tokenizer_that_names_its_own_code_is_refused(tiny_bert, corpus_file, tmp_path, payload_marker,
                                                      one_sentence) -> None:
    from isoscope.models import load_encoder

    folder = tmp_path / "custom-tokenizer"
    shutil.copytree(tiny_bert, folder)
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["auto_map"] = {"AutoTokenizer": [None, "payload_tok.Tok"]}
    config_file.write_text(json.dumps(config))
    (folder / "payload_tok.py").write_text(
        f"open({str(payload_marker)!r}, 'w').write('imported')\n"
        "from transformers import PreTrainedTokenizerFast\n"
        "class Tok(PreTrainedTokenizerFast):\n    pass\n"
    )
    message = r"ships its own tokenizer code \(auto_map in tokenizer_config\.json\), which isoscope runs only with"
    with pytest.raises(ModelNotAvailableError, match=message):
        load_encoder(str(folder))
    result = runner.invoke(app, ["extract", "--model", str(folder), "--corpus", str(corpus_file),
                                 "--out", str(tmp_path / "s"), "--no-progress"])
    one_sentence(result, message)
    assert not (tmp_path / "s" / "manifest.json").exists()
    # Without auto_map the same folder loads.
    del config["auto_map"]
    config_file.write_text(json.dumps(config))
    assert load_encoder(str(folder)).hidden_size == 32


# ------------------------------------------------------------------------------ results files
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"settings": "abc"}, r"is damaged \('settings' is a string, not an object\)"),
        ({"timings": [1]}, r"is damaged \('timings' is an array, not an object\)"),
        ({"source": 3}, r"is damaged \('source' is a number, not an object\)"),
        ({"layers": [{"layer": 0, "s_inter": "abc"}]}, r"is damaged \(layer 0's 's_inter' is 'abc', not a number\)"),
        ({"layers": [{"layer": 0, "isoscore": True}]}, r"layer 0's 'isoscore' is True, not a number"),
    ],
)
def test_results_with_wrong_types_are_refused_before_a_report(tmp_path, one_sentence, change, message) -> None:
    from isoscope.analysis import RESULTS_SCHEMA_VERSION, check_schema

    doc = {"schema_version": RESULTS_SCHEMA_VERSION, "source": {}, "settings": {}, "timings": {},
           "layers": [{"layer": 0, "s_inter": 0.5}]}
    assert check_schema(doc) is doc
    with pytest.raises(InputError, match=message):
        check_schema({**doc, **change})
    file = tmp_path / "results.json"
    file.write_text(json.dumps({**doc, **change}))
    one_sentence(runner.invoke(app, ["report", str(file), "--out", str(tmp_path / "r.html")]), message)
    assert not (tmp_path / "r.html").exists()
