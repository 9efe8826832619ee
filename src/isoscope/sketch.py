"""Sketch stores: every moment of every token, and a seeded sample of the vectors themselves.

``isoscope extract --keep sample:N`` keeps, per layer, float64 accumulators of every token
(:class:`LayerSketch`) and the vectors of a seeded uniform sample of N token positions, the
same positions in every layer (:class:`BottomKSample`). Everything here merges exactly, so a
corpus split into shards (a Ray extraction) gives the same sketch as one pass:

* :class:`LayerSketch` holds one :class:`~isoscope.metrics.streaming.StreamingMoments` per
  disjoint token group (:data:`GROUPS`: special or not, position 0 or not). Analysis merges
  the groups its settings select (``include_special``, ``drop_position_zero``), so the moments
  equal those a full store streams over its candidate rows. Merging is Chan et al.'s pairwise
  update; per-dimension maxima keep the smaller global row on a tie, so the row ids do not
  depend on the order of the shards either.
* :class:`BottomKSample` is a bottom-k sample on a keyed hash of the *global* token row:
  ``priority = splitmix64(row xor splitmix64(seed))``, the N smallest are kept. It needs no
  corpus length in advance (a reservoir) and, since a row's priority depends only on the
  row and the seed, the N rows kept are the same whatever the chunk size or shard split; two
  samples merge by keeping the N smallest priorities of both.
* :class:`StoreSketch` bundles one :class:`LayerSketch` per layer, the sample, the corpus-wide
  word counts and the token string and position of every row behind a per-dimension maximum.

API (what a distributed extraction uses)::

    sk = StoreSketch(layers=[0, 6], hidden_size=384, n=50_000, seed=0)
    sk.update(rows, {0: X0, 6: X6}, token_table)   # rows: global row ids of the chunk
    sk.merge(other_shard_sketch)                   # exact, order-free
    sk.save(folder); StoreSketch.load(folder)      # safetensors + a parquet of sample tokens
    write_sketch_store(writer, sk, n_sentences)    # the sample as a store, with the sketch

In a sketch store the layer files and ``tokens.parquet`` hold the sampled rows only (sorted by
global row; word counts are corpus-wide); ``sketch.safetensors`` holds the accumulators and the
sample's global row ids, recorded in the manifest (``keep`` and ``sketch_file``, with its
BLAKE2b checksum). No pickle is written or read.

Sizes: the accumulators take 8 (d² + 8 d) bytes per non-empty group and layer (a d x d float64
scatter dominates: 2.7 MB per group and layer at d = 576, 134 MB at d = 4,096); the sample
N x d storage-dtype values per layer, held in memory until the store is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from isoscope.errors import InputError, StoreError
from isoscope.metrics.streaming import StreamingMoments

__all__ = [
    "GROUPS",
    "SKETCH_FILE",
    "BottomKSample",
    "LayerSketch",
    "StoreSketch",
    "group_codes",
    "parse_keep",
    "priorities",
    "selected_groups",
    "write_sketch_store",
]

#: Disjoint token groups, in merge order: (special, position 0), (special, later),
#: (not special, position 0), (not special, later).
GROUPS = ("special_first", "special_rest", "first", "rest")
#: The sketch file of a sketch store.
SKETCH_FILE = "sketch.safetensors"
SAMPLE_TOKENS = "sketch_sample_tokens.parquet"
_FORMAT = "isoscope-sketch"
_VERSION = "1"
_FIELDS = ("mean_", "m2_", "sum_unit_", "sum_unit_sq_", "sum_abs_", "max_abs_", "max_value_",
           "max_row_")
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def parse_keep(spec: str) -> int | None:
    """``"all"`` -> None, ``"sample:N"`` -> N (a positive int); anything else is refused."""
    text = str(spec).strip().lower()
    if text == "all":
        return None
    if text.startswith("sample:"):
        n = text.split(":", 1)[1]
        if n.isdigit() and int(n) > 0:
            return int(n)
    raise InputError(f"--keep must be 'all' or 'sample:N' with N a positive integer, not {spec!r}.")


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Steele et al.'s SplitMix64 finaliser, a bijection of uint64 (vectorised)."""
    z = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def priorities(rows: Any, seed: int) -> np.ndarray:
    """Bottom-k priority of global row ids: ``splitmix64(row xor splitmix64(seed))`` (uint64).

    A bijection of the row for a fixed seed, so distinct rows never tie.
    """
    key = _splitmix64(np.array([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    return _splitmix64(np.asarray(rows, dtype=np.int64).astype(np.uint64) ^ key)


def group_codes(is_special: Any, position: Any) -> np.ndarray:
    """Index into :data:`GROUPS` of each token row."""
    special = np.asarray(is_special, dtype=bool)
    first = np.asarray(position) == 0
    return (2 * (~special) + (~first)).astype(np.int8)


def selected_groups(include_special: bool, drop_position_zero: bool) -> list[int]:
    """The groups whose union is the candidate set of these analysis settings."""
    out = []
    for code in range(len(GROUPS)):
        special, first = code < 2, code % 2 == 0
        if (include_special or not special) and (not drop_position_zero or not first):
            out.append(code)
    return out


def _copy(m: StreamingMoments) -> StreamingMoments:
    return StreamingMoments().merge(m)


def _column(tokens: Any, name: str) -> np.ndarray:
    col = tokens.column(name) if hasattr(tokens, "column") and not hasattr(tokens, "loc") else tokens[name]
    return np.asarray(col.to_numpy() if hasattr(col, "to_numpy") else col)


class LayerSketch:
    """Float64 accumulators of one layer, one :class:`StreamingMoments` per token group.

    Parameters
    ----------
    hidden_size : int
    """

    def __init__(self, hidden_size: int) -> None:
        self.hidden_size = int(hidden_size)
        self.groups = [StreamingMoments(self.hidden_size) for _ in GROUPS]

    def update(self, rows: np.ndarray, X: Any, codes: np.ndarray) -> LayerSketch:
        """Add a chunk: global row ids, its (m, d) vectors and their :func:`group_codes`."""
        X = np.asarray(X)
        for code in range(len(GROUPS)):
            pick = np.flatnonzero(codes == code)
            if pick.size:
                self.groups[code].update(X[pick], rows=rows[pick])
        return self

    def merge(self, other: LayerSketch) -> LayerSketch:
        """Merge another layer's accumulators into these (in place); returns self."""
        if other.hidden_size != self.hidden_size:
            raise InputError(f"Cannot merge sketches of width {self.hidden_size} and {other.hidden_size}.")
        for mine, theirs in zip(self.groups, other.groups, strict=True):
            mine.merge(theirs)
        return self

    def moments(self, include_special: bool = False, drop_position_zero: bool = False) -> StreamingMoments:
        """The merged moments of the groups these analysis settings select (a new object)."""
        out = StreamingMoments()
        for code in selected_groups(include_special, drop_position_zero):
            out.merge(self.groups[code])
        return out

    def max_rows(self) -> np.ndarray:
        """Every row id behind a per-dimension maximum of some group."""
        rows = np.concatenate([g.max_row_ for g in self.groups if g.n])
        return np.unique(rows[rows >= 0]) if rows.size else np.zeros(0, dtype=np.int64)


class BottomKSample:
    """Seeded bottom-k sample of token rows with their vectors per layer and token rows.

    Parameters
    ----------
    n : int
        Rows kept.
    seed : int
        Key of the row hash (:func:`priorities`).
    layers : list of int
    """

    def __init__(self, n: int, seed: int, layers: list[int]) -> None:
        if int(n) < 1:
            raise InputError(f"The sample size must be positive, got {n}.")
        self.n, self.seed, self.layers = int(n), int(seed), [int(x) for x in layers]
        self.rows = np.zeros(0, dtype=np.int64)
        self.priority = np.zeros(0, dtype=np.uint64)
        self.vectors: dict[int, np.ndarray] = {}
        self.tokens: Any = None

    def _absorb(self, rows: np.ndarray, pr: np.ndarray, vectors: dict[int, np.ndarray], tokens: Any) -> None:
        import pyarrow as pa

        if rows.size == 0:
            return
        if self.tokens is None:
            all_rows, all_pr = rows, pr
            vecs, toks = {k: np.asarray(v) for k, v in vectors.items()}, tokens
        else:
            all_rows = np.concatenate([self.rows, rows])
            all_pr = np.concatenate([self.priority, pr])
            vecs = {k: np.concatenate([self.vectors[k], np.asarray(vectors[k])]) for k in self.layers}
            toks = pa.concat_tables([self.tokens, tokens.select(self.tokens.column_names)])
        if all_rows.size > self.n:
            keep = np.argpartition(all_pr, self.n - 1)[: self.n]
        else:
            keep = np.arange(all_rows.size)
        keep = keep[np.argsort(all_rows[keep], kind="stable")]
        self.rows, self.priority = all_rows[keep], all_pr[keep]
        self.vectors = {k: vecs[k][keep] for k in self.layers}
        self.tokens = toks.take(keep)

    def update(self, rows: Any, arrays: dict[int, np.ndarray], tokens: Any) -> BottomKSample:
        """Offer a chunk's rows (global ids), vectors by layer and token rows (pyarrow.Table)."""
        rows = np.asarray(rows, dtype=np.int64)
        pr = priorities(rows, self.seed)
        pick = np.flatnonzero(pr < self.priority.max()) if self.rows.size >= self.n else np.arange(rows.size)
        if pick.size:
            self._absorb(rows[pick], pr[pick], {k: np.asarray(arrays[k])[pick] for k in self.layers},
                         tokens.take(pick))
        return self

    def merge(self, other: BottomKSample) -> BottomKSample:
        """Keep the n smallest priorities of both samples (in place); returns self."""
        if (other.n, other.seed, other.layers) != (self.n, self.seed, self.layers):
            raise InputError("Cannot merge samples of different sizes, seeds or layers.")
        if np.intersect1d(self.rows, other.rows).size:
            raise InputError("Cannot merge samples that share rows (a shard was counted twice).")
        if other.tokens is not None:
            self._absorb(other.rows, other.priority, other.vectors, other.tokens)
        return self


class StoreSketch:
    """Everything a sketch store keeps: per-layer accumulators, the sample and word counts.

    Parameters
    ----------
    layers : list of int
        Hidden-state indices.
    hidden_size : int
    n : int
        Sample size (rows kept).
    seed : int
        Sample seed.
    """

    def __init__(self, layers: list[int], hidden_size: int, n: int, seed: int = 0) -> None:
        self.layers = [int(x) for x in layers]
        self.hidden_size = int(hidden_size)
        self.n, self.seed = int(n), int(seed)
        self.layer_sketches = {layer: LayerSketch(hidden_size) for layer in self.layers}
        self.sample = BottomKSample(n, seed, self.layers)
        self.n_tokens = 0
        self.word_counts: Any = None
        # Token string and position of the rows behind a per-dimension maximum.
        self.info_rows = np.zeros(0, dtype=np.int64)
        self.info_position = np.zeros(0, dtype=np.int64)
        self.info_token = np.zeros(0, dtype=object)
        #: Global row ids of the sample (set by :meth:`load` of a store's sketch).
        self.sample_rows: np.ndarray = np.zeros(0, dtype=np.int64)

    # -- accumulation ------------------------------------------------------------------------
    def update(self, rows: Any, arrays: dict[int, np.ndarray], tokens: Any) -> StoreSketch:
        """Add one chunk of whole sentences.

        Parameters
        ----------
        rows : array-like of int
            Global row ids of the chunk's tokens (its first row + 0, 1, ...).
        arrays : dict of int to ndarray
            Layer to the chunk's (m, d) vectors in the storage dtype (so the moments are those
            of the values a full store would hold).
        tokens : pyarrow.Table
            The chunk's token rows (``is_special``, ``position``, ``token``, ... as extraction
            writes them).
        """
        from isoscope.store import word_occurrences

        rows = np.asarray(rows, dtype=np.int64)
        if rows.shape != (tokens.num_rows,):
            raise InputError(f"{rows.size} row ids for a chunk of {tokens.num_rows} token rows.")
        codes = group_codes(_column(tokens, "is_special"), _column(tokens, "position"))
        for layer in self.layers:
            self.layer_sketches[layer].update(rows, arrays[layer], codes)
        self.sample.update(rows, arrays, tokens)
        self.n_tokens += int(rows.size)
        part = word_occurrences(tokens)
        self.word_counts = part if self.word_counts is None else self.word_counts.add(part, fill_value=0)
        self._keep_info(rows, _column(tokens, "position").astype(np.int64),
                        _column(tokens, "token").astype(object))
        return self

    def _keep_info(self, rows: np.ndarray, position: np.ndarray, token: np.ndarray) -> None:
        wanted = np.unique(np.concatenate([s.max_rows() for s in self.layer_sketches.values()]))
        all_rows = np.concatenate([self.info_rows, rows])
        all_pos = np.concatenate([self.info_position, position])
        all_tok = np.concatenate([self.info_token, token])
        _, first = np.unique(all_rows, return_index=True)
        first = first[np.isin(all_rows[first], wanted)]
        self.info_rows, self.info_position, self.info_token = all_rows[first], all_pos[first], all_tok[first]

    def merge(self, other: StoreSketch) -> StoreSketch:
        """Merge the sketch of other rows of the same corpus (in place); returns self."""
        if (other.layers, other.hidden_size, other.n, other.seed) != (
                self.layers, self.hidden_size, self.n, self.seed):
            raise InputError("Cannot merge sketches of different layers, widths, sample sizes or seeds.")
        for layer in self.layers:
            self.layer_sketches[layer].merge(other.layer_sketches[layer])
        self.sample.merge(other.sample)
        self.n_tokens += other.n_tokens
        if other.word_counts is not None:
            self.word_counts = (other.word_counts.copy() if self.word_counts is None
                                else self.word_counts.add(other.word_counts, fill_value=0))
        self._keep_info(other.info_rows, other.info_position, other.info_token)
        return self

    # -- reading -----------------------------------------------------------------------------
    def moments(self, layer: int, include_special: bool = False, drop_position_zero: bool = False) -> StreamingMoments:
        """Moments of every token of ``layer`` in the groups the settings select."""
        if int(layer) not in self.layer_sketches:
            raise InputError(f"Layer {layer} is not in the sketch (layers: {self.layers}).")
        return self.layer_sketches[int(layer)].moments(include_special, drop_position_zero)

    def n_candidates(self, include_special: bool = False, drop_position_zero: bool = False) -> int:
        """Tokens of the corpus these settings select (what the moments count)."""
        return int(self.moments(self.layers[0], include_special, drop_position_zero).n)

    def row_info(self, sample_tokens: Any) -> Any:
        """``rows -> {"token", "position"}`` over global row ids (sample rows and maxima rows)."""
        rows = np.concatenate([self.sample_rows, self.info_rows])
        token = np.concatenate([_column(sample_tokens, "token").astype(object), self.info_token])
        position = np.concatenate([_column(sample_tokens, "position").astype(np.int64), self.info_position])
        order = np.argsort(rows, kind="stable")
        rows, token, position = rows[order], token[order], position[order]

        def info(wanted: np.ndarray) -> dict[str, np.ndarray]:
            w = np.asarray(wanted, dtype=np.int64)
            at = np.clip(np.searchsorted(rows, w), 0, max(rows.size - 1, 0))
            found = rows.size > 0 and np.array_equal(rows[at], w)
            if not found:
                raise StoreError("The sketch does not name the token of a row it reports.")
            return {"token": token[at], "position": position[at]}

        return info

    # -- files -------------------------------------------------------------------------------
    def _tensors(self, include_sample: bool) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for layer, ls in self.layer_sketches.items():
            for name, g in zip(GROUPS, ls.groups, strict=True):
                if g.n == 0:  # an empty group is left out (a decoder has no special tokens)
                    continue
                p = f"layer_{layer}/{name}/"
                out[p + "counts"] = np.array([g.n, g.n_zero], dtype=np.int64)
                out[p + "sum_norm"] = np.array([g.sum_norm_], dtype=np.float64)
                for f in _FIELDS:
                    out[p + f.rstrip("_")] = np.ascontiguousarray(getattr(g, f))
        out["sample/rows"] = self.sample.rows
        out["sample/priority"] = self.sample.priority
        out["info/rows"] = self.info_rows
        out["info/position"] = self.info_position
        if include_sample:
            for layer in self.layers:
                out[f"sample/layer_{layer}"] = np.ascontiguousarray(
                    self.sample.vectors.get(layer, np.zeros((0, self.hidden_size), np.float32)))
        return out

    def save_file(self, path: str | os.PathLike[str], *, include_sample: bool = True) -> Path:
        """Write the accumulators (and the sample's vectors) as one safetensors file, atomically."""
        from safetensors.numpy import save_file

        from isoscope._jsonio import write_atomic

        meta = {
            "format": _FORMAT, "version": _VERSION, "layers": json.dumps(self.layers),
            "hidden_size": str(self.hidden_size), "n": str(self.n), "seed": str(self.seed),
            "n_tokens": str(self.n_tokens), "groups": json.dumps(GROUPS),
            "info_token": json.dumps([str(t) for t in self.info_token]),
            "word_counts": json.dumps({} if self.word_counts is None else
                                      {str(k): int(v) for k, v in self.word_counts.items()}),
            "with_sample": str(bool(include_sample)),
        }
        path = Path(path)
        tensors = self._tensors(include_sample)
        write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
        return path

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write the whole sketch (accumulators, sample vectors and sample tokens) into a folder."""
        import pyarrow.parquet as pq

        from isoscope._jsonio import write_atomic

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.sample.tokens is not None:
            tokens = self.sample.tokens
            write_atomic(folder / SAMPLE_TOKENS, lambda tmp: pq.write_table(tokens, tmp))
        return self.save_file(folder / SKETCH_FILE)

    @classmethod
    def load_file(cls, path: str | os.PathLike[str]) -> StoreSketch:
        """Read a file written by :meth:`save_file`; a damaged one is refused in one sentence."""
        import pandas as pd
        from safetensors import safe_open

        path = Path(path)
        try:
            with safe_open(str(path), framework="numpy") as fh:
                meta = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
            if meta.get("format") != _FORMAT or meta.get("version") != _VERSION:
                raise ValueError("not an isoscope sketch of version " + _VERSION)
            sk = cls(json.loads(meta["layers"]), int(meta["hidden_size"]), int(meta["n"]), int(meta["seed"]))
            sk.n_tokens = int(meta["n_tokens"])
            d = sk.hidden_size
            for layer, ls in sk.layer_sketches.items():
                for name, g in zip(GROUPS, ls.groups, strict=True):
                    p = f"layer_{layer}/{name}/"
                    if p + "counts" not in tensors:
                        continue  # empty
                    g.n, g.n_zero = (int(v) for v in tensors[p + "counts"])
                    if g.n < 1:
                        raise ValueError(f"{p}counts records an empty group")
                    g.sum_norm_ = float(tensors[p + "sum_norm"][0])
                    for f in _FIELDS:
                        arr = tensors[p + f.rstrip("_")]
                        want = (d, d) if f == "m2_" else (d,)
                        if arr.shape != want:
                            raise ValueError(f"{p}{f.rstrip('_')} has shape {arr.shape}")
                        setattr(g, f, np.array(arr))
                    g.d = d
            sk.sample_rows = np.array(tensors["sample/rows"], dtype=np.int64)
            sk.sample.rows = sk.sample_rows.copy()
            sk.sample.priority = np.array(tensors["sample/priority"], dtype=np.uint64)
            if meta.get("with_sample") == "True":
                sk.sample.vectors = {k: np.array(tensors[f"sample/layer_{k}"]) for k in sk.layers}
            sk.info_rows = np.array(tensors["info/rows"], dtype=np.int64)
            sk.info_position = np.array(tensors["info/position"], dtype=np.int64)
            sk.info_token = np.array(json.loads(meta["info_token"]), dtype=object)
            if sk.info_token.shape != sk.info_rows.shape:
                raise ValueError("the maxima's token strings do not match their rows")
            counts = json.loads(meta["word_counts"])
            sk.word_counts = pd.Series(counts, dtype="int64") if counts else None
        except StoreError:
            raise
        except Exception as exc:  # safetensors, JSON and shape errors alike
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"The sketch file {path} is damaged or not an isoscope sketch ({msg}).") from None
        return sk

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> StoreSketch:
        """Read a folder written by :meth:`save` (sample vectors and tokens included)."""
        import pyarrow.parquet as pq

        folder = Path(folder)
        sk = cls.load_file(folder / SKETCH_FILE)
        if (folder / SAMPLE_TOKENS).exists():
            try:
                sk.sample.tokens = pq.read_table(folder / SAMPLE_TOKENS)
            except Exception as exc:
                raise StoreError(f"The sample tokens of sketch {folder} are damaged ({exc}).") from None
        return sk


def write_sketch_store(writer: Any, sketch: StoreSketch, n_sentences: int,
                       extra: dict[str, Any] | None = None) -> Any:
    """Finish a sketch store: the sample as its rows, the sketch file, corpus-wide word counts.

    Parameters
    ----------
    writer : StoreWriter
        An open writer with nothing appended (its manifest records ``keep``).
    sketch : StoreSketch
        The sketch of the whole corpus.
    n_sentences : int
        Sentences of the whole corpus.
    extra : dict, optional
        More manifest entries.

    Returns
    -------
    EmbeddingStore
    """
    from isoscope.store import file_digest

    if sketch.sample.tokens is None:
        raise InputError("No tokens were extracted; the corpus is empty after tokenisation.")
    path = sketch.save_file(writer.root / SKETCH_FILE, include_sample=False)
    record = {"bytes": path.stat().st_size, "blake2b": file_digest(path)}
    writer.append(sketch.sample.vectors, sketch.sample.tokens, n_sentences)
    return writer.finalize({**(extra or {}), "n_tokens_total": sketch.n_tokens, "sketch_file": record},
                           word_counts=sketch.word_counts)
