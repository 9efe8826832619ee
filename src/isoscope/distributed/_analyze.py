"""``analyze --engine ray``: moment passes per row-range shard and blocked exact kNN as Ray tasks.

Each shard task opens the memory-mapped store on its node (the store path must be visible
to every worker) and returns the float64 :class:`~isoscope.metrics.StreamingMoments` and the
row hashes of its candidate rows; the driver merges the accumulators in row order (Chan et
al.) and finds the distinct rows from the concatenated hashes, exactly as the
single-process :func:`~isoscope.analysis._source.layer_pass` does over one shard. The exact
neighbour search splits the searched points into row blocks: each task finds every query's
nearest candidates within its block (float64), and the driver recomputes the candidates'
distances from float64 differences and keeps the k nearest, so the merged lists are the
exact k nearest over all blocks.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import numpy as np

from isoscope.analysis._source import LayerPass, Source, distinct_from_hashes, shard_pass
from isoscope.errors import InputError
from isoscope.metrics._neighbors import (
    Neighbors,
    _float64_search,
    _refine_sq,
    _sort_rows,
    _unit,
)
from isoscope.metrics.streaming import StreamingMoments

log = logging.getLogger(__name__)

#: Extra float64 candidates per block before the distances are recomputed from differences.
_MARGIN = 3


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(
            "The ray engine needs Ray; install it with pip install 'isoscope[ray]'."
        ) from None
    return ray


def _shard_task(source: Any, layer: int, candidates: np.ndarray, start: int, stop: int,
                chunk_rows: int, moments: bool, distinct: bool
                ) -> tuple[StreamingMoments | None, np.ndarray | None]:
    """One shard of a layer pass (runs on a worker; ``source``: a store path or an array)."""
    return shard_pass(Source(source), layer, candidates, start, stop, chunk_rows=chunk_rows,
                      moments=moments, distinct=distinct)


def _block_task(X: np.ndarray, kk: int, start: int, stop: int) -> np.ndarray:
    """Every row's kk nearest other rows within rows ``start:stop`` of X (float64)."""
    return _float64_search(X, np.arange(X.shape[0]), kk, start=start, stop=stop)


@lru_cache(maxsize=1)
def _remote() -> tuple[Any, Any]:
    ray = _import_ray()
    return ray.remote(num_cpus=1)(_shard_task), ray.remote(num_cpus=1)(_block_task)


def _ranges(n: int, parts: int, min_size: int = 1) -> list[tuple[int, int]]:
    """``parts`` (fewer if blocks would be smaller than ``min_size``) consecutive ranges of n."""
    parts = max(1, min(int(parts), n // max(int(min_size), 1)))
    edges = np.linspace(0, n, parts + 1).round().astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


class RayEngine:
    """Runs the per-layer passes and the exact neighbour search of analyze as Ray tasks.

    Parameters
    ----------
    address : str, optional
        Ray cluster address (``auto``, ``HOST:PORT`` or ``ray://...``); None connects to the
        Ray instance of this process if one is running, else starts a local one for the run.
    workers : int, optional
        Shards per layer and blocks per search (default: the cluster's CPUs).

    Notes
    -----
    Use it as a context manager; a Ray instance it started is shut down on exit.
    """

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self.address = address
        self.workers = workers
        self._started = False
        self._ray: Any = None

    def __enter__(self) -> RayEngine:
        ray = _import_ray()
        self._ray = ray
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None and self.workers is not None:
                kw["num_cpus"] = int(self.workers)
            ray.init(address=self.address, **kw)
            self._started = True
        if self.workers is None:
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        log.info("ray engine: %d workers", self.workers)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False

    def _source_ref(self, src: Source) -> Any:
        if src.store is not None:
            return str(src.store.path)
        return self._ray.put(np.asarray(src.array))

    def layer_pass(self, src: Source, layer: int, candidates: np.ndarray, *, chunk_rows: int,
                   moments: bool, distinct: bool) -> LayerPass:
        """:func:`~isoscope.analysis._source.layer_pass` as one task per row-range shard."""
        if not moments and not distinct:
            return LayerPass(None, None)
        ray = self._ray
        shard, _ = _remote()
        source = self._source_ref(src)
        cand = np.asarray(candidates, dtype=np.int64)
        jobs = []
        for start, stop in _ranges(src.n_rows, int(self.workers or 1)):
            lo, hi = np.searchsorted(cand, [start, stop])
            jobs.append(shard.remote(source, int(layer), cand[lo:hi], start, stop,
                                     int(chunk_rows), bool(moments), bool(distinct)))
        parts = ray.get(jobs)
        acc = StreamingMoments() if moments else None
        for part_acc, _ in parts:
            if acc is not None and part_acc is not None:
                acc.merge(part_acc)
        found = None
        if distinct:
            hashes = np.concatenate([h for _, h in parts]) if parts else np.zeros(0, np.uint64)
            found = distinct_from_hashes(src, layer, cand, hashes)
        return LayerPass(acc, found)

    def exact_knn(self, X: np.ndarray, k: int, metric: str = "euclidean") -> Neighbors:
        """Exact k nearest other rows of every row of X, searched in row blocks as Ray tasks.

        Parameters
        ----------
        X : ndarray of shape (n, d)
        k : int
        metric : {"euclidean", "cosine"}

        Returns
        -------
        Neighbors
            ``backend`` is ``"ray-blocked"``; distances from float64 differences, ascending
            (ties by index).
        """
        if metric not in ("euclidean", "cosine"):
            raise InputError(f"Unknown neighbour metric {metric!r}; use euclidean or cosine.")
        X = np.ascontiguousarray(X, dtype=np.float32)
        n = X.shape[0]
        k = int(k)
        if not 1 <= k < n:
            raise InputError(f"k={k} neighbours need at least {k + 1} points, got {n}.")
        if metric == "cosine":
            X = np.ascontiguousarray(_unit(X.astype(np.float64)).astype(np.float32))
        kk = min(k + _MARGIN, n - 1)
        _, block = _remote()
        ref = self._ray.put(X)
        jobs = [block.remote(ref, kk, start, stop)
                for start, stop in _ranges(n, int(self.workers or 1), kk + 1)]
        ind = np.concatenate(self._ray.get(jobs), axis=1)
        d2, ind = _sort_rows(_refine_sq(X, ind), ind)
        return Neighbors(distances=np.sqrt(d2[:, :k]), indices=ind[:, :k], metric=metric,
                         backend="ray-blocked")
