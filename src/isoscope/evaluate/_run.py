"""Evaluate a model on sentence and word tasks before and after each isotropy repair.

Fitting rules (every result row records them):

- ``fit="inductive"`` (default): the repair is fitted on data other than the evaluation data.
  Sentence tasks: the ``fit_on`` sentences; without ``fit_on``, STS-B uses the ``sts-train.csv``
  beside the evaluated file and the full SICK file its TRAIN rows (the per-split SICK files use
  ``SICK_train.txt`` beside them); other sentence tasks then need ``fit_on`` or
  ``transductive=True`` and say so. Sentence-level and token-level repairs are fitted on every
  sentence of the fit set, duplicates kept, as the papers and BERT-whitening's code do
  (``fit_dedupe=True``: the distinct sentences only). Word tasks: the vocabulary instead of the
  test words: every row of a static table (Mu & Viswanath's whole vocabulary; ``fit_vocab=N``:
  the first N rows, the most frequent words), the whole input embedding matrix, every word type
  of a store, or the ``fit_vocab`` (default 50,000) most frequent English words (``wordfreq``)
  encoded alone.
- ``fit="transductive"``: fitted on the evaluation sentences (or the task's words) themselves,
  as several papers did; it looks better and is always labelled.
- Extra fit inputs follow each repair's registry entry (:func:`isoscope.transforms.repair_for`):
  ``learned`` removal requires word pairs and learns its weights on pairs from
  ``learn_on`` files, which must not be evaluated in the same call; training pairs that also
  occur in an evaluated word task are dropped and counted.
- ``level="sentence"`` repairs pooled sentence vectors (as whitening is used);
  ``level="token"`` repairs token vectors before pooling, with special tokens dropped from both
  fitting and pooling (as Rajaee & Pilehvar applied the cluster-based method).
- Classification tasks (SST-2, MRPC, labelled CSV/TSV) are scored by a logistic-regression probe
  on frozen (optionally repaired) sentence vectors, SentEval style (:mod:`._probe`). Every repair
  is fitted on the task's training split only (``fit_on`` and ``transductive`` do not apply);
  the validation and test sentences are only transformed.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isoscope._jsonio import clean_json, write_json
from isoscope._validation import parse_name_path
from isoscope.errors import InputError
from isoscope.evaluate._encode import (
    EmbeddingCache,
    Pooling,
    TokenVectors,
    _cache_for,
    encode_sentences,
    encoder_identity,
    pool_tokens,
    resolve_pooling,
    token_vectors,
)
from isoscope.evaluate._loaders import (
    CLASSIFICATION_KINDS,
    load_pairs,
    load_sick,
    load_stsb,
    load_task,
    load_word_similarity,
    task_kind,
)
from isoscope.evaluate._probe import DEFAULT_CS, DEFAULT_CV_FOLDS, pair_features, probe
from isoscope.evaluate._scoring import (
    DEFAULT_RESTRICT_VOCAB,
    correlations,
    row_cosines,
    score_word_pairs,
    solve_analogies,
    vocabulary_index,
)
from isoscope.evaluate._tasks import (
    Analogies,
    Classification,
    LabelledSplit,
    SentencePairs,
    Task,
    WordPairs,
)
from isoscope.evaluate._words import (
    WordTable,
    encoded_words,
    input_embedding_words,
    static_table,
    store_words,
)

LEVELS = ("sentence", "token")
WORD_SOURCES = ("alone", "input")
_RESULT_KEYS = ("task", "dataset", "transform", "fit", "spearman", "pearson", "n", "oov")
_MAX_FIT_SENTENCES = 20_000
_MAX_FIT_TOKENS = 100_000
#: Frequent English words encoded alone for a contextual model's word-level fits, where
#: ``fit_vocab`` is None: such a model has no vocabulary of word vectors to fit on.
_ALONE_FIT_WORDS = 50_000
_WORD_RE = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]")


# --------------------------------------------------------------------------------------- results
@dataclass
class EvaluationResults:
    """Scores of every (task, repair) pair.

    Attributes
    ----------
    records : list of dict
        One row per task (per STS sub-set and aggregate) and repair, with at least the keys
        ``task, dataset, transform, fit, metric, spearman, pearson, n, oov`` (Spearman and
        Pearson x 100; ``fit`` is ``"inductive"``, ``"transductive"`` or None for ``none``;
        ``metric`` names the table's value: ``"spearman"`` or ``"accuracy"``) plus
        ``column, subset, aggregate, level, pooling, layers, special_tokens, fit_on, fit_n,
        accuracy, word_vectors, model``. Classification rows add ``f1`` (paraphrase tasks,
        else None), ``n_train, n_validation, n_test``, ``C``, ``selection``,
        ``validation_accuracy``, ``classes``, ``features`` and ``train_sample``.
    settings : dict
        Model, pooling, layers, level, fit mode, seed, vocabulary restriction.
    """

    records: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> Any:
        """All records as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.records)

    def table(self) -> Any:
        """Rows: repairs; columns: tasks; Spearman x 100 (analogy, classification: accuracy x 100).

        STS12-16 columns hold the pooled "all" score (all sub-sets' pairs in one correlation);
        a classification task with F1 (MRPC) gets a second column ``"<task> F1"``.
        """
        import pandas as pd

        rows = [r for r in self.records if r.get("in_table", True)]
        transforms = list(dict.fromkeys(r["transform"] for r in rows))
        columns = list(dict.fromkeys(
            c for r in rows for c in (r["column"], f"{r['column']} F1" if r.get("f1") is not None else None)
            if c is not None))
        data = {c: [math.nan] * len(transforms) for c in columns}
        for r in rows:
            value = r["accuracy"] if r.get("accuracy") is not None else r["spearman"]
            data[r["column"]][transforms.index(r["transform"])] = (
                math.nan if value is None else float(value)
            )
            if r.get("f1") is not None:
                data[f"{r['column']} F1"][transforms.index(r["transform"])] = float(r["f1"])
        return pd.DataFrame(data, index=pd.Index(transforms, name="transform"))

    def format_table(self, digits: int = 2) -> str:
        """The :meth:`table` as aligned text."""
        tab = self.table()
        cols = [str(c) for c in tab.columns]
        head = ["transform", *cols]
        body = [
            [str(idx), *("-" if math.isnan(v) else f"{v:.{digits}f}" for v in row)]
            for idx, row in zip(tab.index, tab.to_numpy(), strict=True)
        ]
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(r, widths, strict=True)))
                 for r in [head, *body]]
        note = "Spearman x 100 of cosine vs gold (analogy columns: accuracy x 100)"
        if any(r.get("task") in CLASSIFICATION_KINDS for r in self.records):
            note += "; classification columns: probe test accuracy x 100 (F1 x 100 where named)"
        return "\n".join([note, *lines])

    def __str__(self) -> str:
        return self.format_table()

    def to_dict(self) -> dict[str, Any]:
        """``{"settings": ..., "results": [...]}``, JSON-ready (NaN becomes None)."""
        results = [
            {k: clean_json(v) for k, v in r.items() if k != "in_table"} for r in self.records
        ]
        return {"settings": clean_json(self.settings), "results": results}

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` to ``path`` (atomically)."""
        p = Path(path)
        if p.is_dir():
            raise InputError(f"--out {p} is a folder; give a file name such as {p / 'eval.json'}.")
        p.parent.mkdir(parents=True, exist_ok=True)
        return write_json(p, self.to_dict())


# --------------------------------------------------------------------------------------- helpers
def parse_transforms(specs: str | Iterable[str] | None) -> list[str]:
    """Split ``"none,abtt,cluster:n_clusters=27,n_components=12"`` into repair specs.

    A comma-separated item holding ``=`` but no ``:`` continues the parameters of the
    previous spec. ``none`` (no repair) is always first.
    """
    if specs is None:
        return ["none"]
    items = [specs] if isinstance(specs, str) else list(specs)
    out: list[str] = []
    for item in items:
        for part in (p.strip() for p in item.split(",")):
            if not part:
                continue
            if "=" in part and ":" not in part and out:
                out[-1] = out[-1] + ("," if ":" in out[-1] else ":") + part
            else:
                out.append(part)
    out = list(dict.fromkeys(out))
    if "none" in out:
        out.remove("none")
    return ["none", *out]


#: Extra fit inputs (see :func:`isoscope.transforms.repair_for`) that evaluate can supply.
_SUPPLIED_INPUTS = ("pairs", "sample_weight")


def _check_specs(specs: Sequence[str]) -> None:
    """Build every spec once and check that evaluate can supply its required fit inputs."""
    from isoscope.transforms import from_spec, repair_for

    for spec in specs:
        from_spec(spec)
        entry = repair_for(spec)
        for name in entry.fit_inputs:
            if name not in _SUPPLIED_INPUTS:
                raise InputError(
                    f"evaluate cannot supply the fit input {name!r} that the repair {spec!r} "
                    f"needs; fit it with isoscope.transforms.fit_repair instead."
                )


def _distinct(sentences: Sequence[str], dedupe: bool) -> list[str]:
    """The fit sentences: every one as given (duplicates kept), or the distinct ones."""
    return list(dict.fromkeys(sentences)) if dedupe else list(sentences)


def _zipf_weights(words: Sequence[str]) -> np.ndarray:
    from wordfreq import zipf_frequency

    z = np.array([zipf_frequency(w, "en") for w in words], dtype=np.float64)
    return np.where(z > 0, 10.0 ** (z - 9.0), 0.0)


def _weights_fn(words: list[str] | None) -> Callable[[], np.ndarray | None] | None:
    """Deferred Zipf weights (wordfreq look-ups are only paid when Zipfian whitening needs them).

    The function returns None (fit unweighted) when wordfreq knows none of the words.
    """
    if words is None:
        return None

    def weights() -> np.ndarray | None:
        w = _zipf_weights(words)
        return w if w.sum() > 0 else None

    return weights


def _take_sentences(tv: TokenVectors, index: np.ndarray) -> TokenVectors:
    """The token vectors of sentences ``index`` of ``tv`` (repeats allowed), in that order."""
    index = np.asarray(index, dtype=np.int64)
    lengths = np.diff(tv.offsets)[index]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    rows = np.repeat(tv.offsets[:-1][index] - offsets[:-1], lengths) + np.arange(offsets[-1])
    return TokenVectors(tv.vectors[rows], offsets, tv.special[rows])


def _distinct_index(sentences: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Distinct sentences in first-seen order, and each input sentence's row among them."""
    pos: dict[str, int] = {}
    inverse = np.fromiter((pos.setdefault(s, len(pos)) for s in sentences), dtype=np.int64,
                          count=len(sentences))
    return list(pos), inverse


def _sample_rows(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _read_fit_sentences(path: str | os.PathLike[str], dedupe: bool = False) -> tuple[list[str], str]:
    """Sentences to fit on: an STS-B / SICK / pair file, or plain text (one sentence a line).

    Every sentence is kept, duplicates included (as the papers fit), unless ``dedupe``.
    """
    text = str(path)
    if "=" in text and not Path(text).exists():
        kind, _, rest = text.partition("=")
        task = load_task(kind, rest)
        if isinstance(task, Classification):
            return _distinct(task.train.sentences, dedupe), f"{task.task}:{Path(rest).name} (training split)"
        if not isinstance(task, SentencePairs):
            raise InputError(f"--fit-on needs sentences, but {rest} is a {task.task} file.")
        return _distinct(task.sentences, dedupe), f"{task.task}:{Path(rest).name}"
    p = Path(text).expanduser()
    if not p.is_file():
        raise InputError(f"The --fit-on file {p} does not exist.")
    # A full SICK file passed as fit data contributes its TRAIN rows, never its TEST rows.
    loaders: tuple[Callable[[Path], SentencePairs], ...] = (
        load_stsb, lambda q: load_sick(q, split="train"), load_pairs)
    for loader in loaders:
        try:
            task = loader(p)
        except InputError:
            continue
        split = f" ({task.split} split)" if task.split else ""
        return _distinct(task.sentences, dedupe), f"{task.task}:{p.name}{split}"
    with open(p, encoding="utf-8", errors="replace") as fh:
        sentences = _distinct([line.strip() for line in fh if line.strip()], dedupe)
    if not sentences:
        raise InputError(f"The --fit-on file {p} holds no sentences.")
    return sentences, f"text:{p.name}"


def _default_fit_sentences(task: SentencePairs, dedupe: bool = False) -> tuple[list[str], str]:
    path = Path(task.path)
    if task.task == "stsb":
        train = path.with_name("sts-train.csv")
        if train.is_file() and train.resolve() != path.resolve():
            t = load_stsb(train)
            return _distinct(t.sentences, dedupe), f"stsb:{train.name} (STS-B train split)"
    if task.task == "sick":
        try:
            t = load_sick(path, split="train")
            if t.split == "train" and path.is_file() and task.split != "train":
                full = "SemEval_set" in path.read_text(encoding="utf-8").split("\n", 1)[0]
                if full:
                    return _distinct(t.sentences, dedupe), f"sick:{path.name} TRAIN rows"
        except InputError:
            pass
        train = path.with_name("SICK_train.txt")
        if train.is_file() and train.resolve() != path.resolve():
            t = load_sick(train)
            return _distinct(t.sentences, dedupe), f"sick:{train.name}"
    raise InputError(
        f"Inductive fitting for {task.task} ({path.name}) needs --fit-on PATH with other "
        "sentences, or --transductive to fit on the evaluation sentences."
    )


def _static_tokens(table: WordTable, sentences: Sequence[str]) -> TokenVectors:
    """Bag-of-words 'tokens' for a static table: lower-cased words found in the table.

    A sentence with no known word gets one zero row flagged special (its cosine is then 0).
    """
    index: dict[str, int] = {}
    for i, w in enumerate(table.words):
        index.setdefault(w.lower(), i)
    rows: list[int] = []
    special: list[bool] = []
    offsets = [0]
    zero = len(table.words)
    for s in sentences:
        ids = [index[t] for t in _WORD_RE.findall(s.lower()) if t in index]
        if not ids:
            ids, flags = [zero], [True]
        else:
            flags = [False] * len(ids)
        rows.extend(ids)
        special.extend(flags)
        offsets.append(len(rows))
    V = np.vstack([np.asarray(table.vectors, dtype=np.float32),
                   np.zeros((1, table.vectors.shape[1]), np.float32)])
    return TokenVectors(V[np.asarray(rows)], np.asarray(offsets, np.int64), np.asarray(special, bool))


# --------------------------------------------------------------------------------------- model
class _Model:
    """A uniform view of an encoder or a static table for the evaluation loop."""

    def __init__(self, model: Any, *, cache: EmbeddingCache | None, batch_size: int, progress: bool):
        self.cache = cache
        self.batch_size = batch_size
        self.progress = progress
        if isinstance(model, (str, os.PathLike)):
            model = _load_model(model)
        self.obj = model
        self.is_static = hasattr(model, "vectors") and hasattr(model, "words") and not hasattr(model, "encode")
        if not self.is_static and not hasattr(model, "encode"):
            raise InputError(f"Cannot evaluate {type(model).__name__}: it is neither an encoder nor a word table.")
        self.name = str(getattr(model, "name", type(model).__name__))
        self._table = static_table(model) if self.is_static else None
        self.n_layers = 1 if self.is_static else int(model.n_layers)

    def pooling(self, pooling: str, layer: Any, include_special: bool | None, drop_zero: bool) -> Pooling:
        if self.is_static:
            if pooling not in ("mean",) or layer is not None:
                raise InputError("A static word table is evaluated on sentences by the mean of its word vectors; drop --pooling/--layer.")
            return Pooling("mean", (0,), False)
        return resolve_pooling(pooling, layer, n_layers=self.n_layers, include_special=include_special,
                               drop_position_zero=drop_zero)

    def tokens(self, sentences: Sequence[str], pooling: Pooling) -> TokenVectors:
        distinct, inverse = _distinct_index(sentences)
        if len(distinct) < len(sentences):  # encode each sentence once, repeat its rows
            return _take_sentences(self.tokens(distinct, pooling), inverse)
        if self._table is not None:
            return _static_tokens(self._table, sentences)
        return token_vectors(self.obj, sentences, pooling, cache=self.cache or False,
                             batch_size=self.batch_size, progress=self.progress)

    def sentence_vectors(self, sentences: Sequence[str], pooling: Pooling) -> np.ndarray:
        distinct, inverse = _distinct_index(sentences)
        if len(distinct) < len(sentences):  # encode each sentence once, repeat its vector
            return self.sentence_vectors(distinct, pooling)[inverse]
        if self._table is not None:
            return pool_tokens(_static_tokens(self._table, sentences), pooling)
        return encode_sentences(self.obj, sentences, pooling, cache=self.cache or False,
                                batch_size=self.batch_size, progress=self.progress)


def _load_model(name: str | os.PathLike[str]) -> Any:
    from isoscope.models import load_encoder, load_static
    from isoscope.models.registry import BUNDLED

    text = str(name)
    info = BUNDLED.get(text)
    if (info is not None and info.kind == "static") or Path(text).suffix.lower() in {".txt", ".vec", ".bin", ".npy", ".gz"}:
        return load_static(text)
    return load_encoder(text)


# --------------------------------------------------------------------------------------- evaluate
def evaluate(
    model: Any,
    tasks: Mapping[str, str | os.PathLike[str]] | Sequence[tuple[str, Any] | Task],
    *,
    transforms: str | Sequence[str] | None = ("none",),
    pooling: str = "mean",
    layer: int | Sequence[int] | None = None,
    include_special: bool | None = None,
    drop_position_zero: bool = False,
    level: str = "sentence",
    fit_on: str | os.PathLike[str] | Sequence[str] | None = None,
    transductive: bool = False,
    word_vectors: str | os.PathLike[str] | Any = "alone",
    learn_on: Sequence[str | os.PathLike[str]] | None = None,
    restrict_vocab: int | None = DEFAULT_RESTRICT_VOCAB,
    case_insensitive: bool = True,
    fit_vocab: int | None = None,
    fit_dedupe: bool = False,
    text_column: str | Sequence[str] | None = None,
    label_column: str | None = None,
    probe_cs: Sequence[float] = DEFAULT_CS,
    cv_folds: int = DEFAULT_CV_FOLDS,
    max_train: int | None = None,
    cache: bool | str | os.PathLike[str] | EmbeddingCache | None = True,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> EvaluationResults:
    """Score a model on STS / SICK-R / word-similarity / analogy tasks, before and after repairs.

    Parameters
    ----------
    model : str, encoder or static table
        Short name, HF name or local folder (via :func:`isoscope.models.load_encoder`), a static
        table name or file (``glove-50d``, ``.txt``/``.bin``/``.npy``), or a loaded object.
    tasks : mapping or sequence
        ``{"stsb": path, ...}``, ``[("wordsim", path), ...]`` or loaded task objects
        (see :func:`load_task` for the names; ``sst2``, ``mrpc``, ``classify`` and
        ``classify-pairs`` are scored by the logistic-regression probe of :func:`probe`).
    transforms : str or sequence of str
        Repair specs for :func:`isoscope.transforms.from_spec`; ``none`` is always included.
    pooling, layer, include_special, drop_position_zero
        Sentence pooling (see :func:`encode_sentences`); ``drop_position_zero`` also keeps
        position-0 tokens out of token-level fits.
    level : {"sentence", "token"}
        Repair pooled sentence vectors, or token vectors before pooling (specials dropped).
    fit_on : path or list of str, optional
        Sentences for inductive fitting (STS-B/SICK/pair file, ``kind=path``, plain text,
        or a list of sentences).
    transductive : bool
        Fit on the evaluation data itself (labelled ``"transductive"``).
    word_vectors : {"alone", "input"}, store path or store
        Word vectors of a contextual model for word tasks (ignored for static tables).
    learn_on : sequence of path, optional
        Word-similarity files that train ``learned`` removal; must not be evaluated here.
    restrict_vocab, case_insensitive
        gensim's vocabulary restriction and case folding for word tasks.
    fit_vocab : int, optional
        Vocabulary for inductive word-level fits: a static table's first ``fit_vocab`` rows
        (default None: every row, the whole vocabulary, as Mu & Viswanath fit ABTT; an int is
        isoscope's earlier variant, 50,000 before), or the ``fit_vocab`` most frequent English
        words encoded alone for a contextual model (default None: 50,000).
    fit_dedupe : bool
        Fit sentence- and token-level repairs on the distinct fit sentences only. The default
        (False) fits on every sentence of the fit set, duplicates kept, as the papers and
        BERT-whitening's code do; True is isoscope's earlier variant.
    text_column, label_column : str, optional
        Column names for the labelled CSV/TSV tasks (``classify``: one text column;
        ``classify-pairs``: two, as a sequence or ``"A,B"``); found by common names otherwise.
    probe_cs : sequence of float
        Inverse regularisation strengths tried by the classification probe (SentEval's grid).
    cv_folds : int
        Cross-validation folds choosing ``C`` where a classification task has no validation split.
    max_train : int, optional
        Use a seeded random sample of at most this many training examples per classification
        task (recorded in ``train_sample``); validation and test splits are never sampled.
    cache : bool, path or EmbeddingCache
        Embedding cache (default ``$ISOSCOPE_CACHE/evaluate``); False disables it.
    batch_size : int
        Sentences per forward pass.
    seed : int
        Seed for fit samples, seeded repairs (cluster), MRPC's validation hold-out, the probe's
        cross-validation folds and ``max_train`` sampling.
    progress : bool
        Progress bars while encoding.
    log : callable, optional
        Receives one line per step (the CLI prints them to stderr).

    Returns
    -------
    EvaluationResults
        ``.table()`` (repairs x tasks, Spearman or accuracy x 100), ``.records``, ``.to_json(path)``.
    """
    say = log or (lambda _m: None)
    if level not in LEVELS:
        raise InputError(f"The level must be 'sentence' or 'token', got {level!r}.")
    specs = parse_transforms(transforms)
    _check_specs(specs[1:])  # every spec and its fit inputs, before any encoding
    if fit_vocab is not None and (isinstance(fit_vocab, bool) or not isinstance(fit_vocab, int)
                                  or fit_vocab < 1):
        raise InputError(f"fit_vocab must be a positive integer or None (every word), got {fit_vocab!r}.")
    if max_train is not None and max_train < 2:
        raise InputError(f"max_train must be at least 2, got {max_train}.")
    if cv_folds < 2:
        raise InputError(f"cv_folds must be at least 2, got {cv_folds}.")
    loaded = _load_tasks(tasks, seed=seed, text_column=text_column, label_column=label_column)
    if not loaded:
        raise InputError("Give at least one task, e.g. --task stsb=PATH.")
    store_cache = _cache_for(cache)
    m = _Model(model, cache=store_cache, batch_size=batch_size, progress=progress)
    pool = m.pooling(pooling, layer, include_special, drop_position_zero)
    if level == "token" and pool.name == "cls":
        raise InputError("Token-level repairs drop special tokens, so they cannot use cls pooling.")
    fit_mode = "transductive" if transductive else "inductive"

    from isoscope.transforms import required_inputs

    needs_pairs = any("pairs" in required_inputs(s) for s in specs)
    learn_pairs = learning_pairs(learn_on, loaded) if needs_pairs else None
    word_tasks = [t for t in loaded if isinstance(t, (WordPairs, Analogies))]
    ctx = _Context(m, pool, level, fit_mode, specs, seed, say, restrict_vocab, case_insensitive,
                   fit_vocab, word_vectors, learn_pairs, word_tasks,
                   probe_cs=tuple(probe_cs), cv_folds=cv_folds, max_train=max_train,
                   fit_dedupe=bool(fit_dedupe))
    fit_sentences = None
    if fit_on is not None and not transductive:
        if isinstance(fit_on, (str, os.PathLike)):
            fit_sentences = _read_fit_sentences(fit_on, dedupe=fit_dedupe)
        else:
            fit_sentences = (_distinct(fit_on, fit_dedupe), f"{len(fit_on)} given sentences")

    records: list[dict[str, Any]] = []
    for task in loaded:
        say(f"evaluating {task.task}:{task.dataset} ({len(task)} items)")
        if isinstance(task, SentencePairs):
            records.extend(ctx.sentence_task(task, fit_sentences))
        elif isinstance(task, WordPairs):
            records.extend(ctx.word_task(task))
        elif isinstance(task, Classification):
            records.extend(ctx.classification_task(task))
        else:
            records.extend(ctx.analogy_task(task))
    for r in records:
        r.setdefault("metric", "accuracy" if r.get("accuracy") is not None else "spearman")
    settings = {
        **(encoder_identity(m.obj) if not m.is_static else {"model": m.name, "model_type": "static"}),
        **pool.describe(),
        "level": level,
        "fit": fit_mode,
        "fit_on": (fit_sentences[1] if fit_sentences is not None
                   else "the evaluation data" if transductive
                   else "per-task default (see each result's fit_on)"),
        "transforms": specs,
        "fit_sentences": ("distinct fit sentences (fit_dedupe)" if fit_dedupe
                          else "every fit sentence, duplicates kept"),
        "fit_vocab": "every word of the vocabulary" if fit_vocab is None else fit_vocab,
        "seed": seed,
        "restrict_vocab": restrict_vocab,
        "case_insensitive": case_insensitive,
        "word_vectors": None if m.is_static else str(word_vectors),
        "learn_on": None if learn_pairs is None else learn_pairs["source"],
        "sts_aggregate": "column = pooled 'all' (every sub-set's pairs in one correlation)",
    }
    if any(isinstance(t, Classification) for t in loaded):
        settings["probe"] = {
            "classifier": "sklearn LogisticRegression (L2, lbfgs, unscaled features)",
            "C_grid": sorted(float(c) for c in probe_cs),
            "selection": "accuracy on the validation split, else stratified k-fold CV on train; ties to smaller C",
            "cv_folds": cv_folds,
            "pair_features": "[u, v, |u - v|, u * v]",
            "repairs_fitted_on": "the training split only",
            "max_train": max_train,
        }
    return EvaluationResults(records, settings)


def _classification_kwargs(kind: str, seed: int, text_column: str | Sequence[str] | None,
                           label_column: str | None) -> dict[str, Any]:
    if kind == "mrpc":
        return {"seed": seed}
    if kind == "classify":
        if text_column is not None and not isinstance(text_column, str):
            raise InputError("A single-sentence labelled task takes one text column.")
        return {"text_column": text_column, "label_column": label_column}
    if kind == "classify-pairs":
        cols = text_column.split(",") if isinstance(text_column, str) else text_column
        return {"text_columns": None if cols is None else [c.strip() for c in cols], "label_column": label_column}
    return {}


def _load_tasks(tasks: Any, *, seed: int = 0, text_column: str | Sequence[str] | None = None,
                label_column: str | None = None) -> list[Task]:
    items = list(tasks.items()) if isinstance(tasks, Mapping) else list(tasks)
    out: list[Task] = []
    for item in items:
        if isinstance(item, (SentencePairs, WordPairs, Analogies, Classification)):
            out.append(item)
            continue
        if isinstance(item, str):
            item = parse_name_path(item, what="A task is given as")
        name, path = item
        kind = task_kind(str(name))
        out.append(load_task(str(name), path, **_classification_kwargs(kind, seed, text_column, label_column)))
    return out


def _pair_key(a: str, b: str) -> tuple[str, str]:
    x, y = a.lower(), b.lower()
    return (x, y) if x <= y else (y, x)


def learning_pairs(
    learn_on: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    tasks: Sequence[Task],
) -> dict[str, Any]:
    """Learned removal's training pairs: word-similarity pairs that are not being evaluated.

    Parameters
    ----------
    learn_on : path or sequence of paths
        Word-similarity files (as :func:`load_word_similarity` reads them).
    tasks : sequence of task objects
        The tasks evaluated beside: none of their files may be in ``learn_on``, and every
        training pair that also occurs in one of their :class:`WordPairs` (in either order,
        case-insensitively) is dropped.

    Returns
    -------
    dict
        ``word1``, ``word2`` (lists of str), ``scores`` (each file's scores rescaled to
        [0, 1]), ``dropped`` (pairs left out) and ``source`` (the files, as str).

    Raises
    ------
    InputError
        No file is given, a file is also evaluated, or fewer than 3 pairs remain.
    """
    if not learn_on:
        raise InputError(
            "Learned removal needs --learn-on PATH: word-similarity pairs that are not being evaluated."
        )
    paths = [learn_on] if isinstance(learn_on, (str, os.PathLike)) else list(learn_on)
    evaluated = {Path(t.path).resolve() for t in tasks}
    eval_keys = {_pair_key(a, b) for t in tasks if isinstance(t, WordPairs) for a, b in zip(t.word1, t.word2, strict=True)}
    w1: list[str] = []
    w2: list[str] = []
    s: list[float] = []
    dropped = 0
    for p in paths:
        if Path(p).resolve() in evaluated:
            raise InputError(f"{p} is evaluated in this run, so it cannot also train learned removal.")
        wp = load_word_similarity(p)
        lo, hi = float(wp.scores.min()), float(wp.scores.max())
        span = hi - lo if hi > lo else 1.0
        for a, b, g in zip(wp.word1, wp.word2, wp.scores, strict=True):
            if _pair_key(a, b) in eval_keys:
                dropped += 1
                continue
            w1.append(a)
            w2.append(b)
            s.append((float(g) - lo) / span)  # files use different scales; rescale each to [0, 1]
    if len(s) < 3:
        raise InputError("Fewer than 3 learned-removal training pairs remain after dropping evaluated pairs.")
    source = [str(p) for p in paths]
    return {"word1": w1, "word2": w2, "scores": np.asarray(s), "dropped": dropped, "source": source}


def learning_pair_vectors(
    table: WordTable, pairs: Mapping[str, Any], *, case_insensitive: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Learned removal's ``pairs`` fit input: the training pairs that have a row in ``table``.

    Parameters
    ----------
    table : WordTable
        Word vectors (static rows, or words encoded by the model).
    pairs : mapping
        From :func:`learning_pairs` (``word1``, ``word2``, ``scores``).
    case_insensitive : bool
        Look words up as gensim does with ``case_insensitive=True`` (first row of a case wins).

    Returns
    -------
    A, B : ndarray of shape (n, d)
        Vectors of the first and second word of each kept pair (float64).
    y : ndarray of shape (n,)
        Their similarity scores.

    Raises
    ------
    InputError
        Fewer than 3 pairs have vectors for both words.
    """
    index = vocabulary_index(table.words, restrict_vocab=None, case_insensitive=case_insensitive)
    key = (lambda w: w.upper()) if case_insensitive else (lambda w: w)
    rows: list[tuple[int, int, float]] = []
    for a, b, g in zip(pairs["word1"], pairs["word2"], pairs["scores"], strict=True):
        ia, ib = index.get(key(a)), index.get(key(b))
        if ia is not None and ib is not None:
            rows.append((ia, ib, float(g)))
    if len(rows) < 3:
        raise InputError("Fewer than 3 learned-removal training pairs have vectors for this model.")
    V = np.asarray(table.vectors, dtype=np.float64)
    A = V[[r[0] for r in rows]]
    B = V[[r[1] for r in rows]]
    return A, B, np.array([r[2] for r in rows], dtype=np.float64)


@dataclass
class _Context:
    m: _Model
    pool: Pooling
    level: str
    fit_mode: str
    specs: list[str]
    seed: int
    say: Callable[[str], None]
    restrict_vocab: int | None
    case_insensitive: bool
    fit_vocab: int | None
    word_source: Any
    learn_pairs: dict[str, Any] | None
    word_tasks: Sequence[Task]
    probe_cs: tuple[float, ...] = DEFAULT_CS
    cv_folds: int = DEFAULT_CV_FOLDS
    max_train: int | None = None
    fit_dedupe: bool = False
    _fitted: dict[tuple[str, str], Any] = field(default_factory=dict)
    _tables: dict[str, WordTable] = field(default_factory=dict)

    # ------------------------------------------------------------------ common
    def _base_record(self, task: Task, spec: str) -> dict[str, Any]:
        return {
            "task": task.task,
            "dataset": task.dataset,
            "transform": spec,
            "fit": None if spec == "none" else self.fit_mode,
            "level": self.level,
            **self.pool.describe(),
            "model": self.m.name,
        }

    def _repair_tokens(
        self, spec: str, desc: str, tv: TokenVectors, fit_tv: TokenVectors, fit_rows: np.ndarray,
        pool: Pooling, tok_pool: Pooling,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fit a repair on ``fit_tv``'s chosen token rows, apply it to ``tv``'s non-special tokens
        and pool; returns the pooled vectors and the (sampled) fit matrix."""
        if pool.drop_position_zero:
            fit_rows = fit_rows & ~fit_tv.position_zero()
        Xall = fit_tv.vectors[fit_rows]
        X = Xall[_sample_rows(len(Xall), _MAX_FIT_TOKENS, self.seed)]
        est = self._fit(spec, desc + " tokens", X, pairs=self._token_level_pairs)
        keep = ~tv.special
        new = tv.vectors.copy()
        new[keep] = est.transform(tv.vectors[keep])
        return pool_tokens(TokenVectors(new, tv.offsets, tv.special), tok_pool), X

    def _fit(self, spec: str, key: str, X: np.ndarray, *, weights: Callable[[], np.ndarray | None] | None = None,
             pairs: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None) -> Any:
        """Fit ``spec`` on X once per fit-data key (fits are shared between tasks).

        The extra fit inputs come from the registry entry of the spec: only the inputs it
        declares are computed (``pairs``: learned-removal training pairs, ``sample_weight``:
        word frequencies) and :func:`~isoscope.transforms.fit_repair` refuses a missing one.
        """
        from isoscope.transforms import fit_repair, repair_for

        cache_key = (spec, key)
        if cache_key in self._fitted:
            return self._fitted[cache_key]
        providers: dict[str, Callable[[], Any] | None] = {"pairs": pairs, "sample_weight": weights}
        inputs = {}
        for name in repair_for(spec).inputs:
            provide = providers.get(name)
            if provide is not None:
                inputs[name] = provide()
        self.say(f"  fitting {spec} on {key} ({X.shape[0]} vectors)")
        est = fit_repair(spec, X, inputs, random_state=self.seed)
        self._fitted[cache_key] = est
        return est

    def _learned_word_pairs(self, table_fn: Callable[[list[str]], WordTable]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lp = self.learn_pairs
        assert lp is not None
        table = table_fn(list(dict.fromkeys([*lp["word1"], *lp["word2"]])))
        return learning_pair_vectors(table, lp, case_insensitive=self.case_insensitive)

    # ------------------------------------------------------------------ sentences
    def _sentence_level_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Learned-removal training pairs, each word pooled as a one-word sentence."""

        def table(ws: list[str]) -> WordTable:
            return WordTable(ws, self.m.sentence_vectors(ws, self.pool), "words as sentences")

        return self._learned_word_pairs(table)

    def _token_level_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Learned-removal training pairs in token space: each word encoded alone."""
        if self.m.is_static:
            return self._learned_word_pairs(self._word_table_for_learning)
        return self._learned_word_pairs(lambda ws: self._contextual_words(ws, "alone"))

    def sentence_task(self, task: SentencePairs, fit_sentences: tuple[list[str], str] | None) -> list[dict[str, Any]]:
        m, pool = self.m, self.pool
        records: list[dict[str, Any]] = []
        eval_sents = list(dict.fromkeys(task.sentences))
        pos = {s: i for i, s in enumerate(eval_sents)}
        i1 = np.array([pos[s] for s in task.sentences1])
        i2 = np.array([pos[s] for s in task.sentences2])
        # Transductive fits use every evaluation sentence (duplicates kept unless fit_dedupe).
        fit_idx = np.arange(len(eval_sents)) if self.fit_dedupe else np.concatenate([i1, i2])
        fit_src: tuple[list[str], str] | None = None
        if any(s != "none" for s in self.specs):
            if self.fit_mode == "transductive":
                fit_src = ([eval_sents[i] for i in fit_idx], f"{task.task}:{task.dataset} (evaluation sentences)")
            else:
                fit_src = fit_sentences or _default_fit_sentences(task, dedupe=self.fit_dedupe)
                rows = _sample_rows(len(fit_src[0]), _MAX_FIT_SENTENCES, self.seed)
                fit_src = ([fit_src[0][i] for i in rows], fit_src[1])

        if self.level == "sentence":
            E = m.sentence_vectors(eval_sents, pool)
        else:
            tv = m.tokens(eval_sents, pool)
            tok_pool = Pooling(pool.name, pool.layers, False, pool.drop_position_zero)
        for spec in self.specs:
            rec_base = self._base_record(task, spec)
            if spec == "none":
                out = E if self.level == "sentence" else pool_tokens(tv, tok_pool)
                fit_n, fit_desc = 0, None
            else:
                assert fit_src is not None
                sents, desc = fit_src
                if self.level == "sentence":
                    X = E[fit_idx] if self.fit_mode == "transductive" else m.sentence_vectors(sents, pool)
                    est = self._fit(spec, desc, X, pairs=self._sentence_level_pairs)
                    out = est.transform(E)
                else:
                    ftv = _take_sentences(tv, fit_idx) if self.fit_mode == "transductive" else m.tokens(sents, pool)
                    out, X = self._repair_tokens(spec, desc, tv, ftv, ~ftv.special, pool, tok_pool)
                fit_n, fit_desc = int(X.shape[0]), desc
            sims = row_cosines(out[i1], out[i2])
            column = f"{task.task}:{task.dataset}"
            extra = {"fit_on": fit_desc, "fit_n": fit_n, "oov": 0, "accuracy": None,
                     "special_tokens": "excluded" if self.level == "token" else pool.special_tokens}
            if task.subsets is None:
                rho, r = correlations(sims, task.scores)
                records.append({**rec_base, "column": column, "subset": None, "aggregate": None,
                                "spearman": rho, "pearson": r, "n": len(task), **extra})
                continue
            subsets = np.asarray(task.subsets)
            sub_scores = []
            for name in dict.fromkeys(task.subsets):
                sel = subsets == name
                rho, r = correlations(sims[sel], task.scores[sel])
                sub_scores.append((rho, r, int(sel.sum())))
                records.append({**rec_base, "column": f"{column}/{name}", "subset": name,
                                "aggregate": None, "spearman": rho, "pearson": r,
                                "n": int(sel.sum()), "in_table": False, **extra})
            rho, r = correlations(sims, task.scores)
            records.append({**rec_base, "column": f"{column} (all)", "subset": None,
                            "aggregate": "all (pooled pairs)", "spearman": rho, "pearson": r,
                            "n": len(task), **extra})
            records.append({**rec_base, "column": f"{column} (mean)", "subset": None,
                            "aggregate": "mean of sub-sets", "spearman": float(np.mean([s[0] for s in sub_scores])),
                            "pearson": float(np.mean([s[1] for s in sub_scores])), "n": len(task),
                            "in_table": False, **extra})
        return records

    # ------------------------------------------------------------------ classification
    def classification_task(self, task: Classification) -> list[dict[str, Any]]:
        """Probe accuracy before and after each repair; repairs are fitted on the training split."""
        m, pool = self.m, self.pool
        train = task.train
        sample = None
        if self.max_train is not None and len(train) > self.max_train:
            rows = _sample_rows(len(train), self.max_train, self.seed)
            train = LabelledSplit([train.texts[i] for i in rows], [train.labels[i] for i in rows],
                                  None if train.texts2 is None else [train.texts2[i] for i in rows],
                                  train.source)
            if len(set(train.labels)) < 2:
                raise InputError(f"The {self.max_train} sampled training examples of {task.task} hold one class.")
            sample = f"{len(train)} of {len(task.train)} training examples (seed {self.seed})"
        splits = {"train": train, "test": task.test}
        if task.validation is not None:
            splits["validation"] = task.validation
        sents = list(dict.fromkeys(s for sp in splits.values() for s in sp.sentences))
        pos = {s: i for i, s in enumerate(sents)}
        index = {name: (np.array([pos[s] for s in sp.texts], dtype=np.int64),
                        None if sp.texts2 is None else np.array([pos[s] for s in sp.texts2], dtype=np.int64))
                 for name, sp in splits.items()}
        # Every training sentence occurrence (duplicates kept), or the distinct ones (fit_dedupe).
        train_rows = np.concatenate([i for i in index["train"] if i is not None])
        if self.fit_dedupe:
            train_rows = np.unique(train_rows)
        desc = f"{task.task}:{task.dataset} training split ({train.source})"
        if self.fit_mode == "transductive" and any(s != "none" for s in self.specs):
            self.say(f"  {task.task}: repairs are fitted on the training split (--transductive does not apply)")

        if self.level == "sentence":
            E = m.sentence_vectors(sents, pool)
        else:
            tv = m.tokens(sents, pool)
            tok_pool = Pooling(pool.name, pool.layers, False, pool.drop_position_zero)
        records: list[dict[str, Any]] = []
        for spec in self.specs:
            if spec == "none":
                out = E if self.level == "sentence" else pool_tokens(tv, tok_pool)
                fit_n, fit_desc = 0, None
            else:
                if self.level == "sentence":
                    X = E[train_rows[_sample_rows(len(train_rows), _MAX_FIT_SENTENCES, self.seed)]]
                    est = self._fit(spec, desc, X, pairs=self._sentence_level_pairs)
                    out = est.transform(E)
                else:
                    ftv = _take_sentences(tv, train_rows)
                    out, X = self._repair_tokens(spec, desc, tv, ftv, ~ftv.special, pool, tok_pool)
                fit_n, fit_desc = int(X.shape[0]), desc
            out = np.asarray(out, dtype=np.float64)

            def feats(name: str, out: np.ndarray = out) -> np.ndarray:
                i1, i2 = index[name]
                return out[i1] if i2 is None else pair_features(out[i1], out[i2])

            val = splits.get("validation")
            score = probe(feats("train"), train.labels, feats("test"), task.test.labels,
                          None if val is None else feats("validation"), None if val is None else val.labels,
                          Cs=self.probe_cs, cv=self.cv_folds, f1=task.f1,
                          positive_label=task.positive_label, seed=self.seed)
            records.append({
                **self._base_record(task, spec),
                "fit": None if spec == "none" else "inductive",
                "column": f"{task.task}:{task.dataset}", "subset": None, "aggregate": None,
                "metric": "accuracy", "accuracy": score.accuracy, "f1": score.f1,
                "f1_of": (None if not task.f1 else f"label {task.positive_label!r}"
                          if len(score.classes) == 2 else "macro average"),
                "spearman": None, "pearson": None, "n": score.n_test, "oov": 0,
                "n_train": score.n_train, "n_validation": score.n_validation, "n_test": score.n_test,
                "train_sample": sample, "validation_source": None if val is None else val.source,
                "selection": score.selection, "C": score.C, "validation_accuracy": score.validation_accuracy,
                "validation_by_C": {f"{c:g}": v for c, v in score.validation_by_C.items()},
                "converged": score.converged, "classes": score.classes,
                "features": "[u, v, |u - v|, u * v]" if task.is_pair else "u",
                "fit_on": fit_desc, "fit_n": fit_n,
                "special_tokens": "excluded" if self.level == "token" else pool.special_tokens,
            })
        return records

    # ------------------------------------------------------------------ words
    def _contextual_words(self, words: list[str], source: Any) -> WordTable:
        m = self.m
        if source == "alone":
            return encoded_words(m.obj, words, self.pool, cache=m.cache or False, batch_size=m.batch_size)
        if source == "input":
            return input_embedding_words(m.obj, words)
        layer = self.pool.layers[-1]
        return store_words(source, words, layer)

    def _word_table(self, words: list[str]) -> WordTable:
        """Vectors for ``words`` (static: the full table, in row order)."""
        if self.m.is_static:
            return static_table(self.m.obj)
        return self._contextual_words(words, self.word_source)

    def _word_fit_data(self, table: WordTable) -> tuple[np.ndarray, list[str] | None, str]:
        """Inductive fit data for word-level repairs: the vocabulary, not the test words."""
        if self.m.is_static:
            if self.fit_vocab is None:
                n = len(table.words)
                return np.asarray(table.vectors), table.words, f"all {n} words of {self.m.name}"
            n = min(self.fit_vocab, len(table.words))
            words = table.words[:n]
            return np.asarray(table.vectors[:n]), words, f"first {n} words of {self.m.name}"
        src = self.word_source
        if src == "input":
            weight = self.m.obj.model.get_input_embeddings().weight.detach().float().cpu().numpy()
            return weight, None, "the whole input embedding matrix"
        if src == "alone":
            from wordfreq import top_n_list

            n_words = _ALONE_FIT_WORDS if self.fit_vocab is None else self.fit_vocab
            words = [w for w in top_n_list("en", n_words) if w.isalpha()]
            t = self._contextual_words(words, "alone")
            return t.vectors, t.words, f"{len(words)} most frequent English words (wordfreq), each encoded alone"
        from isoscope.store import open_store

        store = open_store(src) if isinstance(src, (str, os.PathLike)) else src
        X, frame = store.word_vectors(self.pool.layers[-1], pooling="mean")
        return np.asarray(X), None, f"every word occurrence in the store {store.path}"

    def _repaired_tables(self, task: WordPairs | Analogies, table: WordTable, rows: np.ndarray) -> list[tuple[str, np.ndarray, str | None, int]]:
        """For each spec, the (repaired) vectors of ``rows`` of ``table``, fit description, fit n."""
        out: list[tuple[str, np.ndarray, str | None, int]] = []
        fit_data: tuple[np.ndarray, list[str] | None, str] | None = None
        fit_words: list[str] | None
        for spec in self.specs:
            V = np.asarray(table.vectors[rows], dtype=np.float32)
            if spec == "none":
                out.append((spec, V, None, 0))
                continue
            if self.fit_mode == "transductive":
                words = [table.words[i] for i in rows]
                X, fit_words, desc = V, words, f"{task.task}:{task.dataset} words"
            else:
                if fit_data is None:
                    fit_data = self._word_fit_data(table)
                X, fit_words, desc = fit_data
            est = self._fit(spec, desc, np.asarray(X, dtype=np.float32), pairs=self._word_level_pairs,
                            weights=_weights_fn(fit_words))
            out.append((spec, est.transform(V), desc, int(np.asarray(X).shape[0])))
        return out

    def _word_level_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Learned-removal training pairs in the word-vector space being evaluated."""
        return self._learned_word_pairs(self._word_table_for_learning)

    def _word_table_for_learning(self, words: list[str]) -> WordTable:
        if self.m.is_static:
            full = static_table(self.m.obj)
            n = len(full.words) if self.restrict_vocab is None else min(self.restrict_vocab, len(full.words))
            return WordTable(full.words[:n], full.vectors[:n], full.source)
        return self._contextual_words(words, self.word_source)

    def word_task(self, task: WordPairs) -> list[dict[str, Any]]:
        table = self._word_table(task.words)
        restrict = self.restrict_vocab if self.m.is_static else None
        index = vocabulary_index(table.words, restrict_vocab=restrict, case_insensitive=self.case_insensitive)
        key = (lambda w: w.upper()) if self.case_insensitive else (lambda w: w)
        needed = sorted({index[key(w)] for w in task.words if key(w) in index})
        if not needed:
            raise InputError(f"No word of {task.path} has a vector in {table.source}.")
        rows = np.asarray(needed)
        sub_words = [table.words[i] for i in rows]
        records = []
        for spec, V, desc, fit_n in self._repaired_tables(task, table, rows):
            score = score_word_pairs(sub_words, V, task.word1, task.word2, task.scores,
                                     restrict_vocab=None, case_insensitive=self.case_insensitive)
            records.append({**self._base_record(task, spec), "column": f"{task.task}:{task.dataset}",
                            "subset": None, "aggregate": None, "spearman": score.spearman,
                            "pearson": score.pearson, "n": score.n, "oov": score.oov,
                            "oov_ratio": score.oov_ratio, "accuracy": None, "fit_on": desc,
                            "fit_n": fit_n, "word_vectors": table.source,
                            "special_tokens": "excluded" if not self.m.is_static else None})
        return records

    def analogy_task(self, task: Analogies) -> list[dict[str, Any]]:
        if self.m.is_static:
            table = static_table(self.m.obj)
            n = len(table.words) if self.restrict_vocab is None else min(self.restrict_vocab, len(table.words))
        else:
            # A contextual model has no vocabulary to search: candidates are the task's words.
            table = self._word_table(task.words)
            n = len(table.words)
        rows = np.arange(n)
        records = []
        for spec, V, desc, fit_n in self._repaired_tables(task, table, rows):
            res = solve_analogies(table.words[:n], V, task.sections, restrict_vocab=None,
                                  case_insensitive=self.case_insensitive)
            records.append({**self._base_record(task, spec), "column": f"{task.task}:{task.dataset}",
                            "subset": None, "aggregate": None, "spearman": None, "pearson": None,
                            "accuracy": 100.0 * res.accuracy, "n": res.n, "oov": res.oov,
                            "sections": res.sections, "fit_on": desc, "fit_n": fit_n,
                            "word_vectors": table.source,
                            "candidates": f"first {n} words" if self.m.is_static else "the task's words"})
        return records
