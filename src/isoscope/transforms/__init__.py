"""Isotropy repairs as scikit-learn transformers.

Spec names (:func:`from_spec`) and classes:

- ``none`` -- :class:`Identity`: no repair (baseline).
- ``center`` -- :class:`MeanCenter`: subtract the mean.
- ``abtt`` -- :class:`AllButTheTop`: centre, remove the top D directions (D = d/100).
- ``cluster`` -- :class:`ClusterIsotropy`: per k-means cluster, centre and remove the top
  D directions (C = 27, D = round(12 d / 768)).
- ``learned`` -- :class:`LearnedRemoval`: weighted removal, weights learned on training
  word pairs (``fit(X, pairs=(A, B, scores))``; see :func:`split_pairs`).
- ``whiten`` -- :class:`Whitening`: identity covariance, optionally k dimensions.
- ``zipf`` -- :class:`ZipfianWhitening`: whitening under word-frequency weights
  (``fit(X, sample_weight=frequencies)``).
- ``standardize`` -- :class:`Standardize`: per-dimension z-scores.

Each repair is an estimator with ``fit`` / ``transform`` / ``fit_transform`` and
``get_feature_names_out``; it composes in a :class:`sklearn.pipeline.Pipeline`. Build one
by short name with :func:`from_spec` (``"abtt:n_components=3"``), list the names with
:func:`available_transforms`, and save / load fitted ones with :func:`save_transform` /
:func:`load_transform` (safetensors + JSON, no pickle).
"""

from isoscope.transforms._base import IsotropyTransform, spec_of
from isoscope.transforms._cluster import ClusterIsotropy
from isoscope.transforms._io import load_transform, save_transform
from isoscope.transforms._learned import LearnedRemoval, split_pairs
from isoscope.transforms._linear import AllButTheTop, Identity, MeanCenter, Standardize
from isoscope.transforms._registry import available_transforms, from_spec
from isoscope.transforms._whitening import Whitening, ZipfianWhitening

__all__ = [
    "AllButTheTop",
    "ClusterIsotropy",
    "Identity",
    "IsotropyTransform",
    "LearnedRemoval",
    "MeanCenter",
    "Standardize",
    "Whitening",
    "ZipfianWhitening",
    "available_transforms",
    "from_spec",
    "load_transform",
    "save_transform",
    "spec_of",
    "split_pairs",
]
