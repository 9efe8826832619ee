"""The main job as one pipeline: extract → analyze (with repairs) → evaluate → results → report.

``isoscope run``, ``isoscope findings`` and the Python API all go through these functions:

>>> from isoscope.pipeline import RunSettings, run
>>> out = run(RunSettings(model="minilm", transforms=["abtt"]), "runs/minilm")  # doctest: +SKIP
>>> out.results["layers"][-1]["s_inter"]                                         # doctest: +SKIP

Each step is public (:func:`extract_store`, :func:`measure`, :func:`evaluate_tasks`,
:func:`write_results`, :func:`draw_report`, and :func:`learning_inputs` for learned removal's
fit input), so a caller that caches steps (findings) runs exactly the code ``isoscope run``
runs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isoscope.errors import InputError

RESULTS = "results.json"
STORE = "store"

Log = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


@dataclass
class RunSettings:
    """Everything one run of the main job depends on (recorded under ``run`` in results.json).

    Attributes
    ----------
    model : str
        Short name, Hugging Face name or local folder.
    corpus : str
        Corpus spec (``ptb``, ``wikitext:PATH``, ``text:PATH``, ``jsonl:PATH``, ``hf:PATH``).
    split : str or None
        Split of an ``hf:`` corpus (None: ``train``).
    max_tokens : int or None
        Tokens to extract (whole sentences; None: all).
    dtype : {"float16", "float32"}
        Storage type of the hidden states.
    sample : int or None
        Seeded sample measured per layer (None: all tokens).
    seed : int
        Seed of every sample, k-means and fit (extraction does not use it).
    transforms : list of str
        Repair specs measured before/after and evaluated.
    layer : str
        Layer the repairs and evaluation use: ``last``, ``first`` or an index.
    transductive : bool
        Fit repairs on the measured data itself.
    drop_position_zero : bool
        Leave position 0 out (causal models without BOS).
    tasks : list of (name, path)
        Evaluation tasks (``isoscope evaluate`` names).
    fit_on : str or None
        Sentences the repairs are fitted on for evaluation (``corpus``, a file, or the task's
        training split by default).
    analysis : dict
        Further :class:`~isoscope.analysis.AnalysisSettings` overrides.
    """

    model: str = "minilm"
    corpus: str = "ptb"
    split: str | None = None
    max_tokens: int | None = 50_000
    dtype: str = "float16"
    sample: int | None = 10_000
    seed: int = 0
    transforms: list[str] = field(default_factory=list)
    layer: str = "last"
    transductive: bool = False
    drop_position_zero: bool = False
    tasks: list[tuple[str, str]] = field(default_factory=list)
    fit_on: str | None = None
    analysis: dict[str, Any] = field(default_factory=dict)

    def load_corpus(self) -> Any:
        """The run's corpus (:func:`isoscope.corpora.load_corpus` of ``corpus`` and ``split``)."""
        from isoscope.corpora import load_corpus

        return load_corpus(self.corpus, split=self.split)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tasks as ``NAME=PATH``)."""
        out = dataclasses.asdict(self)
        out["tasks"] = [f"{n}={p}" for n, p in self.tasks]
        return out


@dataclass
class RunOutput:
    """What :func:`run` produced: the results dictionary, the store, the written paths."""

    results: dict[str, Any]
    store: Any
    run_dir: Path
    report: Path | None = None
    artefacts: Path | None = None


def resolve_layer(spec: str | int, layers: Sequence[int]) -> int:
    """``last``, ``first``, a hidden-state index or a negative index into ``layers``."""
    text = str(spec).strip().lower()
    layers = list(layers)
    if text == "last":
        return layers[-1]
    if text == "first":
        return layers[0]
    try:
        value = int(text)
    except ValueError:
        raise InputError(
            f"--layer takes 'last', 'first' or a hidden-state index, got {spec!r}."
        ) from None
    if value < 0:
        if -value > len(layers):
            raise InputError(f"--layer {value} is out of range: the store has {len(layers)} layers.")
        return layers[value]
    if value not in layers:
        raise InputError(f"Layer {value} is not in the store (stored layers: {layers}).")
    return value


def extract_store(settings: RunSettings, folder: str | Path, *, progress: bool = False) -> Any:
    """Extract (or reuse, or resume) the store of ``settings`` in ``folder``."""
    from isoscope.extract import extract

    corpus = settings.corpus if settings.split is None else settings.load_corpus()
    return extract(settings.model, corpus, folder, max_tokens=settings.max_tokens,
                   dtype=settings.dtype, progress=progress)


def measure(
    store: Any,
    settings: RunSettings,
    *,
    fit_inputs: Mapping[str, Any] | None = None,
    progress: bool = False,
    layers: Sequence[int] | None = None,
) -> Any:
    """:func:`isoscope.analysis.analyze` of every layer with the run's repairs and settings."""
    from isoscope.analysis import analyze

    chosen = resolve_layer(settings.layer, store.layers)
    return analyze(
        store,
        layers,
        sample=settings.sample,
        seed=settings.seed,
        transforms=settings.transforms or None,
        transductive=settings.transductive,
        transform_layers=[chosen],
        fit_inputs=fit_inputs,
        drop_position_zero=settings.drop_position_zero,
        progress=progress,
        **settings.analysis,
    )


def evaluate_tasks(
    settings: RunSettings,
    store: Any,
    *,
    fit_on: Sequence[str] | None = None,
    progress: bool = False,
    log: Log = _quiet,
    **options: Any,
) -> dict[str, Any]:
    """Task scores before and after each repair (:func:`isoscope.evaluate.evaluate`).

    Parameters
    ----------
    settings : RunSettings
        Model, tasks, repairs, layer, fit mode and seed.
    store : EmbeddingStore
        The run's store (its layers resolve ``settings.layer``; a static table's store has
        one layer and is evaluated without one).
    fit_on : sequence of str, optional
        Sentences the repairs are fitted on inductively, in place of ``settings.fit_on`` (a
        caller that draws its own fit sample).
    progress : bool
        Progress bars while encoding.
    log : callable
        Receives one line per step.
    **options
        Further keyword arguments of :func:`isoscope.evaluate.evaluate` (``learn_on``,
        ``fit_vocab``, ...).

    Returns
    -------
    dict
        :meth:`isoscope.evaluate.EvaluationResults.to_dict` (``results`` and ``settings``).
    """
    from isoscope.evaluate import evaluate

    fit: Any = settings.fit_on if fit_on is None else list(fit_on)
    if fit_on is None and settings.fit_on == "corpus":
        fit = settings.load_corpus().sentences[: int(store.manifest.get("n_sentences") or 0)]
    static = getattr(store, "model_type", None) == "static"
    return evaluate(
        settings.model,
        settings.tasks,
        transforms=["none", *settings.transforms],
        layer=None if static else resolve_layer(settings.layer, store.layers),
        drop_position_zero=settings.drop_position_zero,
        transductive=settings.transductive,
        fit_on=fit,
        seed=settings.seed,
        progress=progress,
        log=log,
        **options,
    ).to_dict()


def learning_inputs(
    model: str,
    layer: int,
    learn_on: Sequence[str | Path],
    exclude: Sequence[str | Path] = (),
    *,
    drop_position_zero: bool = False,
) -> dict[str, Any]:
    """Learned removal's fit input for :func:`measure`: training word pairs as vectors.

    Each word of the pairs is encoded alone and mean-pooled at hidden state ``layer``
    (special tokens excluded), the token space that :func:`measure` repairs; a static table
    gives its rows. Pairs are read and filtered by :func:`isoscope.evaluate.learning_pairs`
    and looked up by :func:`isoscope.evaluate.learning_pair_vectors` (case-insensitively), as
    ``isoscope evaluate`` does for token-level fits.

    Parameters
    ----------
    model : str
        Short name, Hugging Face name, local folder or static table.
    layer : int
        Hidden-state index (ignored for a static table).
    learn_on : sequence of path
        Word-similarity files that train learned removal.
    exclude : sequence of path
        Word-similarity files evaluated elsewhere: they may not train, and their pairs are
        dropped from the training pairs.
    drop_position_zero : bool
        Leave position 0 out of pooling (causal models without BOS).

    Returns
    -------
    dict
        ``{"pairs": (A, B, y)}`` for ``fit_inputs``.
    """
    from isoscope.evaluate import (
        Pooling,
        encoded_words,
        learning_pair_vectors,
        learning_pairs,
        load_word_similarity,
        static_table,
    )
    from isoscope.models import is_static, load_encoder, load_static

    pairs = learning_pairs(list(learn_on), [load_word_similarity(p) for p in exclude])
    if is_static(model):
        table = static_table(load_static(model))
    else:
        words = list(dict.fromkeys([*pairs["word1"], *pairs["word2"]]))
        pool = Pooling("mean", (int(layer),), False, bool(drop_position_zero))
        table = encoded_words(load_encoder(model), words, pool)
    return {"pairs": learning_pair_vectors(table, pairs)}


def write_results(results: Mapping[str, Any], run_dir: str | Path) -> Path:
    """Write ``results.json`` in ``run_dir`` atomically."""
    from isoscope._jsonio import clean_json, write_json

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return write_json(run_dir / RESULTS, clean_json(results))


def draw_report(result: Any, results: Mapping[str, Any], run_dir: str | Path, store: Any, *,
                words: Sequence[str] | None = None) -> Path:
    """Save the report's artefacts once, then draw ``report.html`` and ``figures/`` from them.

    Parameters
    ----------
    result : AnalysisResult
        The analysis (its sample rows and fitted repairs are what the repair views show).
    results : mapping
        What was written to ``results.json``.
    run_dir : path
    store : EmbeddingStore
        Read only here, by :func:`isoscope.artefacts.compute_artefacts`; the drawing code never
        reads it, so ``isoscope report`` redraws the same page without it.
    words : sequence of str, optional
        Words followed across layers.
    """
    from isoscope.artefacts import compute_artefacts
    from isoscope.report import write_report

    art = compute_artefacts(result, store, run_dir, words=list(words) if words else None)
    return write_report(results, Path(run_dir), art, formats=("png", "svg"))


def run(
    settings: RunSettings,
    run_dir: str | Path,
    *,
    progress: bool = False,
    log: Log = _quiet,
    report: bool = True,
    words: Sequence[str] | None = None,
) -> RunOutput:
    """Extract (or reuse) a store, analyse every layer, measure repairs, evaluate, report.

    Parameters
    ----------
    settings : RunSettings
    run_dir : path
        Folder for ``store/``, ``results.json``, ``report.html`` and ``figures/``.
    progress : bool
        Progress bars.
    log : callable
        Receives one line per step.
    report : bool
        Draw the report.
    words : sequence of str, optional
        Words followed across layers in the report.

    Returns
    -------
    RunOutput
    """
    from isoscope._runlock import RunLock

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # A second run into the same folder would rewrite results.json and the report under us.
    with RunLock(run_dir):
        return _run_locked(settings, run_dir, progress=progress, log=log, report=report,
                           words=words)


def _run_locked(settings: RunSettings, run_dir: Path, *, progress: bool, log: Log, report: bool,
                words: Sequence[str] | None) -> RunOutput:
    t0 = time.perf_counter()
    log(f"· {settings.model}: extracting up to {settings.max_tokens or 'all'} tokens of "
        f"{settings.corpus} into {run_dir / STORE}")
    store = extract_store(settings, run_dir / STORE, progress=progress)
    t_extract = time.perf_counter() - t0
    log(f"  {store.n_tokens} tokens, layers {store.layers[0]}–{store.layers[-1]}, width "
        f"{store.hidden_size} ({t_extract:.0f} s)")
    chosen = resolve_layer(settings.layer, store.layers)
    what = f" and {len(settings.transforms)} repair(s) on layer {chosen}" if settings.transforms else ""
    log(f"· measuring {len(store.layers)} layers on a sample of {settings.sample or 'all'} tokens "
        f"(seed {settings.seed}){what}")
    t1 = time.perf_counter()
    result = measure(store, settings, progress=progress)
    results = result.to_dict()
    log(f"  done ({time.perf_counter() - t1:.0f} s)")
    if settings.tasks:
        log(f"· evaluating on {', '.join(n for n, _ in settings.tasks)} with repairs: none"
            + "".join(f", {t}" for t in settings.transforms))
        t2 = time.perf_counter()
        ev = evaluate_tasks(settings, store, progress=progress, log=log)
        results["evaluation"] = ev["results"]
        results["evaluation_settings"] = ev["settings"]
        log(f"  done ({time.perf_counter() - t2:.0f} s)")
    results["run"] = {"command": "isoscope run", **settings.to_dict(), "layer": chosen,
                      "store": str(run_dir / STORE)}
    results.setdefault("timings", {})["run_total_s"] = round(time.perf_counter() - t0, 3)
    write_results(results, run_dir)
    path = None
    if report:
        log("· drawing figures and writing the report")
        path = draw_report(result, results, run_dir, store, words=words)
    return RunOutput(results, store, run_dir, path, artefacts=run_dir / "artefacts")
