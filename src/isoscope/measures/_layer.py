"""What a measure group reads: :class:`LayerData`, one layer's inputs, computed lazily once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from isoscope.metrics.streaming import StreamingMoments


@dataclass
class LayerData:
    """The inputs of every measure for one layer (or one set of vectors).

    Parameters
    ----------
    sample : ndarray of shape (n, d), float64
        The seeded sample with all-zero rows removed (the same rows in every layer).
    settings : mapping
        Analysis settings (see :class:`isoscope.analysis.AnalysisSettings`).
    moments : StreamingMoments
        Float64 moments of every selected token of the layer, or of the sample when the
        whole layer is not streamed (``moments_evidence`` says which).
    moments_evidence : {"all tokens", "sample"}
    distinct : ndarray of shape (m, d), optional
        The sample for neighbour and cluster measures: drawn from the layer's distinct
        vectors. When None, the sample's distinct rows are used.
    frequency : ndarray of shape (n,), optional
        Corpus frequency of each sample row (aligned with ``sample``).
    positions : ndarray of int of shape (n,), optional
        Position in its sentence of each sample row (aligned with ``sample``; stores only).
    row_info : callable, optional
        ``row_info(rows)`` gives ``{"token": ..., "position": ...}`` arrays for row ids of the
        source (stores only); used to name the rows behind the moments' per-dimension maxima.
    intra_X, intra_keys : optional
        Occurrences of the selected word types and their type codes.
    sentence_X, sentence_ids : optional
        The selected whole sentences.
    reference_cov : ndarray, optional
        IsoScore*'s shrinkage target.
    n_zero_rows : int
        All-zero rows dropped from the sample.
    n_duplicates : int
        Exact duplicate rows in the sample.
    neighbor_search : callable, optional
        ``neighbor_search(X, k, metric) -> (Neighbors, audit or None)`` replacing the exact
        single-process search of the LID measures (approximate or distributed searches).
    """

    sample: np.ndarray
    settings: Mapping[str, Any]
    moments: StreamingMoments
    moments_evidence: str = "all tokens"
    distinct: np.ndarray | None = None
    frequency: np.ndarray | None = None
    positions: np.ndarray | None = None
    row_info: Callable[[np.ndarray], Mapping[str, Any]] | None = None
    intra_X: np.ndarray | None = None
    intra_keys: np.ndarray | None = None
    sentence_X: np.ndarray | None = None
    sentence_ids: np.ndarray | None = None
    reference_cov: np.ndarray | None = None
    n_zero_rows: int = 0
    n_duplicates: int = 0
    neighbor_search: Callable[..., tuple[Any, Mapping[str, Any] | None]] | None = None
    #: The audit of an approximate neighbour search (set with :attr:`lid`).
    neighbor_audit: Mapping[str, Any] | None = None
    #: Values computed so far (groups run in registry order and may read earlier values).
    values: dict[str, Any] = field(default_factory=dict)
    #: Arrays and curves for the report (``details`` in results.json).
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        """The analysis seed."""
        return int(self.settings["seed"])

    def has(self, need: str) -> bool:
        """Whether an input named in :data:`isoscope.measures.NEEDS` is available."""
        if need == "words":
            return self.intra_X is not None and self.intra_keys is not None and len(self.intra_keys) >= 2
        if need == "sentences":
            return self.sentence_X is not None and self.sentence_ids is not None
        if need == "frequency":
            return self.frequency is not None
        if need == "positions":
            return self.positions is not None
        return True

    @cached_property
    def neighbor_points(self) -> np.ndarray:
        """Distinct vectors the neighbour and cluster measures run on (float32 for the search)."""
        from isoscope.metrics._neighbors import unique_rows

        X = self.distinct if self.distinct is not None else self.sample
        keep, _ = unique_rows(X)
        return np.asarray(X[np.sort(keep)] if keep.size != X.shape[0] else X)

    @cached_property
    def spectrum(self) -> Any:
        """:class:`~isoscope.metrics.Spectrum` of the moments' covariance."""
        from isoscope.metrics.spectrum import spectrum

        return spectrum(cov=self.moments.covariance())

    @cached_property
    def lid(self) -> Any:
        """:class:`~isoscope.metrics.LIDResult` of the neighbour points."""
        from isoscope.metrics.lid import lid_mle

        s = self.settings
        X = self.neighbor_points.astype(np.float32)
        nb = None
        if self.neighbor_search is not None:
            from isoscope.metrics._neighbors import unique_rows

            keep, _ = unique_rows(X)  # as lid_mle de-duplicates
            nb, self.neighbor_audit = self.neighbor_search(
                X[keep] if keep.size != X.shape[0] else X, int(s["lid_k"]), s["lid_metric"])
        return lid_mle(
            X,
            k=int(s["lid_k"]),
            metric=s["lid_metric"],
            variant=s["lid_variant"],
            backend=s["neighbor_backend"],
            neighbors=nb,
        )

    @cached_property
    def clusters(self) -> Any:
        """:class:`~isoscope.metrics.ClusterResult` of k-means on the neighbour points."""
        from isoscope.metrics.clusters import kmeans_silhouette

        s = self.settings
        return kmeans_silhouette(
            np.asarray(self.neighbor_points, dtype=np.float64),
            tuple(s["k_range"]),
            silhouette_sample=s["silhouette_sample"],
            seed=self.seed,
            n_init=int(s["kmeans_n_init"]),
            max_iter=int(s["kmeans_max_iter"]),
            min_mms=s["no_cluster_mms"],
            backend=str(s["kmeans_backend"]),
        )
