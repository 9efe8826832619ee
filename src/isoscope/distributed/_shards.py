"""Shards of a distributed extraction: their layout, their atomic commit and their merge.

A shard is a run of consecutive chunks of the extraction plan
(:func:`isoscope.extract.plan_extraction`); its id is its index in :func:`plan_shards`, which
depends only on the plan (the corpus text, the tokenizer, ``chunk_tokens``, the batch bounds)
and ``chunks_per_shard``, never on the number of workers, so a rerun finds the same shards.

A worker runs the single-process extraction loop (:func:`isoscope.extract.run_chunks`) on its
shard into a :class:`ShardBuffer` and returns the buffer's files (one Parquet token table per
chunk, one raw block per layer, with their BLAKE2b digests). The driver commits them under
``STORE/shards/`` with :func:`commit_shard`: the files go to a temporary folder, are checked
against the worker's digests and synced, and the folder is renamed to ``shard_NNNNNN``, so a
shard folder is either whole or absent. Committing a shard twice (a retried task) keeps the
first copy. The driver then merges committed shards in shard order into the store through its
:class:`~isoscope.store.StoreWriter` (:func:`merge_shard`), one ``append`` per chunk, so the
store's chunks, layer bytes and token table are the single-process ones, and deletes each shard
once the writer has counted its chunks.

Sketch stores (``--keep sample:N``): the worker runs the same loop into a :class:`ShardSketch`
instead, which folds each chunk into a :class:`~isoscope.sketch.StoreSketch` of the shard with
the chunk's *global* row ids (the shard's first row is the tokens of the shards before it), so
the keyed-hash sample of the shard holds exactly the rows a single process would keep from it.
The shard's files are then the sketch's (``sketch.safetensors``, role ``sketch``, and the
sample's token rows as Parquet, role ``sketch_tokens``; no pickle), its meta records ``keep``
(sample size and seed), and the driver folds committed shards into the store's sketch in shard
order with :func:`load_shard_sketch` and :meth:`~isoscope.sketch.StoreSketch.merge`, keeping
the shard folders until the sketch store is written (a driver killed before that reloads them).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from isoscope._jsonio import decode_json, write_json
from isoscope.errors import StoreError
from isoscope.store import StoreWriter, _bytes_digest, file_digest

SHARDS = "shards"
META = "meta.json"
SHARD_FORMAT = 1


@dataclass(frozen=True)
class Shard:
    """Chunks ``first_chunk`` to ``stop_chunk`` (exclusive) of a plan, and their sentences."""

    id: int
    first_chunk: int
    stop_chunk: int
    first_sentence: int
    stop_sentence: int
    n_tokens: int

    @property
    def name(self) -> str:
        """The shard's folder name under ``STORE/shards``."""
        return f"shard_{self.id:06d}"


def plan_shards(chunks: list[tuple[int, int]], lengths: np.ndarray, chunks_per_shard: int = 1) -> list[Shard]:
    """Cut a plan's chunks (sentence ranges) into shards of ``chunks_per_shard`` chunks.

    Parameters
    ----------
    chunks : list of (int, int)
        The plan's ``[start, stop)`` sentence ranges.
    lengths : ndarray
        Tokens per planned sentence.
    chunks_per_shard : int
        Chunks per shard (the unit of distribution and of driver-side recovery).

    Returns
    -------
    list of Shard
    """
    if chunks_per_shard < 1:
        raise ValueError("chunks_per_shard must be at least 1")
    ends = np.concatenate([[0], np.cumsum(lengths)])
    shards = []
    for i, c in enumerate(range(0, len(chunks), chunks_per_shard)):
        stop = min(c + chunks_per_shard, len(chunks))
        a, b = chunks[c][0], chunks[stop - 1][1]
        shards.append(Shard(i, c, stop, a, b, int(ends[b] - ends[a])))
    return shards


class ShardSketch:
    """The sink a worker's extraction loop folds its shard's chunks into, for a sketch store.

    Parameters
    ----------
    layers : list of int
        Hidden states extracted.
    hidden_size : int
        Width of the vectors.
    n, seed : int
        Sample size and seed of ``--keep sample:N`` (:class:`~isoscope.sketch.BottomKSample`).
    first_row : int
        Global row id of the shard's first token (tokens of the corpus before the shard).
    """

    def __init__(self, layers: list[int], hidden_size: int, n: int, seed: int, first_row: int) -> None:
        from isoscope.extract import SketchSink
        from isoscope.sketch import StoreSketch

        self.sketch = StoreSketch(layers, hidden_size, n, seed)
        self._sink = SketchSink(self.sketch, first_row)
        self.chunks: list[dict[str, int]] = []

    def append(self, arrays: dict[int, np.ndarray], tokens: Any, n_sentences: int) -> None:
        """Fold one chunk into the shard's sketch (its rows follow the previous chunk's)."""
        self._sink.append(arrays, tokens, n_sentences)
        self.chunks.append({"rows": int(tokens.num_rows), "sentences": int(n_sentences)})

    def files(self, first_chunk: int) -> list[tuple[str, str, bytes]]:
        """(name, role, bytes) of the shard's sketch file and its sample's token rows."""
        import tempfile

        from isoscope.sketch import SAMPLE_TOKENS, SKETCH_FILE

        with tempfile.TemporaryDirectory(prefix="isoscope-shard-") as tmp:
            self.sketch.save(tmp)
            return [(name, role, (Path(tmp) / name).read_bytes())
                    for name, role in ((SKETCH_FILE, "sketch"), (SAMPLE_TOKENS, "sketch_tokens"))
                    if (Path(tmp) / name).exists()]


class ShardBuffer:
    """The sink a worker's extraction loop commits its shard's chunks to, in memory.

    Parameters
    ----------
    layers : list of int
        Hidden states extracted.
    dtype : numpy dtype
        Storage type of the vectors.
    """

    def __init__(self, layers: list[int], dtype: Any) -> None:
        self.layers = list(layers)
        self.dtype = np.dtype(dtype)
        self.chunks: list[dict[str, int]] = []
        self._tables: list[bytes] = []
        self._blocks: dict[int, list[bytes]] = {layer: [] for layer in self.layers}

    def append(self, arrays: dict[int, np.ndarray], tokens: Any, n_sentences: int) -> None:
        """Keep one chunk: its token rows as Parquet bytes and its layer blocks as raw bytes."""
        import pyarrow.parquet as pq

        sink = io.BytesIO()
        pq.write_table(tokens, sink)
        self._tables.append(sink.getvalue())
        for layer in self.layers:
            block = np.ascontiguousarray(arrays[layer], dtype=self.dtype)
            self._blocks[layer].append(block.tobytes())
        self.chunks.append({"rows": int(tokens.num_rows), "sentences": int(n_sentences)})

    def files(self, first_chunk: int) -> list[tuple[str, str, bytes]]:
        """(name, role, bytes) of every file of the shard, chunk tables first."""
        out = [(f"chunk_{first_chunk + k:06d}.parquet", "tokens", t) for k, t in enumerate(self._tables)]
        out += [(f"layer_{layer:03d}.bin", "layer", b"".join(self._blocks[layer])) for layer in self.layers]
        return out


def pack_shard(shard: Shard, buffer: ShardBuffer | ShardSketch, worker: dict[str, Any],
               keep: dict[str, int] | None = None) -> tuple[str, bytes]:
    """A worker's result: the shard's meta as JSON text and its files concatenated.

    ``worker`` (who ran it, tokens, seconds) is carried in the meta for the driver's
    throughput record; ``keep`` (``{"n": N, "seed": S}`` of a sketch shard, None for a
    shard of every vector) lets a rerun tell shards of another sample apart.
    """
    import json

    files = buffer.files(shard.first_chunk)
    meta = {
        "format": SHARD_FORMAT,
        "shard": shard.id,
        "first_chunk": shard.first_chunk,
        "stop_chunk": shard.stop_chunk,
        "first_sentence": shard.first_sentence,
        "stop_sentence": shard.stop_sentence,
        "n_tokens": shard.n_tokens,
        "keep": keep,
        "chunks": buffer.chunks,
        "files": [{"name": n, "role": r, "bytes": len(b), "blake2b": _bytes_digest(b)} for n, r, b in files],
        "worker": worker,
    }
    return json.dumps(meta, sort_keys=True), b"".join(b for _, _, b in files)


def shards_dir(root: Path) -> Path:
    """``STORE/shards``, where committed shards wait for the driver's merge."""
    return Path(root) / SHARDS


def clean_temporary(root: Path) -> None:
    """Remove half-written shard folders (a driver killed while committing); the driver holds
    the store's lock, so no commit is under way."""
    folder = shards_dir(root)
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name.startswith("."):
                shutil.rmtree(path, ignore_errors=True)


def commit_shard(root: Path, meta_text: str, payload: bytes) -> bool:
    """Write a worker's shard under ``STORE/shards`` atomically (temporary folder, rename).

    Returns
    -------
    bool
        False when the shard was already committed (a retried task): the first copy is kept.

    Raises
    ------
    StoreError
        When the payload does not match the digests the worker recorded.
    """
    meta = decode_json(meta_text.encode("utf-8"))
    final = shards_dir(root) / f"shard_{int(meta['shard']):06d}"
    if final.exists():
        return False
    tmp = shards_dir(root) / f".{final.name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir(parents=True)
    try:
        offset = 0
        for rec in meta["files"]:
            data = memoryview(payload)[offset : offset + rec["bytes"]]
            offset += rec["bytes"]
            if _bytes_digest(data) != rec["blake2b"]:
                raise StoreError(
                    f"Shard {meta['shard']} of store {root} arrived damaged ({rec['name']} differs "
                    "from what its worker wrote); run the same command again."
                )
            with open(tmp / rec["name"], "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        write_json(tmp / META, meta, sort_keys=True)
        try:
            os.rename(tmp, final)
        except OSError:  # committed meanwhile by another copy of the task
            return False
        _fsync_dir(final.parent)
        return True
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def committed_shards(root: Path, shards: list[Shard], keep: dict[str, int] | None = None) -> set[int]:
    """Ids of the shards committed under ``STORE/shards`` that match this plan.

    A shard folder whose meta is unreadable or whose chunks are not the plan's (another
    ``chunks_per_shard`` or batch setting), or that holds another kind of shard than ``keep``
    asks for (see :func:`pack_shard`), is removed, so it is extracted again.
    """
    folder = shards_dir(root)
    by_id = {s.id: s for s in shards}
    found: set[int] = set()
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        match = re.fullmatch(r"shard_(\d{6})", path.name)
        if match is None:
            continue
        shard = by_id.get(int(match.group(1)))
        meta = _read_meta(path)
        if shard is None or meta is None or not _matches(meta, shard) or meta.get("keep") != keep:
            shutil.rmtree(path, ignore_errors=True)
            continue
        found.add(shard.id)
    return found


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        meta = decode_json((path / META).read_bytes())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == SHARD_FORMAT else None


def _matches(meta: dict[str, Any], shard: Shard) -> bool:
    keys = ("first_chunk", "stop_chunk", "first_sentence", "stop_sentence", "n_tokens")
    return all(meta.get(k) == getattr(shard, k) for k in keys)


def merge_shard(writer: StoreWriter, shard: Shard) -> None:
    """Append a committed shard's chunks that the store lacks, in order, then delete the shard.

    Each file is checked against the digest its worker recorded before anything is appended.
    Chunks the writer already counts (a driver killed in the middle of a merge) are skipped.

    Raises
    ------
    StoreError
        When the shard's files differ from their record; the shard is removed, so the same
        command run again extracts it anew.
    """
    import pyarrow.parquet as pq

    path = shards_dir(writer.root) / shard.name
    meta = _checked_meta(writer.root, shard)
    blocks = {layer: _layer_rows(path / f"layer_{layer:03d}.bin", writer.dtype, writer.hidden_size)
              for layer in writer.layers}
    row = 0
    for k, chunk in enumerate(meta["chunks"]):
        c = shard.first_chunk + k
        rows = int(chunk["rows"])
        if c >= writer.n_chunks:
            if c != writer.n_chunks:
                raise StoreError(f"Shard {shard.id} of store {writer.root} was merged out of order.")
            table = pq.read_table(path / f"chunk_{c:06d}.parquet")
            writer.append({layer: blocks[layer][row : row + rows] for layer in writer.layers}, table,
                          int(chunk["sentences"]))
        row += rows
    del blocks
    shutil.rmtree(path, ignore_errors=True)


def _checked_meta(root: Path, shard: Shard) -> dict[str, Any]:
    """A committed shard's meta, after each of its files is checked against its digest.

    A damaged shard is removed (so the same command run again extracts it anew) and reported.
    """
    path = shards_dir(root) / shard.name
    meta = _read_meta(path)
    if meta is None or not _matches(meta, shard):
        raise StoreError(f"Shard {shard.id} of store {root} is missing or damaged; run the same command again.")
    for rec in meta["files"]:
        name = rec["name"]
        if not (path / name).exists() or file_digest(path / name) != rec["blake2b"]:
            shutil.rmtree(path, ignore_errors=True)
            raise StoreError(
                f"Shard {shard.id} of store {root} is damaged ({name} differs from what its "
                "worker wrote); run the same command again to extract it anew."
            )
    return meta


def load_shard_sketch(root: Path, shard: Shard) -> Any:
    """The :class:`~isoscope.sketch.StoreSketch` of a committed sketch shard (files checked).

    The shard folder is kept: the driver removes it once the sketch store is written.

    Raises
    ------
    StoreError
        When the shard's files differ from their record (the shard is removed) or its sketch
        does not count the shard's tokens.
    """
    from isoscope.sketch import StoreSketch

    _checked_meta(root, shard)
    sketch = StoreSketch.load(shards_dir(root) / shard.name)
    if sketch.n_tokens != shard.n_tokens:
        shutil.rmtree(shards_dir(root) / shard.name, ignore_errors=True)
        raise StoreError(
            f"Shard {shard.id} of store {root} counts {sketch.n_tokens} tokens, not the plan's "
            f"{shard.n_tokens}; run the same command again to extract it anew."
        )
    return sketch


def _layer_rows(path: Path, dtype: np.dtype, width: int) -> np.ndarray:
    if path.stat().st_size == 0:  # np.memmap refuses an empty file
        return np.zeros((0, width), dtype)
    return np.memmap(path, dtype=dtype, mode="r").reshape(-1, width)


def remove_shards(root: Path) -> None:
    """Remove ``STORE/shards`` once every shard is merged."""
    shutil.rmtree(shards_dir(root), ignore_errors=True)
