"""Isotropy repairs as scikit-learn transformers.

Spec names (:func:`from_spec`) and classes:

- ``none`` -- :class:`Identity`: no repair (baseline).
- ``center`` -- :class:`MeanCenter`: subtract the mean.
- ``abtt`` -- :class:`AllButTheTop`: centre, remove the top D directions (D = d/100).
- ``cluster`` -- :class:`ClusterIsotropy`: per k-means cluster, centre and remove the top
  D directions (the paper's C = 27, D = 12, 10 k-means initialisations;
  ``n_components=scaled`` scales D with the width).
- ``learned`` -- :class:`LearnedRemoval`: weighted removal, weights learned on training
  word pairs (required fit input ``pairs=(A, B, scores)``; see :func:`split_pairs`).
- ``whiten`` -- :class:`Whitening`: identity covariance, optionally k dimensions.
- ``zipf`` -- :class:`ZipfianWhitening`: whitening under word-frequency weights
  (optional fit input ``sample_weight=frequencies``).
- ``standardize`` -- :class:`Standardize`: per-dimension z-scores.

Each repair is an estimator with ``fit`` / ``transform`` / ``fit_transform`` and
``get_feature_names_out``; it composes in a :class:`sklearn.pipeline.Pipeline`. Build one
by short name with :func:`from_spec` (``"abtt:n_components=3"``), list the names with
:func:`available_transforms`, and save / load fitted ones with :func:`save_transform` /
:func:`load_transform` (safetensors + JSON, no pickle).

:data:`REGISTRY` holds one :class:`Repair` entry per name (class, description, citation,
required and optional extra fit inputs); :func:`fit_repair` is the one dispatch every caller
fits through: it looks the entry up by the spec's name (:func:`repair_for`), passes the
declared inputs and refuses, in one sentence, a repair whose required input
(:func:`required_inputs`) is missing.
"""

from isoscope.transforms._base import IsotropyTransform, spec_of
from isoscope.transforms._cluster import ClusterIsotropy
from isoscope.transforms._io import load_transform, save_transform
from isoscope.transforms._learned import LearnedRemoval, split_pairs
from isoscope.transforms._linear import AllButTheTop, Identity, MeanCenter, Standardize
from isoscope.transforms._registry import (
    ISOSCOPE_VARIANT,
    REGISTRY,
    Repair,
    available_transforms,
    fit_repair,
    from_spec,
    repair_for,
    required_inputs,
)
from isoscope.transforms._whitening import Whitening, ZipfianWhitening

__all__ = [
    "ISOSCOPE_VARIANT",
    "REGISTRY",
    "AllButTheTop",
    "ClusterIsotropy",
    "Identity",
    "IsotropyTransform",
    "LearnedRemoval",
    "MeanCenter",
    "Repair",
    "Standardize",
    "Whitening",
    "ZipfianWhitening",
    "available_transforms",
    "fit_repair",
    "from_spec",
    "load_transform",
    "repair_for",
    "required_inputs",
    "save_transform",
    "spec_of",
    "split_pairs",
]
