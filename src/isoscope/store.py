"""The on-disk EmbeddingStore: token vectors of every layer, a token table and a manifest.

Layout of a store folder::

    manifest.json          what was extracted and how (model, corpus, layers, dtype, versions, ...)
    progress.json          committed chunks while writing (removed when complete)
    layers/layer_007.bin   one raw little-endian array per hidden state, rows = tokens, C order
    tokens.parquet         one row per token, same order as the layer arrays (written at the end)
    tokens/chunk_*.parquet token rows of committed chunks while writing
    tokens/chunk_*.sums.json  BLAKE2b checksums of what each committed chunk wrote
    .lock                  held (flock) by the one process writing

Chunks are committed atomically: layer rows are appended and flushed, the chunk's token rows
are written to a temporary file and renamed, the checksums of both are recorded, and only then
does ``progress.json`` (replaced atomically) count the chunk. On resume, the committed chunks are
checked against their checksums and anything past the last one is cut off, so a store killed at
any moment continues where it stopped and finishes byte-identical.

The store is checked, not trusted. The manifest is validated against a versioned schema
(:class:`Manifest`; ``format_version`` is required) and the token table against
:func:`token_schema`. Every open checks that each layer file holds exactly rows x width x itemsize
bytes and that the token table has one row per vector; :meth:`EmbeddingStore.verify` re-reads
everything against the BLAKE2b checksums recorded at finalisation (``isoscope info --verify``).

Format versions: 1 is a complete store written before checksums (still read: sizes are
checked, checksums cannot be); 2 (current) records ``format_version`` from the first write, a
shape, size and checksum per layer file and for the token table, and the corpus's content hash.
An unfinished store of format 1 carries no ``format_version`` and is refused (extract it again).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)

from isoscope._jsonio import decode_json, write_atomic, write_json
from isoscope.errors import InputError, StoreError, StoreLockedError

#: The format this code writes; :data:`READABLE_FORMATS` are the ones it reads.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
#: Manifest fields that do not define what a store holds: resuming or reusing a store with other
#: values is allowed (the seed is recorded but extraction never uses it).
NOT_IDENTITY = frozenset({"versions", "extraction", "seed", "format_version"})
MANIFEST = "manifest.json"
PROGRESS = "progress.json"
TOKENS = "tokens.parquet"
TOKEN_COLUMNS = (
    "sentence_id", "position", "token_id", "token", "word_id", "word", "is_special", "word_count", "zipf",
)
_DTYPES: dict[str, np.dtype[Any]] = {"float16": np.dtype("<f2"), "float32": np.dtype("<f4")}


def token_schema() -> Any:
    """The pyarrow schema of ``tokens.parquet``: column names, types, and no missing values.

    Chunk files hold its first seven columns (``word_count`` and ``zipf`` are added at
    finalisation). Text columns may also be ``large_string`` (as pandas writes them).
    """
    import pyarrow as pa

    return pa.schema([
        pa.field("sentence_id", pa.int32(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("token_id", pa.int32(), nullable=False),
        pa.field("token", pa.string(), nullable=False),
        pa.field("word_id", pa.int32(), nullable=False),
        pa.field("word", pa.string(), nullable=False),
        pa.field("is_special", pa.bool_(), nullable=False),
        pa.field("word_count", pa.int64(), nullable=False),
        pa.field("zipf", pa.float32(), nullable=False),
    ])


# -- manifest schema -------------------------------------------------------------------------
_Count = Annotated[StrictInt, Field(ge=0)]
_Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
_DtypeName = Literal["float16", "float32"]


class FileRecord(BaseModel):
    """Size and BLAKE2b checksum (32-byte digest, hex) of one file, recorded at finalisation."""

    model_config = ConfigDict(extra="forbid")

    bytes: _Count
    blake2b: _Hex


class LayerRecord(FileRecord):
    """A layer file's record: its shape and dtype as written, with its size and checksum."""

    shape: tuple[_Count, _Count]
    dtype: _DtypeName


class TableRecord(FileRecord):
    """The token table's record: its rows, with its size and checksum."""

    rows: _Count


class Manifest(BaseModel):
    """Schema of ``manifest.json`` (format 2; format 1 lacks the records and the corpus hash).

    Only the fields that describe the files are typed here; the others (model, corpus, versions,
    extraction settings, ...) are kept as they are.
    """

    model_config = ConfigDict(extra="allow")

    format_version: StrictInt
    complete: StrictBool
    layers: Annotated[list[Annotated[StrictInt, Field(ge=0, lt=100_000)]], Field(min_length=1)]
    hidden_size: Annotated[StrictInt, Field(gt=0)]
    dtype: _DtypeName
    n_layers: Annotated[StrictInt, Field(gt=0)] | None = None
    n_tokens: _Count | None = None
    n_sentences: _Count | None = None
    corpus_sha256: _Hex | None = None
    model_sha256: _Hex | None = None
    layer_files: dict[str, LayerRecord] | None = None
    tokens_file: TableRecord | None = None
    #: The accumulators of a sketch store (``keep`` mode ``sample``; see :mod:`isoscope.sketch`).
    sketch_file: FileRecord | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if len(set(self.layers)) != len(self.layers):
            raise ValueError("layers must be distinct hidden-state indices")
        if self.n_layers is not None and max(self.layers) >= self.n_layers:
            raise ValueError(f"layer {max(self.layers)} is beyond the model's {self.n_layers} hidden states")
        if not self.complete:
            return self
        if self.n_tokens is None:
            raise ValueError("a complete store must record n_tokens")
        if self.format_version >= 2 and (self.layer_files is None or self.tokens_file is None):
            raise ValueError("a complete store of format 2 must record layer_files and tokens_file")
        if self.layer_files is not None:
            if set(self.layer_files) != {str(i) for i in self.layers}:
                raise ValueError(
                    f"layers lists {len(self.layers)} layers but layer_files records {len(self.layer_files)}"
                )
            shape = (self.n_tokens, self.hidden_size)
            for key, rec in sorted(self.layer_files.items()):
                if rec.shape != shape or rec.dtype != self.dtype:
                    raise ValueError(
                        f"layer {key} was written as {list(rec.shape)} {rec.dtype}, but the manifest "
                        f"says {list(shape)} {self.dtype}"
                    )
                if rec.bytes != self.n_tokens * self.hidden_size * _DTYPES[self.dtype].itemsize:
                    raise ValueError(f"the recorded size of layer {key} does not match its shape")
        if self.tokens_file is not None and self.tokens_file.rows != self.n_tokens:
            raise ValueError(f"the token table records {self.tokens_file.rows} rows for {self.n_tokens} vectors")
        return self


def _describe_error(error: Any) -> str:
    """One pydantic error as a short phrase: where, and what was expected."""
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".") or "manifest"
    kind, ctx = error["type"], error.get("ctx") or {}
    value = repr(error.get("input"))
    value = value if len(value) <= 40 else value[:37] + "..."
    if kind == "missing":
        return f"no {loc!r}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind.startswith("int_"):
        return f"{loc} must be an integer, not {value}"
    if kind in {"list_type", "dict_type", "string_type", "tuple_type"}:
        return f"{loc} must be a {kind.split('_')[0].replace('dict', 'mapping')}, not {value}"
    if kind.startswith("bool_"):
        return f"{loc} must be true or false, not {value}"
    if kind == "literal_error":
        return f"{loc} must be {ctx.get('expected')}, not {value}"
    if kind in {"greater_than", "greater_than_equal", "less_than"}:
        bound = {"greater_than": "above", "greater_than_equal": "at least", "less_than": "below"}[kind]
        limit = ctx.get("gt", ctx.get("ge", ctx.get("lt")))
        return f"{loc} must be {bound} {limit}, not {value}"
    return f"{loc}: {error['msg'].lower()}"


def _parse_manifest(root: Path, data: dict[str, Any]) -> Manifest:
    """Validate a manifest read from ``root``; every failure is one sentence naming the store."""
    version = data.get("format_version")
    if "format_version" not in data:
        raise StoreError(
            f"The manifest of store {root} has no format_version (an unfinished store of an older "
            "isoscope, or a damaged one); delete it and extract it again."
        )
    if isinstance(version, int) and not isinstance(version, bool) and version not in READABLE_FORMATS:
        from isoscope import __version__

        versions = data.get("versions")
        writer = versions.get("isoscope") if isinstance(versions, dict) else None
        by = f"isoscope {writer}" if isinstance(writer, str) else "an isoscope version that knows it"
        raise StoreError(
            f"Store {root} has format version {version}, which isoscope {__version__} cannot read "
            f"(it reads {', '.join(map(str, READABLE_FORMATS))}); open it with {by}."
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise StoreError(
            f"The manifest of store {root} is damaged ({_describe_error(exc.errors()[0])})."
        ) from None


def _one_line(exc: BaseException) -> str:
    """A library's error message on one line (pyarrow's span several)."""
    return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__


def _damaged(root: Path, detail: str) -> StoreError:
    return StoreError(f"Store {root} is damaged ({detail}); delete it and extract it again.")


def file_digest(path: Path, start: int = 0, length: int | None = None) -> str:
    """BLAKE2b (32-byte digest, hex) of a file, or of ``length`` bytes from ``start``."""
    import hashlib

    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as fh:
        fh.seek(start)
        left = length
        while left is None or left > 0:
            block = fh.read(1 << 23 if left is None else min(1 << 23, left))
            if not block:
                break
            h.update(block)
            if left is not None:
                left -= len(block)
    return h.hexdigest()


def _bytes_digest(data: Any) -> str:
    import hashlib

    return hashlib.blake2b(memoryview(data).cast("B"), digest_size=32).hexdigest()


def _check_token_schema(root: Path, schema: Any, columns: Any = None) -> None:
    """Refuse a token table that lacks a column of :func:`token_schema` or holds another type."""
    import pyarrow.types as pa_types

    expected = token_schema()
    for name in columns or expected.names:
        want = expected.field(name).type
        if name not in schema.names:
            raise _damaged(root, f"its token table has no {name!r} column")
        got = schema.field(name).type
        # pandas writes text as large_string (64-bit offsets): the same values, so accepted.
        if got != want and not (pa_types.is_string(want) and pa_types.is_large_string(got)):
            raise _damaged(root, f"column {name!r} of its token table holds {got}, not {want}")


def _arrow_error() -> type[Exception]:
    """pyarrow's own error base class (not an OSError or ValueError in every case)."""
    import pyarrow as pa

    return pa.ArrowException


def _check_token_nulls(root: Path, table: Any) -> None:
    for name in table.column_names:
        nulls = table.column(name).null_count
        if nulls:
            raise _damaged(root, f"column {name!r} of its token table holds {nulls} missing values")


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    # One atomic writer (_jsonio's); keys sorted so a store's JSON files diff cleanly.
    write_json(path, data, sort_keys=True)


def _layer_file(root: Path, layer: int) -> Path:
    return root / "layers" / f"layer_{int(layer):03d}.bin"


def _sums_file(root: Path, chunk: int) -> Path:
    return root / "tokens" / f"chunk_{chunk:06d}.sums.json"


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """Read one of a store's JSON files; what is wrong with it is one store-worded sentence."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"{path.parent} is not an isoscope store (no {path.name}).") from None
    except OSError as exc:
        raise StoreError(f"Cannot read the {what} of store {path.parent}: {exc.strerror or exc}.") from None
    try:
        data = decode_json(raw)
    except ValueError as exc:
        raise StoreError(f"The {what} of store {path.parent} is damaged ({path.name} is {exc}).") from None
    if not isinstance(data, dict):
        raise StoreError(f"The {what} of store {path.parent} is damaged ({path.name} is not an object).")
    return data


def _is_creation_leftover(name: str) -> bool:
    """What a store creation can leave before its manifest exists (a crash at that moment):
    the lock file and write_json's temporary ``.manifest.json.*.tmp``."""
    return name == ".lock" or (name.startswith(f".{MANIFEST}.") and name.endswith(".tmp"))


def is_foreign_folder(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` is a folder holding files but not an isoscope store (or its start)."""
    root = Path(root)
    if not root.is_dir() or (root / MANIFEST).exists():
        return False
    return any(not _is_creation_leftover(p.name) for p in root.iterdir())


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


def _read_progress(root: Path) -> dict[str, int]:
    progress = _read_json(root / PROGRESS, "progress record")
    keys = ("n_chunks", "n_tokens", "n_sentences")
    if not all(_is_count(progress.get(k)) for k in keys):
        raise StoreError(
            f"The progress record of store {root} is damaged ({PROGRESS} lacks valid counts)."
        )
    return {k: int(progress[k]) for k in keys}


def verify_chunks(root: Path, layers: list[int], row_bytes: int, n_chunks: int, n_tokens: int) -> None:
    """Check the committed chunks of an unfinished store against the checksums of their commit.

    Raises
    ------
    StoreError
        One sentence naming the first chunk and file that differ from what was committed.
    """
    row = 0
    for c in range(n_chunks):
        path = _sums_file(root, c)
        try:
            sums = decode_json(path.read_bytes())
            first, rows = sums["first_row"], sums["rows"]
            digests, tokens_digest = sums["layers"], sums["tokens"]
            ok = _is_count(first) and _is_count(rows) and isinstance(digests, dict) and first == row
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            ok = False
        if not ok:
            raise _damaged(root, f"the checksums of committed chunk {c} ({path.name}) are missing or damaged")
        chunk = root / "tokens" / f"chunk_{c:06d}.parquet"
        if not chunk.exists() or file_digest(chunk) != tokens_digest:
            raise _damaged(root, f"the token rows of committed chunk {c} ({chunk.name}) differ from what was committed")
        for layer in layers:
            if file_digest(_layer_file(root, layer), row * row_bytes, rows * row_bytes) != digests.get(str(layer)):
                raise _damaged(
                    root, f"the rows of committed chunk {c} in {_layer_file(root, layer).name} differ "
                    "from what was committed"
                )
        row += rows
    if row != n_tokens:
        raise _damaged(root, f"its committed chunks hold {row} rows, not the {n_tokens} its progress record counts")


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
        from isoscope import __version__

        self.root = Path(root)
        self.manifest = dict(manifest)
        self.manifest.setdefault("versions", {"isoscope": __version__})
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
            _atomic_write_json(
                self.root / MANIFEST, {**self.manifest, "format_version": FORMAT_VERSION, "complete": False}
            )
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

    def reset(self) -> None:
        """Drop every committed chunk of an unfinished store (start it again)."""
        self._start()
        self.n_chunks = self.n_tokens = self.n_sentences = 0
        self._counts, self._counted_chunks, self._zipf = None, set(), {}

    def close(self) -> None:
        """Release the lock (the store stays resumable if not finalised)."""
        self.lock.release()

    @property
    def complete(self) -> bool:
        """Whether the store was already finished."""
        return bool(_read_json(self.root / MANIFEST, "manifest").get("complete"))

    def _prepare_resume(self) -> None:
        raw = _read_json(self.root / MANIFEST, "manifest")
        old = _parse_manifest(self.root, raw)
        self._check_identity(raw)
        if old.complete:
            # Reused as it is, so it must be whole: a damaged store is reported, never rewritten.
            EmbeddingStore(self.root)
            # A crash between marking the store complete and removing the chunk files.
            for leftover in (self.root / "tokens").glob("chunk_*"):
                leftover.unlink()
            with contextlib.suppress(OSError):
                (self.root / "tokens").rmdir()
                (self.root / PROGRESS).unlink()
            return
        if old.format_version != FORMAT_VERSION:
            raise StoreError(
                f"Store {self.root} is an unfinished store of format {old.format_version}, which "
                f"this isoscope cannot resume; delete it and extract it again."
            )
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
                raise _damaged(self.root, f"{path.name} is shorter than its committed rows")
        # The chunks this resume builds on must be the ones that were committed.
        verify_chunks(self.root, self.layers, row_bytes, self.n_chunks, self.n_tokens)
        for layer in self.layers:
            # Cut rows written after the last commit (a kill mid-chunk).
            os.truncate(_layer_file(self.root, layer), self.n_tokens * row_bytes)
        for chunk in (self.root / "tokens").glob("chunk_*"):
            match = re.fullmatch(r"chunk_(\d+)\.(parquet|sums\.json)", chunk.name)
            if match is None or int(match.group(1)) >= self.n_chunks:
                chunk.unlink()

    def _check_identity(self, old: dict[str, Any]) -> None:
        """Refuse to resume or reuse a store made from other settings or another corpus text."""
        content = {"corpus_sha256", "model_sha256", "planned_sentences", "planned_tokens",
                   "n_truncated"}
        keys = [k for k in self.manifest if k not in NOT_IDENTITY]
        changed = sorted(k for k in keys if k not in content and old.get(k) != self.manifest.get(k))
        if changed:
            raise StoreError(
                f"Store {self.root} was made with other settings ({', '.join(changed)}); "
                "use a new --out folder."
            )
        new_hash = self.manifest.get("corpus_sha256")
        # Stores of format 1 recorded no hash: their text cannot be compared, only their sizes.
        if new_hash is not None and old.get("corpus_sha256") not in (None, new_hash):
            raise StoreError(
                f"Store {self.root} was made from another text of corpus {self.manifest.get('corpus')!r} "
                "(the corpus changed since); restore that text or use a new --out folder."
            )
        new_weights = self.manifest.get("model_sha256")
        # Stores written before weights were hashed cannot be compared on them.
        if new_weights is not None and old.get("model_sha256") not in (None, new_weights):
            raise StoreError(
                f"Store {self.root} was made from other weights of model "
                f"{self.manifest.get('model')!r} (the model changed since); use a new --out folder."
            )
        changed = sorted(k for k in keys if k in content - {"corpus_sha256", "model_sha256"}
                         and old.get(k) != self.manifest.get(k))
        if changed:
            raise StoreError(
                f"Store {self.root} was made with other settings ({', '.join(changed)}); "
                "use a new --out folder."
            )

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
                fh.write(np.ascontiguousarray(block).data.cast("B"))
                fh.flush()
                os.fsync(fh.fileno())
        final = self.root / "tokens" / f"chunk_{self.n_chunks:06d}.parquet"
        write_atomic(final, lambda tmp: pq.write_table(tokens, tmp))
        _atomic_write_json(_sums_file(self.root, self.n_chunks), {
            "first_row": self.n_tokens, "rows": n_rows, "tokens": file_digest(final),
            "layers": {str(layer): _bytes_digest(block) for layer, block in blocks.items()},
        })
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

    def finalize(self, extra: dict[str, Any] | None = None, word_counts: Any = None) -> EmbeddingStore:
        """Write the full token table with word frequencies and mark the store complete.

        ``word_counts`` (a :func:`word_occurrences` Series) replaces the counts of the committed
        rows: a sketch store holds a sample of the corpus but counts words over all of it.
        """
        with _disk_errors(self.root):
            return self._finalize(extra, word_counts)

    def _finalize(self, extra: dict[str, Any] | None, word_counts: Any = None) -> EmbeddingStore:
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
        if word_counts is not None:
            counts = word_counts.astype("int64")
            zipf = {**zipf, **zipf_frequencies([w for w in counts.index if w not in zipf])}

        def write_tokens(tmp: Path) -> None:
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

        write_atomic(self.root / TOKENS, write_tokens)
        paths = {str(layer): _layer_file(self.root, layer) for layer in self.layers}
        # hashlib releases the GIL on large blocks, so the layer files are read in parallel.
        with ThreadPoolExecutor(min(len(paths), os.cpu_count() or 1)) as pool:
            digests = dict(zip(paths, pool.map(file_digest, paths.values()), strict=True))
        manifest = {
            **self.manifest,
            **(extra or {}),
            "n_tokens": self.n_tokens,
            "n_sentences": self.n_sentences,
            "format_version": FORMAT_VERSION,
            "complete": True,
            "layer_files": {
                key: {"shape": [self.n_tokens, self.hidden_size], "dtype": self.manifest["dtype"],
                      "bytes": path.stat().st_size, "blake2b": digests[key]}
                for key, path in paths.items()
            },
            "tokens_file": {"rows": self.n_tokens, "bytes": (self.root / TOKENS).stat().st_size,
                            "blake2b": file_digest(self.root / TOKENS)},
        }
        _atomic_write_json(self.root / MANIFEST, manifest)
        for c in (self.root / "tokens").glob("chunk_*"):
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
        self.schema = _parse_manifest(self.path, self.manifest)
        if not self.schema.complete:
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
        self._sketch: Any = None
        self._check_sizes()

    @property
    def keep(self) -> dict[str, Any]:
        """What the store keeps: ``{"mode": "all"}`` or ``{"mode": "sample", "n": N, "seed": s}``."""
        keep = self.manifest.get("keep")
        return dict(keep) if isinstance(keep, dict) else {"mode": "all"}

    @property
    def is_sketch(self) -> bool:
        """Whether the layer files hold a sample and ``sketch.safetensors`` the moments."""
        return self.keep.get("mode") == "sample"

    @property
    def sketch(self) -> Any:
        """The :class:`~isoscope.sketch.StoreSketch` of a sketch store (None for a full store)."""
        if self._sketch is None and self.is_sketch:
            from isoscope.sketch import SKETCH_FILE, StoreSketch

            self._check_sketch(verify=True)  # small beside the layers: always checked on use
            sk = StoreSketch.load_file(self._confined(self.path / SKETCH_FILE, "sketch"))
            if sk.layers != self.layers or sk.hidden_size != self.hidden_size or sk.sample_rows.size != self.n_tokens:
                raise _damaged(self.path, f"{SKETCH_FILE} does not describe its layers and sampled rows")
            self._sketch = sk
        return self._sketch

    def _check_sizes(self) -> None:
        """The cheap invariants, checked on every open: exact file sizes and token rows."""
        import pyarrow.parquet as pq

        complete = self.schema.complete
        expected = self.n_tokens * self.hidden_size * self.dtype.itemsize
        for layer in self.layers:
            path = self._confined(_layer_file(self.path, layer), "manifest")
            if not path.exists():
                raise _damaged(self.path, f"its manifest lists layer {layer} but {path.name} is missing")
            size = path.stat().st_size
            # An unfinished store may hold rows of a chunk that was never committed.
            if size < expected or (complete and size != expected):
                raise _damaged(
                    self.path, f"{path.name} holds {size} bytes, but the manifest says {self.n_tokens} rows "
                    f"x {self.hidden_size} x {self.dtype.itemsize} bytes = {expected}"
                )
        if not complete:
            return
        path = self._confined(self.path / TOKENS, "token table")
        if not path.exists():
            raise _damaged(self.path, f"its token table {TOKENS} is missing")
        try:
            meta = pq.ParquetFile(path).metadata
            schema = meta.schema.to_arrow_schema()
        except (OSError, ValueError) as exc:
            raise StoreError(f"The token table of store {self.path} is damaged ({_one_line(exc)}).") from None
        _check_token_schema(self.path, schema)
        if meta.num_rows != self.n_tokens:
            raise _damaged(self.path, f"{meta.num_rows} token rows for {self.n_tokens} vectors")
        record = self.schema.tokens_file
        if record is not None and path.stat().st_size != record.bytes:
            raise _damaged(self.path, f"{TOKENS} holds {path.stat().st_size} bytes, not the {record.bytes} recorded")
        self._check_sketch(verify=False)

    def _check_sketch(self, verify: bool) -> None:
        """A sketch store's sketch file: present, of its recorded size (and checksum)."""
        if not self.is_sketch:
            return
        from isoscope.sketch import SKETCH_FILE

        path = self._confined(self.path / SKETCH_FILE, "sketch")
        rec = self.schema.sketch_file
        if rec is None:
            raise _damaged(self.path, "its manifest keeps a sample but records no sketch file")
        if not path.exists():
            raise _damaged(self.path, f"its sketch file {SKETCH_FILE} is missing")
        if path.stat().st_size != rec.bytes:
            raise _damaged(self.path, f"{SKETCH_FILE} holds {path.stat().st_size} bytes, not the {rec.bytes} recorded")
        if verify and file_digest(path) != rec.blake2b:
            raise _damaged(self.path, f"{SKETCH_FILE} does not match the checksum recorded when it was written")

    def _confined(self, path: Path, what: str) -> Path:
        # Resolve and confine to the store: a manifest or a link cannot point outside the folder.
        if not path.resolve().is_relative_to(self.path.resolve()):
            raise StoreError(f"The {what} of store {self.path} points outside the store.")
        return path

    def verify(self) -> dict[str, Any]:
        """Re-read every file of the store against the checksums recorded when it was written.

        Returns
        -------
        dict
            ``layers`` (files checked), ``tokens`` (rows), ``checksums`` (whether checksums were
            compared: stores of format 1 recorded none, so only their sizes and token table are
            checked) and ``chunks`` (committed chunks checked, for an unfinished store).

        Raises
        ------
        StoreError
            One sentence naming the first file that differs from its record.
        """
        if not self.schema.complete:
            n_chunks = int(self.manifest["n_chunks"])
            verify_chunks(self.path, self.layers, self.hidden_size * self.dtype.itemsize, n_chunks, self.n_tokens)
            return {"layers": len(self.layers), "tokens": self.n_tokens, "checksums": True, "chunks": n_chunks}
        records = self.schema.layer_files
        for layer in self.layers:
            path = _layer_file(self.path, layer)
            if records is not None and file_digest(path) != records[str(layer)].blake2b:
                raise _damaged(self.path, f"{path.name} does not match the checksum recorded when it was written")
        if self.schema.tokens_file is not None and file_digest(self.path / TOKENS) != self.schema.tokens_file.blake2b:
            raise _damaged(self.path, f"{TOKENS} does not match the checksum recorded when it was written")
        self._check_sketch(verify=True)
        self._tokens = None
        self.tokens()  # the full read: types and missing values of every column
        return {"layers": len(self.layers), "tokens": self.n_tokens, "checksums": records is not None, "chunks": 0}

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
        path = self._confined(_layer_file(self.path, layer), "manifest")
        expected = self.n_tokens * self.hidden_size * self.dtype.itemsize
        if not path.exists() or path.stat().st_size < expected:  # changed since the store was opened
            raise _damaged(self.path, f"{path.name} is shorter than the manifest says")
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
            path = self._confined(self.path / TOKENS, "token table")
            try:
                if path.exists():
                    table = pq.read_table(path)
                else:
                    import pyarrow as pa

                    chunks = sorted((self.path / "tokens").glob("chunk_*.parquet"))
                    if not chunks:
                        raise _damaged(self.path, f"its token table {TOKENS} is missing")
                    parts = [pq.read_table(c) for c in chunks]
                    for part in parts:
                        _check_token_schema(self.path, part.schema, token_schema().names[:7])
                    table = add_word_frequencies(pa.concat_tables(parts))
            except (OSError, ValueError, _arrow_error()) as exc:
                raise StoreError(f"The token table of store {self.path} is damaged ({_one_line(exc)}).") from None
            _check_token_schema(self.path, table.schema)
            _check_token_nulls(self.path, table)
            if table.num_rows != self.n_tokens:
                raise _damaged(self.path, f"{table.num_rows} token rows for {self.n_tokens} vectors")
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
    table = table.cast(pa.schema([token_schema().field(name).with_nullable(True) for name in types]))
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
