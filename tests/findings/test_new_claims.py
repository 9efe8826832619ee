"""The verdict rule and the claims of later work, on hand-built results with planted values."""

from __future__ import annotations

import numpy as np
import pytest

from isoscope.findings._claims import (
    NOT_REPRODUCED,
    NOT_TESTABLE,
    PARTLY,
    REPRODUCED,
    VERDICT_RULE,
    claim_centering,
    claim_cka,
    claim_clusters,
    claim_effective_rank,
    claim_frequency,
    claim_id_profile,
    claim_massive,
    verdict_of,
)


def _results(**columns: list) -> dict:
    n = len(next(iter(columns.values())))
    return {"layers": [{"layer": i, **{k: v[i] for k, v in columns.items()}} for i in range(n)],
            "width": 100, "n_tokens": 1000}


def _model(family: str, **columns: list) -> dict:
    return {"family": family, "analysis": {"wikitext": _results(**columns)}}


def _outcome(claim) -> dict:
    return {k.what: k.passed for k in claim.checks}


# -- the verdict rule --------------------------------------------------------------------------


@pytest.mark.parametrize(("passed", "failed", "verdict"), [
    (10, 0, REPRODUCED), (9, 1, REPRODUCED), (8, 1, PARTLY), (18, 2, REPRODUCED), (17, 2, PARTLY),
    (5, 5, PARTLY), (1, 1, PARTLY), (4, 5, NOT_REPRODUCED), (0, 3, NOT_REPRODUCED),
    (0, 0, NOT_TESTABLE),
])
def test_verdict_needs_90_percent_for_reproduced_and_50_for_partly(
        passed: int, failed: int, verdict: str) -> None:
    assert verdict_of([True] * passed + [False] * failed) == verdict


def test_the_page_prints_the_thresholds() -> None:
    assert "90 %" in VERDICT_RULE and "50 %" in VERDICT_RULE and "%%" not in VERDICT_RULE


# -- stricter checks of the 2021 claims --------------------------------------------------------


def test_centering_checks_only_the_s_intra_evidence() -> None:
    # S'_inter is far from 0 here, and it is not checked: near 0 holds for any data.
    models = {"bert": _model("BERT family", s_inter=[0.3] * 4, s_inter_centered=[0.2] * 4,
                             s_intra_centered=[0.5] * 4)}
    claim = claim_centering(models)
    assert _outcome(claim) == {"bert / wikitext: S'_intra stays above S'_inter": True}
    assert claim.verdict == REPRODUCED


def _position_zero(small_share: float) -> dict:
    clusters = [{"size": 900, "share_position_zero": 0.01},
                {"size": 100, "share_position_zero": small_share}]
    entry = {"layer": 2, "n_vectors": 1000, "n_position_zero": 100, "n_clusters": 2, "mms": 0.6,
             "clusters": clusters}
    return {"layers": [entry]}


def test_two_islands_made_of_position_zero_are_the_attention_sink() -> None:
    def run(share: float):
        gpt = _model("GPT family", n_clusters=[1, 2, 2, 2, 1], mms=[0.05, 0.3, 0.3, 0.3, 0.05])
        gpt["position_zero"] = _position_zero(share)
        claim = claim_clusters({"gpt": gpt})
        (check,) = [k for k in claim.checks if "islands" in k.what]
        return check, claim.notes

    sink, notes = run(0.97)
    assert sink.passed is False and "attention sink" in sink.detail
    assert "not the paper's islands" in sink.detail and "attention sink" in notes[0]
    islands, notes = run(0.3)
    assert islands.passed is True and "sink" not in islands.detail + notes[0]


def test_frequency_passing_only_at_layer_zero_says_so() -> None:
    models = {
        "gpt": _model("GPT family", freq_pc1_spearman=[-0.8, 0.2, 0.1, 0.3]),
        "bert": _model("BERT family", freq_pc1_spearman=[-0.8, 0.6, 0.1, 0.3]),
        "glove": _model("static", freq_pc1_spearman=[0.7]),
    }
    by = {k.what: k for k in claim_frequency(models).checks}
    gpt = by["gpt / wikitext: PC1 tracks frequency"]
    assert gpt.passed is True and "only at layer 0, the static input embeddings" in gpt.detail
    assert "0.30" in gpt.detail  # the best contextual layer is named
    assert "only at layer 0" not in by["bert / wikitext: PC1 tracks frequency"].detail
    assert "only" not in by["glove / wikitext: PC1 tracks frequency"].detail


# -- massive activations -----------------------------------------------------------------------


def _massive_entry(layer: int, dims: list[int], position: int, ratio: float) -> dict:
    top = [{"row": 5, "token": "The", "position": position, "dim": j, "value": 500.0,
            "massive": True} for j in dims]
    top += [{"row": 9, "token": "a", "position": 3, "dim": 50, "value": 1.0, "massive": False}]
    return {"layer": layer, "massive_activation_dims": len(dims), "massive_activations": len(dims),
            "massive_activation_ratio": ratio, "max_abs_activation": 500.0 if dims else 2.0,
            "median_abs_activation": 0.1, "massive_activation_top": top,
            "sink_share": 0.6, "sink_token_share": 0.04}


def _causal(entries: list[dict]) -> dict:
    gpt = _model("GPT family", s_inter=[0.1] * len(entries))
    gpt["position_zero"] = {"layers": [], "massive": {"layers": entries}}
    return gpt


def test_massive_activations_planted_at_fixed_dims_and_position_zero() -> None:
    # layers 0..8: massive from layer 2 on (the first quarter), in dims 7 and 13, at position 0
    entries = [_massive_entry(i, [] if i < 2 else [7, 13], 0, 5000.0) for i in range(9)]
    claim = claim_massive({"gpt": _causal(entries),
                           "bert": _model("BERT family", massive_activation_dims=[0, 0],
                                          massive_activation_ratio=[10.0, 12.0])})
    assert _outcome(claim) == {
        "gpt: massive activations from an early layer on": True,
        "gpt: massive activations in a few fixed dimensions": True,
        "gpt: the largest activation is at position 0": True,
    }
    assert claim.verdict == REPRODUCED
    gpt_row, bert_row = claim.tables[0].rows
    assert gpt_row[3] == "2, 3, 4, 5, 6, 7, 8" and gpt_row[7] == "7"
    assert bert_row[3] == "none"  # encoders are shown, not checked


def test_massive_activations_late_scattered_or_elsewhere_fail() -> None:
    # massive only from layer 6 of 8, in a different dimension each layer, not at position 0
    entries = [_massive_entry(i, [] if i < 6 else [i], 4, 2000.0) for i in range(9)]
    claim = claim_massive({"gpt": _causal(entries)})
    assert set(_outcome(claim).values()) == {False}
    assert claim.verdict == NOT_REPRODUCED
    # no massive activations at all: one failed check, the others cannot be computed
    none = claim_massive({"gpt": _causal([_massive_entry(i, [], 0, 50.0) for i in range(5)])})
    assert list(_outcome(none).values()) == [False, None, None]


# -- intrinsic dimension, effective rank -----------------------------------------------------


def test_id_profile_needs_an_inner_peak_with_both_ends_lower() -> None:
    models = {
        "hump": _model("BERT family", id_twonn=[8, 14, 20, 15, 9], id_gride=[8, 14, 20, 15, 9]),
        "rising": _model("GPT family", id_twonn=[5, 8, 11, 14, 17], id_gride=[8, 14, 20, 19, 19]),
    }
    assert _outcome(claim_id_profile(models)) == {
        "hump / wikitext: TwoNN rises then falls": True,
        "hump / wikitext: GRIDE rises then falls": True,
        "rising / wikitext: TwoNN rises then falls": False,  # peak at the last layer
        "rising / wikitext: GRIDE rises then falls": False,  # last layer only 5 % below
    }


def test_effective_rank_dip_of_causal_models_against_encoders() -> None:
    # layer 0 is left out; dip = 1 - min(inner) / min(ends)
    models = {
        "gpt": _model("GPT family", effective_rank=[99, 50, 20, 30, 40],
                      rankme=[99, 51, 21, 31, 41]),
        "bert": _model("BERT family", effective_rank=[99, 50, 45, 48, 40],
                       rankme=[99, 51, 46, 49, 41]),
    }
    claim = claim_effective_rank(models)
    assert _outcome(claim) == {
        "gpt / wikitext: effective rank dips in the middle layers": True,  # 1 - 20/40 = 0.5
        "gpt / wikitext: deeper dip than the BERT family's": True,  # 0.5 vs 0 (45 > 40)
    }
    assert claim.tables[0].rows[0][6] == "0.50"


# -- layer CKA ---------------------------------------------------------------------------------


def test_cka_claim_checks_adjacency() -> None:
    n = 6
    gap = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    smooth = (1.0 - 0.15 * gap).tolist()
    bert = _model("BERT family", s_inter=[0.1] * n)
    bert["analysis"]["wikitext"]["layer_similarity"] = {"layers": list(range(n)),
                                                        "cka_linear": smooth, "n": 500}
    gpt = _model("GPT family", s_inter=[0.1] * n)
    shuffled = np.eye(n)
    shuffled[0, 5] = shuffled[5, 0] = 0.9  # the first and last layers look alike
    shuffled[shuffled == 0] = 0.2
    gpt["analysis"]["wikitext"]["layer_similarity"] = {"layers": list(range(n)),
                                                       "cka_linear": shuffled.tolist(), "n": 400}
    claim = claim_cka({"bert": bert, "gpt": gpt})
    assert _outcome(claim) == {
        "bert / wikitext: adjacent layers more similar than distant ones": True,
        "bert / wikitext: the most similar layer is an adjacent one": True,
        "gpt / wikitext: adjacent layers more similar than distant ones": False,
        "gpt / wikitext: the most similar layer is an adjacent one": False,
    }
    sources = [row[-1] for row in claim.tables[0].rows]
    assert sources == ["results' layer_similarity", "results' layer_similarity"]
    missing = claim_cka({"m": _model("BERT family", s_inter=[0.1] * 3)})
    assert [k.passed for k in missing.checks] == [None] and missing.verdict == NOT_TESTABLE
