"""The spec parser and the registry of repairs."""

from __future__ import annotations

import pytest
from sklearn.base import clone

from isoscope.errors import InputError
from isoscope.transforms import (
    AllButTheTop,
    ClusterIsotropy,
    Identity,
    LearnedRemoval,
    available_transforms,
    from_spec,
    spec_of,
)

NAMES = ["none", "center", "abtt", "cluster", "learned", "whiten", "zipf", "standardize"]


def test_available_transforms_lists_every_name_with_a_description():
    names = available_transforms()
    assert list(names) == NAMES
    assert all(isinstance(desc, str) and desc for desc in names.values())


@pytest.mark.parametrize("name", NAMES)
def test_from_spec_returns_an_unfitted_estimator(name):
    est = from_spec(name)
    assert not hasattr(est, "n_features_in_")
    assert spec_of(est) == name
    assert spec_of(clone(est)) == name


def test_from_spec_parses_parameters():
    est = from_spec("cluster:n_clusters=27,n_components=12")
    assert isinstance(est, ClusterIsotropy)
    assert (est.n_clusters, est.n_components) == (27, 12)
    abtt = from_spec(" ABTT : n_components = 3 ")
    assert isinstance(abtt, AllButTheTop) and abtt.n_components == 3
    assert isinstance(from_spec("none"), Identity)
    learned = from_spec("learned:objective=soft_spearman,alpha=0.01")
    assert isinstance(learned, LearnedRemoval)
    assert learned.objective == "soft_spearman"
    assert learned.alpha == pytest.approx(0.01)
    assert from_spec("whiten:n_components=none").n_components is None


def test_spec_of_round_trips():
    for spec in [
        "abtt:n_components=3",
        "cluster:n_clusters=5,n_components=2",
        "whiten:n_components=4",
    ]:
        assert spec_of(from_spec(spec)) == spec


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("pca", "Unknown transform 'pca'"),
        ("abtt:k=3", "Unknown parameter 'k' for transform 'abtt'"),
        ("abtt:n_components", "not of the form key=value"),
        ("", "non-empty string"),
    ],
)
def test_from_spec_rejects_bad_specs_with_one_sentence(spec, fragment):
    with pytest.raises(InputError, match=fragment) as info:
        from_spec(spec)
    assert str(info.value).count(". ") == 0 and str(info.value).endswith(".")
