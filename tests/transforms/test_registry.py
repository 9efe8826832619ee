"""The spec parser and the registry of repairs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from isoscope.errors import InputError
from isoscope.transforms import (
    ISOSCOPE_VARIANT,
    REGISTRY,
    AllButTheTop,
    ClusterIsotropy,
    Identity,
    LearnedRemoval,
    Repair,
    ZipfianWhitening,
    available_transforms,
    fit_repair,
    from_spec,
    repair_for,
    required_inputs,
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


# --------------------------------------------------------------------------- registry entries
def _one_sentence(message: str) -> bool:
    return message.count(". ") == 0 and message.endswith(".")


def test_every_entry_names_its_class_citation_and_inputs():
    assert list(REGISTRY) == NAMES
    for name, entry in REGISTRY.items():
        assert isinstance(entry, Repair) and entry.name == name
        assert entry.estimator.spec_name == name
        assert entry.description and entry.citation
        for key in entry.inputs:
            assert entry.supply[key]  # a clause saying how a user supplies it
        assert from_spec(name).extra_fit_inputs == entry.inputs
    assert REGISTRY["learned"].fit_inputs == ("pairs",)
    assert REGISTRY["learned"].optional_fit_inputs == ()
    assert REGISTRY["zipf"].fit_inputs == ()
    assert REGISTRY["zipf"].optional_fit_inputs == ("sample_weight",)
    assert REGISTRY["none"].citation == ISOSCOPE_VARIANT
    assert REGISTRY["cluster"].defaults()["n_components"] == 12


def test_repair_for_looks_the_entry_up_by_name_not_by_the_whole_spec():
    assert repair_for("learned:n_components=2").name == "learned"
    assert repair_for(" Learned : alpha=0.1 ") is REGISTRY["learned"]
    assert repair_for(LearnedRemoval(n_components=2)) is REGISTRY["learned"]
    assert required_inputs("learned:n_components=2") == ("pairs",)
    assert required_inputs("zipf:n_components=3") == ()
    with pytest.raises(InputError, match="Unknown transform 'pca'"):
        repair_for("pca:n_components=2")


# --------------------------------------------------------------------------- fit_repair
@pytest.fixture
def pairs(cone):
    rng = np.random.default_rng(0)
    A, B = cone[rng.integers(0, 400, 40)], cone[rng.integers(0, 400, 40)]
    return A, B, -np.abs(A[:, 0] - B[:, 0])


def test_learned_with_parameters_gets_its_pairs(cone, pairs):
    """Regression (issue 14): 'learned:n_components=2' fitted plain ABTT, labelled learned."""
    est = fit_repair("learned:n_components=2", cone, {"pairs": pairs})
    assert isinstance(est, LearnedRemoval)
    assert est.trained_ and est.n_train_pairs_ == 40 and est.n_components_ == 2
    assert not np.allclose(est.weights_, 1.0)  # learned, not all-but-the-top
    direct = LearnedRemoval(n_components=2).fit(cone, pairs=pairs)
    np.testing.assert_array_equal(est.weights_, direct.weights_)


@pytest.mark.parametrize("spec", ["learned", "learned:n_components=2"])
def test_learned_without_pairs_fails_in_one_sentence(cone, spec):
    for inputs in (None, {}, {"pairs": None}, {"sample_weight": np.ones(400)}):
        with pytest.raises(InputError, match="needs the fit input 'pairs'") as info:
            fit_repair(spec, cone, inputs)
        message = str(info.value)
        assert _one_sentence(message) and "--learn-on" in message and repr(spec) in message
    with pytest.raises(InputError, match="needs the fit input 'pairs'"):
        fit_repair(LearnedRemoval(n_components=2), cone)


def test_fit_repair_passes_only_declared_inputs(cone, pairs):
    w = np.arange(1, 401, dtype=float)
    everything = {"pairs": pairs, "sample_weight": w}
    abtt = fit_repair("abtt:n_components=2", cone, everything)
    np.testing.assert_array_equal(abtt.components_, AllButTheTop(n_components=2).fit(cone).components_)
    zipf = fit_repair("zipf", cone, everything)
    np.testing.assert_allclose(zipf.kernel_, ZipfianWhitening().fit(cone, sample_weight=w).kernel_)
    assert zipf.fit_info_["weighted"]
    unweighted = fit_repair("zipf", cone)  # optional: fits without weights
    assert not unweighted.fit_info_["weighted"]
    given = LearnedRemoval(n_components=3)
    assert fit_repair(given, cone, everything) is given and given.trained_


def test_fit_repair_seeds_unless_the_spec_does(cone):
    assert fit_repair("cluster:n_clusters=3", cone, random_state=5).random_state == 5
    assert fit_repair("cluster:n_clusters=3,random_state=2", cone, random_state=5).random_state == 2
    assert fit_repair("abtt", cone, random_state=5).n_components_ == 1
    given = ClusterIsotropy(n_clusters=3, random_state=9)
    assert fit_repair(given, cone, random_state=5).random_state == 9


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("standardize:variance_floor=abc", "could not be fitted: could not convert string"),
        ("abtt:n_components=16", "n_components=16 must be below the width"),
        ("cluster:n_clusters=500", "n_clusters=500 is more than the 400 fit vectors"),
    ],
)
def test_fit_repair_errors_are_one_sentence(cone, spec, fragment):
    with pytest.raises(InputError, match=fragment) as info:
        fit_repair(spec, cone)
    assert _one_sentence(str(info.value))
