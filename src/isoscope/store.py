"""The on-disk EmbeddingStore: token vectors of every layer, a token table and a manifest.

Layout of a store folder::

    manifest.json          what was extracted and how (model, corpus, layers, dtype, versions, ...)
    progress.json          committed chunks while writing (removed when complete)
    layers/layer_007.bin   one raw little-endian array per hidden state, rows = tokens, C order
    tokens.parquet         one row per token, same order as the layer arrays (written at the end)
    tokens/chunk_*.parquet token rows of committed chunks while writing
    .lock                  held (flock) by the one process writing

Chunks are committed atomically: layer rows are appended and flushed, the chunk's token rows
are written to a temporary file and renamed, and only then does ``progress.json`` (replaced
atomically) count the chunk. On resume, anything past the last committed chunk is cut off, so
a store killed at any moment continues where it stopped and finishes byte-identical.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from isoscope.errors import InputError, StoreError, StoreLockedError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PROGRESS = "progress.json"
TOKENS = "tokens.parquet"
TOKEN_COLUMNS = (
    "sentence_id", "position", "token_id", "token", "word_id", "word", "is_special", "word_count", "zipf",
)
_DTYPES: dict[str, np.dtype[Any]] = {"float16": np.dtype("<f2"), "float32": np.dtype("<f4")}


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _layer_file(root: Path, layer: int) -> Path:
    return root / "layers" / f"layer_{int(layer):03d}.bin"


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise StoreError(f"{path.parent} is not an isoscope store (no {path.name}).") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise StoreError(f"The {what} of store {path.parent} is damaged ({path.name} is not valid JSON).") from None
    if not isinstance(data, dict):
        raise StoreError(f"The {what} of store {path.parent} is damaged ({path.name} is not an object).")
    return data


#: What a store creation can leave before its manifest exists (a crash at that moment).
_CREATION_LEFTOVERS = {".lock", MANIFEST + ".tmp"}


def is_foreign_folder(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` is a folder holding files but not an isoscope store (or its start)."""
    root = Path(root)
    if not root.is_dir() or (root / MANIFEST).exists():
        return False
    return any(p.name not in _CREATION_LEFTOVERS for p in root.iterdir())


class StoreWriteError(StoreError):
    """The disk refused a write (full, over quota, file too large, read-only)."""

    exit_code = 3


@contextlib.contextmanager
def _disk_errors(root: Path) -> Iterator[None]:
    """Turn an OS write failure into one sentence that names the store and how to go on."""
    try:
        yield
    except OSError as exc:
        hint = ""
        if exc.errno in {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}:
            hint = "; free some space and run the same command again to resume it"
        raise StoreWriteError(f"Could not write store {root}: {exc.strerror or exc}{hint}.") from None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Refuse a manifest whose fields cannot describe a store (hand-edited or damaged)."""
    for key in ("layers", "hidden_size", "dtype"):
        if key not in manifest:
            raise StoreError(f"The manifest of store {root} is damaged (no {key!r}).")
    if not isinstance(manifest["dtype"], str) or manifest["dtype"] not in _DTYPES:
        raise StoreError(f"The manifest of store {root} names an unknown dtype.")
    layers = manifest["layers"]
    # Layer files are named from these integers, so only small non-negative ones are accepted.
    if (
        not isinstance(layers, list)
        or not layers
        or not all(_is_count(i) and i < 100_000 for i in layers)
        or len(set(layers)) != len(layers)
    ):
        raise StoreError(
            f"The manifest of store {root} is damaged "
            "(layers must be a list of distinct hidden-state indices)."
        )
    if not _is_count(manifest["hidden_size"]) or manifest["hidden_size"] == 0:
        raise StoreError(
            f"The manifest of store {root} is damaged (hidden_size must be a positive integer)."
        )
    if "n_tokens" in manifest and not _is_count(manifest["n_tokens"]):
        raise StoreError(f"The manifest of store {root} is damaged (n_tokens must be a count).")


def _read_progress(root: Path) -> dict[str, int]:
    progress = _read_json(root / PROGRESS, "progress record")
    keys = ("n_chunks", "n_tokens", "n_sentences")
    if not all(_is_count(progress.get(k)) for k in keys):
        raise StoreError(
            f"The progress record of store {root} is damaged ({PROGRESS} lacks valid counts)."
        )
    return {k: int(progress[k]) for k in keys}


class StoreLock:
    """An exclusive ``flock`` on ``DIR/.lock``; a second writer is refused with the holder's name."""

    def __init__(self, root: Path) -> None:
        self.path = root / ".lock"
        self._fh: Any = None

    def acquire(self) -> None:
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise StoreLockedError(
                f"Store {self.path.parent} is being written by {holder}; wait for it to finish."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StoreWriter:
    """Append chunks of token vectors to a store, crash-safely. Use as a context manager.

    Parameters
    ----------
    root : path
        Store folder (created if missing; must be empty or an unfinished store with the same
        manifest settings).
    manifest : dict
        Settings of the extraction; must contain ``layers`` (list of int), ``hidden_size`` and
        ``dtype``. Resuming with different settings is refused.
    """

    def __init__(self, root: str | os.PathLike[str], manifest: dict[str, Any]) -> None:
        self.root = Path(root)
        self.manifest = dict(manifest)
        self.layers = [int(i) for i in manifest["layers"]]
        self.hidden_size = int(manifest["hidden_size"])
        if manifest["dtype"] not in _DTYPES:
            raise InputError(f"dtype must be float16 or float32, not {manifest['dtype']!r}.")
        self.dtype = _DTYPES[manifest["dtype"]]
        self.lock = StoreLock(self.root)
        self.n_chunks = 0
        self.n_tokens = 0
        self.n_sentences = 0
        # Word counts and Zipf frequencies of the chunks this writer committed (the rest are
        # counted from their files when the store is finalised).
        self._counts: Any = None
        self._counted_chunks: set[int] = set()
        self._zipf: dict[str, float] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> StoreWriter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Lock the folder and create a new store or prepare to resume an unfinished one."""
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"Output {self.root} exists and is not a folder.")
        if is_foreign_folder(self.root):
            raise StoreError(f"Output folder {self.root} is not empty and is not an isoscope store.")
        with _disk_errors(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()
        try:
            with _disk_errors(self.root):
                self._open_locked()
        except BaseException:
            self.lock.release()
            raise

    def _open_locked(self) -> None:
        if (self.root / MANIFEST).exists():
            self._prepare_resume()
        else:
            # The manifest goes first, so a crash at any later moment leaves a store that the
            # same command resumes (rather than a folder it refuses as foreign).
            _atomic_write_json(self.root / MANIFEST, {**self.manifest, "complete": False})
            self._start()

    def _start(self) -> None:
        """Create (or reset) the empty layer files, chunk folder and progress record."""
        (self.root / "layers").mkdir(exist_ok=True)
        (self.root / "tokens").mkdir(exist_ok=True)
        for chunk in (self.root / "tokens").glob("chunk_*"):
            chunk.unlink()
        for layer in self.layers:
            _layer_file(self.root, layer).write_bytes(b"")
        _atomic_write_json(self.root / PROGRESS, {"n_chunks": 0, "n_tokens": 0, "n_sentences": 0})

    def close(self) -> None:
        """Release the lock (the store stays resumable if not finalised)."""
        self.lock.release()

    @property
    def complete(self) -> bool:
        """Whether the store was already finished."""
        return bool(_read_json(self.root / MANIFEST, "manifest").get("complete"))

    def _prepare_resume(self) -> None:
        old = _read_json(self.root / MANIFEST, "manifest")
        keys = [k for k in self.manifest if k not in {"versions", "extraction"}]
        changed = [k for k in keys if old.get(k) != self.manifest.get(k)]
        if changed:
            raise StoreError(
                f"Store {self.root} was made with other settings ({', '.join(sorted(changed))}); "
                "use a new --out folder."
            )
        if old.get("complete"):
            # A crash between marking the store complete and removing the chunk files.
            for leftover in (self.root / "tokens").glob("chunk_*"):
                leftover.unlink()
            with contextlib.suppress(OSError):
                (self.root / "tokens").rmdir()
                (self.root / PROGRESS).unlink()
            return
        if not (self.root / PROGRESS).exists():
            # Creation stopped between the manifest and the progress record: nothing committed.
            self._start()
            return
        progress = _read_progress(self.root)
        self.n_chunks = int(progress["n_chunks"])
        self.n_tokens = int(progress["n_tokens"])
        self.n_sentences = int(progress["n_sentences"])
        row_bytes = self.hidden_size * self.dtype.itemsize
        for layer in self.layers:
            path = _layer_file(self.root, layer)
            if not path.exists() or path.stat().st_size < self.n_tokens * row_bytes:
                raise StoreError(f"Store {self.root} is damaged: {path.name} is shorter than its committed rows.")
            # Cut rows written after the last commit (a kill mid-chunk).
            os.truncate(path, self.n_tokens * row_bytes)
        for chunk in (self.root / "tokens").glob("chunk_*"):
            match = re.fullmatch(r"chunk_(\d+)\.parquet", chunk.name)
            if match is None or int(match.group(1)) >= self.n_chunks:
                chunk.unlink()

    # -- writing -----------------------------------------------------------------------------
    def append(self, arrays: dict[int, np.ndarray], tokens: Any, n_sentences: int) -> None:
        """Commit one chunk.

        Parameters
        ----------
        arrays : dict of int to ndarray
            Hidden-state index to an (n_rows, hidden_size) array, the same rows for every layer.
        tokens : pyarrow.Table
            The chunk's token rows (columns of the token table except word_count and zipf).
        n_sentences : int
            Sentences in the chunk.
        """
        with _disk_errors(self.root):
            self._append(arrays, tokens, n_sentences)

    def _append(self, arrays: dict[int, np.ndarray], tokens: Any, n_sentences: int) -> None:
        import pyarrow.parquet as pq

        n_rows = tokens.num_rows
        blocks = {}
        for layer in self.layers:
            # Checked before anything is written, so a store never holds NaN or Inf vectors.
            block = fit_dtype(arrays[layer], self.dtype, layer)
            if block.shape != (n_rows, self.hidden_size):
                raise StoreError(f"Chunk of layer {layer} has shape {block.shape}, expected ({n_rows}, {self.hidden_size}).")
            blocks[layer] = block
        for layer, block in blocks.items():
            with open(_layer_file(self.root, layer), "r+b") as fh:
                fh.seek(self.n_tokens * self.hidden_size * self.dtype.itemsize)
                fh.write(memoryview(block).cast("B"))
                fh.flush()
                os.fsync(fh.fileno())
        final = self.root / "tokens" / f"chunk_{self.n_chunks:06d}.parquet"
        tmp = final.with_name(final.name + ".tmp")
        pq.write_table(tokens, tmp)
        os.replace(tmp, final)
        self._count_words(self.n_chunks, tokens)
        self.n_chunks += 1
        self.n_tokens += n_rows
        self.n_sentences += n_sentences
        _atomic_write_json(
            self.root / PROGRESS,
            {"n_chunks": self.n_chunks, "n_tokens": self.n_tokens, "n_sentences": self.n_sentences},
        )

    def _count_words(self, chunk: int, tokens: Any) -> None:
        part = word_occurrences(tokens)
        self._counts = part if self._counts is None else self._counts.add(part, fill_value=0)
        self._zipf.update(zipf_frequencies([w for w in part.index if w not in self._zipf]))
        self._counted_chunks.add(chunk)

    def finalize(self, extra: dict[str, Any] | None = None) -> EmbeddingStore:
        """Write the full token table with word frequencies and mark the store complete."""
        with _disk_errors(self.root):
            return self._finalize(extra)

    def _finalize(self, extra: dict[str, Any] | None) -> EmbeddingStore:
        import pyarrow.parquet as pq

        chunks = sorted((self.root / "tokens").glob("chunk_*.parquet"))
        if self.n_tokens == 0:
            raise InputError("No tokens were extracted; the corpus is empty after tokenisation.")
        # Corpus-wide word counts (kept as chunks were committed; chunks of an earlier, killed
        # run are counted from their files), then each chunk with its frequency columns as one
        # row group: memory does not grow with the corpus.
        columns = ["sentence_id", "word_id", "word", "is_special"]
        for i, c in enumerate(chunks):
            if i not in self._counted_chunks:
                self._count_words(i, pq.read_table(c, columns=columns))
        counts = self._counts.astype("int64")
        zipf = self._zipf
        tmp = self.root / (TOKENS + ".tmp")
        writer = None
        try:
            for c in chunks:
                table = add_word_frequencies(pq.read_table(c), counts, zipf)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        os.replace(tmp, self.root / TOKENS)
        manifest = {
            **self.manifest,
            **(extra or {}),
            "n_tokens": self.n_tokens,
            "n_sentences": self.n_sentences,
            "format_version": FORMAT_VERSION,
            "complete": True,
        }
        _atomic_write_json(self.root / MANIFEST, manifest)
        for c in chunks:
            c.unlink()
        with contextlib.suppress(OSError):
            (self.root / "tokens").rmdir()
            (self.root / PROGRESS).unlink()
        return EmbeddingStore(self.root)


def all_finite(block: np.ndarray) -> bool:
    """Whether a float array holds no NaN or Inf (float16 checked on its bits, 4x faster)."""
    if block.size == 0:
        return True
    if block.dtype == np.float16 and block.flags.c_contiguous:
        # An all-ones exponent (0x7C00) marks Inf and NaN.
        return int((block.view(np.uint16) & 0x7C00).max()) != 0x7C00
    return bool(np.isfinite(block).all())


def fit_dtype(source: Any, dtype: Any, layer: int) -> np.ndarray:
    """Cast a layer block to the storage type, refusing NaN/Inf and values the type cannot hold.

    Raises
    ------
    InputError
        One sentence naming the layer: non-finite model output, or values beyond the range of
        ``dtype`` (float16 tops out at 65504) with the fix.
    """
    source = np.asarray(source)
    dtype = np.dtype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        block = np.ascontiguousarray(source, dtype=dtype)
    if all_finite(block):
        return block
    finite = np.isfinite(block)
    if np.isfinite(source).all():
        raise InputError(
            f"Layer {layer} holds values beyond the {dtype.name} range (largest |x| = "
            f"{float(np.abs(source).max()):.3g}); extract again with --dtype float32 into a new "
            "--out folder."
        )
    bad = int((~finite.all(axis=1)).sum()) if finite.ndim == 2 else int((~finite).sum())
    rows = source.shape[0] if source.ndim else 1
    raise InputError(
        f"Layer {layer} holds NaN or Inf values in {bad} of {rows} vectors, so it cannot be stored."
    )


def word_occurrences(table: Any) -> Any:
    """Occurrences of each lower-cased word in a token table, as a pandas Series.

    A word counts once per (sentence, word) pair, not once per sub-word token. Tables of whole
    sentences add up: the counts of a corpus are the sum of its chunks' counts.
    """
    df = table.select(["sentence_id", "word_id", "word", "is_special"]).to_pandas()
    real = ~df["is_special"].to_numpy() & (df["word_id"].to_numpy() >= 0)
    occ = df.loc[real, ["sentence_id", "word_id", "word"]].drop_duplicates(["sentence_id", "word_id"])
    return occ["word"].str.lower().value_counts()


def zipf_frequencies(words: Any) -> dict[str, float]:
    """wordfreq's English Zipf frequency (log10 per billion words) of each word."""
    try:
        from wordfreq import zipf_frequency
    except ImportError:  # pragma: no cover - wordfreq is a core dependency
        return {}
    return {w: float(zipf_frequency(w, "en")) for w in words}


def add_word_frequencies(table: Any, counts: Any = None, zipf: dict[str, float] | None = None) -> Any:
    """Add ``word_count`` (corpus count of the lower-cased word) and ``zipf`` (wordfreq) columns.

    Parameters
    ----------
    table : pyarrow.Table
        Token rows (the columns written by extraction).
    counts : pandas.Series, optional
        Corpus-wide :func:`word_occurrences`, when ``table`` is one chunk of a larger corpus
        (default: counted in ``table`` itself).
    zipf : dict, optional
        :func:`zipf_frequencies` of the words in ``counts`` (default: looked up).
    """
    import pyarrow as pa

    counts = word_occurrences(table) if counts is None else counts
    zipf = zipf_frequencies(counts.index) if zipf is None else zipf
    df = table.select(["word_id", "word", "is_special"]).to_pandas()
    lower = df["word"].str.lower()
    real = ~df["is_special"].to_numpy() & (df["word_id"].to_numpy() >= 0)
    word_count = np.array(lower.map(counts).fillna(0).astype("int64"))
    word_count[~real] = 0
    zipf_col = np.array(lower.map(zipf).fillna(0.0).astype("float32"))
    zipf_col[~real] = 0.0
    table = table.append_column("word_count", pa.array(word_count, type=pa.int64()))
    return table.append_column("zipf", pa.array(zipf_col, type=pa.float32()))


class EmbeddingStore:
    """Read access to a finished store.

    Parameters
    ----------
    path : path
        The store folder.
    allow_incomplete : bool
        Open a store whose extraction has not finished (reads its committed rows only).

    Examples
    --------
    >>> store = open_store("runs/minilm/store")      # doctest: +SKIP
    >>> X = store.layer(6)                           # (n_tokens, 384) float16 memmap
    >>> tokens = store.tokens()                      # pandas DataFrame, same row order
    """

    def __init__(self, path: str | os.PathLike[str], *, allow_incomplete: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise StoreError(f"Store {self.path} does not exist or is not a folder.")
        self.manifest = _read_json(self.path / MANIFEST, "manifest")
        _check_manifest(self.path, self.manifest)
        if not self.manifest.get("complete"):
            if not allow_incomplete:
                raise StoreError(
                    f"Store {self.path} is incomplete (its extraction stopped); run the same extract "
                    "command again to resume it."
                )
            progress = _read_progress(self.path)
            self.manifest = {**self.manifest, **progress}
        self.layers: list[int] = [int(i) for i in self.manifest["layers"]]
        self.hidden_size = int(self.manifest["hidden_size"])
        self.n_tokens = int(self.manifest.get("n_tokens", 0))
        self.dtype = _DTYPES[self.manifest["dtype"]]
        self._tokens: Any = None

    def __repr__(self) -> str:
        m = self.manifest
        return (
            f"EmbeddingStore({str(self.path)!r}, model={m.get('model')!r}, corpus={m.get('corpus')!r}, "
            f"n_tokens={self.n_tokens}, layers={self.layers}, dtype={m['dtype']})"
        )

    @property
    def model_type(self) -> str:
        """``encoder``, ``decoder`` or ``static``."""
        return str(self.manifest.get("model_type", "encoder"))

    def _check_layer(self, layer: int) -> int:
        layer = int(layer)
        if layer < 0:
            layer = self.layers[layer] if -len(self.layers) <= layer else layer
        if layer not in self.layers:
            raise InputError(f"Layer {layer} is not in store {self.path} (stored layers: {self.layers}).")
        return layer

    def layer(self, layer: int) -> np.ndarray:
        """One hidden state as a read-only memory map of shape (n_tokens, hidden_size).

        ``layer`` is a hidden-state index (0 = embeddings); negative values count from the last
        stored layer.
        """
        layer = self._check_layer(layer)
        path = _layer_file(self.path, layer)
        # Resolve and confine to the store: a manifest cannot point outside the folder.
        if not path.resolve().is_relative_to(self.path.resolve()):
            raise StoreError(f"The manifest of store {self.path} points outside the store.")
        expected = self.n_tokens * self.hidden_size * self.dtype.itemsize
        if not path.exists() or path.stat().st_size < expected:
            raise StoreError(f"Store {self.path} is damaged: {path.name} is shorter than the manifest says.")
        if self.n_tokens == 0:
            return np.zeros((0, self.hidden_size), dtype=self.dtype)
        return np.memmap(path, dtype=self.dtype, mode="r", shape=(self.n_tokens, self.hidden_size))

    def iter_layer(self, layer: int, chunk_rows: int = 65536) -> Iterator[np.ndarray]:
        """Yield float32 row blocks of a layer (for streaming measures)."""
        data = self.layer(layer)
        for start in range(0, data.shape[0], chunk_rows):
            yield np.asarray(data[start : start + chunk_rows], dtype=np.float32)

    def tokens(self, columns: list[str] | None = None) -> Any:
        """The token table as a pandas DataFrame (one row per token, in layer-array order)."""
        import pyarrow.parquet as pq

        if self._tokens is None:
            path = self.path / TOKENS
            if path.exists() and not path.resolve().is_relative_to(self.path.resolve()):
                raise StoreError(f"The token table of store {self.path} points outside the store.")
            try:
                if path.exists():
                    table = pq.read_table(path)
                else:
                    import pyarrow as pa

                    chunks = sorted((self.path / "tokens").glob("chunk_*.parquet"))
                    if not chunks:
                        raise StoreError(
                            f"Store {self.path} is damaged: its token table {TOKENS} is missing."
                        )
                    table = add_word_frequencies(pa.concat_tables([pq.read_table(c) for c in chunks]))
            except (OSError, ValueError) as exc:
                raise StoreError(f"The token table of store {self.path} is damaged ({exc}).") from None
            if table.num_rows != self.n_tokens:
                raise StoreError(
                    f"Store {self.path} is damaged: {table.num_rows} token rows for {self.n_tokens} vectors."
                )
            self._tokens = table.to_pandas()
        return self._tokens if columns is None else self._tokens[list(columns)]

    def row_mask(self, include_special: bool = False, drop_position_zero: bool = False) -> np.ndarray:
        """Boolean mask over rows: which tokens a measure uses."""
        df = self.tokens(["is_special", "position"])
        mask = np.ones(len(df), dtype=bool)
        if not include_special:
            mask &= ~df["is_special"].to_numpy()
        if drop_position_zero:
            mask &= df["position"].to_numpy() != 0
        return mask

    def sample_indices(
        self, n: int | None, seed: int = 0, include_special: bool = False, drop_position_zero: bool = False
    ) -> np.ndarray:
        """Sorted row ids of a seeded uniform sample without replacement (all rows when n is None)."""
        candidates = np.flatnonzero(self.row_mask(include_special, drop_position_zero))
        if n is None or n >= len(candidates):
            return candidates
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(candidates, size=int(n), replace=False))

    def sample(
        self,
        layer: int,
        n: int | None,
        seed: int = 0,
        include_special: bool = False,
        drop_position_zero: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """A seeded sample of a layer's token vectors as float32, and their row ids."""
        rows = self.sample_indices(n, seed, include_special, drop_position_zero)
        return np.asarray(self.layer(layer)[rows], dtype=np.float32), rows

    def word_vectors(
        self, layer: int, pooling: str = "mean", rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, Any]:
        """One vector per word occurrence, pooled over its sub-word tokens.

        Parameters
        ----------
        layer : int
            Hidden-state index.
        pooling : {"mean", "first", "last"}
            How sub-word vectors are combined.
        rows : ndarray, optional
            Restrict to these token rows (special tokens are always excluded).

        Returns
        -------
        X : ndarray of shape (n_words, hidden_size)
        words : pandas.DataFrame
            ``sentence_id``, ``word_id``, ``word``, ``word_count``, ``zipf``, ``n_subwords``.
        """
        if pooling not in {"mean", "first", "last"}:
            raise InputError(f"Word pooling must be mean, first or last, not {pooling!r}.")
        df = self.tokens(["sentence_id", "word_id", "word", "is_special", "word_count", "zipf"])
        keep = ~df["is_special"].to_numpy() & (df["word_id"].to_numpy() >= 0)
        idx = np.flatnonzero(keep) if rows is None else np.asarray(rows)[keep[np.asarray(rows)]]
        sub = df.iloc[idx]
        key = sub["sentence_id"].to_numpy().astype(np.int64) << 32 | sub["word_id"].to_numpy().astype(np.int64)
        # Rows are in sentence/position order, so each word's sub-words are consecutive.
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        data = self.layer(layer)
        X = np.asarray(data[idx], dtype=np.float32)
        if pooling == "mean":
            sums = np.add.reduceat(X, starts, axis=0)
            counts = np.diff(np.r_[starts, len(idx)])
            pooled = sums / counts[:, None]
        elif pooling == "first":
            pooled = X[starts]
        else:
            pooled = X[np.r_[starts[1:], len(idx)] - 1]
        words = sub.iloc[starts][["sentence_id", "word_id", "word", "word_count", "zipf"]].reset_index(drop=True)
        words["n_subwords"] = np.diff(np.r_[starts, len(idx)])
        return pooled.astype(np.float32, copy=False), words

    def occurrences(self, word: str, layer: int, pooling: str = "mean") -> np.ndarray:
        """Vectors of every occurrence of ``word`` (case-insensitive) at ``layer``."""
        X, words = self.word_vectors(layer, pooling)
        return X[(words["word"].str.lower() == word.lower()).to_numpy()]


def open_store(path: str | os.PathLike[str], *, allow_incomplete: bool = False) -> EmbeddingStore:
    """Open a finished store (see :class:`EmbeddingStore`)."""
    return EmbeddingStore(path, allow_incomplete=allow_incomplete)


def write_store(
    path: str | os.PathLike[str],
    arrays: dict[int, np.ndarray],
    tokens: Any = None,
    *,
    dtype: str = "float32",
    **manifest_fields: Any,
) -> EmbeddingStore:
    """Build a complete store directly from arrays (own vectors, tests).

    Parameters
    ----------
    path : path
        New store folder (must not exist or be empty).
    arrays : dict of int to ndarray
        Hidden-state index to an (n, d) array; all of the same shape.
    tokens : pandas.DataFrame, optional
        Token table rows. Missing columns get defaults: ``sentence_id`` = row, ``position`` 0,
        ``token_id`` -1, ``token``/``word`` "", ``word_id`` 0, ``is_special`` False; frequencies
        are computed from ``word``.
    dtype : {"float32", "float16"}
        Storage type.
    **manifest_fields
        Extra manifest entries (``model``, ``corpus``, ``model_type`` ...).
    """
    import pandas as pd
    import pyarrow as pa

    if not arrays:
        raise InputError("write_store needs at least one layer array.")
    layers = sorted(int(k) for k in arrays)
    shapes = {np.asarray(arrays[k]).shape for k in arrays}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise InputError(f"All layer arrays must be 2-D with the same shape, got {sorted(shapes)}.")
    n, d = next(iter(shapes))
    df = pd.DataFrame(index=range(n)) if tokens is None else pd.DataFrame(tokens).reset_index(drop=True)
    if len(df) != n:
        raise InputError(f"The token table has {len(df)} rows but the arrays have {n}.")
    defaults: dict[str, Any] = {
        "sentence_id": np.arange(n), "position": 0, "token_id": -1, "token": "", "word_id": 0,
        "word": "", "is_special": False,
    }
    for col, value in defaults.items():
        if col not in df:
            df[col] = value
    types = {"sentence_id": "int32", "position": "int32", "token_id": "int32", "word_id": "int32",
             "is_special": "bool", "token": "str", "word": "str"}
    table = pa.Table.from_pandas(df[list(types)].astype(types), preserve_index=False)
    manifest = {
        "model": "arrays", "model_type": "encoder", "corpus": "arrays", "seed": None,
        **manifest_fields,
        "layers": layers, "n_layers": manifest_fields.get("n_layers", max(layers) + 1),
        "hidden_size": int(d), "dtype": dtype,
    }
    with StoreWriter(path, manifest) as writer:
        n_sent = int(df["sentence_id"].nunique())
        writer.append({k: np.asarray(arrays[k]) for k in layers}, table, n_sent)
        return writer.finalize()
