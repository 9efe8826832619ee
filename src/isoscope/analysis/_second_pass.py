"""I(V) of a sketch store over every token: the corpus run through the model again.

A sketch store (``extract --keep sample:N``) keeps float64 moments of every token, so the
directions of I(V) on raw and centred vectors (eigenvectors of VᵀV and of the scatter) come
from it without a pass; the log-sum-exp over those directions needs every vector, which the
store does not keep. :func:`second_pass_partition` re-runs the extraction its manifest
records (model, corpus, token budget, layers, dtype, batches) and feeds every chunk of the
analysed layers, filtered as analysis filters its candidate rows, into the accumulators.

The sketch does not keep the second moment of the *unit* vectors (a second d x d matrix per
token group and layer), so the unit normalisation takes one more run: the first run
accumulates raw and centred log Z(c) and the unit vectors' moments, the second the unit
log Z(c). ``--exact-partition`` on a sketch store therefore costs two extractions of the
analysed layers.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from isoscope.errors import InputError, IsoscopeError
from isoscope.metrics.streaming import (
    StreamingLogPartition,
    StreamingMoments,
    partition_accumulator,
)

log = logging.getLogger(__name__)

#: Evidence of I(V) computed this way (``measures`` of results.json).
SECOND_PASS_EVIDENCE = "all tokens (second pass through the model)"
#: Model runs over the corpus that one sketch-store ``--exact-partition`` costs.
N_EXTRACTIONS = 2


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.rstrip(".")


def nonzero_moments(m: StreamingMoments) -> StreamingMoments:
    """The count, mean and scatter of the non-zero rows among those ``m`` accumulated.

    Zero rows add nothing to Σx or Σxxᵀ, so the moments of the other rows follow from ``m``
    alone: ``mean' = Σx / n'`` and ``scatter' = Σxxᵀ − n' mean' mean'ᵀ`` with
    ``n' = n − n_zero``. Only ``n``, ``mean_`` and ``m2_`` are meaningful in the result.
    """
    if m.n_zero == 0:
        return m
    n = m.n - m.n_zero
    if n < 1:
        raise InputError("Every selected token of the layer is an all-zero vector, so I(V) is undefined.")
    raw = m.second_moment()
    out = StreamingMoments().merge(m)
    out.n, out.n_zero = n, 0
    out.mean_ = m.mean_ * (m.n / n)
    out.m2_ = raw - n * np.outer(out.mean_, out.mean_)
    return out


def _refuse(what: str, why: str) -> InputError:
    return InputError(
        f"--exact-partition on a sketch store runs the extraction again, and {what} ({why})."
    )


def reopen_extraction(store: Any, layers: Sequence[int]) -> Any:
    """The :class:`~isoscope.extract.ExtractionJob` that re-runs a sketch store's extraction.

    Model, corpus, token budget, dtype, truncation and batch settings come from the store's
    manifest; only ``layers`` are run.

    Raises
    ------
    InputError
        In one sentence, when the model or corpus cannot be re-opened, or they are not the ones
        the store was extracted from (weights, corpus text or token count differ).
    """
    from isoscope.corpora import load_corpus
    from isoscope.extract import load_model, prepare_extraction, weights_hash

    m = store.manifest
    model, corpus = m.get("model"), m.get("corpus")
    ext = m.get("extraction") or {}
    if m.get("model_origin"):
        raise _refuse(f"model {model!r} cannot be re-opened",
                      "it was passed to extract already loaded, so the store does not say how to load it")
    if not model or not corpus:
        raise _refuse("the model or corpus cannot be re-opened", "the manifest does not name them")
    device = str(ext.get("device") or "cpu")
    try:
        encoder = load_model(str(model), device=device, max_length=m.get("max_length"),
                             linear_kernel=str(ext.get("linear_kernel") or "torch"))
    except (IsoscopeError, OSError) as exc:
        raise _refuse(f"model {model!r} cannot be re-opened", _reason(exc)) from None
    try:
        text = load_corpus(str(corpus), max_sentences=m.get("max_sentences"))
    except (IsoscopeError, OSError) as exc:
        raise _refuse(f"corpus {corpus!r} cannot be re-opened", _reason(exc)) from None
    recorded = m.get("model_sha256")
    if recorded and weights_hash(encoder) != recorded:
        raise _refuse(f"model {model!r} has other weights than when the store was extracted",
                      "its SHA-256 differs from the manifest's")
    job = prepare_extraction(
        encoder, text, store.path, max_sentences=None, max_tokens=m.get("max_tokens"),
        layers=[int(x) for x in layers], dtype=str(m.get("dtype", "float16")),
        batch_size=ext.get("batch_size"), batch_tokens=ext.get("batch_tokens"),
        chunk_tokens=int(m.get("chunk_tokens") or 16384), device=device, trust_remote_code=False,
        max_length=m.get("max_length"), seed=int(m.get("seed") or 0),
    )
    want = int(store.sketch.n_tokens)
    if job.plan.n_tokens != want:
        raise _refuse(f"corpus {corpus!r} changed since the store was extracted",
                      f"it now gives {job.plan.n_tokens} tokens, the store counted {want}")
    if m.get("corpus_sha256") and job.manifest["corpus_sha256"] != m["corpus_sha256"]:
        raise _refuse(f"corpus {corpus!r} changed since the store was extracted",
                      "its text's SHA-256 differs from the manifest's")
    return job


class PartitionSink:
    """:func:`~isoscope.extract.run_chunks`' sink that feeds I(V) accumulators, not a store.

    Each chunk's rows of every analysed layer are filtered as analysis selects its candidate
    rows (the token groups of ``include_special`` and ``drop_position_zero``), then all-zero
    rows are dropped (they have no direction, as in the sample), and the rest go to
    ``update(layer, X)``.

    Parameters
    ----------
    layers : sequence of int
    select : (include_special, drop_position_zero)
    update : callable
        Called with ``(layer, X)``, X an (m, d) float32 array.
    """

    def __init__(self, layers: Sequence[int], select: tuple[bool, bool], update: Any) -> None:
        from isoscope.sketch import selected_groups

        self.layers = [int(x) for x in layers]
        self.groups = np.array(selected_groups(bool(select[0]), bool(select[1])), dtype=np.int8)
        self.update = update
        #: Token rows seen (every row, before filtering).
        self.n_rows = 0

    def append(self, arrays: dict[int, np.ndarray], tokens: Any, n_sentences: int) -> None:
        """Take one chunk (the :class:`~isoscope.store.StoreWriter` signature)."""
        from isoscope.sketch import group_codes

        special = tokens.column("is_special").to_numpy(zero_copy_only=False)
        position = tokens.column("position").to_numpy(zero_copy_only=False)
        keep = np.isin(group_codes(special, position), self.groups)
        for layer in self.layers:
            X = np.asarray(arrays[layer][keep], dtype=np.float32)
            self.update(layer, X[np.linalg.norm(X, axis=1) > 0])
        self.n_rows += int(tokens.num_rows)


def _run(job: Any, sink: PartitionSink, progress: bool | None, desc: str) -> None:
    from tqdm.auto import tqdm

    from isoscope.extract import run_chunks

    enabled = sys.stderr.isatty() if progress is None else bool(progress)
    with tqdm(total=job.plan.n_tokens, unit="tok", desc=desc, disable=not enabled, leave=False) as bar:
        run_chunks(job, range(len(job.plan.chunks)), sink, on_batch=bar.update)
    if sink.n_rows != job.plan.n_tokens:
        raise InputError(
            f"The second pass through the model gave {sink.n_rows} tokens where its plan has "
            f"{job.plan.n_tokens}; the extraction is not deterministic on this machine."
        )


def second_pass_partition(
    src: Any, layers: Sequence[int], select: tuple[bool, bool], *, progress: bool | None = None
) -> dict[int, dict[str, float]]:
    """I(V) over every selected token of each layer of a sketch store, by running the model again.

    Parameters
    ----------
    src : Source
        A sketch store (``src.sketch`` set).
    layers : sequence of int
        Hidden states to measure; one extraction runs them all.
    select : (include_special, drop_position_zero)
        The analysis settings behind the candidate rows.
    progress : bool, optional
        Progress bar per run (default: when stderr is a terminal).

    Returns
    -------
    dict
        Layer to the partition keys of a layer entry (``isotropy_partition``, ``..._log10``,
        ``isotropy_partition_centered`` ...), as :func:`~isoscope.analysis._source.exact_partition`
        computes them from a ``--keep all`` store.

    Raises
    ------
    InputError
        When the extraction cannot be re-run as recorded (see :func:`reopen_extraction`).
    """
    from isoscope.metrics.isotropy import isotropy_from_log_z

    layers = [int(x) for x in layers]
    t0 = time.perf_counter()
    job = reopen_extraction(src.store, layers)
    sk = src.sketch
    acc: dict[int, dict[str, StreamingLogPartition]] = {}
    unit_moments = {layer: StreamingMoments() for layer in layers}
    for layer in layers:
        m = nonzero_moments(sk.moments(layer, *select))
        if m.n < 1:
            raise InputError(f"No selected token of layer {layer} has a direction; I(V) is undefined.")
        acc[layer] = {norm: partition_accumulator(m, norm) for norm in ("raw", "centered")}

    def first(layer: int, X: np.ndarray) -> None:
        for a in acc[layer].values():
            a.update(X)
        if X.shape[0]:
            unit_moments[layer].update(X / np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True))

    _run(job, PartitionSink(layers, select, first), progress, "I(V) pass 1/2")
    for layer in layers:
        acc[layer]["unit"] = partition_accumulator(unit_moments[layer], "unit")

    def second(layer: int, X: np.ndarray) -> None:
        acc[layer]["unit"].update(X)

    _run(job, PartitionSink(layers, select, second), progress, "I(V) pass 2/2")
    out: dict[int, dict[str, float]] = {}
    for layer in layers:
        entry: dict[str, float] = {}
        for norm, suffix in (("raw", ""), ("centered", "_centered"), ("unit", "_unit")):
            pi = isotropy_from_log_z(acc[layer][norm].log_z, norm)
            entry[f"isotropy_partition{suffix}"] = pi.value
            entry[f"isotropy_partition{suffix}_log10"] = pi.log10
        out[layer] = entry
    log.info("I(V) of layers %s over %d tokens by %d runs of %s in %.1f s", layers, job.plan.n_tokens,
             N_EXTRACTIONS, src.store.manifest.get("model"), time.perf_counter() - t0)
    return out
