"""The registry of measures: every key of ``results.json`` with its definition and source.

>>> from isoscope.measures import REGISTRY
>>> REGISTRY["s_inter"].evidence
'all tokens'

Adding a measure is one :func:`register` block in ``_catalogue.py`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

from isoscope.measures import _catalogue  # noqa: F401  (registers every measure)
from isoscope.measures._docs import results_reference
from isoscope.measures._layer import LayerData
from isoscope.measures._registry import (
    EVIDENCE,
    NEEDS,
    REGISTRY,
    Measure,
    MeasureGroup,
    Panel,
    Registry,
    register,
)
from isoscope.measures._run import measure_layer

__all__ = [
    "EVIDENCE",
    "NEEDS",
    "REGISTRY",
    "LayerData",
    "Measure",
    "MeasureGroup",
    "Panel",
    "Registry",
    "measure_layer",
    "register",
    "results_reference",
]
