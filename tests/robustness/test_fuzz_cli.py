"""The command line against a corpus of damaged files: every file of a store, every task-file
format, both corpus kinds and a results.json, each hit by seeded byte flips, truncations, type
swaps in JSON and lying sizes.

Each damaged input goes through the command that reads it (in-process, typer's CliRunner) and
must end with no traceback and a non-zero exit code, and must never leave a results file
(results JSON, report, store manifest) behind. Exit 0 is accepted only where the damage is
provably harmless or provably undetectable, and the test says which:

* a store's ``manifest.json`` whose parsed content differs from the original only in keys
  outside its schema or in the descriptive fields ``model``, ``corpus``, ``versions`` and ``n_sentences`` (no measure of
  ``analyze`` depends on them; ``n_sentences`` is not cross-checked against the token table,
  as a sentence may own no token, so a lie there is undetected);
* ``analyze`` without ``--verify`` (the cheap checks only) on a flipped byte that keeps the size
  of a layer file or of the token table, or that changes only a checksum recorded in the
  manifest: only the checksums can see it, and ``verify`` and ``analyze --verify`` on the same
  store must refuse it;
* a store of format 1 (written before checksums): a size-keeping flip in a layer file, or in a
  token-table page that still decodes with its schema, is undetectable, and ``verify`` must then
  say that the store records no checksums;
* a task file or corpus that the loader, called directly, still reads as a valid file of its
  format (a text file has no checksum: a changed letter is a different, valid input).

Bounded: a fixed, seeded set of cases (about 250 commands, well under two minutes on two cores);
``ISOSCOPE_FUZZ_SEED`` picks another set.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from isoscope.cli import app
from isoscope.errors import IsoscopeError

runner = CliRunner()
SEED = int(os.environ.get("ISOSCOPE_FUZZ_SEED", "0"))
FAST = ["--k-max", "3", "--silhouette-sample", "50", "--lid-k", "5", "--sample", "0", "--no-progress"]
WORDS = ("the a cat dog sat on mat sun moon tea cup red blue big small man woman king queen run").split()
_SWAPS: tuple[Any, ...] = ("x", [1], {"a": 1}, 1.5, True, None, -1, 2**70)
#: Manifest fields no check reads: names, versions and the sentence count (see the docstring).
_DESCRIPTIVE = {"model", "corpus", "versions", "n_sentences"}


# ------------------------------------------------------------------------------ mutations
def byte_mutations(data: bytes, rng: np.random.Generator, n_flips: int = 5,
                   n_cuts: int = 2) -> Iterator[tuple[str, bytes]]:
    """Seeded flips of one bit, truncations, and a longer file than recorded (a lying size)."""
    for _ in range(n_flips):
        i = int(rng.integers(len(data)))
        flipped = bytearray(data)
        flipped[i] ^= 1 << int(rng.integers(8))
        yield f"flip@{i}", bytes(flipped)
    for _ in range(n_cuts):
        n = int(rng.integers(len(data)))
        yield f"truncate@{n}", data[:n]
    yield "append", data + b"\x00" * 8


def json_mutations(doc: dict[str, Any], rng: np.random.Generator, keys: list[str],
                   lies: dict[str, Any], optional: bool = False) -> Iterator[tuple[str, bytes]]:
    """Type swaps of ``keys`` (not to null where ``optional``: null means absent), deleted keys,
    lying values and a too deeply nested document."""
    for key in keys:
        others = [v for v in _SWAPS if type(v) is not type(doc.get(key)) and not (optional and v is None)]
        swapped = {**doc, key: others[int(rng.integers(len(others)))]}
        yield f"swap:{key}={swapped[key]!r}", json.dumps(swapped).encode()
    for key in keys[:2]:
        yield f"drop:{key}", json.dumps({k: v for k, v in doc.items() if k != key}).encode()
    for key, value in lies.items():
        yield f"lie:{key}={value!r}", json.dumps({**doc, key: value}).encode()
    yield "deep", json.dumps({**doc, keys[0]: "DEEP"}).replace('"DEEP"', "[" * 5000 + "]" * 5000).encode()
    yield "not-an-object", b"[1, 2, 3]"


def _invoke(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    assert "Traceback" not in result.output, (args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    if result.exit_code:
        last = result.output.strip().splitlines()[-1]
        assert last.startswith("error: ") and "\n" not in last, (args, result.output)
    return result


def _parses(load: Callable[[], Any]) -> bool:
    try:
        load()
    except IsoscopeError:
        return False
    return True


# ------------------------------------------------------------------------------ stores
def _store(path: Path) -> Path:
    from isoscope.store import write_store

    X = np.random.default_rng(0).standard_normal((60, 8)).astype(np.float32)
    tokens = {"word": [WORDS[i % 20] for i in range(60)], "sentence_id": np.arange(60) // 6,
              "word_id": np.arange(60) % 6}
    return write_store(path, {0: X, 1: 2 * X}, tokens).path


def _unfinished(path: Path) -> Path:
    import pyarrow as pa

    from isoscope.store import StoreWriter

    rows = pa.table({"sentence_id": pa.array([0, 0, 0], pa.int32()), "position": pa.array([0, 1, 2], pa.int32()),
                     "token_id": pa.array([1, 2, 3], pa.int32()), "token": ["a", "b", "c"],
                     "word_id": pa.array([0, 1, 2], pa.int32()), "word": ["a", "b", "c"],
                     "is_special": [False, False, False]})
    with StoreWriter(path, {"layers": [0, 1], "hidden_size": 4, "dtype": "float32", "model": "m",
                            "corpus": "c"}) as w:
        for fill in (1, 2):
            w.append({0: np.full((3, 4), fill, np.float32), 1: np.full((3, 4), -fill, np.float32)}, rows, 1)
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz-stores")
    complete = _store(root / "complete")
    old = root / "format1"
    shutil.copytree(complete, old)
    manifest = json.loads((old / "manifest.json").read_text())
    for key in ("layer_files", "tokens_file"):
        del manifest[key]
    (old / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    return {"complete": complete, "format1": old, "unfinished": _unfinished(root / "unfinished")}


def _damage(base: Path, work: Path, name: str, data: bytes | None) -> Path:
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(base, work)
    target = work / name
    if data is None:
        target.unlink()
    else:
        target.write_bytes(data)
    return work


def _store_cases(base: Path, rng: np.random.Generator) -> Iterator[tuple[str, str, bytes | None]]:
    files = sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() and p.name != ".lock")
    for name in files:
        data = (base / name).read_bytes()
        yield name, "delete", None
        for what, mutated in byte_mutations(data, rng):
            yield name, what, mutated
        if name.endswith(".json"):
            doc = json.loads(data)
            keys = [k for k in ("layers", "hidden_size", "dtype", "n_tokens", "complete", "format_version",
                                "layer_files", "tokens_file", "n_chunks", "n_tokens", "n_sentences",
                                "first_row", "rows", "tokens") if k in doc]
            lies = {k: doc[k] * 2 + 1 for k in ("n_tokens", "hidden_size", "rows", "n_chunks")
                    if isinstance(doc.get(k), int)}
            if isinstance(doc.get("layers"), list):
                lies["layers"] = [*doc["layers"], max(doc["layers"]) + 1]
            for what, mutated in json_mutations(doc, rng, keys, lies):
                yield name, what, mutated


def _without_digests(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _without_digests(v) for k, v in doc.items() if k != "blake2b"}
    return doc


def _digests_only(original: bytes, mutated: bytes | None) -> bool:
    """The mutated manifest parses and differs from the original only in recorded checksums."""
    try:
        new = json.loads(mutated) if mutated is not None else None
    except (ValueError, RecursionError):
        return False
    return _without_digests(new) == _without_digests(json.loads(original))


def _descriptive_only(original: bytes, mutated: bytes | None) -> bool:
    """The mutated manifest parses and means the same store: every field of the manifest schema
    and ``model_type`` (with their defaults) but the descriptive ones is unchanged. Keys outside
    the schema (the schema keeps them, nothing reads them for a number) may be renamed."""
    from isoscope.store import Manifest

    try:
        new = json.loads(mutated) if mutated is not None else None
    except (ValueError, RecursionError):
        return False
    if not isinstance(new, dict):
        return False
    old = json.loads(original)
    fields = {k: f.default for k, f in Manifest.model_fields.items() if k not in _DESCRIPTIVE}
    fields["model_type"] = "encoder"
    return all(old.get(k, d) == new.get(k, d) for k, d in fields.items())


def test_fuzz_complete_store(stores, tmp_path) -> None:
    base = stores["complete"]
    rng = np.random.default_rng(SEED)
    out = tmp_path / "results.json"
    n = 0
    for name, what, data in _store_cases(base, rng):
        case = f"{name} {what}"
        path = _damage(base, tmp_path / "s", name, data)
        size_kept = data is not None and what.startswith("flip") and (
            name != "manifest.json" or _digests_only((base / name).read_bytes(), data))
        harmless = name == "manifest.json" and _descriptive_only((base / name).read_bytes(), data)
        verify = _invoke(["verify", str(path)])
        assert verify.exit_code != 0 or harmless, (case, verify.output)
        for args in (["analyze", str(path), "--verify", *FAST, "--out", str(out)],
                     ["analyze", str(path), *FAST, "--out", str(out)]):
            result = _invoke(args)
            if result.exit_code:
                assert not out.exists(), case
            else:
                # Exit 0 without --verify only for a size-keeping flip that only checksums see.
                assert harmless or (size_kept and "--verify" not in args), (case, args, result.output)
                out.unlink()
            if verify.exit_code and not size_kept:
                assert result.exit_code, (case, args)  # the cheap checks alone refuse it
        n += 1
    assert n > 50


def test_fuzz_token_table_types(stores, tmp_path) -> None:
    """Type swaps, nulls and dropped columns in tokens.parquet are refused on open or on verify."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = stores["complete"]
    table = pq.read_table(base / "tokens.parquet")
    swaps = {
        "sentence_id as text": table.set_column(table.schema.get_field_index("sentence_id"), "sentence_id",
                                                pa.array([str(v) for v in table["sentence_id"].to_pylist()])),
        "word as int": table.set_column(table.schema.get_field_index("word"), "word",
                                        pa.array(range(table.num_rows), pa.int64())),
        "null word": table.set_column(table.schema.get_field_index("word"), "word",
                                      pa.array([None, *table["word"].to_pylist()[1:]], pa.string())),
        "no is_special": table.drop_columns(["is_special"]),
        "one row short": table.slice(0, table.num_rows - 1),
    }
    out = tmp_path / "results.json"
    for what, bad in swaps.items():
        for store in ("complete", "format1"):
            path = tmp_path / "s"
            if path.exists():
                shutil.rmtree(path)
            shutil.copytree(stores[store], path)
            pq.write_table(bad, path / "tokens.parquet")
            for args in (["verify", str(path)], ["analyze", str(path), *FAST, "--out", str(out)]):
                result = _invoke(args)
                assert result.exit_code == 2, (store, what, args, result.output)
                assert not out.exists()


def test_fuzz_store_without_checksums(stores, tmp_path) -> None:
    base = stores["format1"]
    rng = np.random.default_rng(SEED + 1)
    for name in ("layers/layer_000.bin", "layers/layer_001.bin", "tokens.parquet"):
        for what, data in byte_mutations((base / name).read_bytes(), rng):
            path = _damage(base, tmp_path / "s", name, data)
            result = _invoke(["verify", str(path)])
            if result.exit_code == 0:
                # Undetectable without checksums: a size-keeping flip that leaves the token
                # table decodable with its schema.
                assert what.startswith("flip"), (name, what)
                assert "records no checksums" in result.output


def test_fuzz_unfinished_store(stores, tmp_path) -> None:
    base = stores["unfinished"]
    rng = np.random.default_rng(SEED + 2)
    n = 0
    for name, what, data in _store_cases(base, rng):
        path = _damage(base, tmp_path / "s", name, data)
        harmless = name == "manifest.json" and _descriptive_only((base / name).read_bytes(), data)
        # A flip past the committed rows of a layer file lands in bytes no chunk committed.
        result = _invoke(["verify", str(path)])
        if what == "append" and name.startswith("layers/"):
            continue  # rows beyond the last commit are what a crash leaves; resume overwrites them
        assert result.exit_code != 0 or harmless, (name, what, result.output)
        n += 1
    assert n > 40


# ------------------------------------------------------------------------------ task files
@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz-inputs")
    rng = np.random.default_rng(0)
    (root / "vectors.txt").write_text("".join(
        w + " " + " ".join(f"{x:.4f}" for x in rng.standard_normal(8)) + "\n" for w in WORDS))
    sents = [" ".join(rng.choice(WORDS, 5)) for _ in range(24)]
    (root / "sts-test.csv").write_text("".join(
        f"main-news\tf\t2012\t{i}\t{i % 5 + 0.5:.2f}\t{sents[i]}\t{sents[(i + 1) % 24]}\n" for i in range(24)))
    (root / "EN-T.txt").write_text("".join(f"{WORDS[i]} {WORDS[i + 1]} {i / 2:.1f}\n" for i in range(19)))
    sst = root / "sst"
    sst.mkdir()
    for split in ("train", "test"):
        (sst / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(f"{sents[i]}\t{i % 2}\n" for i in range(24)))
    mrpc = root / "mrpc"
    mrpc.mkdir()
    for split in ("train", "test"):
        (mrpc / f"msr_paraphrase_{split}.txt").write_text(
            "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
            + "".join(f"{i % 2}\t{i}\t{i + 100}\t{sents[i]}\t{sents[(i + 3) % 24]}\n" for i in range(24)))
    (root / "corpus.txt").write_text("\n".join(sents) + "\n")
    (root / "corpus.jsonl").write_text("".join(json.dumps({"text": s}) + "\n" for s in sents))
    return {"root": root, "vectors": root / "vectors.txt", "stsb": root / "sts-test.csv",
            "wordsim": root / "EN-T.txt", "sst2": sst / "train.tsv", "mrpc": mrpc / "msr_paraphrase_train.txt",
            "text": root / "corpus.txt", "jsonl": root / "corpus.jsonl"}


def _text_mutations(data: bytes, rng: np.random.Generator, jsonl: bool = False) -> Iterator[tuple[str, bytes]]:
    yield from byte_mutations(data, rng, n_flips=4)
    lines = data.split(b"\n")
    i = int(rng.integers(len(lines) - 1))
    yield "invalid-utf8", b"\n".join([*lines[:i], lines[i] + b"\xff\xfe", *lines[i + 1:]])
    yield "drop-field", b"\n".join([*lines[:i], lines[i].rsplit(b"\t", 1)[0], *lines[i + 1:]])
    yield "nan-score", b"\n".join([*lines[:i], lines[i].replace(b"\t0", b"\tnan").replace(b" 0", b" nan"), *lines[i + 1:]])
    yield "empty", b""
    if jsonl:
        for value in (3, None, ["x"], {"t": "x"}):
            yield f"swap:text={value!r}", b"\n".join([*lines[:i], json.dumps({"text": value}).encode(), *lines[i + 1:]])
        yield "deep", b"\n".join([*lines[:i], b"[" * 5000 + b"]" * 5000, *lines[i + 1:]])


@pytest.mark.parametrize("kind", ["stsb", "wordsim", "sst2", "mrpc"])
def test_fuzz_task_files(inputs, tmp_path, kind) -> None:
    from isoscope.evaluate._loaders import load_task

    source = inputs[kind]
    rng = np.random.default_rng(SEED + hash(kind) % 1000)
    out = tmp_path / "eval.json"
    for what, data in _text_mutations(source.read_bytes(), rng):
        folder = tmp_path / "task"
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(source.parent, folder)
        (folder / source.name).write_bytes(data)
        task_path = folder if kind in ("sst2", "mrpc") else folder / source.name
        result = _invoke(["evaluate", "--model", str(inputs["vectors"]), "--task", f"{kind}={task_path}",
                          "--no-cache", "--out", str(out)])
        if result.exit_code:
            assert not out.exists(), (kind, what)
        else:
            assert _parses(lambda p=task_path: load_task(kind, p)), (kind, what)
            out.unlink()


@pytest.mark.parametrize("kind", ["text", "jsonl"])
def test_fuzz_corpora(inputs, tmp_path, kind) -> None:
    from isoscope.corpora import load_corpus

    source = inputs[kind]
    rng = np.random.default_rng(SEED + 7 + len(kind))
    for what, data in _text_mutations(source.read_bytes(), rng, jsonl=kind == "jsonl"):
        corpus = tmp_path / source.name
        corpus.write_bytes(data)
        store = tmp_path / "store"
        if store.exists():
            shutil.rmtree(store)
        result = _invoke(["extract", "--model", str(inputs["vectors"]), "--corpus", f"{kind}:{corpus}",
                          "--out", str(store), "--no-progress"])
        if result.exit_code:
            assert not (store / "manifest.json").exists(), (kind, what)
        else:
            assert _parses(lambda c=corpus: load_corpus(f"{kind}:{c}")), (kind, what)


# ------------------------------------------------------------------------------ results.json
def test_fuzz_results_file(stores, tmp_path) -> None:
    """Damaged results are refused before a report is drawn (a report takes seconds, so the cases
    are ones that must all be refused: flips to invalid UTF-8, truncations, type swaps, lies)."""
    results = tmp_path / "analysis.json"
    assert _invoke(["analyze", str(stores["complete"]), *FAST, "--out", str(results)]).exit_code == 0
    data = results.read_bytes()
    doc = json.loads(data)
    rng = np.random.default_rng(SEED + 3)
    ascii_at = [i for i, b in enumerate(data) if b < 0x80]
    cases: list[tuple[str, bytes]] = []
    for i in rng.choice(ascii_at, 3, replace=False):
        flipped = bytearray(data)
        flipped[i] ^= 0x80  # a lone continuation byte: never UTF-8
        cases.append((f"flip@{i}", bytes(flipped)))
    cases += [(f"truncate@{n}", data[:n]) for n in rng.integers(1, len(data), 3)]
    layer = doc["layers"][0]
    for key, value in (("s_inter", "abc"), ("isoscore", [1]), ("lid_mle", True), ("layer", "0")):
        cases.append((f"swap:layers[0].{key}", json.dumps({**doc, "layers": [{**layer, key: value}]}).encode()))
    cases += list(json_mutations(doc, rng, ["layers", "schema_version", "source", "settings", "timings", "measures"],
                                 {"schema_version": 999}, optional=True))
    report = tmp_path / "run" / "report.html"
    for what, mutated in cases:
        file = tmp_path / "run" / "results.json"
        file.parent.mkdir(exist_ok=True)
        file.write_bytes(mutated)
        result = _invoke(["report", str(file), "--out", str(report), "--format", "svg"])
        assert result.exit_code == 2, (what, result.output)
        assert not report.exists() and not (report.parent / "figures").exists(), what
