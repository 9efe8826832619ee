"""Per-layer analysis of a store or an array: :func:`analyze` and its typed results.

The measures themselves are registered in :mod:`isoscope.measures`; this package chooses the
rows (seeded sample, distinct sample, whole-layer moments), runs the registry on every layer,
measures repairs before and after, and writes ``results.json``.
"""

from __future__ import annotations

from isoscope.analysis._repairs import evaluate_transforms
from isoscope.analysis._results import (
    RESULTS_SCHEMA_VERSION,
    AnalysisResult,
    check_schema,
    load_results,
)
from isoscope.analysis._settings import (
    DEFAULT_SETTINGS,
    SEED_STREAMS,
    AnalysisSettings,
    derived_seeds,
)
from isoscope.analysis._source import Source
from isoscope.analysis._suite import analyze, measure_vectors, thread_limit

__all__ = [
    "DEFAULT_SETTINGS",
    "RESULTS_SCHEMA_VERSION",
    "SEED_STREAMS",
    "AnalysisResult",
    "AnalysisSettings",
    "Source",
    "analyze",
    "check_schema",
    "derived_seeds",
    "evaluate_transforms",
    "load_results",
    "measure_vectors",
    "thread_limit",
]
