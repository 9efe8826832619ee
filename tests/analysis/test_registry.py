"""The measure registry: one entry per key, every consumer reads it, new measures check out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from isoscope.analysis import analyze
from isoscope.measures import EVIDENCE, REGISTRY, results_reference

FAST = {"k_range": [2, 4], "silhouette_sample": 300, "lid_k": 8}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "results.md"


def test_every_registered_key_is_reported_and_nothing_else() -> None:
    X = np.random.default_rng(0).standard_normal((400, 12)) + 1.0
    entry = analyze(X, sample=None, progress=False, **FAST).layers[0]
    reported = set(entry) - {"layer", "details"}
    assert reported == {m.key for m in REGISTRY}
    for m in REGISTRY:
        assert m.evidence in EVIDENCE
        assert m.definition and m.source and m.label and m.unit is not None
        assert not (m.source == "isoscope variant" and m.paper), m.key
    # measures that need word identities are None for a plain array
    assert entry["s_intra"] is None and entry["self_similarity"] is None


def test_effective_rank_and_rankme_match_the_direct_formula() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((500, 10)) * np.linspace(0.1, 3.0, 10) + 5.0
    entry = analyze(X, sample=None, progress=False, **FAST).layers[0]
    sigma = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    p = sigma / sigma.sum()
    assert entry["effective_rank"] == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-9)
    q = p + 1e-7
    assert entry["rankme"] == pytest.approx(np.exp(-np.sum(q * np.log(q))), rel=1e-9)
    # a rank-2 layer has an effective rank of at most 2
    low = rng.standard_normal((300, 2)) @ rng.standard_normal((2, 10))
    e2 = analyze(low, sample=None, progress=False, **FAST).layers[0]
    assert 1.0 <= e2["effective_rank"] <= 2.0 + 1e-6


def test_rankme_matches_reptrix_on_the_singular_values() -> None:
    rankme = pytest.importorskip("reptrix.rankme", reason="reptrix is not installed (the Makefile "
                                 "installs it with --no-deps)")
    rng = np.random.default_rng(4)
    X = rng.standard_normal((600, 16)) * np.geomspace(0.05, 4.0, 16) - 2.0
    entry = analyze(X, sample=None, progress=False, **FAST).layers[0]
    sigma = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    # reptrix's get_rank is Garrido et al.'s RankMe (l1-normalised spectrum + 1e-7) of whatever
    # spectrum it is given; the paper's spectrum is the singular values. (Its get_rankme feeds
    # PCA variances, sigma**2 / (n - 1), which is another quantity: not compared.)
    assert entry["rankme"] == pytest.approx(float(rankme.get_rank(sigma)), rel=1e-9)


def test_table_frame_and_report_panels_come_from_the_registry() -> None:
    X = np.random.default_rng(2).standard_normal((300, 6))
    res = analyze(X, sample=None, progress=False, **FAST)
    header = res.format_table().splitlines()[0]
    assert header.split()[0] == "layer"
    positions = [header.index(f" {m.table}") for m in REGISTRY.table_measures()]
    assert positions == sorted(positions)
    frame = res.to_frame()
    assert list(frame.columns) == ["layer", *REGISTRY.scalar_keys()]
    panels = {p.id for p in REGISTRY.panels()}
    assert {m.panel for m in REGISTRY if m.panel is not None} <= panels
    assert all(REGISTRY.panel_measures(p) for p in panels)


def test_registry_refuses_a_duplicate_key() -> None:
    from isoscope.measures import Measure, MeasureGroup

    dup = Measure("s_inter", "x", "", None, "sample", "x", "x")
    with pytest.raises(ValueError, match="registered twice"):
        REGISTRY.add(MeasureGroup("again", (dup,), lambda d: {}))


def test_results_reference_is_current() -> None:
    text = results_reference()
    for m in REGISTRY:
        assert f"`{m.key}`" in text
    assert DOCS.read_text(encoding="utf-8").strip() == text.strip(), (
        "docs/results.md is stale: run `python -m isoscope.measures > docs/results.md`"
    )
