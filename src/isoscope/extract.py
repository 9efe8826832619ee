"""Stream every hidden state of a model over a corpus into an :class:`EmbeddingStore`.

The corpus is tokenised once, up front. Sentences are cut into chunks of consecutive
sentences (about ``chunk_tokens`` tokens each). Inside a chunk, models that can run packed
sentences (BERT and GPT-2 families) take consecutive sentences back to back in one row with no
padding; others run in length-sorted padded batches (padding masked out). Either way the rows
land in a preallocated chunk buffer in corpus order, already in the storage type. Each chunk is
committed atomically, on a second thread while the model runs the next chunk; running the same
call again after a crash resumes at the first uncommitted chunk.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import platform
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from isoscope._validation import resolve_layers
from isoscope.errors import InputError, StoreError
from isoscope.store import EmbeddingStore, StoreWriter, all_finite, fit_dtype, is_foreign_folder

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """Which sentences are extracted, their token counts and their chunking."""

    sentences: list[str]
    lengths: np.ndarray
    truncated: np.ndarray
    chunks: list[tuple[int, int]]  # [start, stop) sentence ranges
    tokens: Any = None  # FlatTokens of the sentences, for encoders that tokenise flat

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum())


def plan_extraction(
    encoder: Any, sentences: Sequence[str], *, max_tokens: int | None, chunk_tokens: int,
    packed_batches: tuple[int, int] | None = None,
) -> Plan:
    """Tokenise once, apply ``max_tokens`` (whole sentences) and cut chunks.

    Encoders with ``tokenize_flat`` keep their tokens in the plan (flat arrays, 13 bytes
    a token), so no batch tokenises again. With ``packed_batches`` = (sentences, tokens) per
    packed batch, chunks end only where a greedy packed batch ends, so every chunk but the
    last runs whole batches (no short pass at each chunk's end).
    """
    lengths, truncated, tokens = tokenize_sentences(encoder, sentences, max_tokens=max_tokens)
    n = len(lengths)
    if max_tokens is not None:
        if max_tokens < 1:
            raise InputError("--max-tokens must be at least 1.")
        # Whole sentences while the running total stays within the budget (at least one sentence).
        n = max(1, int(np.searchsorted(np.cumsum(lengths), max_tokens, side="right")))
    if packed_batches is not None:
        # Greedy runs from a run's first sentence are the same whichever chunk holds them.
        units = [(int(r[0]), int(r[-1]) + 1) for r in _greedy_runs(lengths[:n], *packed_batches)]
    else:
        units = [(i, i + 1) for i in range(n)]
    ends = np.concatenate([[0], np.cumsum(lengths[:n])])
    chunks: list[tuple[int, int]] = []
    start, total = 0, 0
    for a, b in units:
        size = int(ends[b] - ends[a])
        if total and total + size > chunk_tokens:
            chunks.append((start, a))
            start, total = a, 0
        total += size
    chunks.append((start, n))
    if tokens is not None:
        tokens = tokens.select(0, n)
    return Plan(list(sentences[:n]), lengths[:n], truncated[:n], chunks, tokens)


def tokenize_sentences(
    encoder: Any, sentences: Sequence[str], *, max_tokens: int | None = None
) -> tuple[np.ndarray, np.ndarray, Any]:
    """Token counts, truncation flags and (for encoders with ``tokenize_flat``) flat tokens.

    Each sentence is tokenised on its own, so the tokens of a slice of a corpus are the slice
    of the corpus's tokens (what lets a distributed worker tokenise only its shard). With
    ``max_tokens``, tokenisation stops at the first step of 256 sentences past that many tokens:
    a plan cut there never needs the rest of the corpus.
    """
    flat = getattr(encoder, "tokenize_flat", None)
    parts: list[Any] = []
    lengths_list, trunc_list = [], []
    # The tokenizer's Python lists take about 200 bytes a token while they live.
    step = 1024 if max_tokens is None else 256
    total = 0
    for start in range(0, len(sentences), step):
        if flat is not None:
            part = flat(sentences[start : start + step])
            parts.append(part)
            lengths, truncated = part.lengths, part.truncated
        else:
            lengths, truncated = encoder.token_lengths(sentences[start : start + step])
        lengths_list.append(lengths)
        trunc_list.append(truncated)
        total += int(lengths.sum())
        if max_tokens is not None and total > max_tokens:
            break
    tokens = None
    if parts:
        from isoscope.models.hf import FlatTokens

        tokens = FlatTokens.concat(parts)
    return np.concatenate(lengths_list), np.concatenate(trunc_list), tokens


def _batches(lengths: np.ndarray, batch_size: int, batch_tokens: int) -> list[np.ndarray]:
    """Indices (into ``lengths``) of length-sorted batches bounded in sentences and padded tokens."""
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    current: list[int] = []
    longest = 0
    for i in order:
        longest_if = max(longest, int(lengths[i]))
        if current and (len(current) >= batch_size or longest_if * (len(current) + 1) > batch_tokens):
            batches.append(np.array(current))
            current, longest_if = [], int(lengths[i])
        current.append(int(i))
        longest = longest_if
    if current:
        batches.append(np.array(current))
    return batches


def _greedy_runs(lengths: np.ndarray, batch_size: int, batch_tokens: int) -> list[np.ndarray]:
    """Consecutive sentences packed greedily within the sentence and token bounds."""
    runs, start, total = [], 0, 0
    for i, n in enumerate(lengths.tolist()):
        if i > start and (i - start >= batch_size or total + n > batch_tokens):
            runs.append(np.arange(start, i))
            start, total = i, 0
        total += n
    runs.append(np.arange(start, len(lengths)))
    return runs


def _packed_batches(lengths: np.ndarray, batch_size: int, batch_tokens: int) -> list[np.ndarray]:
    """Runs of consecutive sentences bounded in sentences and tokens (no padding to bound).

    Runs are packed greedily; when that leaves a short last run (under half the token
    bound), the last two runs share their sentences evenly instead, so a chunk does not end
    in a tiny forward pass (a 100-token pass runs its linear layers far below the machine's
    matmul rate and builds new kernels for its shapes).
    """
    runs = _greedy_runs(lengths, batch_size, batch_tokens)
    if len(runs) > 1 and lengths[runs[-1]].sum() < batch_tokens / 2:
        both = np.concatenate(runs[-2:])
        ends = np.cumsum(lengths[both])
        cut = int(np.abs(ends[:-1] - ends[-1] / 2).argmin()) + 1
        if (max(cut, len(both) - cut) <= batch_size
                and max(ends[cut - 1], ends[-1] - ends[cut - 1]) <= batch_tokens):
            runs[-2:] = [both[:cut], both[cut:]]
    return runs


def _to_storage(states: Any, dtype: np.dtype, layer: int) -> np.ndarray:
    """A float32 (rows, hidden) tensor in the storage type, refusing NaN/Inf and overflow."""
    import torch

    # torch casts to float16 several times faster than numpy; the finite check is numpy's
    # (torch.isfinite is slower still).
    block = states.to(torch.float16).numpy() if dtype == np.float16 else states.numpy()
    if not all_finite(block):
        fit_dtype(states.numpy(), dtype, layer)  # raises, naming the cause
    return np.asarray(block)


def _token_table(encoder: Any, sentences: list[str], tokens: Any, first_id: int) -> Any:
    """The chunk's token rows (without frequencies), built from the flat token arrays."""
    import pyarrow as pa

    lengths = tokens.lengths
    n = int(lengths.sum())
    local = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(n) - np.repeat(tokens.starts[:-1], lengths)
    word_ids = np.where(tokens.special, -1, tokens.word_ids)
    unique_ids, id_rows = np.unique(tokens.ids, return_inverse=True)
    names = [str(t) for t in encoder.tokenizer.convert_ids_to_tokens(unique_ids.tolist())]
    token_strings = np.array(names, dtype=object)[id_rows.reshape(-1)]
    # A word's string is its sentence's text from its first token's start to its last token's end.
    real = word_ids >= 0
    keys, word_rows = np.unique(local[real] << 32 | word_ids[real].astype(np.int64), return_inverse=True)
    word_rows = word_rows.reshape(-1)
    lo = np.full(len(keys), np.iinfo(np.int64).max)
    hi = np.full(len(keys), -1)
    np.minimum.at(lo, word_rows, tokens.offsets[real, 0])
    np.maximum.at(hi, word_rows, tokens.offsets[real, 1])
    texts = [sentences[i][a:b].strip() for i, a, b in zip((keys >> 32).tolist(), lo.tolist(), hi.tolist(),
                                                           strict=True)]
    words = np.full(n, "", dtype=object)
    words[real] = np.array(texts, dtype=object)[word_rows] if texts else []
    return pa.table({
        "sentence_id": pa.array(local + first_id, pa.int32()),
        "position": pa.array(position, pa.int32()),
        "token_id": pa.array(tokens.ids, pa.int32()),
        "token": pa.array(token_strings, pa.string()),
        "word_id": pa.array(word_ids, pa.int32()),
        "word": pa.array(words, pa.string()),
        "is_special": pa.array(tokens.special, pa.bool_()),
    })


def _run_chunk_flat(
    encoder: Any,
    tokens: Any,
    layers: list[int],
    dtype: np.dtype,
    batch_size: int,
    batch_tokens: int,
    on_batch: Any = None,
) -> dict[int, np.ndarray]:
    """The layer blocks of one chunk of pre-tokenised sentences, rows in corpus order."""
    lengths = tokens.lengths
    starts = tokens.starts
    arrays = {layer: np.empty((int(starts[-1]), encoder.hidden_size), dtype=dtype) for layer in layers}
    if encoder.packs:
        batches = _packed_batches(lengths, batch_size, batch_tokens)
    else:
        batches = [np.sort(b) for b in _batches(lengths, batch_size, batch_tokens)]
    for idx in batches:
        if idx[-1] - idx[0] + 1 == len(idx):  # consecutive sentences: one block of rows
            rows: Any = slice(int(starts[idx[0]]), int(starts[idx[-1] + 1]))
        else:
            rows = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in idx])
        states = encoder.encode_packed(tokens.ids[rows], lengths[idx], layers)
        for layer in layers:
            arrays[layer][rows] = _to_storage(states[layer], dtype, layer)
        del states
        if on_batch is not None:
            on_batch(int(lengths[idx].sum()))
    return arrays


def _then_release_memory(job: Any) -> None:
    job()
    _release_free_memory()


def _warm_word_frequencies() -> None:
    with contextlib.suppress(ImportError):
        from wordfreq import zipf_frequency

        zipf_frequency("the", "en")


def _commit_flat(writer: Any, encoder: Any, sentences: list[str], tokens: Any, first_id: int,
                 arrays: dict[int, np.ndarray]) -> None:
    """Build a chunk's token table and commit it with its layer blocks."""
    writer.append(arrays, _token_table(encoder, sentences, tokens, first_id), len(sentences))


class SketchSink:
    """:func:`run_chunks`' sink for ``--keep sample:N``: chunks go into a sketch, not the store.

    Chunks arrive in corpus order from the first one, so a chunk's rows are the next
    ``table.num_rows`` global rows.
    """

    def __init__(self, sketch: Any, first_row: int = 0) -> None:
        self.sketch = sketch
        self.next_row = int(first_row)

    def append(self, arrays: dict[int, np.ndarray], tokens: Any, n_sentences: int) -> None:
        rows = np.arange(self.next_row, self.next_row + tokens.num_rows, dtype=np.int64)
        self.sketch.update(rows, arrays, tokens)
        self.next_row += tokens.num_rows


def _word_strings(sentence: str, word_ids: list[int], offsets: list[tuple[int, int]]) -> list[str]:
    spans: dict[int, list[int]] = {}
    for w, (a, b) in zip(word_ids, offsets, strict=True):
        if w < 0:
            continue
        span = spans.setdefault(w, [a, b])
        span[0], span[1] = min(span[0], a), max(span[1], b)
    return ["" if w < 0 else sentence[spans[w][0] : spans[w][1]].strip() for w in word_ids]


def _encode_chunk(
    encoder: Any,
    sentences: list[str],
    first_id: int,
    layers: list[int],
    dtype: np.dtype,
    batch_size: int,
    batch_tokens: int,
    lengths: np.ndarray,
    on_batch: Any = None,
) -> tuple[dict[int, np.ndarray], Any]:
    """Run one chunk and return its layer blocks and token rows, in corpus order."""
    import pyarrow as pa

    per_sentence: list[Any] = [None] * len(sentences)
    for idx in _batches(lengths, batch_size, batch_tokens):
        batch = encoder.encode([sentences[i] for i in idx], layers=layers)
        mask = batch.attention_mask.bool()
        real_len = mask.sum(dim=1).tolist()
        flat = {
            layer: fit_dtype(batch.hidden_states[layer][mask].numpy(), dtype, layer) for layer in layers
        }
        ids = batch.input_ids[mask].tolist()
        special = batch.special_mask[mask].tolist()
        offset = 0
        for j, i in enumerate(idx):
            n = real_len[j]
            per_sentence[i] = (
                {layer: flat[layer][offset : offset + n] for layer in layers},
                ids[offset : offset + n],
                special[offset : offset + n],
                batch.word_ids[j][:n],
                batch.offsets[j][:n],
            )
            offset += n
        if on_batch is not None:
            on_batch(int(sum(real_len)))
    arrays = {layer: np.concatenate([p[0][layer] for p in per_sentence]) for layer in layers}
    cols: dict[str, list[Any]] = {k: [] for k in ("sentence_id", "position", "token_id", "token",
                                                   "word_id", "word", "is_special")}
    convert = encoder.tokenizer.convert_ids_to_tokens
    for i, (_, ids, special, word_ids, offsets) in enumerate(per_sentence):
        n = len(ids)
        word_ids = [-1 if s else w for w, s in zip(word_ids, special, strict=True)]
        cols["sentence_id"] += [first_id + i] * n
        cols["position"] += list(range(n))
        cols["token_id"] += ids
        cols["token"] += [str(t) for t in convert(ids)]
        cols["word_id"] += word_ids
        cols["word"] += _word_strings(sentences[i], word_ids, offsets)
        cols["is_special"] += [bool(s) for s in special]
    table = pa.table({
        "sentence_id": pa.array(cols["sentence_id"], pa.int32()),
        "position": pa.array(cols["position"], pa.int32()),
        "token_id": pa.array(cols["token_id"], pa.int32()),
        "token": pa.array(cols["token"], pa.string()),
        "word_id": pa.array(cols["word_id"], pa.int32()),
        "word": pa.array(cols["word"], pa.string()),
        "is_special": pa.array(cols["is_special"], pa.bool_()),
    })
    return arrays, table


def _release_free_memory() -> None:
    """Return freed heap pages to the OS (glibc only).

    Batches of ever-different shapes fragment glibc's heap, so without this the resident
    memory of a long extraction creeps up chunk after chunk (measured: 2.8 GiB instead of about
    1 GiB over WikiText-2).
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def versions() -> dict[str, str]:
    """Versions of the libraries that determine the numbers."""
    import numpy
    import torch
    import transformers

    from isoscope import __version__

    return {
        "isoscope": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
        "torch": torch.__version__, "transformers": transformers.__version__,
    }


def weights_hash(encoder: Any) -> str | None:
    """sha256 of a model's config and weights (:func:`isoscope.models.model_fingerprint`), or
    of a static table's vectors and words; None for an encoder that exposes neither."""
    import hashlib

    from isoscope.models import model_fingerprint

    if getattr(encoder, "model", None) is not None:
        try:
            return model_fingerprint(encoder)
        except TypeError:
            return None
    table = getattr(encoder, "table", None)
    vectors = getattr(table, "vectors", None)
    if vectors is None:
        return None
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(vectors).data)
    h.update("\n".join(map(str, getattr(table, "words", []))).encode("utf-8"))
    return h.hexdigest()


def extract(
    model: str | Any = "minilm",
    corpus: str | Any = "ptb",
    out: str | os.PathLike[str] = "store",
    *,
    max_sentences: int | None = None,
    max_tokens: int | None = None,
    layers: str | Sequence[int] | None = "all",
    dtype: str = "float16",
    batch_size: int | None = None,
    batch_tokens: int | None = None,
    chunk_tokens: int = 16384,
    device: str = "cpu",
    trust_remote_code: bool = False,
    max_length: int | None = None,
    seed: int = 0,
    progress: bool = True,
    keep: str = "all",
    sketch_checkpoint_s: float = 600.0,
) -> EmbeddingStore:
    """Extract token vectors of every requested layer into a store (resuming if unfinished).

    Parameters
    ----------
    model : str or HFEncoder
        Short name, Hugging Face name or folder, or an already loaded encoder.
    corpus : str or Corpus
        Corpus spec (see :mod:`isoscope.corpora`) or a loaded :class:`~isoscope.corpora.Corpus`.
    out : path
        Store folder. A complete store with the same settings and corpus text is reused as is
        (after its file sizes are checked: a damaged one is refused, never rewritten); an
        unfinished one is resumed after its committed chunks are checked against their
        checksums; a folder that is not a store is refused.
    max_sentences, max_tokens : int, optional
        Limits; ``max_tokens`` keeps whole sentences while the total (special tokens
        included) stays within it.
    layers : "all", "last", "0,3,6" or sequence of int
        Hidden states to store (0 = embedding output). Blocks above the deepest are not run.
    dtype : {"float16", "float32"}
        Storage type of the vectors.
    batch_size, batch_tokens : int, optional
        At most this many sentences and tokens (padding included) per forward pass. Defaults:
        256 sentences and 4,096 tokens for models that run packed rows (BERT and GPT-2 families:
        no padding, so bigger batches only cost activation memory, about 0.2 GB for MiniLM);
        64 sentences and 1,024 padded tokens for the others. Packed batches of 4,096 tokens ran
        5 % faster than 1,024 on the benchmark machine (docs/benchmarks/extract.md).
    chunk_tokens : int
        Tokens per committed chunk (the unit of crash recovery).
    device : str
        Torch device.
    trust_remote_code : bool
        Allow a model's own code to run (off by default).
    max_length : int, optional
        Truncate sentences at this many tokens (default: the model's limit). Truncated
        sentences are counted in the manifest (``n_truncated``); they are not windowed.
    seed : int
        Recorded in the manifest of a new store; extraction itself is deterministic, so a
        store is reused or resumed whatever seed the later call passes.
    progress : bool
        Show a progress bar.
    keep : {"all", "sample:N"}
        ``all`` stores every vector. ``sample:N`` makes a sketch store (:mod:`isoscope.sketch`):
        float64 moments of every token per layer and the vectors of a bottom-k sample of N
        token rows seeded by ``seed``.
    sketch_checkpoint_s : float
        With ``keep="sample:N"``: seconds between checkpoints of the in-memory sketch
        (:mod:`isoscope._sketch_checkpoint`, under ``STORE/sketch-checkpoint/``); a killed
        sketch extraction, run again, resumes after the last one. 0 saves after every chunk.

    Returns
    -------
    EmbeddingStore
    """
    from tqdm.auto import tqdm

    job = prepare_extraction(
        model, corpus, out, max_sentences=max_sentences, max_tokens=max_tokens, layers=layers,
        dtype=dtype, batch_size=batch_size, batch_tokens=batch_tokens, chunk_tokens=chunk_tokens,
        device=device, trust_remote_code=trust_remote_code, max_length=max_length, seed=seed,
        keep=keep,
    )
    plan, encoder = job.plan, job.encoder
    with StoreWriter(out, job.manifest) as writer:
        if writer.complete:
            return EmbeddingStore(out)
        if job.keep_n is not None and writer.n_chunks:
            writer.reset()  # killed while writing the sample rows: the checkpoint has them all
        job.check_resume(writer)
        bar = tqdm(total=plan.n_tokens, unit="tok", desc=f"extract {encoder.name}", disable=not progress,
                   initial=writer.n_tokens, smoothing=0.1)
        if job.keep_n is None:
            with bar:
                run_chunks(job, range(writer.n_chunks, len(plan.chunks)), writer, on_batch=bar.update)
            return writer.finalize(job.final_extra(writer.n_tokens))
        from isoscope._sketch_checkpoint import (
            CheckpointingSink,
            load_checkpoint,
            remove_checkpoint,
        )
        from isoscope.sketch import StoreSketch, write_sketch_store

        resumed = load_checkpoint(writer.root, plan, job.keep_n, seed)
        sketch, done = resumed or (StoreSketch(job.layers, encoder.hidden_size, job.keep_n, seed), 0)
        sink = CheckpointingSink(SketchSink(sketch, sketch.n_tokens), writer.root, plan, done,
                                 sketch_checkpoint_s)
        bar.update(sketch.n_tokens)
        with bar:
            run_chunks(job, range(done, len(plan.chunks)), sink, on_batch=bar.update)
        store = write_sketch_store(writer, sketch, len(plan.sentences), job.final_extra(sketch.n_tokens))
        remove_checkpoint(writer.root)
        return store


@dataclass
class ExtractionJob:
    """Everything an extraction needs before it runs: the encoder, the plan and the manifest.

    Built once by :func:`prepare_extraction`; the single-process :func:`extract` and the
    distributed engine (:mod:`isoscope.distributed`) run the same job.
    """

    encoder: Any
    plan: Plan
    manifest: dict[str, Any]
    layers: list[int]
    dtype: np.dtype
    batch_size: int
    batch_tokens: int
    #: Rows of a ``--keep sample:N`` sketch (None: every vector is stored).
    keep_n: int | None = None

    def check_resume(self, writer: StoreWriter) -> None:
        """Refuse to resume a store whose committed chunks do not line up with this plan."""
        done = self.plan.chunks[writer.n_chunks - 1][1] if writer.n_chunks else 0
        if writer.n_chunks > len(self.plan.chunks) or int(self.plan.lengths[:done].sum()) != writer.n_tokens:
            raise StoreError(
                f"Store {writer.root} was started with other batch settings (or another isoscope "
                "version), so its chunks do not line up; resume with the same --batch-size, or "
                "use a new --out folder."
            )

    def final_extra(self, n_tokens: int) -> dict[str, Any] | None:
        """Manifest entries known only at the end (static tables: the words skipped)."""
        if self.encoder.model_type != "static":
            return None
        n_words = sum(len(s.split()) for s in self.plan.sentences)
        return {"n_oov_skipped": n_words - n_tokens}


def load_model(model: str | Any, *, device: str = "cpu", trust_remote_code: bool = False,
               max_length: int | None = None, linear_kernel: str | None = None) -> Any:
    """The encoder :func:`extract` runs: a static table, a Hugging Face model, or ``model`` itself.

    ``linear_kernel`` (``"torch"`` or ``"onednn-packed"``, as a manifest's
    ``extraction.linear_kernel`` records it) runs a model loaded by name on that kernel instead
    of timing both (:mod:`isoscope.models._onednn`), so that re-running a recorded extraction
    gives the same float32 sums; a packed kernel this machine lacks falls back to torch's.
    """
    from isoscope.models import is_static, load_encoder, load_static
    from isoscope.models.static import StaticEncoder

    if isinstance(model, (str, os.PathLike)) and is_static(model):
        return StaticEncoder(load_static(model))
    if not isinstance(model, (str, os.PathLike)):
        return model
    if linear_kernel is None:
        return load_encoder(str(model), device=device, trust_remote_code=trust_remote_code,
                            max_length=max_length)
    saved = os.environ.get("ISOSCOPE_ONEDNN")
    os.environ["ISOSCOPE_ONEDNN"] = "0"  # no timing: the kernel is given
    try:
        encoder = load_encoder(str(model), device=device, trust_remote_code=trust_remote_code,
                               max_length=max_length)
    finally:
        if saved is None:
            os.environ.pop("ISOSCOPE_ONEDNN", None)
        else:
            os.environ["ISOSCOPE_ONEDNN"] = saved
    if linear_kernel == "onednn-packed" and getattr(encoder, "model", None) is not None:
        from isoscope.models._onednn import pack_linear_layers

        if pack_linear_layers(encoder.model):
            encoder.linear_kernel = "onednn-packed"
        else:
            logging.getLogger(__name__).warning(
                "%s ran on oneDNN packed weights when it was extracted, which this machine "
                "lacks; running it on torch's kernel (float32 sums may differ in the last bits)",
                model)
    return encoder


def prepare_extraction(
    model: str | Any, corpus: str | Any, out: str | os.PathLike[str], *, max_sentences: int | None,
    max_tokens: int | None, layers: str | Sequence[int] | None, dtype: str, batch_size: int | None,
    batch_tokens: int | None, chunk_tokens: int, device: str, trust_remote_code: bool,
    max_length: int | None, seed: int, keep: str = "all",
) -> ExtractionJob:
    """Check the settings, load the corpus and model, tokenise and plan (see :func:`extract`)."""
    from isoscope.corpora import Corpus, content_hash, load_corpus
    from isoscope.sketch import parse_keep

    keep_n = parse_keep(keep)

    if dtype not in {"float16", "float32"}:
        raise InputError(f"--dtype must be float16 or float32, not {dtype!r}.")
    if any(v is not None and v < 1 for v in (batch_size, batch_tokens, chunk_tokens)):
        raise InputError("Batch sizes and chunk sizes must be positive.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StoreError(f"Output {out} exists and is not a folder.")
    if is_foreign_folder(out):
        raise StoreError(f"Output folder {out} is not empty and is not an isoscope store.")
    text = corpus if isinstance(corpus, Corpus) else load_corpus(str(corpus), max_sentences=max_sentences)
    if isinstance(corpus, Corpus) and max_sentences is not None:
        text = Corpus(corpus.name, corpus.sentences[:max_sentences], corpus.info)
    encoder = load_model(model, device=device, trust_remote_code=trust_remote_code, max_length=max_length)
    wanted = resolve_layers(layers, encoder.n_layers)
    packs = bool(getattr(encoder, "packs", False))
    batch_size = batch_size or (256 if packs else 64)
    batch_tokens = batch_tokens or (4096 if packs else 1024)
    plan = plan_extraction(encoder, text.sentences, max_tokens=max_tokens, chunk_tokens=chunk_tokens,
                           packed_batches=(batch_size, batch_tokens) if packs else None)
    log.debug("%s on %s: %d sentences, %d tokens in %d chunks; batches of at most %d sentences "
              "and %d tokens (%s); hidden states %s", encoder.name, text.name, len(plan.sentences),
              plan.n_tokens, len(plan.chunks), batch_size, batch_tokens,
              "packed rows" if packs else "padded", wanted)
    manifest: dict[str, Any] = {
        "model": encoder.name,
        "model_source": str(encoder.source),
        "model_type": encoder.model_type,
        "corpus": text.name,
        "corpus_info": text.info,
        # The text actually extracted: a resume or reuse with an edited corpus is refused.
        "corpus_sha256": content_hash(plan.sentences),
        # The weights actually used: a resume or reuse after the model changed is refused.
        "model_sha256": weights_hash(encoder),
        # A model passed in already loaded (isoscope.models.from_loaded): class, config and
        # weights hashes, dtypes, PEFT adapters, quantisation; None for one loaded by name.
        "model_origin": getattr(encoder, "origin", None),
        "n_layers": encoder.n_layers,
        "layers": wanted,
        "hidden_size": encoder.hidden_size,
        "dtype": dtype,
        "max_length": encoder.max_length,
        "max_sentences": max_sentences,
        "max_tokens": max_tokens,
        "planned_sentences": len(plan.sentences),
        "planned_tokens": plan.n_tokens,
        "n_truncated": int(plan.truncated.sum()),
        "truncation": "truncate",
        "chunk_tokens": chunk_tokens,
        "seed": seed,
        **({} if keep_n is None else {"keep": {"mode": "sample", "n": keep_n, "seed": seed}}),
        "versions": versions(),
        "extraction": {"batch_size": batch_size, "batch_tokens": batch_tokens, "device": device,
                       "linear_kernel": getattr(encoder, "linear_kernel", "torch"),
                       "linear_kernel_check": getattr(encoder, "linear_kernel_check", None),
                       "attention_grouping": getattr(encoder, "attention_grouping", None)},
    }
    np_dtype = np.dtype(np.float16 if dtype == "float16" else np.float32)
    return ExtractionJob(encoder, plan, manifest, wanted, np_dtype, batch_size, batch_tokens, keep_n)


def run_chunks(job: ExtractionJob, chunks: Any, sink: Any, *, first_sentence: int = 0,
               on_batch: Any = None) -> None:
    """Run chunks of a plan through the model and commit each to ``sink``, in order.

    This is the extraction loop, shared by :func:`extract` (``sink`` is the store's
    :class:`~isoscope.store.StoreWriter`) and the distributed workers (``sink`` collects a
    shard). Chunk c is committed (token table, ``sink.append``) on a second thread while the
    model runs chunk c + 1; at most one chunk waits, and commits stay in order, so a kill still
    leaves whole chunks only.

    Parameters
    ----------
    job : ExtractionJob
        The encoder, plan and settings.
    chunks : iterable of int
        Indices into ``job.plan.chunks``, increasing.
    sink : object
        Has ``append(arrays, tokens, n_sentences)``, called once per chunk in order.
    first_sentence : int
        Corpus index of the plan's first sentence (a worker's plan holds only its shard).
    on_batch : callable, optional
        Called with the tokens of each forward pass.
    """
    import torch

    plan, encoder = job.plan, job.encoder
    with torch.inference_mode(), ThreadPoolExecutor(1, "isoscope-commit") as committer:
        # wordfreq loads its tables on first use (about half a second): do it meanwhile.
        pending: Future[Any] | None = committer.submit(_warm_word_frequencies)
        for c in chunks:
            start, stop = plan.chunks[c]
            if plan.tokens is not None:
                tokens = plan.tokens.select(start, stop)
                arrays = _run_chunk_flat(encoder, tokens, job.layers, job.dtype, job.batch_size,
                                         job.batch_tokens, on_batch=on_batch)
                commit = functools.partial(_commit_flat, sink, encoder, plan.sentences[start:stop],
                                           tokens, first_sentence + start, arrays)
            else:
                arrays, table = _encode_chunk(
                    encoder, plan.sentences[start:stop], first_sentence + start, job.layers, job.dtype,
                    job.batch_size, job.batch_tokens, plan.lengths[start:stop], on_batch=on_batch,
                )
                commit = functools.partial(sink.append, arrays, table, stop - start)
            del arrays
            if pending is not None:
                pending.result()  # re-raises a failed commit here
            pending = committer.submit(_then_release_memory, commit)
        if pending is not None:
            pending.result()
