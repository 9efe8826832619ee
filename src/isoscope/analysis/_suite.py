"""The per-layer measurement: :func:`analyze` and :func:`measure_vectors`."""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isoscope.analysis._results import AnalysisResult
from isoscope.analysis._settings import AnalysisSettings, derived_seeds
from isoscope.analysis._source import (
    Source,
    exact_partition,
    layer_pass,
    sample_rows,
)
from isoscope.errors import InputError
from isoscope.measures import LayerData, measure_layer
from isoscope.metrics._neighbors import count_duplicates
from isoscope.metrics.streaming import StreamingMoments


@dataclass
class WordContext:
    """Rows chosen once for the word-type and sentence measures, shared by every layer."""

    intra_rows: np.ndarray | None = None
    intra_keys: np.ndarray | None = None
    sentence_rows: np.ndarray | None = None
    sentence_ids: np.ndarray | None = None
    sample_freq: np.ndarray | None = None
    #: Position in its sentence of each sample row (stores only).
    sample_positions: np.ndarray | None = None
    #: ``row_info(rows)``: token strings and positions of row ids (stores only).
    row_info: Any = None


def _row_info(tok: Any) -> Any:
    """``rows -> {"token": ..., "position": ...}`` over a store's token table."""
    token = tok["token"].astype(str).to_numpy()
    position = tok["position"].to_numpy()

    def info(rows: np.ndarray) -> dict[str, np.ndarray]:
        r = np.asarray(rows, dtype=np.int64)
        return {"token": token[r], "position": position[r]}

    return info


@dataclass
class Prepared:
    """A source with its settings, layers, candidate rows, sample and word context."""

    src: Source
    settings: AnalysisSettings
    layers: list[int]
    candidates: np.ndarray
    sample_rows: np.ndarray
    words: WordContext
    seeds: dict[str, int] = field(default_factory=dict)
    #: A distributed engine (``layer_pass`` and ``exact_knn`` methods); None: this process.
    engine: Any = None
    #: I(V) keys per layer computed before the layers are measured (a sketch store's
    #: ``exact_partition``: :func:`~isoscope.analysis._second_pass.second_pass_partition`).
    partition: dict[int, dict[str, float]] | None = None

    def recorded_settings(self) -> dict[str, Any]:
        """Settings as written to results.json, with the sizes and derived seeds."""
        out = self.settings.to_dict()
        out["n_candidates"] = int(self.candidates.size)
        sk = self.src.sketch
        if sk is not None:
            # "all tokens" of a sketch store: every selected token of the corpus, from the
            # accumulators; the stored sample's candidates are what the sample is drawn from.
            out["n_sample_candidates"] = out["n_candidates"]
            out["n_candidates"] = sk.n_candidates(bool(self.settings.include_special),
                                                  bool(self.settings.drop_position_zero))
        out["n_sampled"] = int(self.sample_rows.size)
        out["seeds"] = {"sample": int(self.settings.seed), **self.seeds,
                        "how": "sample: default_rng(seed); others: SeedSequence(seed).spawn"}
        return out


def _word_context(src: Source, cand: np.ndarray, rows: np.ndarray, s: AnalysisSettings,
                  seeds: Mapping[str, int]) -> WordContext:
    from isoscope.metrics.cosine import select_groups

    ctx = WordContext()
    if not src.has_words:
        return ctx
    tok = src.tokens()
    ctx.sample_positions = tok["position"].to_numpy()[rows].astype(np.int64)
    ctx.row_info = _row_info(tok) if src.sketch is None else src.sketch.row_info(tok)
    if s.s_intra_key == "token":
        ids = tok["token_id"].to_numpy()[cand]
        keys = ids.astype(object)
        keys[ids < 0] = None
    else:
        keys = tok["word"].astype(str).str.lower().to_numpy()[cand].astype(object)
        keys[keys == ""] = None
    picked, codes, names = select_groups(
        keys, min_occurrences=s.s_intra_min_occurrences, cap=s.s_intra_cap,
        max_groups=s.s_intra_max_types, seed=int(seeds["word_types"]),
    )
    if picked.size:
        ctx.intra_rows = cand[picked]
        ctx.intra_keys = codes
    sid = tok["sentence_id"].to_numpy()[cand]
    uniq = np.unique(sid)
    n_sent = min(int(s.ethayarajh_sentences), uniq.size)
    if n_sent > 0:
        chosen = np.random.default_rng(seeds["sentences"]).choice(uniq, size=n_sent, replace=False)
        m = np.isin(sid, chosen)
        ctx.sentence_rows = cand[m]
        ctx.sentence_ids = sid[m]
    if s.frequency_source in ("word_count", "zipf") and s.frequency_source in tok:
        ctx.sample_freq = tok[s.frequency_source].to_numpy()[rows].astype(np.float64)
    return ctx


def prepare(source: Any, layers: Sequence[int] | int | None, overrides: dict[str, Any]) -> Prepared:
    """Open the source, validate the settings and choose every row set once."""
    src = source if isinstance(source, Source) else Source(source)
    s = AnalysisSettings.from_overrides(overrides)
    if src.store is None:
        s.include_special = None
        s.drop_position_zero = None
    lay = src.resolve_layers(layers)
    cand = src.candidates(bool(s.include_special), bool(s.drop_position_zero))
    if cand.size < 3:
        raise InputError(
            f"Only {cand.size} vectors are selected for analysis; at least 3 are needed."
        )
    rows = sample_rows(cand, s.sample, s.seed)
    seeds = derived_seeds(s.seed)
    return Prepared(src, s, lay, cand, rows, _word_context(src, cand, rows, s, seeds), seeds)


def _check_size(n: int, s: AnalysisSettings, what: str = "non-zero") -> None:
    need = max(int(s.lid_k), int(s.k_range[1]), 2)
    if n <= need:
        raise InputError(
            f"Only {n} {what} vectors to measure; need more than {need} (lid_k and the "
            "largest k)."
        )


def _nonzero(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nz = np.linalg.norm(X, axis=1) > 0
    return (X if nz.all() else X[nz]), nz


def layer_data(
    X: np.ndarray,
    settings: AnalysisSettings | Mapping[str, Any],
    *,
    seeds: Mapping[str, int] | None = None,
    moments: StreamingMoments | None = None,
    moments_evidence: str = "all tokens",
    distinct: np.ndarray | None = None,
    frequency: np.ndarray | None = None,
    intra_X: np.ndarray | None = None,
    intra_keys: np.ndarray | None = None,
    sentence_X: np.ndarray | None = None,
    sentence_ids: np.ndarray | None = None,
    reference_cov: np.ndarray | None = None,
    reference_name: str = "layer",
    rows: np.ndarray | None = None,
    positions: np.ndarray | None = None,
    row_info: Any = None,
    neighbor_search: Any = None,
) -> LayerData:
    """Build the :class:`~isoscope.measures.LayerData` of one sample (zero rows dropped).

    Without ``moments`` the moment measures use the sample itself (evidence "sample"); its
    per-dimension maxima then name the sample's ``rows`` (row ids of the source; default the
    position in ``X``). ``positions`` (per row of ``X``) and ``row_info`` come from a store's
    token table. ``neighbor_search`` replaces the exact single-process neighbour search
    (see :class:`~isoscope.measures.LayerData`).
    """
    s = settings if isinstance(settings, AnalysisSettings) else AnalysisSettings.from_overrides(
        dict(settings))
    X = np.asarray(X)
    n_dup = count_duplicates(np.asarray(X, dtype=np.float32))
    Xnz, nz = _nonzero(np.asarray(X, dtype=np.float64))
    _check_size(Xnz.shape[0], s)
    if frequency is not None:
        frequency = np.asarray(frequency)[nz]
    if positions is not None:
        positions = np.asarray(positions)[nz]
    if moments is None:
        moments = StreamingMoments().update(X, rows=rows)
        moments_evidence = "sample"
    if distinct is not None:
        distinct = _nonzero(np.asarray(distinct, dtype=np.float64))[0]
    from isoscope.metrics._neighbors import unique_rows

    n_distinct = unique_rows(distinct if distinct is not None else Xnz)[0].size
    _check_size(n_distinct, s, "distinct")
    derived = dict(seeds or derived_seeds(s.seed))
    mapping = {
        **s.to_dict(),
        "_word_types_seed": derived["word_types"],
        "_lid_values_seed": derived["lid_values"],
        "_isoscore_star_reference_name": reference_name,
    }
    if neighbor_search is None and s.neighbors != "exact":
        neighbor_search = neighbor_searcher(s, derived, None)
    return LayerData(
        sample=Xnz, settings=mapping, moments=moments, moments_evidence=moments_evidence,
        distinct=distinct, frequency=frequency, positions=positions, row_info=row_info,
        intra_X=intra_X, intra_keys=intra_keys,
        sentence_X=sentence_X, sentence_ids=sentence_ids, reference_cov=reference_cov,
        n_zero_rows=int((~nz).sum()), n_duplicates=n_dup, neighbor_search=neighbor_search,
    )


def neighbor_searcher(s: AnalysisSettings, seeds: Mapping[str, int], engine: Any) -> Any:
    """The LID measures' neighbour search for these settings (None: the default exact one)."""
    if engine is None and s.neighbors == "exact":
        return None
    from functools import partial

    from isoscope.metrics._approx import search_neighbors

    return partial(search_neighbors, method=s.neighbors, audit=int(s.neighbors_audit),
                   seed=int(seeds["neighbor_audit"]), variant=s.lid_variant,
                   backend=s.neighbor_backend,
                   exact=engine.exact_knn if engine is not None else None)


def measure_vectors(
    X: np.ndarray,
    settings: Mapping[str, Any] | None = None,
    *,
    intra_X: np.ndarray | None = None,
    intra_keys: np.ndarray | None = None,
    sentence_X: np.ndarray | None = None,
    sentence_ids: np.ndarray | None = None,
    frequency: np.ndarray | None = None,
    reference_cov: np.ndarray | None = None,
    timings: dict | None = None,
) -> dict:
    """Every registered measure on one set of vectors (moments from the vectors themselves).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    settings : mapping, optional
        Overrides of :class:`~isoscope.analysis.AnalysisSettings`.
    intra_X, intra_keys, sentence_X, sentence_ids, frequency : optional
        Word-type occurrences, whole sentences and per-row frequencies (see :func:`analyze`).
    reference_cov : ndarray, optional
        IsoScore* shrinkage target.
    timings : dict, optional
        Receives seconds per measure group.

    Returns
    -------
    dict
        A layer entry without ``layer`` (see docs/results.md).
    """
    s = AnalysisSettings.from_overrides(dict(settings or {}))
    data = layer_data(X, s, frequency=frequency, intra_X=intra_X, intra_keys=intra_keys,
                      sentence_X=sentence_X, sentence_ids=sentence_ids,
                      reference_cov=reference_cov)
    return measure_layer(data, timings=timings)


def word_inputs(p: Prepared, layer: int, transform: Any = None) -> dict[str, Any]:
    """The word-type and sentence rows of one layer (optionally repaired)."""
    f = transform or (lambda a: a)
    w = p.words
    kw: dict[str, Any] = {"frequency": w.sample_freq, "rows": p.src.global_rows(p.sample_rows),
                          "positions": w.sample_positions, "row_info": w.row_info}
    if w.intra_rows is not None:
        kw["intra_X"] = f(p.src.rows(layer, w.intra_rows))
        kw["intra_keys"] = w.intra_keys
    if w.sentence_rows is not None:
        kw["sentence_X"] = f(p.src.rows(layer, w.sentence_rows))
        kw["sentence_ids"] = w.sentence_ids
    return kw


def measure_store_layer(p: Prepared, layer: int, timings: dict[str, float]) -> dict[str, Any]:
    """The layer entry of one stored layer: whole-layer moments, sample and distinct sample."""
    s = p.settings
    t0 = time.perf_counter()
    X = p.src.rows(layer, p.sample_rows)
    kw = word_inputs(p, layer)
    timings["read"] = round(time.perf_counter() - t0, 4)
    t0 = time.perf_counter()
    select = (bool(s.include_special), bool(s.drop_position_zero))
    if p.engine is not None and p.src.sketch is None:
        lp = p.engine.layer_pass(p.src, layer, p.candidates, chunk_rows=s.chunk_rows,
                                 moments=s.full_layer_stats, distinct=s.distinct_before_sampling)
    else:
        # A sketch store's moments come from its accumulators; its sample is small.
        lp = layer_pass(p.src, layer, p.candidates, chunk_rows=s.chunk_rows,
                        moments=s.full_layer_stats, distinct=s.distinct_before_sampling,
                        select=select)
    timings["full_layer"] = round(time.perf_counter() - t0, 4)
    distinct = None
    if lp.distinct_candidates is not None:
        drows = sample_rows(lp.distinct_candidates, s.sample, s.seed)
        distinct = X if np.array_equal(drows, p.sample_rows) else p.src.rows(layer, drows)
    ref = None
    if lp.moments is not None and lp.moments.n >= 2 and s.isoscore_star_reference == "layer":
        ref = lp.moments.covariance()
    data = layer_data(X, s, seeds=p.seeds, moments=lp.moments, distinct=distinct,
                      reference_cov=ref, neighbor_search=neighbor_searcher(s, p.seeds, p.engine),
                      **kw)
    entry = {"layer": int(layer), **measure_layer(data, timings=timings)}
    if s.exact_partition and p.partition is not None:
        entry.update(p.partition[int(layer)])
    elif s.exact_partition:
        t0 = time.perf_counter()
        entry.update(exact_partition(p.src, layer, p.candidates, chunk_rows=s.chunk_rows))
        timings["exact_partition"] = round(time.perf_counter() - t0, 4)
    return entry


def partition_second_pass(p: Prepared, timings: dict[str, Any], progress: bool | None) -> None:
    """A sketch store's ``exact_partition``: run the model over the corpus again, all layers at once.

    Sets ``p.partition`` and records the run under ``source["exact_partition"]`` and its time
    under ``timings["exact_partition_s"]``; does nothing for other sources or settings.
    """
    if not p.settings.exact_partition or p.src.sketch is None:
        return
    from isoscope.analysis._second_pass import (
        N_EXTRACTIONS,
        SECOND_PASS_EVIDENCE,
        second_pass_partition,
    )

    t0 = time.perf_counter()
    select = (bool(p.settings.include_special), bool(p.settings.drop_position_zero))
    with unlimited_threads():  # the model runs as extract ran it
        p.partition = second_pass_partition(p.src, p.layers, select, progress=progress)
    timings["exact_partition_s"] = round(time.perf_counter() - t0, 3)
    m = p.src.store.manifest
    p.src.info["exact_partition"] = {
        "evidence": SECOND_PASS_EVIDENCE, "model": m.get("model"), "corpus": m.get("corpus"),
        "extractions": N_EXTRACTIONS, "n_tokens": int(p.src.sketch.n_tokens), "layers": list(p.layers),
    }


def _progress(iterable: Any, enabled: bool | None, desc: str) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit="layer", leave=False)


@contextlib.contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Limit BLAS/OpenMP and faiss threads (on a busy shared CPU, spinning pools are slow)."""
    if threads is None:
        yield
        return
    if int(threads) < 1:
        raise InputError(f"threads must be at least 1, got {threads}.")
    from threadpoolctl import threadpool_limits

    faiss_mod: Any = None
    before = 0
    try:
        import faiss as faiss_mod

        before = int(faiss_mod.omp_get_max_threads())
        faiss_mod.omp_set_num_threads(int(threads))
    except ImportError:  # pragma: no cover
        faiss_mod = None
    try:
        with threadpool_limits(int(threads)) as limiter:
            token = _THREAD_LIMIT.set((limiter, int(threads), faiss_mod, before))
            try:
                yield
            finally:
                _THREAD_LIMIT.reset(token)
    finally:
        if faiss_mod is not None:
            faiss_mod.omp_set_num_threads(before)


#: The :func:`thread_limit` in force (its threadpoolctl limiter, thread count, and faiss
#: with its thread count before), if any.
_THREAD_LIMIT: contextvars.ContextVar[tuple[Any, int, Any, int] | None] = contextvars.ContextVar(
    "isoscope_thread_limit", default=None)


@contextlib.contextmanager
def unlimited_threads() -> Iterator[None]:
    """Lift the :func:`thread_limit` in force for a block, and put it back after.

    A model run inside analysis (a sketch store's second pass) must use the thread count
    extraction used: float32 sums of a GEMM split over other threads differ in the last bits.
    """
    current = _THREAD_LIMIT.get()
    if current is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    limiter, threads, faiss_mod, before = current
    limiter.restore_original_limits()
    # faiss shares an OpenMP runtime with torch, and was limited before threadpoolctl looked.
    if faiss_mod is not None:
        faiss_mod.omp_set_num_threads(before)
    try:
        yield
    finally:
        if faiss_mod is not None:
            faiss_mod.omp_set_num_threads(threads)
        threadpool_limits(threads)  # the outer limiter restores the originals at its end


@contextlib.contextmanager
def _engine(p: Prepared) -> Iterator[None]:
    """Attach the settings' engine to ``p`` for the duration of the run."""
    if p.settings.engine != "ray":
        yield
        return
    from isoscope.distributed._analyze import RayEngine

    with RayEngine(p.settings.ray_address, p.settings.ray_workers) as engine:
        p.engine = engine
        try:
            yield
        finally:
            p.engine = None


def analyze(
    source: Any,
    layers: Sequence[int] | int | None = None,
    *,
    sample: int | None = 10000,
    seed: int = 0,
    transforms: Sequence[str] | None = None,
    transductive: bool = False,
    transform_layers: Sequence[int] | None = None,
    fit_inputs: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    **settings: Any,
) -> AnalysisResult:
    """Run every registered measure on every requested layer.

    Moment measures (S_inter, IsoScore, PCA spectrum, effective rank, norms, rogue
    dimensions) come from every selected token of the layer, exactly; neighbour and cluster
    measures from a seeded sample of the layer's distinct vectors; the rest from the seeded
    sample (the same rows in every layer). ``results.json`` says which, per key.

    Parameters
    ----------
    source : EmbeddingStore, path, array-like, list of array-likes or .npy path
        A store (folder or object), or one layer of vectors (numpy or torch, n x d), or a list
        or tuple of such layers (item ``i`` is hidden state ``i``, all with the same n; one
        result entry per layer) for the measures that need no word identity (S_intra,
        Ethayarajh and frequency are None).
    layers : int or sequence of int, optional
        Hidden-state indices (negative counts from the last); all stored layers by default.
    sample : int or None
        Size of the seeded uniform sample (None: all rows).
    seed : int
        Seeds the sample (``default_rng(seed)``) and, through ``SeedSequence(seed).spawn``,
        the repairs' fit sample, the word types, the sentences and the LID value subsample.
    transforms : sequence of str, optional
        Repairs measured before and after (:func:`evaluate_transforms`).
    transductive : bool
        Fit repairs on the measured sample itself instead of a disjoint seeded sample.
    transform_layers : sequence of int, optional
        Layers on which repairs are evaluated (default: the last analysed layer).
    fit_inputs : mapping, optional
        Extra fit inputs of the repairs that declare them, by input name (learned removal's
        ``pairs``).
    progress : bool, optional
        Progress bar per layer (default: when stderr is a terminal).
    **settings
        Any field of :class:`~isoscope.analysis.AnalysisSettings`; ``engine="ray"`` (with
        ``ray_address``, ``ray_workers``) runs the moment passes and the exact neighbour search
        as Ray tasks (same results to 1e-9 relative), ``neighbors="ivf"|"hnsw"`` uses faiss
        approximate neighbours and reports their audit (``knn_*`` keys).

    Returns
    -------
    AnalysisResult
    """
    with thread_limit(settings.get("threads")):
        t0 = time.perf_counter()
        if transforms:
            from isoscope.analysis._repairs import check_repairs

            check_repairs(transforms, fit_inputs)
        p = prepare(source, layers, {"sample": sample, "seed": seed, **settings})
        entries = []
        timings: dict[str, Any] = {"layers": {}}
        partition_second_pass(p, timings, progress)
        with _engine(p):
            for layer in _progress(p.layers, progress, "isoscope analyze"):
                lt: dict[str, float] = {}
                entries.append(measure_store_layer(p, layer, lt))
                timings["layers"][str(layer)] = lt
        recorded = p.recorded_settings()
        result = AnalysisResult(source=p.src.info, settings=recorded, layers=entries,
                                timings=timings, sample_rows=p.sample_rows)
        from isoscope.analysis._similarity import layer_similarity

        result.layer_similarity = layer_similarity(p, timings)
        if transforms:
            from isoscope.analysis._repairs import evaluate_transforms

            tl = list(transform_layers) if transform_layers is not None else [p.layers[-1]]
            fitted: list[Any] = []
            result.transforms = evaluate_transforms(
                p, transforms, layers=tl, transductive=transductive, progress=progress,
                fit_inputs=fit_inputs, fitted=fitted,
            )
            result.fitted_repairs = [est for est, _ in fitted]
            result.fit_rows = fitted[0][1] if fitted else None
            recorded["transductive"] = bool(transductive)
            recorded["transform_layers"] = p.src.resolve_layers(tl)
        timings["total_s"] = round(time.perf_counter() - t0, 3)
        return result
