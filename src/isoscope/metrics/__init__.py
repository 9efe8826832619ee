"""Geometry measures of embedding spaces: pure functions of arrays, plus :func:`analyze`.

Cosine structure (:func:`s_inter`, :func:`s_intra`, :func:`ethayarajh`,
:func:`rogue_dimensions`), spectrum (:func:`spectrum`), isotropy
(:func:`partition_isotropy`, :func:`isoscore`, :func:`isoscore_star`), clusters
(:func:`kmeans_silhouette`), local intrinsic dimension (:func:`lid_mle`, :func:`twonn`),
frequency (:func:`frequency_correlations`), similarity of two representations of the same
points (:func:`linear_cka`, :func:`cka_matrix`, :func:`knn_overlap_matrix`,
:func:`consecutive_overlap`), streaming accumulators
(:class:`StreamingMoments`, :func:`stream_partition_isotropy`), the shared exact
neighbour backend (:func:`exact_knn`). The per-layer suite, :func:`analyze`, lives in
:mod:`isoscope.analysis` and is re-exported here.
"""

from __future__ import annotations

from typing import Any

from isoscope.metrics._neighbors import Neighbors, count_duplicates, exact_knn, unique_rows
from isoscope.metrics.clusters import (
    ClusterResult,
    kmeans_silhouette,
    silhouette,
    silhouette_samples,
)
from isoscope.metrics.cosine import (
    IntraResult,
    center_by_cluster,
    ethayarajh,
    intra_sentence_similarity,
    mev,
    rogue_dimensions,
    s_inter,
    s_intra,
    select_groups,
)
from isoscope.metrics.frequency import frequency_correlations
from isoscope.metrics.isotropy import (
    PartitionIsotropy,
    isoscore,
    isoscore_from_eigenvalues,
    isoscore_star,
    log_partition,
    partition_isotropy,
)
from isoscope.metrics.lid import (
    LIDResult,
    lid_mle,
    lid_mle_from_distances,
    twonn,
    twonn_from_distances,
)
from isoscope.metrics.similarity import (
    cka_matrix,
    consecutive_overlap,
    knn_overlap_matrix,
    linear_cka,
)
from isoscope.metrics.spectrum import Spectrum, covariance, floored_eigh, n_components_for, spectrum
from isoscope.metrics.streaming import (
    StreamingLogPartition,
    StreamingMoments,
    stream_moments,
    stream_partition_isotropy,
)

#: Names that live in :mod:`isoscope.analysis` (which builds on these functions), re-exported
#: lazily so that ``from isoscope.metrics import analyze`` keeps working without an import cycle.
_ANALYSIS = ("DEFAULT_SETTINGS", "AnalysisResult", "analyze", "evaluate_transforms",
             "measure_vectors")


def __getattr__(name: str) -> Any:
    if name in _ANALYSIS:
        import isoscope.analysis

        return getattr(isoscope.analysis, name)
    raise AttributeError(f"module 'isoscope.metrics' has no attribute {name!r}")

__all__ = [
    "analyze",
    "AnalysisResult",
    "DEFAULT_SETTINGS",
    "evaluate_transforms",
    "measure_vectors",
    "Neighbors",
    "exact_knn",
    "unique_rows",
    "count_duplicates",
    "s_inter",
    "s_intra",
    "IntraResult",
    "select_groups",
    "center_by_cluster",
    "rogue_dimensions",
    "intra_sentence_similarity",
    "mev",
    "ethayarajh",
    "Spectrum",
    "spectrum",
    "covariance",
    "floored_eigh",
    "n_components_for",
    "PartitionIsotropy",
    "partition_isotropy",
    "log_partition",
    "isoscore",
    "isoscore_star",
    "isoscore_from_eigenvalues",
    "ClusterResult",
    "kmeans_silhouette",
    "silhouette",
    "silhouette_samples",
    "LIDResult",
    "lid_mle",
    "lid_mle_from_distances",
    "twonn",
    "twonn_from_distances",
    "frequency_correlations",
    "linear_cka",
    "cka_matrix",
    "knn_overlap_matrix",
    "consecutive_overlap",
    "StreamingMoments",
    "StreamingLogPartition",
    "stream_moments",
    "stream_partition_isotropy",
]
