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


# -- what the page prints beside the checks ----------------------------------------------------


def test_claims_8_to_11_carry_their_reading_notes() -> None:
    from isoscope.findings._claims import CKA, ERANK, ID_PROFILE, MASSIVE

    gpt = _causal([_massive_entry(i, [7], 0, 5000.0) for i in range(3)])
    built = [claim_massive({"gpt": gpt}), claim_id_profile({}), claim_effective_rank({}),
             claim_cka({})]
    for claim, text, names in zip(built, (MASSIVE, ID_PROFILE, ERANK, CKA), (
            ("> 100", "1000 × the median", "position 0", "delimiter", "dequantised"),
            ("TwoNN", "GRIDE", "r₁₆/r₈", "Layer 0", "proteins and images"),
            ("singular values", "ε = 10⁻⁷", "each prompt", "dip"),
            ("‖YᵀX‖²_F", "orthogonal", "debiased", "residual", "Nguyen et al.")), strict=True):
        assert claim.reading == text.reading and len(text.reading) > 800
        for name in names:
            assert name in text.reading, (claim.number, name)


def test_claims_1_to_7_carry_their_reading_notes() -> None:
    from isoscope.analysis._settings import AnalysisSettings
    from isoscope.findings import _claims as C
    from isoscope.findings._plan import REPAIRS, FindingsPlan
    from isoscope.transforms._cluster import PAPER_N_CLUSTERS, PAPER_N_COMPONENTS

    a, full, quick = AnalysisSettings(), FindingsPlan(), FindingsPlan.make(quick=True)
    built = [C.claim_cosine({}), C.claim_clusters({}), C.claim_centering({}),
             C.claim_manifolds({}), C.claim_frequency({}), C.claim_lid({}),
             C.claim_repairs({}, REPAIRS)]
    texts = (C.COSINE, C.CLUSTERS, C.CENTERING, C.MANIFOLDS, C.FREQUENCY, C.LID, C.REPAIRS_TEXT)
    names = (
        # the paper's definitions, what isoscope computes instead, each check's threshold
        ("inter-type", "intra-type", "random sample of pairs", "token id",
         f"at most {a.s_intra_max_types:,} seeded types",
         f"at least {a.s_intra_min_occurrences} occurrences", f"at most {a.s_intra_cap}",
         "ρ ≥ 0.5", "≥ 0.1 at every layer", "layer 0", "rogue", "position 0", "--quick"),
        (f"from {a.k_range[0]} to {a.k_range[1]}", f"{a.silhouette_sample:,} points",
         "Maximum Mean Silhouette", f"MMS < {a.no_cluster_mms}",
         f"at most {C.SINK_CLUSTER_SHARE:.0%}".replace("%", " %"), "attention sink",
         "not the paper's two islands", "one initialisation per k", "kmeans_n_init=10",
         "--quick"),
        ("mean of the claim-2 k-means cluster", "S'_intra", "≥ 0.1 at every layer",
         "shown but not checked", "close to 0 for any data", "was dropped", "--quick"),
        (f"{full.cloud_points:,} tokens", f"{quick.cloud_points:,} in a --quick run",
         "Swiss roll", "TwoNN", "proxies", "read only from the figure", "claim 8"),
        ("Zipf", "wordfreq", "sign is arbitrary", "|ρ| ≥ 0.5", "0.7", "layer 0",
         "ρ(norm, Zipf)", "frequency_regions", "--quick"),
        ("Amsaleg", f"k = {a.lid_k}", "k / Σ_i log(d_k / d_i)", "levina_bickel", "median",
         "mean over points", "≤ 0.1", "ρ ≥ 0.5", "roughly linearly", "word type", "--quick"),
        ("Z(c) = Σ_w exp(cᵀv_w)", "unit-length", "whitening inflates norms", "d/100",
         f"{PAPER_N_CLUSTERS} k-means clusters", f"top {PAPER_N_COMPONENTS} directions",
         "w_i in [0, 1]", "Liang et al.", "inductive fit", "transductive", "any margin", "--quick"),
    )
    for claim, text, want in zip(built, texts, names, strict=True):
        assert claim.reading == text.reading and len(text.reading) > 800, claim.number
        for name in want:
            assert name in text.reading, (claim.number, name)
    # the figure captions name the line styles the figures draw (_figures._STYLES, axhline)
    assert "GloVe (one layer) dotted" in C.COSINE.figure[1]
    assert "GloVe as a dotted line" in C.LID.figure[1]


def test_run_time_is_the_sum_of_the_step_seconds_and_names_no_machine() -> None:
    from isoscope.findings._render import compute_minutes, run_time_line

    collected = {"models": {
        "a": {"family": "BERT family", "analysis": {"wikitext": {"seconds": 3000.0},
                                                     "ptb": {"seconds": 700.4}},
              "repairs": {"seconds": 20.0, "transforms": []}},
        "b": {"family": "GPT family", "analysis": {"wikitext": {"seconds": 1.0}},
              "position_zero": {"seconds": 9.0, "massive": {"layers": []}}},
    }}
    line = run_time_line(collected)
    assert line.startswith("1 h 02 min (3,730 s), the sum of the seconds recorded by the 5 step")
    assert "do not record the machine" in line and "CPU" not in line
    assert compute_minutes(collected) == pytest.approx(3730.4 / 60)


def test_new_figures_draw_the_collected_values(tmp_path, monkeypatch) -> None:
    from isoscope.findings import _figures as F

    drawn = {}
    save = F._save

    def keep(fig, path):
        drawn[path.stem] = [[(np.asarray(ln.get_xdata(), float).tolist(),
                              np.asarray(ln.get_ydata(), float).tolist()) for ln in ax.lines]
                            for ax in fig.axes]
        return save(fig, path)

    monkeypatch.setattr(F, "_save", keep)
    gpt = _causal([_massive_entry(i, [7] if i else [], 0, 10.0 ** (i + 1)) for i in range(4)])
    gpt["analysis"]["wikitext"]["layers"] = _results(
        s_inter=[0.1] * 4, id_twonn=[5, 9, 7, 6], id_gride=[6, 10, 8, 7],
        effective_rank=[90, 60, 40, 50])["layers"]
    bert = _model("BERT family", s_inter=[0.1] * 3, id_twonn=[4, 8, 5], id_gride=[5, 9, 6],
                  effective_rank=[80, 70, 75], max_abs_activation=[2.0, 3.0, 4.0],
                  massive_activation_ratio=[20.0, 30.0, 40.0], massive_activation_dims=[0] * 3)
    models = {"gpt": gpt, "bert": bert, "glove": _model("static", id_twonn=[30.0])}
    for draw in (F.fig_massive, F.fig_id_profile, F.fig_effective_rank):
        assert draw(models, tmp_path).stat().st_size > 5_000
    # massive: causal model from its position-0 pass, encoder from its analysis; thresholds
    (gpt_ratio, bert_ratio, factor), (gpt_top, bert_top, floor) = drawn["massive"]
    assert gpt_ratio == ([0, 1 / 3, 2 / 3, 1], [10.0, 100.0, 1000.0, 10000.0])
    assert bert_ratio == ([0, 0.5, 1], [20.0, 30.0, 40.0]) and bert_top[1] == [2.0, 3.0, 4.0]
    assert gpt_top[1] == [2.0, 500.0, 500.0, 500.0]
    assert factor[1] == [1000.0, 1000.0] and floor[1] == [100.0, 100.0]
    (twonn_gpt, twonn_bert), (gride_gpt, _) = drawn["id_profile"]  # static table left out
    assert twonn_gpt[1] == [5, 9, 7, 6] and twonn_bert[1] == [4, 8, 5]
    assert gride_gpt[1] == [6, 10, 8, 7]
    (er_gpt, er_bert), (share_gpt, _) = drawn["erank"]  # from layer 1, and over the width 100
    assert er_gpt == ([1 / 3, 2 / 3, 1], [60, 40, 50]) and er_bert[1] == [70, 75]
    assert share_gpt[1] == pytest.approx([0.6, 0.4, 0.5])
    assert F.fig_massive({"bert": _model("BERT family", s_inter=[0.1] * 2)}, tmp_path) is None
