"""Hugging Face ``datasets`` readers behind the ``hf:`` corpus spec (the ``hf`` extra)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from isoscope.errors import InputError

#: File suffix -> the ``datasets`` builder that reads it.
BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".jsonl": "json", ".json": "json", ".csv": "csv"}


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise InputError("hf: corpora need the datasets package (pip install 'isoscope[hf]').") from None
    return datasets


@contextmanager
def _no_datasets_bars(ds_mod: Any) -> Iterator[None]:
    """Hide ``datasets``' own progress bars (split generation of a local file) inside the block."""
    bars = ds_mod.utils.logging.is_progress_bar_enabled()
    ds_mod.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            ds_mod.utils.logging.enable_progress_bar()


def load_dataset_at(path: str | Path, split: str | None = None) -> Any:
    """One split of a saved dataset folder or of local data files, as a ``datasets.Dataset``.

    Parameters
    ----------
    path : str or Path
        A folder written by ``save_to_disk``, a Parquet / Arrow / JSONL / CSV file, or a folder
        of such files.
    split : str, optional
        The split (default ``train``).

    Returns
    -------
    datasets.Dataset
    """
    ds_mod = _datasets()
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"No dataset or data file at {p}.")
    saved = p.is_dir() and ((p / "dataset_info.json").is_file() or (p / "dataset_dict.json").is_file())
    if saved:
        with _no_datasets_bars(ds_mod):
            data = ds_mod.load_from_disk(str(p))
    else:
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.suffix.lower() in BUILDERS)
        builders = {BUILDERS.get(f.suffix.lower()) for f in files}
        if not files or None in builders or len(builders) != 1:
            raise InputError(f"{p} is neither a saved datasets folder nor Parquet/Arrow/JSONL/CSV files of one kind.")
        with _no_datasets_bars(ds_mod):
            data = ds_mod.load_dataset(builders.pop(), data_files=[str(f) for f in files])
    if isinstance(data, ds_mod.DatasetDict):
        name = split or "train"
        if name not in data:
            raise InputError(f"{p} has no split {name!r}; it has {', '.join(data)}.")
        return data[name]
    if split not in (None, "train"):
        raise InputError(f"{p} is a single dataset without splits; drop split {split!r}.")
    return data


def read_text_column(path: str, column: str, split: str | None, info: dict[str, object]) -> list[str]:
    """The strings of ``column`` in one split of a dataset (see :func:`load_dataset_at`)."""
    if not path:
        raise InputError("An hf: corpus needs a path: hf:PATH or hf:PATH#COLUMN.")
    ds = load_dataset_at(path, split)
    if column not in ds.column_names:
        raise InputError(f"The dataset at {path} has no column {column!r}; it has {', '.join(ds.column_names)}.")
    values = ds[column]
    bad = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
    if bad is not None:
        raise InputError(f"Row {bad} of column {column!r} in {path} is not a string.")
    info.update(source=str(Path(path).expanduser()), split=split or "train", column=column, rows=len(values))
    return [v.replace("\n", " ") for v in values]


def layer_to_parquet(store: Any, layer: int, path: str | Path, *, chunk_rows: int = 65536,
                     progress: bool = False) -> Path:
    """Write one store layer and its token table to a Parquet file, a chunk of rows at a time.

    Each row is one token: the token table's columns plus ``vector``, a fixed-size list of
    float32 (the store's values, widened from float16 where stored so). Only ``chunk_rows``
    rows of the layer's memory map are read into RAM at once.

    Parameters
    ----------
    store : EmbeddingStore
        An open store.
    layer : int
        Hidden-state index (negative counts from the last stored layer).
    path : str or Path
        Output ``.parquet`` file (written atomically).
    chunk_rows : int
        Rows per Parquet row group.
    progress : bool
        Show a tqdm bar over the rows written.

    Returns
    -------
    Path
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    from isoscope._jsonio import write_atomic

    if chunk_rows < 1:
        raise InputError(f"chunk_rows must be at least 1, got {chunk_rows}.")
    data = store.layer(layer)
    tokens = pa.Table.from_pandas(store.tokens(), preserve_index=False)
    d = int(data.shape[1])
    vec_type = pa.list_(pa.float32(), d)
    schema = tokens.schema.append(pa.field("vector", vec_type))
    schema = schema.with_metadata({b"isoscope_layer": str(store._check_layer(layer)).encode(),
                                   b"isoscope_store": str(store.path).encode()})

    def write(tmp: Path) -> None:
        n = int(data.shape[0])
        with pq.ParquetWriter(str(tmp), schema) as writer, \
                tqdm(total=n, desc=f"layer {layer} to parquet", unit="tok", disable=not progress) as bar:
            for start in range(0, max(n, 1), chunk_rows):
                block = np.ascontiguousarray(data[start : start + chunk_rows], dtype=np.float32)
                vectors = pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), d)
                part = tokens.slice(start, block.shape[0]).append_column("vector", vectors)
                writer.write_table(part.replace_schema_metadata(schema.metadata))
                bar.update(block.shape[0])

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(out, write)
