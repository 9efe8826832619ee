"""Loaders for labelled classification tasks: SST-2, MRPC and generic labelled CSV/TSV files.

A task is read from a folder holding one file per split, or from comma-separated files; the split
of each file comes from a word in its name: ``train``, ``dev`` / ``valid`` / ``validation`` /
``val``, ``test`` (``msr_paraphrase_train.txt``, ``sst_dev.tsv``...). Train and test are
required. Without a validation file the regularisation strength is chosen by cross-validation
on the training split, except for MRPC, whose validation split is carved from its training file
with a seed (stratified), as the task has none.

Every error is an :class:`~isoscope.errors.InputError` in one sentence naming the file (and the
1-based line number for a malformed line).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from isoscope.errors import InputError
from isoscope.evaluate._loaders import _bad, _existing_file, _lines, read_text
from isoscope.evaluate._tasks import Classification, LabelledSplit

PathLike = str | os.PathLike[str]

#: Fraction of MRPC's training file held out as its validation split.
MRPC_VALIDATION_FRACTION = 0.1

_SPLIT_WORDS = {
    "train": ("train", "training"),
    "validation": ("dev", "valid", "validation", "val"),
    "test": ("test",),
}
_TEXT_NAMES = ("sentence", "text", "review", "content", "document", "utterance", "tweet")
_LABEL_NAMES = ("label", "labels", "class", "target", "category", "gold_label", "y")
_TEXT1_NAMES = ("sentence1", "sentence_1", "sentence_a", "text1", "text_a", "s1", "sent1",
                "question1", "premise", "#1 string")
_TEXT2_NAMES = ("sentence2", "sentence_2", "sentence_b", "text2", "text_b", "s2", "sent2",
                "question2", "hypothesis", "#2 string")
_POSITIVE = ("1", "true", "yes", "paraphrase", "positive", "entailment")
_TABLE_SUFFIXES = {".csv", ".tsv", ".tab", ".txt"}


# --------------------------------------------------------------------------------------- splits
def _split_of(path: Path) -> str | None:
    words = set(re.split(r"[^a-z0-9]+", path.stem.lower()))
    found = [name for name, keys in _SPLIT_WORDS.items() if words & set(keys)]
    return found[0] if len(found) == 1 else None


def split_files(path: PathLike, what: str) -> dict[str, Path]:
    """Find the train / validation / test files of a task.

    Parameters
    ----------
    path : path
        A folder holding one file per split, or comma-separated file paths; each file's split
        comes from a word in its name (``train``; ``dev``, ``valid``, ``validation``, ``val``;
        ``test``).
    what : str
        Task name used in error messages.

    Returns
    -------
    dict
        ``{"train": Path, "test": Path}`` plus ``"validation"`` when a file names it.
    """
    text = str(path)
    p = Path(text).expanduser()
    if "," in text and not p.exists():
        files = [Path(part.strip()).expanduser() for part in text.split(",") if part.strip()]
        for f in files:
            _existing_file(f, what)
    elif p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in _TABLE_SUFFIXES
                       and _split_of(f) is not None)
    elif p.is_file():
        raise InputError(
            f"{what} needs a training and a test split, but {p} is one file: give the folder "
            "holding train/dev/test files or comma-separated TRAIN,TEST[,DEV] files."
        )
    else:
        raise InputError(f"The {what} path {p} does not exist.")
    out: dict[str, Path] = {}
    for f in files:
        split = _split_of(f)
        if split is None:
            raise InputError(f"Cannot tell the split of {f}: its name should contain train, dev or test.")
        if split in out:
            raise InputError(f"Both {out[split].name} and {f.name} look like the {split} split of {what}.")
        out[split] = f
    for needed in ("train", "test"):
        if needed not in out:
            where = p if p.is_dir() else text
            raise InputError(f"No {needed} file for {what} in {where} (a file name must contain '{needed}').")
    return out


def carve_validation(split: LabelledSplit, fraction: float, seed: int) -> tuple[LabelledSplit, LabelledSplit]:
    """Hold out a seeded, stratified ``fraction`` of ``split`` as a validation split.

    Returns
    -------
    (LabelledSplit, LabelledSplit)
        The remaining training examples and the held-out validation examples.
    """
    from sklearn.model_selection import train_test_split

    if not 0.0 < fraction < 1.0:
        raise InputError(f"The validation fraction must lie strictly between 0 and 1, got {fraction}.")
    n = len(split)
    counts = Counter(split.labels)
    stratify = split.labels if min(counts.values()) >= 2 and len(counts) >= 2 else None
    try:
        tr, va = train_test_split(list(range(n)), test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError:
        raise InputError(
            f"The training split ({split.source}) has too few examples ({n}) to carve a validation split."
        ) from None
    tr, va = sorted(tr), sorted(va)

    def take(rows: list[int], source: str) -> LabelledSplit:
        t2 = None if split.texts2 is None else [split.texts2[i] for i in rows]
        return LabelledSplit([split.texts[i] for i in rows], [split.labels[i] for i in rows], t2, source)

    how = f"{fraction:g} of {split.source}, {'stratified, ' if stratify is not None else ''}seed {seed}"
    return take(tr, f"{split.source} minus validation ({how})"), take(va, how)


def _check_splits(task: str, train: LabelledSplit, validation: LabelledSplit | None, test: LabelledSplit) -> None:
    named = [("training", train), ("validation", validation), ("test", test)]
    for name, sp in named:
        if sp is not None and len(sp) == 0:
            raise InputError(f"The {name} split of {task} ({sp.source}) holds no examples.")
    classes = set(train.labels)
    if len(classes) < 2:
        raise InputError(
            f"The label column of the {task} training split ({train.source}) holds one class "
            f"({next(iter(classes))!r}); a classifier needs at least two."
        )
    for name, sp in named[1:]:
        if sp is None:
            continue
        unknown = sorted(set(sp.labels) - classes)
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise InputError(
                f"The {name} split of {task} ({sp.source}) has label(s) {shown} that the training "
                f"split never shows (it has {', '.join(repr(c) for c in sorted(classes))})."
            )


def _default_positive(classes: Sequence[str]) -> str | None:
    if len(classes) != 2:
        return None
    lower = {c.lower(): c for c in classes}
    hit = next((lower[w] for w in _POSITIVE if w in lower), None)
    return hit if hit is not None else sorted(classes)[-1]


def _finish(task: str, dataset: str, path: Path, train: LabelledSplit, validation: LabelledSplit | None,
            test: LabelledSplit, *, f1: bool, positive_label: str | None = None) -> Classification:
    _check_splits(task, train, validation, test)
    classes = sorted(set(train.labels))
    if positive_label is not None and positive_label not in classes:
        raise InputError(f"The positive label {positive_label!r} is not a label of the {task} training split.")
    positive = positive_label if positive_label is not None else _default_positive(classes)
    return Classification(task, dataset, train, test, path, validation, f1=f1, positive_label=positive)


# --------------------------------------------------------------------------------------- tables
def _read_rows(path: Path, delimiter: str | None, quoting: Literal[0, 1, 2, 3]) -> tuple[str, list[tuple[int, list[str]]]]:
    """Non-empty rows of a delimited file with their 1-based line numbers, and the delimiter used."""
    text = read_text(path)
    if delimiter is None:
        first = next((line for line in io.StringIO(text, newline="") if line.strip()), "")
        tabbed = path.suffix.lower() in {".tsv", ".tab"} or "\t" in first
        delimiter = "\t" if tabbed else ","
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    start = 1
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                rows.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _bad(path, reader.line_num, f"not a readable delimited row ({exc})") from None
    return delimiter, rows


def _column(header: list[str], given: str | None, names: Sequence[str], path: Path, what: str,
            option: str) -> int:
    lower = [h.strip().lower() for h in header]
    if given is not None:
        key = given.strip().lower()
        if key not in lower:
            raise InputError(f"{path} has no {what} column {given!r} (columns: {', '.join(header)}).")
        return lower.index(key)
    hit = next((lower.index(n) for n in names if n in lower), None)
    if hit is None:
        raise InputError(
            f"Cannot find the {what} column of {path} (columns: {', '.join(header)}); name it with {option}."
        )
    return hit


def _read_labelled(path: Path, split_name: str, text_cols: Sequence[str | None], label_col: str | None,
                   *, delimiter: str | None, quoting: Literal[0, 1, 2, 3], text_names: Sequence[Sequence[str]],
                   what: str) -> LabelledSplit:
    _, rows = _read_rows(path, delimiter, quoting)
    if not rows:
        raise InputError(f"The {split_name} file {path} of {what} is empty.")
    header_no, header = rows[0]
    single = len(text_cols) == 1
    option = "--text-column" if single else "--text-column A,B"
    idx = [_column(header, given, names, path, "text" if single else f"sentence {i + 1}", option)
           for i, (given, names) in enumerate(zip(text_cols, text_names, strict=True))]
    ilab = _column(header, label_col, _LABEL_NAMES, path, "label", "--label-column")
    need = max([*idx, ilab]) + 1
    texts: list[list[str]] = [[] for _ in idx]
    labels: list[str] = []
    for line_no, fields in rows[1:]:
        if len(fields) < need:
            raise _bad(path, line_no, f"expected at least {need} fields, found {len(fields)}")
        label = fields[ilab].strip()
        if not label:
            raise _bad(path, line_no, "the label is empty")
        labels.append(label)
        for t, i in zip(texts, idx, strict=True):
            t.append(fields[i].strip())
    return LabelledSplit(texts[0], labels, texts[1] if len(texts) > 1 else None, path.name)


# --------------------------------------------------------------------------------------- loaders
def load_sst2(path: PathLike) -> Classification:
    """Load SST-2 in the GLUE layout: ``train.tsv``, ``dev.tsv``, ``test.tsv``.

    Each file is tab-separated with quoting off and a header naming a ``sentence`` and a
    ``label`` column (0 = negative, 1 = positive). GLUE's own test split is unlabelled: use the
    GLUE dev set as the test file (as ``../shared/data/sst-2`` does). Without a dev file the
    regularisation strength is chosen by cross-validation on the training split.

    Parameters
    ----------
    path : path
        The folder, or comma-separated ``train.tsv,dev.tsv,test.tsv`` paths.

    Returns
    -------
    Classification
        ``task="sst2"``, accuracy only.
    """
    files = split_files(path, "SST-2")
    splits: dict[str, LabelledSplit] = {}
    for name, f in files.items():
        first = next((line for _, line in _lines(f) if line.strip()), None)
        if first is not None and "label" not in [h.strip().lower() for h in first.split("\t")]:
            raise InputError(
                f"The SST-2 {name} file {f} has no label column; GLUE's SST-2 test split is "
                "unlabelled, so use the GLUE dev set as the test file."
            )
        splits[name] = _read_labelled(f, name, [None], None, delimiter="\t", quoting=csv.QUOTE_NONE,
                                      text_names=[("sentence",)], what="SST-2")
    root = Path(str(path)) if Path(str(path)).is_dir() else files["train"].parent
    return _finish("sst2", "SST-2", root, splits["train"], splits.get("validation"), splits["test"], f1=False)


def _mrpc_split(path: Path) -> LabelledSplit:
    texts1: list[str] = []
    texts2: list[str] = []
    labels: list[str] = []
    for line_no, line in _lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if line_no == 1 and fields[0].strip().lower().lstrip("\ufeff") == "quality":
            continue  # the original distribution's header line
        if len(fields) < 5:
            raise _bad(path, line_no, f"expected 5 tab-separated fields, found {len(fields)}")
        label = fields[0].strip()
        if label not in ("0", "1"):
            raise _bad(path, line_no, f"the label {label!r} is not 0 or 1")
        labels.append(label)
        texts1.append(fields[3].strip())
        texts2.append(fields[4].strip())
    return LabelledSplit(texts1, labels, texts2, path.name)


def load_mrpc(path: PathLike, *, seed: int = 0, validation_fraction: float = MRPC_VALIDATION_FRACTION) -> Classification:
    """Load the Microsoft Research Paraphrase Corpus (``msr_paraphrase_{train,test}.txt``).

    Lines are ``label<TAB>id1<TAB>id2<TAB>sentence1<TAB>sentence2`` with quoting off; the
    original distribution's header line (``Quality  #1 ID ...``) is skipped where present. MRPC
    has no validation split: a stratified ``validation_fraction`` of the training file is held
    out with ``seed`` (a file named ``dev`` is used instead where given).

    Parameters
    ----------
    path : path
        The folder, or comma-separated train and test files.
    seed : int
        Seed of the validation hold-out.
    validation_fraction : float
        Share of the training file held out for choosing the regularisation strength.

    Returns
    -------
    Classification
        ``task="mrpc"``, pair features, accuracy and F1 of the paraphrase class (label 1).
    """
    files = split_files(path, "MRPC")
    splits = {name: _mrpc_split(f) for name, f in files.items()}
    train, validation = splits["train"], splits.get("validation")
    if validation is None and len(train) > 0:
        train, validation = carve_validation(train, validation_fraction, seed)
    root = Path(str(path)) if Path(str(path)).is_dir() else files["train"].parent
    return _finish("mrpc", "MRPC", root, train, validation, splits["test"], f1=True, positive_label="1")


def _dataset_name(path: PathLike, files: dict[str, Path]) -> tuple[Path, str]:
    p = Path(str(path)).expanduser()
    if p.is_dir():
        return p, p.name
    return files["train"].parent, files["train"].stem


def load_labelled(path: PathLike, *, text_column: str | None = None, label_column: str | None = None,
                  delimiter: str | None = None) -> Classification:
    """Load a generic single-sentence classification task from labelled CSV/TSV files.

    Each split file has a header; the text column is ``text_column`` (default: the first of
    ``sentence``, ``text``, ``review``, ``content``...) and the label column ``label_column``
    (default: ``label``, ``class``, ``target``...). Fields follow csv quoting rules.

    Parameters
    ----------
    path : path
        A folder with train/dev/test files, or comma-separated files.
    text_column, label_column : str, optional
        Column names (case-insensitive).
    delimiter : str, optional
        Field separator; default a tab for ``.tsv`` files or a tabbed header, else a comma.

    Returns
    -------
    Classification
        ``task="classify"``, accuracy only.
    """
    files = split_files(path, "the labelled task")
    splits = {name: _read_labelled(f, name, [text_column], label_column, delimiter=delimiter,
                                   quoting=csv.QUOTE_MINIMAL, text_names=[_TEXT_NAMES], what="the labelled task")
              for name, f in files.items()}
    root, dataset = _dataset_name(path, files)
    return _finish("classify", dataset, root, splits["train"], splits.get("validation"), splits["test"], f1=False)


def load_labelled_pairs(path: PathLike, *, text_columns: Sequence[str] | None = None,
                        label_column: str | None = None, delimiter: str | None = None,
                        positive_label: str | None = None) -> Classification:
    """Load a generic sentence-pair classification task (paraphrase, entailment...) from CSV/TSV.

    Each split file has a header; the two sentence columns are ``text_columns`` (default: the
    first of ``sentence1``/``sentence2``, ``sentence_A``/``sentence_B``, ``question1``/
    ``question2``, ``premise``/``hypothesis``...) and the label column ``label_column``.

    Parameters
    ----------
    path : path
        A folder with train/dev/test files, or comma-separated files.
    text_columns : (str, str), optional
        The two sentence columns.
    label_column : str, optional
        The label column.
    delimiter : str, optional
        Field separator (as for :func:`load_labelled`).
    positive_label : str, optional
        Positive class for F1 of a binary task; default ``1`` / ``true`` / ``yes`` /
        ``paraphrase`` / ``positive`` / ``entailment`` where present, else the last label in
        sorted order.

    Returns
    -------
    Classification
        ``task="classify-pairs"``, accuracy and F1 (binary: of the positive class; more classes:
        macro-averaged).
    """
    cols: list[str | None] = [None, None]
    if text_columns is not None:
        cols = list(text_columns)
        if len(cols) != 2:
            raise InputError(f"A pair task needs two text columns, got {len(cols)}.")
    files = split_files(path, "the labelled pair task")
    splits = {name: _read_labelled(f, name, cols, label_column, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL,
                                   text_names=[_TEXT1_NAMES, _TEXT2_NAMES], what="the labelled pair task")
              for name, f in files.items()}
    root, dataset = _dataset_name(path, files)
    return _finish("classify-pairs", dataset, root, splits["train"], splits.get("validation"), splits["test"],
                   f1=True, positive_label=positive_label)
