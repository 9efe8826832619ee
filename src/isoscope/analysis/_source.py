"""Where analysis reads vectors from: a store or one array, its samples and per-layer passes."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from isoscope.errors import InputError
from isoscope.metrics.streaming import StreamingMoments


def _as_array(source: Any) -> np.ndarray | None:
    """A 2-D numpy view of an array-like (numpy, torch, a .npy path), or None."""
    if isinstance(source, np.ndarray):
        return source
    if type(source).__module__.startswith("torch"):
        return np.asarray(source.detach().cpu().float().numpy())
    if hasattr(source, "__array__") and not hasattr(source, "layer"):
        return np.asarray(source)
    return None


def _layer_list(source: list | tuple) -> list[np.ndarray]:
    """The arrays of a list of per-layer arrays (each n x d, the same n), checked."""
    if not source:
        raise InputError("The list of per-layer arrays is empty; give at least one n x d array.")
    arrays = []
    for i, item in enumerate(source):
        a = _as_array(item)
        if a is None:
            raise InputError(
                f"Item {i} of the layer list is a {type(item).__name__}; give numpy arrays or "
                "torch tensors (one n x d array per layer)."
            )
        arrays.append(a)
    rows = [int(a.shape[0]) if a.ndim else 0 for a in arrays]
    if len(set(rows)) > 1 or any(a.ndim != 2 for a in arrays):
        shapes = [tuple(a.shape) for a in arrays]
        raise InputError(
            "The per-layer arrays must all be 2-D with the same number of rows (one row per "
            f"token in every layer), got shapes {shapes}."
        )
    return arrays


def _check_array(a: np.ndarray) -> None:
    if a.ndim != 2:
        raise InputError(f"The array must be 2-D (n vectors x d dims), got shape {a.shape}.")
    if np.iscomplexobj(a) or not np.issubdtype(a.dtype, np.number):
        raise InputError(f"The array must be real and numeric, got dtype {a.dtype}.")


class Source:
    """Uniform access to an :class:`~isoscope.store.EmbeddingStore`, one n x d array or a list.

    Parameters
    ----------
    source : EmbeddingStore, path of a store or a .npy file, array-like, or list of array-likes
        A list or tuple holds one n x d array per hidden state (item ``i`` is layer ``i``,
        every item with the same n).
    """

    def __init__(self, source: Any) -> None:
        self.store: Any = None
        self.array: np.ndarray | None = None
        #: The per-layer arrays of a layer list (None otherwise); ``array`` is its layer 0.
        self.arrays: list[np.ndarray] | None = None
        self.info: dict[str, Any] = {}
        #: The :class:`~isoscope.sketch.StoreSketch` of a sketch store (moments of all tokens).
        self.sketch: Any = None
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if path.suffix == ".npy" and path.is_file():
                try:
                    self.array = np.load(path, mmap_mode="r", allow_pickle=False)
                except (OSError, ValueError) as exc:
                    raise InputError(f"Could not read {path} as a .npy array ({exc}).") from None
                self.info = {"kind": "array", "path": str(path)}
            elif path.is_dir():
                from isoscope.store import open_store

                self.store = open_store(path)
            elif not path.exists():
                raise InputError(
                    f"{path} does not exist; give an embedding store folder or a .npy file."
                )
            else:
                raise InputError(f"{path} is neither an embedding store folder nor a .npy file.")
        elif hasattr(source, "layer") and hasattr(source, "tokens"):
            self.store = source
        elif isinstance(source, list | tuple):
            self.arrays = _layer_list(source)
            self.array = self.arrays[0]
            self.info = {"kind": "layer list", "path": None, "n_layers": len(self.arrays)}
        else:
            self.array = _as_array(source)
            if self.array is None:
                raise InputError(
                    f"Cannot analyse a {type(source).__name__}; give an EmbeddingStore, a store "
                    "path, an array, a list of per-layer arrays or a .npy path."
                )
            self.info = {"kind": "array", "path": None}
        if self.array is not None:
            for a in self.arrays or [self.array]:
                _check_array(a)
            self.layers = list(range(len(self.arrays))) if self.arrays is not None else [0]
            self.n_rows = int(self.array.shape[0])
        else:
            st: Any = self.store
            m = st.manifest
            self.info = {
                "kind": "store",
                "path": str(st.path),
                "model": m.get("model"),
                "corpus": m.get("corpus"),
                "model_type": m.get("model_type", "encoder"),
                "n_tokens": int(st.n_tokens),
                "hidden_size": int(st.hidden_size),
                "dtype": m.get("dtype"),
            }
            self.layers = list(st.layers)
            self.n_rows = int(st.n_tokens)
            if getattr(st, "is_sketch", False):
                self.sketch = st.sketch
                self.info["keep"] = st.keep
                self.info["n_tokens_total"] = int(self.sketch.n_tokens)
            else:
                self.info["keep"] = {"mode": "all"}
        self._tokens: Any = None

    @property
    def has_words(self) -> bool:
        """Whether word identities (a token table) are available."""
        return self.store is not None

    def tokens(self) -> Any:
        """The store's token table (cached)."""
        if self._tokens is None and self.store is not None:
            self._tokens = self.store.tokens()
        return self._tokens

    def candidates(self, include_special: bool, drop_position_zero: bool) -> np.ndarray:
        """Row ids a measure may use."""
        if self.store is None:
            return np.arange(self.n_rows)
        return np.flatnonzero(self.store.row_mask(include_special, drop_position_zero))

    def global_rows(self, rows: np.ndarray) -> np.ndarray:
        """Corpus row ids of stored rows (the same for a full store; a sketch maps its sample)."""
        return rows if self.sketch is None else self.sketch.sample_rows[rows]

    def data(self, layer: int) -> np.ndarray:
        """The layer as stored (memory-mapped for a store)."""
        if self.store is None:
            if self.arrays is not None:
                return self.arrays[layer]
            assert self.array is not None
            return self.array
        return self.store.layer(layer)

    def rows(self, layer: int, rows: np.ndarray) -> np.ndarray:
        """Rows of a layer as float32."""
        return np.asarray(self.data(layer)[rows], dtype=np.float32)

    def resolve_layers(self, layers: Sequence[int] | int | None) -> list[int]:
        """Hidden-state indices (negative counts from the last), checked and de-duplicated."""
        if layers is None:
            return list(self.layers)
        if isinstance(layers, int | np.integer):
            layers = [int(layers)]
        out: list[int] = []
        for layer in layers:
            layer = int(layer)
            if layer < 0 and -len(self.layers) <= layer:
                layer = self.layers[layer]
            if layer not in self.layers:
                raise InputError(
                    f"Layer {layer} is not available (available layers: {self.layers})."
                )
            if layer not in out:
                out.append(layer)
        if not out:
            raise InputError("No layers were selected.")
        return out

    def iter_blocks(self, layer: int, chunk_rows: int, start: int = 0,
                    stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, block)`` over rows ``start:stop`` of the layer (default: all), stored dtype."""
        data = self.data(layer)
        end = data.shape[0] if stop is None else min(int(stop), data.shape[0])
        for s in range(int(start), end, chunk_rows):
            yield s, np.asarray(data[s : min(s + chunk_rows, end)])


def sample_rows(candidates: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Sorted seeded uniform sample of ``candidates`` without replacement (all when n is None).

    The same draw as :meth:`isoscope.store.EmbeddingStore.sample_indices`.
    """
    if n is None or int(n) >= candidates.size:
        return candidates
    rng = np.random.default_rng(int(seed))
    return np.sort(rng.choice(candidates, size=int(n), replace=False))


def _row_hashes(block: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's bytes (equal rows hash equal; collisions are verified)."""
    raw = np.ascontiguousarray(block).view(np.uint8).reshape(block.shape[0], -1)
    pad = (-raw.shape[1]) % 8
    if pad:
        raw = np.pad(raw, ((0, 0), (0, pad)))
    words = np.ascontiguousarray(raw).view(np.uint64)
    with np.errstate(over="ignore"):
        return (words * multipliers[: words.shape[1]]).sum(axis=1, dtype=np.uint64)


@dataclass
class LayerPass:
    """What one streamed pass over a layer yields."""

    moments: StreamingMoments | None
    #: First occurrence of every distinct vector among the candidates (None: not computed).
    distinct_candidates: np.ndarray | None


def shard_pass(
    src: Source,
    layer: int,
    candidates: np.ndarray,
    start: int,
    stop: int,
    *,
    chunk_rows: int,
    moments: bool,
    distinct: bool,
) -> tuple[StreamingMoments | None, np.ndarray | None]:
    """The moments and row hashes of the candidates in rows ``start:stop`` of one layer.

    One shard of :func:`layer_pass`: accumulators of consecutive shards merge
    (:meth:`StreamingMoments.merge`, in row order) and their hashes concatenate.

    Returns
    -------
    moments : StreamingMoments or None
    hashes : ndarray of uint64 or None
        One hash per candidate row in the shard (see :func:`distinct_from_hashes`).
    """
    cand = np.asarray(candidates)
    lo, hi = np.searchsorted(cand, [int(start), int(stop)])
    mask = np.zeros(max(int(stop) - int(start), 0), dtype=bool)
    mask[cand[lo:hi] - int(start)] = True
    acc = StreamingMoments() if moments else None
    hashes: list[np.ndarray] = []
    mult: np.ndarray | None = None
    for first, block in src.iter_blocks(layer, int(chunk_rows), int(start), int(stop)):
        keep = mask[first - int(start) : first - int(start) + block.shape[0]]
        sub = block[keep] if not keep.all() else block
        if acc is not None:
            ids = first + (np.flatnonzero(keep) if sub is not block else np.arange(block.shape[0]))
            acc.update(np.asarray(sub, dtype=np.float32), rows=ids)
        if distinct:
            if mult is None:
                n_words = -(-sub.shape[1] * sub.dtype.itemsize // 8)
                mult = np.random.default_rng(0x15050C).integers(
                    1, 2**63, size=n_words, dtype=np.uint64) | np.uint64(1)
            hashes.append(_row_hashes(sub, mult))
    if not distinct:
        return acc, None
    return acc, (np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64))


def distinct_from_hashes(src: Source, layer: int, candidates: np.ndarray,
                         hashes: np.ndarray) -> np.ndarray:
    """First occurrence of every distinct candidate vector, from one hash per candidate.

    Rows whose hash repeats an earlier one are compared byte-wise with it (collisions stay).
    """
    h = np.asarray(hashes, dtype=np.uint64)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    dup = np.flatnonzero(first[inverse] != np.arange(h.size))
    keep = np.ones(h.size, dtype=bool)
    if dup.size:
        data = src.data(layer)
        a = np.asarray(data[candidates[dup]])
        b = np.asarray(data[candidates[first[inverse[dup]]]])
        same = (a.view(np.uint8).reshape(a.shape[0], -1)
                == b.view(np.uint8).reshape(b.shape[0], -1)).all(axis=1)
        keep[dup[same]] = False
    return candidates[keep]


def layer_pass(
    src: Source,
    layer: int,
    candidates: np.ndarray,
    *,
    chunk_rows: int,
    moments: bool,
    distinct: bool,
    select: tuple[bool, bool] = (False, False),
) -> LayerPass:
    """Stream one layer once: float64 moments of the candidates and their distinct rows.

    Parameters
    ----------
    src : Source
    layer : int
    candidates : ndarray of int
        Sorted row ids that count.
    chunk_rows : int
    moments : bool
        Accumulate :class:`~isoscope.metrics.StreamingMoments` over the candidates.
    distinct : bool
        Find the first occurrence of each distinct candidate vector (exact, byte-wise).
    select : (include_special, drop_position_zero)
        The settings behind ``candidates``: a sketch store's moments of every token are merged
        from its token groups by them instead of being streamed from its sample.
    """
    if not moments and not distinct:
        return LayerPass(None, None)
    sketch_moments = None
    if moments and src.sketch is not None:
        sketch_moments = src.sketch.moments(layer, *(bool(v) for v in select))
        moments = False
        if not distinct:
            return LayerPass(sketch_moments, None)
    acc, hashes = shard_pass(src, layer, candidates, 0, src.n_rows, chunk_rows=chunk_rows,
                             moments=moments, distinct=distinct)
    found = None if hashes is None else distinct_from_hashes(src, layer, candidates, hashes)
    return LayerPass(acc if sketch_moments is None else sketch_moments, found)


def check_exact_partition(src: Source) -> None:
    """Refuse the stored-layer ``exact_partition`` pass on a sketch store (a sample only).

    A sketch store's I(V) over every token comes from running the model again
    (:func:`~isoscope.analysis._second_pass.second_pass_partition`), not from its layer files.
    """
    if src.sketch is not None:
        raise InputError(
            "A sketch store's layer files hold a sample only, so its I(V) over every token "
            "comes from a second pass through the model (second_pass_partition), not from them."
        )


def exact_partition(src: Source, layer: int, candidates: np.ndarray, *, chunk_rows: int) -> dict[str, float]:
    """I(V) over every non-zero candidate row of a stored layer (raw, centred and unit).

    Streams the layer: one pass for the moments of the rows (and one of their unit rows),
    then one log-sum-exp pass per normalisation over the eigenvectors those moments fix
    (:func:`~isoscope.metrics.streaming.stream_partition_isotropy`).

    Returns
    -------
    dict
        The partition keys of a layer entry (``isotropy_partition``, ``..._log10``,
        ``isotropy_partition_centered`` ...).

    Raises
    ------
    InputError
        For a sketch store, whose layer files hold a sample only (see
        :func:`~isoscope.analysis._second_pass.second_pass_partition`).
    """
    from isoscope.metrics.streaming import stream_partition_isotropy

    check_exact_partition(src)
    mask = np.zeros(src.n_rows, dtype=bool)
    mask[candidates] = True

    def chunks() -> Iterator[np.ndarray]:
        for start, block in src.iter_blocks(layer, int(chunk_rows)):
            X = np.asarray(block[mask[start : start + block.shape[0]]], dtype=np.float32)
            yield X[np.linalg.norm(X, axis=1) > 0]  # as the sample: zero rows have no direction

    out: dict[str, float] = {}
    moments = None
    for norm, suffix in (("raw", ""), ("centered", "_centered"), ("unit", "_unit")):
        pi, m = stream_partition_isotropy(chunks, normalisation=norm,
                                          moments=None if norm == "unit" else moments)
        if norm != "unit":
            moments = m
        out[f"isotropy_partition{suffix}"] = pi.value
        out[f"isotropy_partition{suffix}_log10"] = pi.log10
    return out
