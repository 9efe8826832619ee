"""scikit-learn's own estimator checks on every repair."""

from __future__ import annotations

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from isoscope.transforms import (
    AllButTheTop,
    ClusterIsotropy,
    Identity,
    LearnedRemoval,
    MeanCenter,
    Standardize,
    Whitening,
    ZipfianWhitening,
)

ESTIMATORS = [
    Identity(),
    MeanCenter(),
    AllButTheTop(),
    # sklearn's check data have 2 features; D = 2 would remove every direction, which fit
    # refuses (see test_formulas), so the explicit-D instance removes one.
    AllButTheTop(n_components=1),
    ClusterIsotropy(n_clusters=3, n_components=2),
    LearnedRemoval(n_components=2),
    Whitening(),
    Whitening(n_components=2),
    ZipfianWhitening(),
    Standardize(),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        # LearnedRemoval warns that it is ABTT when fitted without word pairs.
        warnings.filterwarnings("ignore", message="LearnedRemoval was fitted without")
        check(estimator)
