"""Loaders for the evaluation formats; a malformed line is reported with its file and line number.

Every loader reads a path the user gives and returns a :class:`SentencePairs`, :class:`WordPairs`
or :class:`Analogies`. Errors are :class:`~isoscope.errors.InputError` with one sentence naming the
file and the 1-based line number. A task file larger than :data:`MAX_TASK_BYTES` (256 MiB;
``$ISOSCOPE_MAX_TASK_BYTES`` overrides it) is refused before it is read.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from isoscope._validation import read_bounded
from isoscope.errors import InputError
from isoscope.evaluate._tasks import Analogies, SentencePairs, Task, WordPairs

PathLike = str | os.PathLike[str]

#: Task names accepted by :func:`load_task` (``--task NAME=PATH``) and the loader each uses.
TASK_KINDS = ("stsb", "sick", "sts", "pairs", "wordsim", "analogy", "sst2", "mrpc", "classify", "classify-pairs")
#: Task kinds scored by a logistic-regression probe (accuracy) rather than by cosine similarity.
CLASSIFICATION_KINDS = ("sst2", "mrpc", "classify", "classify-pairs")
_ALIASES = {
    "sts-b": "stsb", "sts_b": "stsb", "sickr": "sick", "sick-r": "sick",
    **{f"sts{y}": "sts" for y in (12, 13, 14, 15, 16)},
    "word-sim": "wordsim", "wordsimilarity": "wordsim", "simlex": "wordsim", "ws353": "wordsim",
    "google": "analogy", "analogies": "analogy", "csv": "pairs", "tsv": "pairs",
    "sst-2": "sst2", "sst": "sst2", "msrp": "mrpc", "labelled": "classify", "labeled": "classify",
    "classification": "classify", "labelled-pairs": "classify-pairs", "labeled-pairs": "classify-pairs",
    "pair-classify": "classify-pairs", "classify_pairs": "classify-pairs",
}


def _bad(path: Path, line_no: int, what: str) -> InputError:
    return InputError(f"Malformed line in {path} at line {line_no}: {what}.")


def _existing_file(path: PathLike, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"The {what} file {p} does not exist.")
    if not p.is_file():
        raise InputError(f"The {what} path {p} is not a file.")
    return p


#: Largest task file (bytes) a loader reads; ``$ISOSCOPE_MAX_TASK_BYTES`` overrides it.
MAX_TASK_BYTES = 256 * 2**20
MAX_TASK_BYTES_ENV = "ISOSCOPE_MAX_TASK_BYTES"


def read_text(path: Path) -> str:
    """A task file's text: bounded by :data:`MAX_TASK_BYTES`, undecodable bytes named by line."""
    raw = read_bounded(path, "task", default=MAX_TASK_BYTES, env=MAX_TASK_BYTES_ENV)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path} is not UTF-8 text ({exc.reason} at line {line}, byte {exc.start}).") from None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without its newline); undecodable bytes are an error."""
    for i, line in enumerate(io.StringIO(read_text(path), newline=""), start=1):
        yield i, line.rstrip("\r\n")


def _score(
    text: str, path: Path, line_no: int, what: str = "score",
    bounds: tuple[float, float] | None = None,
) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(path, line_no, f"the {what} {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise _bad(path, line_no, f"the {what} {text.strip()!r} is not finite")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise _bad(path, line_no, f"the {what} {value:g} is outside [{bounds[0]:g}, {bounds[1]:g}]")
    return value


def _finish_pairs(
    task: str, dataset: str, s1: list[str], s2: list[str], scores: list[float], path: Path, **kw: object
) -> SentencePairs:
    if not scores:
        raise InputError(f"{path} contains no sentence pairs.")
    return SentencePairs(task, dataset, s1, s2, np.asarray(scores, dtype=np.float64), path, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- STS-B
def load_stsb(path: PathLike) -> SentencePairs:
    """Load an STS Benchmark csv (``sts-train.csv``, ``sts-dev.csv``, ``sts-test.csv``).

    The files are tab-separated with quoting off: genre, file, year, id, score, sentence1,
    sentence2; some lines carry extra fields after sentence2 (sources), which are ignored.

    Parameters
    ----------
    path : path
        The csv file.

    Returns
    -------
    SentencePairs
        ``task="stsb"``, ``dataset`` = file stem, scores in [0, 5].
    """
    p = _existing_file(path, "STS-B")
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    for line_no, line in _lines(p):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 7:
            raise _bad(p, line_no, f"expected at least 7 tab-separated fields, found {len(fields)}")
        scores.append(_score(fields[4], p, line_no, bounds=(0.0, 5.0)))
        s1.append(fields[5])
        s2.append(fields[6])
    split = next((s for s in ("train", "dev", "test") if s in p.stem.lower()), None)
    return _finish_pairs("stsb", p.stem, s1, s2, scores, p, split=split)


# --------------------------------------------------------------------------------------- SICK
_SICK_COLUMNS = ("pair_ID", "sentence_A", "sentence_B", "relatedness_score")


def load_sick(path: PathLike, split: str | None = "test") -> SentencePairs:
    """Load SICK-R relatedness pairs.

    Two layouts are read: the full ``SICK.txt`` (header with a ``SemEval_set`` column holding
    TRAIN / TRIAL / TEST), and the SemEval-2014 files (``SICK_train.txt``, ``SICK_trial.txt``,
    ``SICK_test_annotated.txt``: pair_ID, sentence_A, sentence_B, relatedness_score,
    entailment_judgment), with or without their header line.

    Parameters
    ----------
    path : path
        The SICK file.
    split : {"test", "train", "trial"} or None
        For the full file, the ``SemEval_set`` rows to keep (None keeps all). Ignored for the
        per-split files, which hold one split each.

    Returns
    -------
    SentencePairs
        ``task="sick"``, scores in [1, 5].
    """
    p = _existing_file(path, "SICK")
    lines = [(n, line) for n, line in _lines(p) if line.strip()]
    if not lines:
        raise InputError(f"{p} contains no sentence pairs.")
    first = lines[0][1].split("\t")
    has_header = "sentence_A" in first or first[0].strip().lower() == "pair_id"
    if has_header:
        missing = [c for c in _SICK_COLUMNS if c not in first]
        if missing:
            raise _bad(p, lines[0][0], f"the header lacks the column(s) {', '.join(missing)}")
        col = {c: first.index(c) for c in _SICK_COLUMNS}
        set_col = first.index("SemEval_set") if "SemEval_set" in first else None
        body = lines[1:]
        n_fields = len(first)
    else:
        col = {c: i for i, c in enumerate(_SICK_COLUMNS)}
        set_col = None
        body = lines
        n_fields = 4
    want = None
    if set_col is not None and split is not None:
        want = split.strip().upper()
        if want not in {"TRAIN", "TRIAL", "TEST"}:
            raise InputError(f"The SICK split must be train, trial or test, got {split!r}.")
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    for line_no, line in body:
        fields = line.split("\t")
        if len(fields) < n_fields:
            raise _bad(p, line_no, f"expected {n_fields} tab-separated fields, found {len(fields)}")
        if want is not None and fields[set_col].strip().upper() != want:  # type: ignore[index]
            continue
        scores.append(_score(fields[col["relatedness_score"]], p, line_no, "relatedness score", bounds=(1.0, 5.0)))
        s1.append(fields[col["sentence_A"]])
        s2.append(fields[col["sentence_B"]])
    if not scores:
        raise InputError(f"{p} has no pairs in the SemEval_set {want}.")
    if set_col is not None:
        used_split = want.lower() if want else None
    else:
        used_split = next((s for s in ("train", "trial", "test") if s in p.stem.lower()), None)
    dataset = "SICK-R" + (f"-{used_split}" if used_split else "")
    return _finish_pairs("sick", dataset, s1, s2, scores, p, split=used_split)


# --------------------------------------------------------------------------------------- STS12-16
def _sts_files(path: Path) -> list[tuple[str, Path, Path]]:
    if path.is_file():
        m = re.fullmatch(r"STS\.input\.(.+)\.txt", path.name)
        if not m:
            raise InputError(f"{path} is not an STS.input.NAME.txt file of the SentEval layout.")
        inputs = [path]
    elif path.is_dir():
        inputs = sorted(path.glob("STS.input.*.txt"))
        if not inputs:
            raise InputError(f"The folder {path} holds no STS.input.*.txt files (SentEval layout).")
    else:
        raise InputError(f"The STS path {path} does not exist.")
    out = []
    for inp in inputs:
        name = inp.name[len("STS.input.") : -len(".txt")]
        gs = inp.with_name(f"STS.gs.{name}.txt")
        if not gs.is_file():
            raise InputError(f"The gold file {gs} for {inp.name} does not exist.")
        out.append((name, inp, gs))
    return out


def load_sts(path: PathLike) -> SentencePairs:
    """Load STS12-16 in the SentEval layout: ``STS.input.NAME.txt`` with ``STS.gs.NAME.txt``.

    Each input line holds two tab-separated sentences (extra fields, as in STS16, are ignored);
    the gold file holds one score per line, and an empty gold line drops its pair (as SentEval
    does). Pairs keep their sub-set name so per-sub-set and pooled scores can both be reported.

    Parameters
    ----------
    path : path
        A folder holding the files (e.g. ``STS12-en-test``) or one ``STS.input.NAME.txt``.

    Returns
    -------
    SentencePairs
        ``task="sts"``, ``subsets`` naming each pair's file, ``dataset`` the folder name.
    """
    p = Path(path).expanduser()
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    subsets: list[str] = []
    for name, inp, gs in _sts_files(p):
        pairs = list(_lines(inp))
        gold = list(_lines(gs))
        if pairs and not pairs[-1][1]:
            pairs.pop()
        while gold and len(gold) > len(pairs) and not gold[-1][1].strip():
            gold.pop()
        if len(pairs) != len(gold):
            raise InputError(
                f"{inp.name} has {len(pairs)} lines but {gs.name} has {len(gold)}; they must match."
            )
        for (line_no, line), (gold_no, g) in zip(pairs, gold, strict=True):
            if not g.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2:
                raise _bad(inp, line_no, f"expected 2 tab-separated sentences, found {len(fields)} field")
            scores.append(_score(g, gs, gold_no, bounds=(0.0, 5.0)))
            s1.append(fields[0])
            s2.append(fields[1])
            subsets.append(name)
    dataset = p.name if p.is_dir() else p.name[len("STS.input.") : -len(".txt")]
    return _finish_pairs("sts", dataset, s1, s2, scores, p, subsets=subsets)


# --------------------------------------------------------------------------------------- generic pairs
_S1_NAMES = ("sentence1", "sentence_1", "sentence_a", "sentence a", "text1", "text_a", "s1", "sent1")
_S2_NAMES = ("sentence2", "sentence_2", "sentence_b", "sentence b", "text2", "text_b", "s2", "sent2")
_SCORE_NAMES = ("score", "similarity", "label", "gold", "relatedness_score", "sim", "gold_score")


def load_pairs(path: PathLike, delimiter: str | None = None) -> SentencePairs:
    """Load a generic sentence-pair CSV/TSV: sentence1, sentence2, score.

    With a header, columns are found by name (``sentence1``/``sentence2``/``score`` and common
    variants such as ``sentence_A``, ``text1``, ``label``, ``similarity``); without one, the
    first three columns are sentence1, sentence2, score. Fields follow csv quoting rules.

    Parameters
    ----------
    path : path
        The file.
    delimiter : str, optional
        Field separator; by default a tab for ``.tsv``/``.tab`` files and when the first line
        holds a tab, else a comma.

    Returns
    -------
    SentencePairs
        ``task="pairs"``, ``dataset`` = file stem.
    """
    p = _existing_file(path, "sentence-pair")
    rows = [(n, line) for n, line in _lines(p) if line.strip()]
    if not rows:
        raise InputError(f"{p} contains no sentence pairs.")
    if delimiter is None:
        tabbed = p.suffix.lower() in {".tsv", ".tab"} or "\t" in rows[0][1]
        delimiter = "\t" if tabbed else ","
    parsed = []
    for line_no, line in rows:
        try:
            parsed.append((line_no, next(csv.reader([line], delimiter=delimiter))))
        except csv.Error as exc:
            raise _bad(p, line_no, f"not a readable {delimiter!r}-separated row ({exc})") from None
    header = [f.strip().lower() for f in parsed[0][1]]

    def find(names: tuple[str, ...]) -> int | None:
        return next((header.index(n) for n in names if n in header), None)

    i1, i2, isc = find(_S1_NAMES), find(_S2_NAMES), find(_SCORE_NAMES)
    if i1 is not None and i2 is not None and isc is not None:
        body = parsed[1:]
    else:
        try:
            float(parsed[0][1][2])
        except (IndexError, ValueError):
            raise _bad(
                p, parsed[0][0], "the header needs sentence1, sentence2 and score columns"
            ) from None
        i1, i2, isc = 0, 1, 2
        body = parsed
    need = max(i1, i2, isc) + 1
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    for line_no, fields in body:
        if len(fields) < need:
            raise _bad(p, line_no, f"expected at least {need} fields, found {len(fields)}")
        scores.append(_score(fields[isc], p, line_no))
        s1.append(fields[i1])
        s2.append(fields[i2])
    return _finish_pairs("pairs", p.stem, s1, s2, scores, p)


# --------------------------------------------------------------------------------------- word similarity
def load_word_similarity(path: PathLike) -> WordPairs:
    """Load word-similarity pairs: ``word1 word2 score`` per line.

    Reads whitespace-separated files (the eval-word-vectors ``EN-*.txt`` collection, MEN,
    RareWords) and gensim's commented TSV (``wordsim353.tsv``, ``simlex999.txt``): lines starting
    with ``#`` are comments. A tab-separated line splits on tabs only (words may then hold
    spaces); other lines split on whitespace. Extra columns after the score (RareWords' ten
    ratings) are ignored.

    Parameters
    ----------
    path : path
        The file.

    Returns
    -------
    WordPairs
        ``task="wordsim"``, ``dataset`` = file stem.
    """
    p = _existing_file(path, "word-similarity")
    w1: list[str] = []
    w2: list[str] = []
    scores: list[float] = []
    comments = 0
    for line_no, line in _lines(p):
        if line.startswith("#"):
            comments += 1
            continue
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        if len(fields) < 3 or not fields[0] or not fields[1]:
            raise _bad(p, line_no, f"expected 'word1 word2 score', found {len(fields)} field(s)")
        scores.append(_score(fields[2], p, line_no))
        w1.append(fields[0])
        w2.append(fields[1])
    if not scores:
        raise InputError(f"{p} contains no word pairs.")
    return WordPairs("wordsim", p.stem, w1, w2, np.asarray(scores, dtype=np.float64), p, comments)


# --------------------------------------------------------------------------------------- analogy
def load_analogies(path: PathLike) -> Analogies:
    """Load the Google analogy file: ``: section`` headers, then ``a b c d`` per line.

    Parameters
    ----------
    path : path
        The file (``questions-words.txt`` layout).

    Returns
    -------
    Analogies
        ``task="analogy"``, questions grouped by section in file order.
    """
    p = _existing_file(path, "analogy")
    sections: list[tuple[str, list[tuple[str, str, str, str]]]] = []
    for line_no, line in _lines(p):
        if line.startswith(":"):
            name = line[1:].strip()
            if not name:
                raise _bad(p, line_no, "a section header needs a name after ':'")
            sections.append((name, []))
            continue
        if not line.strip():
            continue
        words = line.split()
        if len(words) != 4:
            raise _bad(p, line_no, f"expected 4 words, found {len(words)}")
        if not sections:
            raise _bad(p, line_no, "a question comes before the first ': section' header")
        sections[-1][1].append((words[0], words[1], words[2], words[3]))
    if not any(q for _, q in sections):
        raise InputError(f"{p} contains no analogy questions.")
    return Analogies("analogy", p.stem, sections, p)


# --------------------------------------------------------------------------------------- dispatch
def task_kind(name: str) -> str:
    """Canonical task kind for a ``--task`` name (``stsb``, ``sick``, ``sts``, ``pairs``...)."""
    key = name.strip().lower()
    kind = _ALIASES.get(key, key)
    if kind not in TASK_KINDS:
        raise InputError(
            f"Unknown task {name!r}; use one of {', '.join(TASK_KINDS)} (e.g. --task stsb=PATH)."
        )
    return kind


def load_task(name: str, path: PathLike, **kwargs: object) -> Task:
    """Load a task by kind name (see :data:`TASK_KINDS`) from ``path``.

    Parameters
    ----------
    name : str
        ``stsb``, ``sick``, ``sts`` (also ``sts12``...``sts16``), ``pairs``, ``wordsim``,
        ``analogy``, or the classification tasks ``sst2``, ``mrpc``, ``classify`` (labelled
        CSV/TSV) and ``classify-pairs`` (labelled sentence-pair CSV/TSV).
    path : path
        File or folder to read (classification tasks: a folder of split files, or
        comma-separated files).
    **kwargs
        Passed to the loader (``split`` for SICK, ``delimiter`` for pairs, ``seed`` for MRPC,
        column names for the labelled tasks).

    Returns
    -------
    SentencePairs, WordPairs, Analogies or Classification
    """
    kind = task_kind(name)
    if kind in CLASSIFICATION_KINDS:
        from isoscope.evaluate._labelled import (
            load_labelled,
            load_labelled_pairs,
            load_mrpc,
            load_sst2,
        )

        classify: Any = {"sst2": load_sst2, "mrpc": load_mrpc, "classify": load_labelled,
                         "classify-pairs": load_labelled_pairs}[kind]
        loaded: Task = classify(path, **kwargs)
        return loaded
    loader: Any = {
        "stsb": load_stsb,
        "sick": load_sick,
        "sts": load_sts,
        "pairs": load_pairs,
        "wordsim": load_word_similarity,
        "analogy": load_analogies,
    }[kind]
    task: Task = loader(path, **kwargs)
    if kind == "sts" and name.strip().lower() != "sts":
        task.task = name.strip().lower()
    return task
