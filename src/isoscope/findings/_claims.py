"""The seven claims: what each paper reported, the checks isoscope runs, and the verdicts.

Every verdict is computed from the collected numbers by the explicit checks written here;
the page prints each check with its outcome, so a reader can see why a claim was (not)
reproduced.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from isoscope.findings._plan import ISOTROPY_KEY, ISOTROPY_LABEL

REPRODUCED = "reproduced"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_TESTABLE = "not testable here"


@dataclass
class Check:
    """One test of a claim on one model (and corpus)."""

    what: str
    passed: bool | None  # None: could not be computed
    detail: str = ""

    def __post_init__(self) -> None:
        if self.passed is not None:
            self.passed = bool(self.passed)  # numpy booleans -> bool


@dataclass
class Table:
    """A small table for the page (cells already formatted)."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Claim:
    """A claim, what the paper reported, isoscope's numbers and the verdict."""

    number: int
    title: str
    paper: str
    method: str
    checks: list[Check] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (file, caption)
    notes: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """All checks passed: reproduced; some: partly; none: not reproduced."""
        known = [c.passed for c in self.checks if c.passed is not None]
        if not known:
            return NOT_TESTABLE
        if all(known):
            return REPRODUCED
        if any(known):
            return PARTLY
        return NOT_REPRODUCED

    def by_family(self, families: Mapping[str, str]) -> list[tuple[str, int, int]]:
        """(family, checks passed, checks run) for the models whose name starts a check."""
        names = sorted(families, key=len, reverse=True)
        out: dict[str, list[int]] = {}
        for k in self.checks:
            if k.passed is None:
                continue
            model = next((n for n in names if k.what.startswith(n)), None)
            if model is None:
                continue
            t = out.setdefault(families[model], [0, 0])
            t[0] += int(k.passed)
            t[1] += 1
        return [(f, p, n) for f, (p, n) in out.items()]

    @property
    def tally(self) -> str:
        known = [c.passed for c in self.checks if c.passed is not None]
        return f"{sum(known)} of {len(known)} checks passed"


# -- reading the collected data ---------------------------------------------------------------


def fmt(v: Any, digits: int = 2) -> str:
    """A number for a table cell ("–" when missing)."""
    if v is None:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    v = float(v)
    if not np.isfinite(v):
        return "–"
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.0"


def layer_entries(results: Mapping[str, Any], skip_embedding: bool = False) -> list[dict]:
    rows = [e for e in results.get("layers", []) if isinstance(e, dict)]
    if skip_embedding and len(rows) > 1:
        rows = [e for e in rows if e["layer"] != 0]
    return rows


def series(results: Mapping[str, Any], key: str, skip_embedding: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(layers, values) of one measure, NaN where missing."""
    rows = layer_entries(results, skip_embedding)
    x = np.array([e["layer"] for e in rows], dtype=float)
    y = np.array([np.nan if e.get(key) is None else float(e[key]) for e in rows])
    return x, y


def depth(results: Mapping[str, Any]) -> np.ndarray:
    """Layers as a 0..1 share of the model's depth."""
    x, _ = series(results, "s_inter")
    top = max(float(x.max()), 1.0) if x.size else 1.0
    return x / top


def trend(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """Spearman rho of y against x and R^2 of a straight-line fit (None when undefined)."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(y[ok]) == 0:
        return None, None
    rho = float(stats.spearmanr(x[ok], y[ok]).statistic)
    r = float(stats.pearsonr(x[ok], y[ok]).statistic)
    return rho, r * r


def contextual(models: Mapping[str, Any]) -> dict[str, Any]:
    return {m: d for m, d in models.items() if d["family"] != "static"}


def of_family(models: Mapping[str, Any], family: str) -> dict[str, Any]:
    return {m: d for m, d in models.items() if d["family"] == family}


def corpora_of(data: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    return data["analysis"].items()


def each_corpus(
    models: Mapping[str, Any],
) -> Iterator[tuple[str, Mapping[str, Any], str, Mapping[str, Any]]]:
    """``(model, its data, corpus, analysis results)`` for every corpus of every model."""
    for m, d in models.items():
        for corpus, res in corpora_of(d):
            yield m, d, corpus, res


def at_least(value: float | None, threshold: float) -> bool | None:
    """``value >= threshold``, or None (not checked) when the value could not be computed."""
    return None if value is None else bool(value >= threshold)


def at_most(value: float | None, threshold: float) -> bool | None:
    """``value <= threshold``, or None (not checked) when the value could not be computed."""
    return None if value is None else bool(value <= threshold)


def middle_entry(results: Mapping[str, Any]) -> dict:
    rows = layer_entries(results)
    top = rows[-1]["layer"]
    return min(rows, key=lambda e: abs(e["layer"] - top / 2))


# -- the claims -------------------------------------------------------------------------------


def claim_cosine(models: Mapping[str, Any]) -> Claim:
    c = Claim(
        1,
        "Inter-type cosine grows with depth; S_intra is high everywhere; the GPT-family last "
        "layer is the most anisotropic",
        "Cai et al. (2021) report for BERT, GPT-2, ELMo and others that the "
        "mean cosine between random tokens (S_inter) rises in deeper layers, that occurrences "
        "of the same word (S_intra) stay more similar than random pairs in every layer, and "
        "that GPT-2's last layer is the extreme case, with S_inter near 1 (Ethayarajh, 2019, "
        "saw the same).",
        "S_inter and S_intra per hidden state (the embedding output is layer 0 and is left out "
        "of the depth trend), special tokens excluded: S_inter exactly over every extracted "
        "token of each corpus, S_intra on a seeded sample of tokens. Checks: Spearman ρ(layer, S_inter) ≥ 0.5; S_intra − S_inter ≥ 0.1 at "
        "every layer; for GPT-family models, the last layer has the largest S_inter, and it "
        "exceeds every BERT-family model's last-layer S_inter on the same corpus.",
    )
    rows = []
    bert_last: dict[str, float] = {}
    for d in of_family(models, "BERT family").values():
        for corpus, res in corpora_of(d):
            bert_last[corpus] = max(bert_last.get(corpus, -np.inf), series(res, "s_inter")[1][-1])
    for m, d, corpus, res in each_corpus(contextual(models)):
        x, s_inter = series(res, "s_inter", skip_embedding=True)
        _, s_intra = series(res, "s_intra", skip_embedding=True)
        rho, _ = trend(x, s_inter)
        gap = np.nanmin(s_intra - s_inter) if np.isfinite(s_intra).any() else None
        top = int(x[int(np.nanargmax(s_inter))]) if np.isfinite(s_inter).any() else None
        rows.append([m, corpus, fmt(s_inter[0]), fmt(s_inter[len(s_inter) // 2]),
                     fmt(s_inter[-1]), fmt(rho), fmt(np.nanmin(s_intra)),
                     fmt(gap), str(top), str(int(x[-1]))])
        c.checks.append(Check(f"{m} / {corpus}: S_inter grows with depth",
                              at_least(rho, 0.5), f"ρ = {fmt(rho)}"))
        c.checks.append(Check(f"{m} / {corpus}: S_intra above S_inter at every layer",
                              at_least(gap, 0.1),
                              f"smallest gap {fmt(gap)}"))
        if d["family"] == "GPT family":
            last = s_inter[-1]
            c.checks.append(Check(
                f"{m} / {corpus}: largest S_inter at the last layer", top == int(x[-1]),
                f"largest S_inter {fmt(np.nanmax(s_inter))} at layer {top} of {int(x[-1])}; "
                f"last layer {fmt(last)}"))
            if corpus in bert_last:
                c.checks.append(Check(
                    f"{m} / {corpus}: last layer more anisotropic than the BERT family's",
                    last > bert_last[corpus],
                    f"S_inter {fmt(last)} vs at most {fmt(bert_last[corpus])}"))
    c.tables.append(Table(
        ["model", "corpus", "S_inter L1", "S_inter mid", "S_inter last", "ρ(depth)",
         "min S_intra", "min S_intra−S_inter", "most anisotropic layer", "last layer"],
        rows,
    ))
    c.figures.append(("cosine.png", "S_inter (top) and S_intra (bottom) against relative depth, "
                                    "per corpus; GloVe (one layer) as a dashed line."))
    return c


def claim_clusters(models: Mapping[str, Any]) -> Claim:
    c = Claim(
        2,
        "Isolated clusters exist in every model; GPT-2's middle layers form two islands",
        "Cai et al. (2021) find, by k-means with silhouette selection, "
        "well separated clusters in the space of every model they studied, and two distant "
        "islands in GPT-2's middle layers.",
        "k-means for k = 2…15 on each layer's sample, k chosen by the mean silhouette; "
        "fewer than two clusters are reported when the Maximum Mean Silhouette (MMS) is below "
        "0.1 (Cai et al.'s rule). Causal models are measured without position 0; for them the "
        "middle and later layers are clustered again with position 0 kept, and each "
        "cluster's share of position-0 tokens is reported. Checks: at least one layer of every "
        "model has |C| ≥ 2; for GPT-family models, the middle layer with position 0 kept "
        "splits into two clusters.",
    )
    rows = []
    for m, _, corpus, res in each_corpus(models):
        x, k = series(res, "n_clusters")
        _, mms = series(res, "mms")
        multi = [int(layer) for layer, kk in zip(x, k, strict=True) if kk >= 2]
        rows.append([m, corpus, ", ".join(fmt(int(v)) for v in k if np.isfinite(v)),
                     fmt(np.nanmax(mms)), fmt(np.nanmedian(mms))])
        c.checks.append(Check(f"{m} / {corpus}: clusters in some layer", bool(multi),
                              f"|C| ≥ 2 at layers {multi}" if multi else "no layer with MMS ≥ 0.1"))
    c.tables.append(Table(["model", "corpus", "|C| per layer (0 → last)", "max MMS", "median MMS"],
                          rows))
    pz_rows = []
    for m, d in of_family(models, "GPT family").items():
        pz = d.get("position_zero")
        if not pz:
            continue
        n_layers = max(e["layer"] for e in layer_entries(d["analysis"]["wikitext"]))
        for e in pz["layers"]:
            shares = [cl["share_position_zero"] for cl in e["clusters"]]
            sizes = [cl["size"] for cl in e["clusters"]]
            pz_rows.append([m, str(e["layer"]), str(e["n_clusters"]), fmt(e["mms"]),
                            ", ".join(f"{s} ({fmt(100 * (p or 0), 0)} %)"
                                      for s, p in zip(sizes, shares, strict=True)),
                            fmt(e["n_position_zero"])])
        mid = min(pz["layers"], key=lambda e: abs(e["layer"] - n_layers / 2))
        if mid["n_clusters"] == 2:
            small = min(mid["clusters"], key=lambda cl: cl["size"])
            share = small["share_position_zero"] or 0.0
            c.notes.append(
                f"{m}, layer {mid['layer']} with position 0 kept: the smaller island holds "
                f"{small['size']:,} tokens, {100 * share:.0f} % of them at position 0"
                + (" — here the two islands are the first position against the rest."
                   if share > 0.9 else "."))
        c.checks.append(Check(
            f"{m}: middle layer {mid['layer']} with position 0 kept splits in two",
            mid["n_clusters"] == 2, f"|C| = {mid['n_clusters']}, MMS {fmt(mid['mms'])}"))
    if pz_rows:
        c.tables.append(Table(
            ["model", "layer", "|C|", "MMS", "cluster sizes (share that is position 0)",
             "position-0 tokens in sample"],
            pz_rows, "GPT-family models, WikiText, with position 0 kept."))
    c.figures.append(("clusters.png", "MMS per layer against relative depth (|C| = 1 below the "
                                      "dashed 0.1 line); right: causal models with position 0 "
                                      "kept."))
    return c


def claim_centering(models: Mapping[str, Any]) -> Claim:
    c = Claim(
        3,
        "Per-cluster centering reveals near-isotropy inside clusters",
        "Cai et al. (2021) subtract each cluster's mean and find S'_inter close to 0 "
        "in every layer (isotropic inside clusters), while S'_intra stays clearly positive "
        "(word identity survives).",
        "S'_inter and S'_intra after subtracting each k-means cluster's mean (the clusters of "
        "claim 2; a single cluster means plain centering), contextual models only (every "
        "occurrence of a word has the same static vector, so S'_intra is 1 there by "
        "construction). Checks: |S'_inter| ≤ 0.05 at every "
        "layer, and S'_intra − S'_inter ≥ 0.1 at every layer.",
    )
    rows = []
    for m, _, corpus, res in each_corpus(contextual(models)):
        _, s = series(res, "s_inter")
        _, sc = series(res, "s_inter_centered")
        _, ic = series(res, "s_intra_centered")
        worst = float(np.nanmax(np.abs(sc))) if np.isfinite(sc).any() else None
        gap = float(np.nanmin(ic - sc)) if np.isfinite(ic - sc).any() else None
        rows.append([m, corpus, fmt(np.nanmean(s)), fmt(np.nanmean(sc), 3), fmt(worst, 3),
                     fmt(np.nanmean(ic)), fmt(gap)])
        c.checks.append(Check(f"{m} / {corpus}: S'_inter near 0",
                              at_most(worst, 0.05), f"max |S'_inter| {fmt(worst, 3)}"))
        c.checks.append(Check(f"{m} / {corpus}: S'_intra stays above S'_inter",
                              at_least(gap, 0.1), f"smallest gap {fmt(gap)}"))
    c.tables.append(Table(["model", "corpus", "mean S_inter", "mean S'_inter", "max |S'_inter|",
                           "mean S'_intra", "min S'_intra−S'_inter"], rows))
    c.figures.append(("centering.png", "S_inter before (solid) and after (dashed) per-cluster "
                                       "centering, WikiText."))
    return c


def claim_manifolds(models: Mapping[str, Any]) -> Claim:
    c = Claim(
        4,
        "GPT-family layers lie on a low-dimensional Swiss-roll manifold; BERT-family ones do not",
        "Cai et al. (2021) project GPT-2's token vectors on their top "
        "principal components and see a rolled, low-dimensional manifold (a 'Swiss roll'), "
        "while BERT's clouds are not low-dimensional in this way.",
        "3-D PCA views of a seeded sample of tokens at four depths, coloured by Zipf word "
        "frequency (position 0 left out for causal models), plus two numbers per view: the "
        "share of variance on the top three components and TwoNN's intrinsic dimension of "
        "the layer. The shape itself is judged by eye in the figure; the check is numeric: at "
        "the middle layer, every GPT-family model puts a larger share of variance on three "
        "components than every BERT-family model, and has a lower TwoNN dimension.",
    )
    rows = []
    mids: dict[str, tuple[float, float]] = {}
    for m, d in contextual(models).items():
        clouds = d.get("clouds", {}).get("views", {}).get("wikitext", [])
        res = d["analysis"]["wikitext"]
        by_layer = {e["layer"]: e for e in layer_entries(res)}
        for v in clouds:
            share = float(np.sum(v["explained_variance_ratio"][:3]))
            twonn = by_layer.get(v["layer"], {}).get("lid_twonn")
            rows.append([m, d["family"], str(v["layer"]), fmt(share), fmt(twonn, 1)])
        if clouds:
            top = layer_entries(res)[-1]["layer"]
            v = min(clouds, key=lambda v: abs(v["layer"] - top / 2))
            tw = by_layer.get(v["layer"], {}).get("lid_twonn")
            mids[m] = (float(np.sum(v["explained_variance_ratio"][:3])),
                       np.nan if tw is None else float(tw))
    gpt = [m for m in mids if models[m]["family"] == "GPT family"]
    bert = [m for m in mids if models[m]["family"] == "BERT family"]
    for g in gpt:
        if not bert:
            c.checks.append(Check(f"{g}: lower-dimensional than BERT family", None, "no BERT-family model"))
            continue
        share_ok = all(mids[g][0] > mids[b][0] for b in bert)
        lid_ok = all(mids[g][1] < mids[b][1] for b in bert)
        c.checks.append(Check(
            f"{g}: middle layer more concentrated on 3 components than the BERT family",
            share_ok, ", ".join(f"{m} {fmt(mids[m][0])}" for m in [g, *bert])))
        c.checks.append(Check(
            f"{g}: middle layer has a lower TwoNN dimension than the BERT family",
            lid_ok, ", ".join(f"{m} {fmt(mids[m][1], 1)}" for m in [g, *bert])))
    c.tables.append(Table(["model", "family", "layer", "variance on top 3 PCs", "TwoNN ID"], rows,
                          "WikiText; the views of the figure."))
    c.figures.append(("manifolds.png", "3-D PCA views (WikiText) at four depths, coloured by "
                                       "Zipf frequency; the axis titles give each layer."))
    return c


def claim_frequency(models: Mapping[str, Any]) -> Claim:
    c = Claim(
        5,
        "Frequent words gather in one region; PC1 correlates with log frequency",
        "Cai et al. (2021) see frequent and rare words in different regions of the "
        "PCA views; Liang et al. (2021) report that the first principal component correlates "
        "with log word frequency (about −0.7; the sign of a principal component is arbitrary).",
        "Spearman ρ between each token's coordinate on the layer's first principal component "
        "and the Zipf frequency of its word (wordfreq), on the layer sample. Check: |ρ| ≥ 0.5 "
        "in at least one layer of the model.",
    )
    rows = []
    for m, _, corpus, res in each_corpus(models):
        x, rho = series(res, "freq_pc1_spearman")
        if not np.isfinite(rho).any():
            c.checks.append(Check(f"{m} / {corpus}: PC1 tracks frequency", None, "no frequencies"))
            continue
        i = int(np.nanargmax(np.abs(rho)))
        _, norm_rho = series(res, "freq_norm_spearman")
        rows.append([m, corpus, fmt(rho[i]), str(int(x[i])), fmt(rho[-1]),
                     fmt(norm_rho[i])])
        c.checks.append(Check(f"{m} / {corpus}: PC1 tracks frequency", bool(abs(rho[i]) >= 0.5),
                              f"largest |ρ| {fmt(abs(rho[i]))} at layer {int(x[i])}"))
    c.tables.append(Table(["model", "corpus", "ρ(PC1, Zipf) largest", "at layer",
                           "ρ at last layer", "ρ(norm, Zipf) there"], rows))
    c.figures.append(("frequency.png", "Top: |ρ(PC1, Zipf frequency)| against relative depth. "
                                       "Bottom: PC1–PC2 views of the middle layer (WikiText), "
                                       "coloured by Zipf frequency."))
    return c


def claim_lid(models: Mapping[str, Any]) -> Claim:
    c = Claim(
        6,
        "LID is small relative to the width, grows with depth, and static embeddings have "
        "higher LID than contextual ones",
        "Cai et al. (2021) estimate the Local Intrinsic Dimension by the kNN "
        "MLE (Amsaleg et al., 2015): it is far below the width, rises "
        "with depth roughly linearly, and is higher for static embeddings (GloVe, word2vec) "
        "than for contextual ones.",
        "LID by the kNN MLE (k = 20, exact Euclidean neighbours, true distances, "
        "duplicates handled) per point of each layer's sample, summarised by the median: a "
        "few points whose 20 neighbours sit at almost the same distance get estimates in the "
        "thousands and can carry the mean (shown beside it). Checks: median LID / width ≤ 0.1 "
        "at every layer; ρ(layer, median LID) ≥ 0.5 (from layer 1); the static table's median "
        "LID above the contextual model's average over layers on the same corpus. The "
        "straight-line R² is shown for 'roughly linearly'.",
    )
    rows = []
    static = of_family(models, "static")
    for m, _, corpus, res in each_corpus(contextual(models)):
        x, lid = series(res, "lid_mle_median", skip_embedding=True)
        _, lid_mean = series(res, "lid_mle", skip_embedding=True)
        width = float(res.get("width") or 0) or None
        rho, r2 = trend(x, lid)
        ratio = float(np.nanmax(lid)) / width if width else None
        glove = [(name, series(s["analysis"][corpus], "lid_mle_median")[1][0])
                 for name, s in static.items() if corpus in s["analysis"]]
        rows.append([m, corpus, fmt(lid[0], 1), fmt(lid[-1], 1), fmt(np.nanmean(lid), 1),
                     fmt(np.nanmax(lid_mean), 1), fmt(ratio, 3), fmt(rho), fmt(r2),
                     ", ".join(fmt(v, 1) for _, v in glove) or "–"])
        c.checks.append(Check(f"{m} / {corpus}: LID far below width",
                              at_most(ratio, 0.1),
                              f"max median LID/width {fmt(ratio, 3)}"))
        c.checks.append(Check(f"{m} / {corpus}: LID grows with depth",
                              at_least(rho, 0.5), f"ρ = {fmt(rho)}, R² = {fmt(r2)}"))
        for name, value in glove:
            c.checks.append(Check(f"{name} vs {m} / {corpus}: static LID higher",
                                  bool(value > np.nanmean(lid)),
                                  f"{fmt(value, 1)} vs mean {fmt(np.nanmean(lid), 1)}"))
    c.tables.append(Table(["model", "corpus", "median LID L1", "median LID last",
                           "average over layers", "largest per-layer mean", "max LID/width",
                           "ρ(depth)", "R² line", "static LID"], rows))
    c.figures.append(("lid.png", "Median LID (kNN MLE, k = 20) against relative depth; GloVe "
                                 "as a dashed line. Right: LID as a share of the width."))
    return c


def _isotropy(entry: Mapping[str, Any] | None) -> float | None:
    if not entry:
        return None
    v = entry.get(ISOTROPY_KEY)
    return None if v is None else float(v)


def _scores(evaluation: Mapping[str, Any], mode: str) -> dict[tuple[str, str], float]:
    """(column, transform) -> Spearman x 100 for the pooled STS-B and word-similarity columns."""
    out = {}
    for r in evaluation.get(mode, {}).get("results", []):
        if r.get("in_table") is False or r.get("spearman") is None:
            continue
        out[(r["column"], r["transform"])] = float(r["spearman"])
    return out


def claim_repairs(models: Mapping[str, Any], repairs: Sequence[str]) -> Claim:
    c = Claim(
        7,
        "Cluster-based repair and learned removal raise isotropy and task scores more than "
        "all-but-the-top",
        "Rajaee & Pilehvar (2021) report that per-cluster removal of the mean and dominant "
        "directions gives a higher I(V) and better STS and word-similarity scores than "
        "all-but-the-top (ABTT, Mu & Viswanath 2018); Liang et al. (2021) report the same for "
        "removal with learned weights. Whitening (Su et al., 2021) is shown for comparison.",
        "log10 I(V) of unit-length vectors (I(V) is not scale-invariant: whitening inflates "
        "norms, and the papers' I(V) of raw vectors, or of merely centred ones, would rank "
        "repairs by their norms) on the "
        "last layer's WikiText sample before and "
        "after each repair, fitted inductively (on a disjoint sample) and transductively (on "
        "the measured sample); Spearman × 100 on STS-B test (mean pooling, last layer) and on "
        "WS-353 and SimLex-999 (each word encoded alone), repairs fitted inductively (STS-B "
        "training sentences, duplicates kept; for words, the most frequent English words, "
        "GloVe's whole vocabulary unless the plan caps it) or transductively "
        "(the evaluation data). Learned removal's weights are trained on MTurk-287, RG-65, "
        "MC-30, YP-130 and VERB-143, pairs of the evaluated sets dropped. Checks: per model "
        "and fit, cluster (and learned) end with a higher I(V) of unit-length vectors than "
        "ABTT, and a larger gain on "
        "each task than ABTT.",
    )
    iso_rows = []
    for m, d in models.items():
        entries = d.get("repairs", {}).get("transforms", [])
        for fit in ("inductive", "transductive"):
            by = {e["name"]: e for e in entries if e["fit"] == fit}
            if not by:
                continue
            before = _isotropy(next(iter(by.values()))["before"])
            iso_rows.append([m, fit, fmt(before)] + [fmt(_isotropy(by.get(r, {}).get("after")))
                                                      for r in repairs])
            abtt = _isotropy(by.get("abtt", {}).get("after"))
            for r in ("cluster", "learned"):
                got = _isotropy(by.get(r, {}).get("after"))
                if got is None or abtt is None:
                    continue
                c.checks.append(Check(f"{m} / {fit}: {r} ends with a higher {ISOTROPY_LABEL} "
                                      "than ABTT", got > abtt,
                                      f"log10 I(V) {fmt(got)} vs {fmt(abtt)}"))
    c.tables.append(Table(["model", "fit", "log10 I(V) before", *[f"after {r}" for r in repairs]],
                          iso_rows, f"log10 {ISOTROPY_LABEL}, last layer, WikiText sample; 0 is "
                                    "perfectly isotropic."))
    task_rows = []
    for m, d in models.items():
        ev = d.get("evaluation") or {}
        for fit in ("inductive", "transductive"):
            sc = _scores(ev, fit)
            columns = sorted({col for col, _ in sc})
            for col in columns:
                base = sc.get((col, "none"))
                task_rows.append([m, fit, col, fmt(base, 1)] +
                                 [fmt(None if sc.get((col, r)) is None or base is None
                                      else sc[(col, r)] - base, 1) for r in repairs])
                abtt = sc.get((col, "abtt"))
                for r in ("cluster", "learned"):
                    got = sc.get((col, r))
                    if got is None or abtt is None:
                        continue
                    c.checks.append(Check(f"{m} / {fit} / {col}: {r} beats ABTT", got > abtt,
                                          f"{fmt(got, 1)} vs {fmt(abtt, 1)}"))
    c.tables.append(Table(["model", "fit", "task", "none", *[f"Δ {r}" for r in repairs]],
                          task_rows, "Spearman × 100 without repair, and the change each repair "
                                     "brings."))
    small = sorted({(r["column"], int(r["fit_n"]))
                    for d in models.values()
                    for r in (d.get("evaluation") or {}).get("transductive", {}).get("results", [])
                    if r.get("task") == "wordsim" and r.get("transform") == "cluster"
                    and r.get("fit_n")})
    if small:
        c.notes.append(
            "Transductive fits on a word task see only that task's own words ("
            + ", ".join(f"{n:,} vectors for {col.split(':', 1)[-1]}" for col, n in small)
            + "): the cluster repair's 27 clusters then hold a few dozen words each, and "
            "removing each cluster's dominant directions from so few points erases much of "
            "what separates them.")
    c.figures.append(("repairs.png", f"Left: log10 {ISOTROPY_LABEL} before and after each "
                                     "repair (inductive fit). Right: change in STS-B Spearman "
                                     "× 100 (inductive)."))
    return c


def build_claims(collected: Mapping[str, Any], repairs: Sequence[str]) -> list[Claim]:
    """Every claim, checked on the collected numbers."""
    models = collected["models"]
    return [
        claim_cosine(models),
        claim_clusters(models),
        claim_centering(models),
        claim_manifolds(models),
        claim_frequency(models),
        claim_lid(models),
        claim_repairs(models, repairs),
    ]
