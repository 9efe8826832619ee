"""Today's analyze against the results isoscope gave before the registry redesign.

``tests/fixtures/analysis_baseline.json`` was written by ``make_analysis_baseline.py`` with the
code of commit bae1f77. Every key whose definition did not change must give the same number;
renamed keys are compared under their new names; the keys whose definition changed on purpose
are listed with the reason (and in the README's table of deviations).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
sys.path.insert(0, str(FIXTURES))

from make_analysis_baseline import SETTINGS, TRANSFORMS, baseline_store  # noqa: E402

#: new key -> old key, for values that moved to another key.
RENAMED = {
    "s_inter": "s_inter_all",  # S_inter now comes from every token (was the sample)
    "isoscore": "isoscore_all",  # IsoScore now comes from every token
    "mean_norm": "mean_norm_all",
    "n_tokens": "n_vectors_all",
    "isotropy_partition_centered": "isotropy_partition",  # the old default normalisation
    "isotropy_partition_centered_log10": "isotropy_partition_log10",
}

#: Keys whose value changed on purpose, and why.
CHANGED = {
    "isotropy_partition": "raw vectors (Mu & Viswanath), was centred",
    "isotropy_partition_log10": "raw vectors (Mu & Viswanath), was centred",
    "pca_dims_80": "from every token, was the sample",
    "n_null_directions": "from every token, was the sample",
    "rogue_dims": "from every token, was the sample",
    "s_intra": "word types drawn from their own seed stream",
    "s_intra_centered": "word types drawn from their own seed stream",
    "s_intra_n_types": "word types drawn from their own seed stream",
    "self_similarity": "word types drawn from their own seed stream",
    "self_similarity_adjusted": "word types from their own stream; baseline S_inter of every token",
    "mev": "word types drawn from their own seed stream",
    "mev_adjusted": "word types drawn from their own seed stream",
    "mev_baseline": "word types drawn from their own seed stream",
    "intra_sentence_similarity": "sentences drawn from their own seed stream",
    "intra_sentence_similarity_adjusted": "sentences from their own stream; baseline S_inter of every token",
}
#: Counts whose definition changed but whose value may coincide on this small store.
MAY_COINCIDE = {"pca_dims_80", "n_null_directions", "s_intra_n_types"}
REMOVED = {"silhouette_best", "s_inter_all", "isoscore_all", "mean_norm_all", "n_vectors_all"}
#: In the repairs' before/after: fitted on a fit sample drawn from its own seed stream.
CHANGED_IN_REPAIRS = {"isoscore_star"}


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return a == b


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from threadpoolctl import threadpool_limits

    from isoscope.analysis import analyze

    store = baseline_store(tmp_path_factory.mktemp("baseline") / "store")
    with threadpool_limits(1):
        res = analyze(store, sample=1200, seed=0, transforms=TRANSFORMS, transform_layers=[2],
                      progress=False, **SETTINGS)
    return res.to_dict()


def test_every_unchanged_key_gives_the_old_number(results):
    old = json.loads((FIXTURES / "analysis_baseline.json").read_text())
    compared = 0
    for o, n in zip(old["layers"], results["layers"], strict=True):
        assert o["layer"] == n["layer"]
        for key in n:
            if key in ("details", "layer") or key in CHANGED:
                continue
            old_key = RENAMED.get(key, key)
            if old_key not in o:
                continue  # a new measure (effective rank, I(V) unit, ...)
            assert _same(n[key], o[old_key]), (n["layer"], key, n[key], o[old_key])
            compared += 1
        assert not REMOVED & set(n)
    assert compared >= 3 * 25


def test_changed_keys_did_change(results):
    """Guard against a stale list: every key listed as changed differs somewhere."""
    old = json.loads((FIXTURES / "analysis_baseline.json").read_text())
    for key in set(CHANGED) - MAY_COINCIDE:
        pairs = [(o.get(key), n.get(key)) for o, n in zip(old["layers"], results["layers"],
                                                          strict=True)]
        assert any(not _same(a, b) for a, b in pairs), key


def test_repairs_before_is_the_old_sample_measurement(results):
    old = json.loads((FIXTURES / "analysis_baseline.json").read_text())
    sample_keys = {"n_vectors", "n_duplicates", "s_inter_centered", "isotropy_partition_centered",
                   "isoscore", "lid_mle", "lid_mle_median", "lid_twonn", "mms", "n_clusters",
                   "freq_pc1_spearman", "mean_norm", "s_inter"}
    renamed_back = {"isotropy_partition_centered": "isotropy_partition"}
    for o, n in zip(old["transforms"], results["transforms"], strict=True):
        assert o["spec"] == n["spec"] and o["fit"] == n["fit"] == "inductive"
        for key in sample_keys - CHANGED_IN_REPAIRS:
            old_key = renamed_back.get(key, key)
            # The old before/after measured every value on the evaluation sample, as now.
            assert _same(n["before"][key], o["before"][old_key]), (n["spec"], key)
