"""Fuzzing of the loaders and parsers that read user files: each input either loads or raises an
:class:`~isoscope.errors.IsoscopeError` (one sentence); nothing else escapes.

Bounded: a fixed number of examples per target (``ISOSCOPE_FUZZ_EXAMPLES``, default 60),
derandomized so that a failure reproduces; set ``ISOSCOPE_FUZZ_RANDOM=1`` for fresh inputs.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isoscope.errors import IsoscopeError

FUZZ = settings(max_examples=int(os.environ.get("ISOSCOPE_FUZZ_EXAMPLES", "60")), deadline=None,
                derandomize=not os.environ.get("ISOSCOPE_FUZZ_RANDOM"), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Text built from the characters the formats care about, so the fuzzer reaches deep branches.
_SPECIAL = st.sampled_from(["\t", " ", "\n", "\r\n", ",", '"', "#", ":", "=", "@-@", " = ", "{", "}",
                            "\u00e9", "\ufffd", "\x00", "nan", "inf", "-1", "1e400", "3.5", "0"])
_WORD = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "Z"]), max_size=8)
TEXT = st.lists(st.one_of(_SPECIAL, _WORD), max_size=60).map("".join)
BYTES = st.one_of(st.binary(max_size=400), TEXT.map(lambda s: s.encode("utf-8", "surrogatepass")))


def _file(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    if isinstance(data, str):
        path.write_bytes(data.encode("utf-8", "surrogatepass"))
    else:
        path.write_bytes(data)
    return path


def _loads_or_one_sentence(load: Callable[[], Any]) -> Any:
    try:
        return load()
    except IsoscopeError as exc:
        message = str(exc)
        assert message and "\n" not in message.strip(), repr(message)
        return None


# ------------------------------------------------------------------------------ corpora
@pytest.mark.parametrize("kind", ["text", "wikitext", "jsonl", "auto-txt", "auto-jsonl"])
def test_fuzz_corpus_loaders(kind: str) -> None:
    from isoscope.corpora import load_corpus

    @FUZZ
    @given(data=st.one_of(BYTES, st.lists(st.dictionaries(st.sampled_from(["text", "body", "x"]),
                                                          st.one_of(TEXT, st.integers(), st.none()),
                                                          max_size=3), max_size=5)
                          .map(lambda rows: "\n".join(json.dumps(r) for r in rows))))
    def check(data: bytes | str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            suffix = ".jsonl" if kind.endswith("jsonl") else ".txt"
            path = _file(Path(tmp), "corpus" + suffix, data)
            spec = str(path) if kind.startswith("auto") else f"{kind}:{path}"
            corpus = _loads_or_one_sentence(lambda: load_corpus(spec, max_sentences=50))
            if corpus is not None:
                assert 1 <= len(corpus.sentences) <= 50
                assert all(isinstance(s, str) and s.strip() == s and s for s in corpus.sentences)

    check()


# ------------------------------------------------------------------------------ static tables
@pytest.mark.parametrize("suffix", [".txt", ".vec", ".bin"])
def test_fuzz_static_tables(suffix: str) -> None:
    from isoscope.models.static import load_static

    header = st.sampled_from([b"", b"2 3\n", b"3 2\n", b"1 1000000000\n", b"-1 2\n", b"x y\n"])

    @FUZZ
    @given(head=header, body=BYTES)
    def check(head: bytes, body: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = _file(Path(tmp), "vectors" + suffix, head + body)
            table = _loads_or_one_sentence(lambda: load_static(path))
            if table is not None:
                assert table.vectors.ndim == 2 and table.vectors.dtype == np.float32
                assert len(table.words) == table.vectors.shape[0] >= 1

    check()


def test_fuzz_static_npy_and_vocabulary() -> None:
    from isoscope.models.static import load_static

    arrays = st.one_of(
        st.builds(lambda n, d, fill: np.full((n, d), fill), st.integers(0, 4), st.integers(0, 3),
                  st.sampled_from([0.0, 1.5, np.nan])),
        st.just(np.arange(3)), st.just(np.array([["a", "b"]])), st.just(np.zeros((2, 2), np.complex64)),
    )

    @FUZZ
    @given(matrix=st.one_of(arrays, BYTES), vocab=BYTES)
    def check(matrix: Any, vocab: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.npy"
            if isinstance(matrix, np.ndarray):
                np.save(path, matrix, allow_pickle=False)
            else:
                path.write_bytes(matrix)
            words = _file(Path(tmp), "vocab.txt", vocab)
            table = _loads_or_one_sentence(lambda: load_static(path, vocab=words))
            if table is not None:
                assert table.vectors.ndim == 2 and len(table.words) == table.vectors.shape[0]

    check()


# ------------------------------------------------------------------------------ evaluation files
_LOADERS = ["stsb", "sick", "pairs", "wordsim", "analogy"]


@pytest.mark.parametrize("kind", _LOADERS)
def test_fuzz_evaluation_loaders(kind: str) -> None:
    from isoscope.evaluate._loaders import load_task

    names = {"stsb": "sts-test.csv", "sick": "SICK.txt", "pairs": "pairs.tsv",
             "wordsim": "EN-X.txt", "analogy": "questions.txt"}
    heads = {"sick": ["", "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tSemEval_set\n"],
             "pairs": ["", "sentence1\tsentence2\tscore\n"], "analogy": ["", ": section\n"]}

    @FUZZ
    @given(head=st.sampled_from(heads.get(kind, [""])), body=BYTES)
    def check(head: str, body: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = _file(Path(tmp), names[kind], head.encode() + body)
            task = _loads_or_one_sentence(lambda: load_task(kind, path))
            if task is not None and hasattr(task, "scores"):
                assert np.isfinite(task.scores).all() and len(task.scores) >= 1

    check()


def test_fuzz_sts_senteval_folder() -> None:
    from isoscope.evaluate._loaders import load_sts

    @FUZZ
    @given(inputs=BYTES, gold=BYTES)
    def check(inputs: bytes, gold: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            _file(Path(tmp), "STS.input.news.txt", inputs)
            _file(Path(tmp), "STS.gs.news.txt", gold)
            task = _loads_or_one_sentence(lambda: load_sts(tmp))
            if task is not None:
                assert len(task.scores) == len(task.sentences1) == len(task.subsets) >= 1

    check()


# ------------------------------------------------------------------------------ transform specs
_NAMES = st.sampled_from(["none", "center", "abtt", "cluster", "learned", "whiten", "zipf",
                          "standardize", "ABTT", " whiten ", "nosuch", ""])
_KEYS = st.sampled_from(["n_components", "n_clusters", "random_state", "eps", "epsilon", "bogus",
                         "", " n_components "])
_VALUES = st.one_of(st.sampled_from(["3", "0", "-1", "none", "true", "1.5", "nan", "inf", "1e309",
                                     "abc", "", "=", "3,4"]), TEXT)


@FUZZ
@given(spec=st.one_of(
    TEXT,
    st.builds(lambda n, kv: n + (":" + ",".join(f"{k}={v}" for k, v in kv) if kv else ""),
              _NAMES, st.lists(st.tuples(_KEYS, _VALUES), max_size=3)),
))
def test_fuzz_transform_specs(spec: str) -> None:
    from isoscope.transforms import IsotropyTransform, from_spec

    est = _loads_or_one_sentence(lambda: from_spec(spec))
    if est is not None:
        assert isinstance(est, IsotropyTransform)
        # A spec that parses either fits small data or refuses its parameters in one sentence.
        X = np.random.default_rng(0).standard_normal((40, 6))
        kwargs: dict[str, Any] = {}
        if type(est).__name__ == "ZipfianWhitening":
            kwargs["sample_weight"] = np.ones(40)
        if type(est).__name__ == "LearnedRemoval":
            return  # needs word pairs; its parameters are checked in tests/transforms
        fitted = _loads_or_one_sentence(lambda: est.fit(X, **kwargs))
        if fitted is not None:
            assert np.isfinite(fitted.transform(X)).all()


# ------------------------------------------------------------------------------ store manifests
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 2**40), st.floats(allow_nan=False), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)
_FIELDS = {
    "layers": st.one_of(st.lists(st.integers(-3, 4), max_size=4), _JSON),
    "hidden_size": st.one_of(st.integers(-2, 8), _JSON),
    "dtype": st.one_of(st.sampled_from(["float16", "float32", "float64", "int8"]), _JSON),
    "n_tokens": st.one_of(st.integers(-2, 40), _JSON),
    "complete": st.one_of(st.booleans(), _JSON),
    "n_layers": _JSON,
    "model": _JSON,
}


@pytest.fixture(scope="module")
def base_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from isoscope.store import write_store

    X = np.random.default_rng(0).standard_normal((12, 4)).astype(np.float32)
    return write_store(tmp_path_factory.mktemp("fuzz") / "s", {0: X, 1: -X},
                       {"word": [f"w{i % 3}" for i in range(12)]}).path


def test_fuzz_store_manifest(base_store: Path) -> None:
    import shutil

    from isoscope.store import open_store

    @FUZZ
    @given(
        fields=st.fixed_dictionaries({}, optional=_FIELDS),
        keep=st.booleans(),
        raw=st.one_of(st.none(), BYTES),
        progress=st.one_of(st.none(), st.dictionaries(st.sampled_from(["n_chunks", "n_tokens", "n_sentences"]),
                                                      _JSON, max_size=3)),
    )
    def check(fields: dict, keep: bool, raw: bytes | None, progress: dict | None) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "s"
            shutil.copytree(base_store, path)
            manifest = json.loads((path / "manifest.json").read_text()) if keep else {}
            manifest.update(fields)
            (path / "manifest.json").write_text(json.dumps(manifest))
            if raw is not None:
                (path / "manifest.json").write_bytes(raw)
            if progress is not None:
                (path / "progress.json").write_text(json.dumps(progress))
            for allow_incomplete in (False, True):
                store = _loads_or_one_sentence(lambda a=allow_incomplete: open_store(path, allow_incomplete=a))
                if store is None:
                    continue
                for layer in store.layers:
                    data = _loads_or_one_sentence(lambda s=store, i=layer: s.layer(i))
                    if data is not None:
                        assert data.shape == (store.n_tokens, store.hidden_size)
                        # Whatever the manifest says, reads stay inside the store folder.
                        assert Path(data.filename).resolve().is_relative_to(path.resolve())
                _loads_or_one_sentence(store.tokens)

    check()
