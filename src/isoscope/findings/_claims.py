"""The claims: what each paper reported, the checks isoscope runs, and the verdicts.

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

#: Share of a claim's computed checks that must pass for "reproduced", and for "partly".
REPRODUCED_SHARE = 0.9
PARTLY_SHARE = 0.5
#: The verdict rule as the page prints it.
VERDICT_RULE = (
    f"A claim is **{REPRODUCED}** when at least {REPRODUCED_SHARE:.0%} of its checks pass, "
    f"**{PARTLY}** from {PARTLY_SHARE:.0%} up to {REPRODUCED_SHARE:.0%}, and **{NOT_REPRODUCED}** "
    f"below {PARTLY_SHARE:.0%}; checks that could not be computed do not count, and a claim "
    f"with none is **{NOT_TESTABLE}**."
).replace("%", " %")


def verdict_of(passed: Sequence[bool]) -> str:
    """The verdict of a claim whose computed checks came out ``passed`` (see VERDICT_RULE)."""
    if not passed:
        return NOT_TESTABLE
    share = sum(bool(p) for p in passed) / len(passed)
    if share >= REPRODUCED_SHARE:
        return REPRODUCED
    return PARTLY if share >= PARTLY_SHARE else NOT_REPRODUCED


@dataclass(frozen=True)
class ClaimText:
    """What a claim says, what the paper reported, how isoscope checks it, and its figure."""

    title: str
    paper: str
    method: str
    figure: tuple[str, str] | None = None  # (file, caption)
    #: "How to read this": what the table, figure and checks show, and their caveats.
    reading: str = ""


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
    reading: str = ""

    @classmethod
    def of(cls, number: int, text: ClaimText) -> Claim:
        """A claim with no checks yet, from its text (its figure and reading note too)."""
        c = cls(number, text.title, text.paper, text.method, reading=text.reading)
        if text.figure:
            c.figures.append(text.figure)
        return c

    def check(self, what: str, passed: bool | None, detail: str = "") -> None:
        """Add one check."""
        self.checks.append(Check(what, passed, detail))

    def table(self, header: list[str], rows: list[list[str]], caption: str = "") -> None:
        """Add one table."""
        self.tables.append(Table(header, rows, caption))

    @property
    def verdict(self) -> str:
        """From the share of computed checks that passed (:data:`VERDICT_RULE`)."""
        return verdict_of([bool(c.passed) for c in self.checks if c.passed is not None])

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


def columns(results: Mapping[str, Any], *keys: str,
            skip_embedding: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
    """(layers, [values of each key]) of several measures (see :func:`series`)."""
    x = series(results, keys[0], skip_embedding)[0]
    return x, [series(results, k, skip_embedding)[1] for k in keys]


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

COSINE = ClaimText(
    "Inter-type cosine grows with depth; S_intra is high everywhere; the GPT-family last "
    "layer is the most anisotropic",
    "Cai et al. (2021) report for BERT, GPT-2, ELMo and others that the "
    "mean cosine between random tokens (S_inter) rises in deeper layers, that occurrences "
    "of the same word (S_intra) stay more similar than random pairs in every layer, and "
    "that GPT-2's last layer is the extreme case, with S_inter near 1 (Ethayarajh, 2019, "
    "saw the same).",
    "S_inter and S_intra per hidden state (the embedding output is layer 0 and is left out "
    "of the depth trend), special tokens excluded: S_inter exactly over every extracted "
    "token of each corpus, S_intra on a seeded sample of tokens. Checks: Spearman ρ(layer, "
    "S_inter) ≥ 0.5; S_intra − S_inter ≥ 0.1 at every layer; for GPT-family models, the last "
    "layer has the largest S_inter, and it exceeds every BERT-family model's last-layer "
    "S_inter on the same corpus.",
    ("cosine.png", "S_inter (top) and S_intra (bottom) against relative depth, per corpus; "
                   "BERT family solid, GPT family dashed, GloVe (one layer) dotted."),
    reading=(
        "S_inter is Cai et al.'s inter-type cosine, the mean cosine between the vectors of "
        "two tokens; isoscope computes it exactly over all distinct pairs of every extracted "
        "token, from the sum s of the unit vectors: S_inter = (‖s‖² − n) / (n(n − 1)), where "
        "the paper averages a random sample of pairs (the README's table of defaults), and "
        "the few pairs of the same type are included. S_intra is the intra-type cosine, the "
        "mean cosine between occurrences of the same type; the type is the token id (a word "
        "piece; s_intra_key=word groups whole words), over at most 1,000 seeded types with at "
        "least 5 occurrences, at most 50 occurrences each. In the table 'S_inter L1', 'mid' "
        "and 'last' are layer 1, the middle and the last hidden state; 'ρ(depth)' is "
        "Spearman's ρ between the layer and S_inter from layer 1 on, a monotone trend rather "
        "than a straight line (check: ρ ≥ 0.5); 'min S_intra−S_inter' is the smallest gap "
        "over the layers (check: ≥ 0.1 at every layer, occurrences of a type closer than "
        "random tokens); 'most anisotropic layer' is where S_inter peaks, which the "
        "GPT-family checks want at the last layer and above every BERT-family model's last "
        "layer on the same corpus. The figure starts at layer 0, the embedding output, which "
        "the checks leave out; BERT-family curves are solid, GPT-family ones dashed. Caveats: "
        "S_inter is, up to n/(n − 1), the squared norm of the mean unit vector, so a common "
        "offset or a few rogue dimensions (Timkey & van Schijndel, 2021; the results' "
        "rogue_dims) can make it large without the space being narrow in every direction; "
        "causal models are measured without position 0, which can carry the massive "
        "activations of claim 8 and would then dominate it; MiniLM and MPNet are fine-tuned "
        "for sentence similarity, which changes their last layers; a --quick run draws "
        "S_intra's types from fewer extracted tokens."
    ),
)

#: Share of position-0 tokens above which a cluster is the attention sink, not an island.
SINK_CLUSTER_SHARE = 0.9

CLUSTERS = ClaimText(
    "Isolated clusters exist in every model; GPT-2's middle layers form two islands",
    "Cai et al. (2021) find, by k-means with silhouette selection, "
    "well separated clusters in the space of every model they studied, and two distant "
    "islands in GPT-2's middle layers.",
    "k-means for k = 2…15 on a seeded sample of each layer's distinct vectors, k chosen by "
    "the mean silhouette; fewer than two clusters are reported when the Maximum Mean "
    "Silhouette (MMS) is below 0.1 (Cai et al.'s rule). Causal models are measured without "
    "position 0; for them the middle and later layers are clustered again with position 0 "
    "kept, and each cluster's share of position-0 tokens is reported. Checks: at least one "
    "layer of every model has |C| ≥ 2; for GPT-family models, the middle layer with position "
    "0 kept splits into two clusters, and the smaller is not made of position-0 tokens "
    f"(more than {SINK_CLUSTER_SHARE:.0%} of them: that is the attention sink of Xiao et al., "
    "2024, not the paper's islands).".replace("%", " %"),
    ("clusters.png", "MMS per layer against relative depth (|C| = 1 below the dashed 0.1 "
                     "line); right: causal models with position 0 kept."),
    reading=(
        "Each layer's seeded sample of distinct vectors is clustered by k-means for every k "
        "from 2 to 15; the mean silhouette (per point (b − a) / max(a, b), a its mean "
        "Euclidean distance to its own cluster, b to the nearest other) is taken on a seeded "
        "subsample of 3,000 points, and the best mean over k is the Maximum Mean Silhouette "
        "(MMS). '|C| per layer' lists the chosen k from layer 0 to the last, 1 where MMS < "
        "0.1 (Cai et al.'s rule for no clusters); 'max MMS' and 'median MMS' say how well "
        "separated the best partitions are. The left panel draws MMS against depth with the "
        "0.1 line. The right panel and the second table are the causal models' middle and "
        "later layers clustered again with position 0 kept, each cluster's size with the "
        "share of it at position 0. The first check asks only for |C| ≥ 2 in some layer "
        "(layer 0 and the static table included), a low bar: k-means always returns k groups, "
        "and an MMS just above 0.1 is weak structure, unlike the distant islands of the "
        "paper's views, so read the MMS values and not only the counts. The islands check "
        "takes the middle layer with position 0 kept: two clusters pass only when the smaller "
        "is at most 90 % position-0 tokens. Where the first position carries the massive "
        "activations of claim 8 it can form a far-away cluster of its own, the attention sink "
        "(Xiao et al., 2024), which the table's shares reveal; that split is not the paper's "
        "two islands, and the check fails on it. Caveats: isoscope runs k-means++ with one "
        "initialisation per k where the paper's scikit-learn ran 10 (kmeans_n_init=10 "
        "restores it; the README's table of defaults), so a close call between two k can go "
        "either way; the sample holds distinct vectors, duplicates removed before sampling "
        "(the paper does not say); a --quick run clusters a smaller sample."
    ),
)

CENTERING = ClaimText(
    "Per-cluster centering reveals near-isotropy inside clusters",
    "Cai et al. (2021) subtract each cluster's mean and find S'_inter close to 0 "
    "in every layer (isotropic inside clusters), while S'_intra stays clearly positive "
    "(word identity survives).",
    "S'_inter and S'_intra after subtracting each k-means cluster's mean (the clusters of "
    "claim 2; a single cluster means plain centering), contextual models only (every "
    "occurrence of a word has the same static vector, so S'_intra is 1 there by "
    "construction). S'_inter is shown but not checked: after centring, the mean cosine over "
    "all pairs is near 0 for any data, so it cannot test the claim. Check: S'_intra − "
    "S'_inter ≥ 0.1 at every layer (word identity survives the centring).",
    ("centering.png", "S_inter before (solid) and after (dashed) per-cluster centering, "
                      "WikiText."),
    reading=(
        "Per-cluster centring subtracts from each vector the mean of the claim-2 k-means "
        "cluster it is assigned to (the nearest centroid; with |C| = 1, the mean of the "
        "layer), then computes the cosines again: S'_inter over all pairs of the centred "
        "sample, S'_intra over the same word types as S_intra. The table gives, per model and "
        "corpus, the means over the layers of S_inter before and S'_inter after centring, the "
        "largest |S'_inter| of any layer, the mean S'_intra and the smallest S'_intra − "
        "S'_inter over the layers; that last column is the one check (≥ 0.1 at every layer: "
        "occurrences of a word stay closer to each other than random tokens once the cluster "
        "means are gone). The figure draws S_inter (solid) and S'_inter (dashed) on WikiText: "
        "the drop is the part of S_inter that the cluster means carried. S'_inter is shown "
        "but not checked: centred vectors have mean zero in every cluster, so no common "
        "direction is left and the mean cosine over all pairs is close to 0 for any data, "
        "isotropic or not; an earlier version of these checks asked for it and was dropped "
        "for that reason. The paper's reading of S'_inter ≈ 0 as isotropy inside clusters "
        "therefore rests on other evidence (the spectrum of each cluster, not computed here). "
        "Caveats: static tables are left out (every occurrence of a word has the same vector, "
        "so S'_intra is 1); the clusters are claim 2's, from one k-means initialisation per "
        "k, and a layer with |C| = 1 is only centred as a whole; a --quick run uses a smaller "
        "sample."
    ),
)

MANIFOLDS = ClaimText(
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
    ("manifolds.png", "3-D PCA views (WikiText) at four depths, coloured by Zipf frequency; "
                      "the axis titles give each layer."),
    reading=(
        "Each view is a seeded sample of 2,000 tokens (1,500 in a --quick run) of one hidden "
        "state at four depths (the first transformer layer, half and three quarters of the "
        "depth, and the last), projected on that sample's own top three principal components "
        "(linear PCA, as in Cai et al.'s views) and coloured by the Zipf frequency of each "
        "token's word (wordfreq); special tokens, and position 0 for causal models, are left "
        "out. The table gives for each view the share of the sample's variance on those three "
        "components and the layer's TwoNN intrinsic dimension (Facco et al., 2017: from the "
        "ratio of second- to first-neighbour distances on the analysis' distinct sample, the "
        "largest 10 % of ratios dropped). The checks take the view nearest the middle layer: "
        "every GPT-family model must put a larger share of variance on three components, and "
        "have a lower TwoNN dimension, than every BERT-family model. Both numbers are "
        "proxies: a Swiss roll is a curved sheet, and neither a variance share nor a "
        "nearest-neighbour dimension says whether the sheet is rolled, so the shape itself is "
        "read only from the figure. Caveats: a few high-variance directions (the outlier and "
        "massive dimensions of claim 8, which dropping position 0 need not remove) raise the "
        "three-component share without any manifold and stretch a view along one axis; a "
        "linear projection seen from one fixed angle can show a roll as overlapping bands or "
        "hide it; TwoNN works at the sample's smallest scale and is compared here across "
        "models of different widths; the BERT-family models are fine-tuned for sentence "
        "similarity and the causal ones are not GPT-2."
    ),
)

FREQUENCY = ClaimText(
    "Frequent words gather in one region; PC1 correlates with log frequency",
    "Cai et al. (2021) see frequent and rare words in different regions of the "
    "PCA views; Liang et al. (2021) report that the first principal component correlates "
    "with log word frequency (about −0.7; the sign of a principal component is arbitrary).",
    "Spearman ρ between each token's coordinate on the layer's first principal component "
    "and the Zipf frequency of its word (wordfreq), on the layer sample. Check: |ρ| ≥ 0.5 "
    "in at least one layer of the model; where only layer 0 (the static input embeddings "
    "of a contextual model) passes, the check says so.",
    ("frequency.png", "Top: |ρ(PC1, Zipf frequency)| against relative depth. Bottom: PC1–PC2 "
                      "views of the middle layer (WikiText), coloured by Zipf frequency."),
    reading=(
        "Each token gets the Zipf frequency of its word from wordfreq (log10 of its frequency "
        "per billion words of general English, already a log frequency), and each layer's "
        "sample is projected on its first principal component; a component's sign is "
        "arbitrary (isoscope makes its largest loading positive), so only |ρ| matters, and "
        "Spearman's ρ is unchanged by the log. In the table 'ρ(PC1, Zipf) largest' is the "
        "value of largest magnitude over the layers and 'at layer' where it is, 'ρ at last "
        "layer' the last hidden state's, and 'ρ(norm, Zipf) there' the correlation of the "
        "vector norm with frequency at that same layer, an isoscope addition that shows "
        "whether PC1 only follows the norm. The check asks for |ρ| ≥ 0.5 in at least one "
        "layer, a looser bar than Liang et al.'s value near 0.7 (the figure's dashed line). "
        "For a contextual model layer 0 is the static input-embedding table, not a contextual "
        "layer, so a pass there alone is named in the check's detail, with the largest |ρ| "
        "from layer 1 on. The bottom panels are each contextual model's middle layer on PC1 "
        "and PC2, coloured by frequency: Cai et al.'s frequent and rare words in different "
        "regions appear as a colour gradient or as separate patches; isoscope also bins each "
        "sample by frequency and records each bin's mean PC1, PC2 and norm (frequency_regions "
        "in the details of each run's analysis results, not on this page). Caveats: every "
        "piece of a word split into several tokens gets the word's frequency; the frequencies "
        "are wordfreq's, not counts of these corpora (frequency_source=word_count gives the "
        "corpus counts); a --quick run correlates a smaller sample."
    ),
)

LID = ClaimText(
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
    ("lid.png", "Median LID (kNN MLE, k = 20) against relative depth; GloVe as a dotted "
                "line. Right: LID as a share of the width."),
    reading=(
        "LID is the kNN maximum-likelihood estimate of Amsaleg et al. (2015) as Cai et al. "
        "use it: for a point whose k = 20 nearest neighbours (exact Euclidean search on the "
        "layer's seeded distinct sample) lie at true distances d₁ ≤ … ≤ d_k, LID = k / Σ_i "
        "log(d_k / d_i) (--lid-variant levina_bickel gives Levina & Bickel's (k − 1) / Σ); "
        "zero distances are skipped, and a point whose neighbours all sit at distance 0 is "
        "left undefined. isoscope's headline, like the paper's, is the mean over points; this "
        "claim uses the median, because a few points with almost tied neighbour distances get "
        "estimates in the thousands, and the 'largest per-layer mean' column shows how far "
        "they pull the mean. The other columns: the median at layer 1 and at the last layer "
        "and its average over layers; 'max LID/width', the largest median over the width "
        "(check: ≤ 0.1, so every layer is far below the width); ρ and R² of the median "
        "against the layer from layer 1 on (check: ρ ≥ 0.5; R² of a straight line stands for "
        "the paper's 'roughly linearly' and is not checked); and the static table's median "
        "LID (check: above the contextual model's average over layers on the same corpus). "
        "Caveats: the estimate depends on the sample and on the scale of the 20th neighbour, "
        "so values from a --quick run's smaller sample differ from the full run's, and the "
        "median is not the paper's mean: compare trends, not values. A static table has one "
        "vector per word type, so its distinct sample holds types where a contextual layer's "
        "holds occurrences; GloVe-50d is narrower than every contextual model here, which "
        "makes 'static LID higher' a hard test for it, and the width check is not applied to "
        "it."
    ),
)


def _corpus_checks(c: Claim, m: str, corpus: str,
                   tests: Sequence[tuple[str, bool | None, str]]) -> None:
    """One check per ``(what, passed, detail)``, named ``model / corpus: what``."""
    for what, passed, detail in tests:
        c.check(f"{m} / {corpus}: {what}", passed, detail)


def claim_cosine(models: Mapping[str, Any]) -> Claim:
    c = Claim.of(1, COSINE)
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
        tests = [("S_inter grows with depth", at_least(rho, 0.5), f"ρ = {fmt(rho)}"),
                 ("S_intra above S_inter at every layer", at_least(gap, 0.1),
                  f"smallest gap {fmt(gap)}")]
        if d["family"] == "GPT family":
            last = s_inter[-1]
            tests.append(("largest S_inter at the last layer", top == int(x[-1]),
                          f"largest S_inter {fmt(np.nanmax(s_inter))} at layer {top} of "
                          f"{int(x[-1])}; last layer {fmt(last)}"))
            if corpus in bert_last:
                tests.append(("last layer more anisotropic than the BERT family's",
                              bool(last > bert_last[corpus]),
                              f"S_inter {fmt(last)} vs at most {fmt(bert_last[corpus])}"))
        _corpus_checks(c, m, corpus, tests)
    c.table(["model", "corpus", "S_inter L1", "S_inter mid", "S_inter last", "ρ(depth)",
             "min S_intra", "min S_intra−S_inter", "most anisotropic layer", "last layer"], rows)
    return c


def _islands_check(m: str, mid: Mapping[str, Any]) -> tuple[Check, str | None]:
    """The two-islands check of one causal model's middle layer (position 0 kept), and a note.

    Two clusters whose smaller one is (almost) all position-0 tokens are the attention sink,
    not the paper's islands: the check fails and says so.
    """
    what = f"{m}: middle layer {mid['layer']} with position 0 kept splits into two islands"
    detail = f"|C| = {mid['n_clusters']}, MMS {fmt(mid['mms'])}"
    if mid["n_clusters"] != 2:
        return Check(what, False, detail), None
    small = min(mid["clusters"], key=lambda cl: cl["size"])
    share = small["share_position_zero"] or 0.0
    note = (f"{m}, layer {mid['layer']} with position 0 kept: the smaller cluster holds "
            f"{small['size']:,} tokens, {100 * share:.0f} % of them at position 0")
    if share > SINK_CLUSTER_SHARE:
        return (Check(what, False, f"{detail}, but the smaller cluster is {100 * share:.0f} % "
                      "position 0: the attention sink against the rest, not the paper's islands"),
                note + " — the two clusters are the attention sink (the first position) against "
                       "the rest, not the paper's two islands.")
    return Check(what, True, f"{detail}; the smaller cluster is {100 * share:.0f} % position 0"), \
        note + "."


def claim_clusters(models: Mapping[str, Any]) -> Claim:
    c = Claim.of(2, CLUSTERS)
    rows = []
    for m, _, corpus, res in each_corpus(models):
        x, k = series(res, "n_clusters")
        _, mms = series(res, "mms")
        multi = [int(layer) for layer, kk in zip(x, k, strict=True) if kk >= 2]
        rows.append([m, corpus, ", ".join(fmt(int(v)) for v in k if np.isfinite(v)),
                     fmt(np.nanmax(mms)), fmt(np.nanmedian(mms))])
        c.check(f"{m} / {corpus}: clusters in some layer", bool(multi),
                f"|C| ≥ 2 at layers {multi}" if multi else "no layer with MMS ≥ 0.1")
    c.table(["model", "corpus", "|C| per layer (0 → last)", "max MMS", "median MMS"], rows)
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
        check, note = _islands_check(m, mid)
        c.checks.append(check)
        if note:
            c.notes.append(note)
    if pz_rows:
        c.table(["model", "layer", "|C|", "MMS", "cluster sizes (share that is position 0)",
                 "position-0 tokens in sample"],
                pz_rows, "GPT-family models, WikiText, with position 0 kept.")
    return c


def claim_centering(models: Mapping[str, Any]) -> Claim:
    c = Claim.of(3, CENTERING)
    rows = []
    for m, _, corpus, res in each_corpus(contextual(models)):
        _, (s, sc, ic) = columns(res, "s_inter", "s_inter_centered", "s_intra_centered")
        worst = float(np.nanmax(np.abs(sc))) if np.isfinite(sc).any() else None
        gap = float(np.nanmin(ic - sc)) if np.isfinite(ic - sc).any() else None
        rows.append([m, corpus, fmt(np.nanmean(s)), fmt(np.nanmean(sc), 3), fmt(worst, 3),
                     fmt(np.nanmean(ic)), fmt(gap)])
        c.check(f"{m} / {corpus}: S'_intra stays above S'_inter", at_least(gap, 0.1),
                f"smallest gap {fmt(gap)} (max |S'_inter| {fmt(worst, 3)}, not checked)")
    c.table(["model", "corpus", "mean S_inter", "mean S'_inter", "max |S'_inter|",
             "mean S'_intra", "min S'_intra−S'_inter"], rows)
    return c


def claim_manifolds(models: Mapping[str, Any]) -> Claim:
    c = Claim.of(4, MANIFOLDS)
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
            c.check(f"{g}: lower-dimensional than BERT family", None, "no BERT-family model")
            continue
        c.check(f"{g}: middle layer more concentrated on 3 components than the BERT family",
                all(mids[g][0] > mids[b][0] for b in bert),
                ", ".join(f"{m} {fmt(mids[m][0])}" for m in [g, *bert]))
        c.check(f"{g}: middle layer has a lower TwoNN dimension than the BERT family",
                all(mids[g][1] < mids[b][1] for b in bert),
                ", ".join(f"{m} {fmt(mids[m][1], 1)}" for m in [g, *bert]))
    c.table(["model", "family", "layer", "variance on top 3 PCs", "TwoNN ID"], rows,
            "WikiText; the views of the figure.")
    return c


def _frequency_check(x: np.ndarray, rho: np.ndarray, static: bool) -> tuple[bool, str]:
    """|ρ| ≥ 0.5 in some layer; says so when only layer 0 (static input embeddings) passes."""
    i = int(np.nanargmax(np.abs(rho)))
    passed = bool(abs(rho[i]) >= 0.5)
    detail = f"largest |ρ| {fmt(abs(rho[i]))} at layer {int(x[i])}"
    passing = {int(layer) for layer, r in zip(x, rho, strict=True) if abs(r) >= 0.5}
    if passed and not static and passing == {0}:
        ctx = x > 0
        best = float(np.nanmax(np.abs(rho[ctx]))) if np.isfinite(rho[ctx]).any() else None
        detail += (" — only at layer 0, the static input embeddings; no contextual layer "
                   f"reaches 0.5 (largest |ρ| from layer 1 on: {fmt(best)})")
    return passed, detail


def claim_frequency(models: Mapping[str, Any]) -> Claim:
    c = Claim.of(5, FREQUENCY)
    rows = []
    for m, d, corpus, res in each_corpus(models):
        x, rho = series(res, "freq_pc1_spearman")
        if not np.isfinite(rho).any():
            c.check(f"{m} / {corpus}: PC1 tracks frequency", None, "no frequencies")
            continue
        i = int(np.nanargmax(np.abs(rho)))
        _, norm_rho = series(res, "freq_norm_spearman")
        rows.append([m, corpus, fmt(rho[i]), str(int(x[i])), fmt(rho[-1]),
                     fmt(norm_rho[i])])
        passed, detail = _frequency_check(x, rho, d["family"] == "static")
        c.check(f"{m} / {corpus}: PC1 tracks frequency", passed, detail)
    c.table(["model", "corpus", "ρ(PC1, Zipf) largest", "at layer", "ρ at last layer",
             "ρ(norm, Zipf) there"], rows)
    return c


def claim_lid(models: Mapping[str, Any]) -> Claim:
    c = Claim.of(6, LID)
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
        _corpus_checks(c, m, corpus, [
            ("LID far below width", at_most(ratio, 0.1), f"max median LID/width {fmt(ratio, 3)}"),
            ("LID grows with depth", at_least(rho, 0.5), f"ρ = {fmt(rho)}, R² = {fmt(r2)}"),
        ])
        for name, value in glove:
            c.check(f"{name} vs {m} / {corpus}: static LID higher",
                    bool(value > np.nanmean(lid)),
                    f"{fmt(value, 1)} vs mean {fmt(np.nanmean(lid), 1)}")
    c.table(["model", "corpus", "median LID L1", "median LID last", "average over layers",
             "largest per-layer mean", "max LID/width", "ρ(depth)", "R² line", "static LID"],
            rows)
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


REPAIRS_TEXT = ClaimText(
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
    ("repairs.png", f"Left: log10 {ISOTROPY_LABEL} before and after each repair (inductive "
                    "fit). Right: change in STS-B Spearman × 100 (inductive)."),
    reading=(
        "I(V) is Mu & Viswanath's partition-function isotropy as Rajaee & Pilehvar use it: "
        "with Z(c) = Σ_w exp(cᵀv_w), I(V) = min_c Z(c) / max_c Z(c), c over both signs of the "
        "eigenvectors of VᵀV; 1 is perfectly isotropic, and the page prints log10 I(V) (0 is "
        "isotropic, computed with log-sum-exp because Z overflows) on the last layer's "
        "WikiText sample, before and after each repair. isoscope's default is the papers' raw "
        "vectors; this page uses unit-length vectors, because Z is not scale-invariant and "
        "whitening inflates norms (the README's table of defaults). The repairs: ABTT "
        "subtracts the mean and the top D ≈ d/100 principal directions (Mu & Viswanath, "
        "2018); cluster subtracts, inside each of 27 k-means clusters, its mean and its top "
        "12 directions (Rajaee & Pilehvar's C and D, at every width); learned removal weights "
        "the same top directions as ABTT by w_i in [0, 1], trained from ABTT (every w_i = 1) "
        "to maximise the correlation between cosines and human scores of word pairs from "
        "MTurk-287, RG-65, MC-30, YP-130 and VERB-143 (Liang et al.); whitening (Su et al., "
        "2021) is shown and not checked. An inductive fit learns each repair on data disjoint "
        "from what it is applied to (isoscope's default), a transductive one on the measured "
        "or evaluated data itself (the papers' protocol). The second table gives Spearman × "
        "100 without repair and each repair's change: STS-B test with the last layer "
        "mean-pooled, WS-353 and SimLex-999 with each word encoded alone. Each check compares "
        "cluster or learned with ABTT on one model, fit and column and passes on any margin; "
        "no confidence interval is computed, so a difference of a fraction of a point is not "
        "evidence either way. Caveats: a transductive fit on a word task sees only that "
        "task's words (the note below); a --quick run fits on fewer sentences and words."
    ),
)


def claim_repairs(models: Mapping[str, Any], repairs: Sequence[str]) -> Claim:
    c = Claim.of(7, REPAIRS_TEXT)
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
                c.check(f"{m} / {fit}: {r} ends with a higher {ISOTROPY_LABEL} than ABTT",
                        got > abtt, f"log10 I(V) {fmt(got)} vs {fmt(abtt)}")
    c.table(["model", "fit", "log10 I(V) before", *[f"after {r}" for r in repairs]],
            iso_rows, f"log10 {ISOTROPY_LABEL}, last layer, WikiText sample; 0 is perfectly "
                      "isotropic.")
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
                    c.check(f"{m} / {fit} / {col}: {r} beats ABTT", got > abtt,
                            f"{fmt(got, 1)} vs {fmt(abtt, 1)}")
    c.table(["model", "fit", "task", "none", *[f"Δ {r}" for r in repairs]],
            task_rows, "Spearman × 100 without repair, and the change each repair brings.")
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
    return c


MASSIVE = ClaimText(
    "Causal models carry massive activations in a few fixed dimensions, at position 0, from "
    "an early layer on",
    "Sun et al. (COLM 2024) find in LLMs a handful of activations up to 10,000 times larger "
    "than the median (|a| > 100 and > 1000 × the median), in a few fixed feature dimensions, "
    "on the starting token (and some delimiters); they appear abruptly in an early layer and "
    "stay nearly constant through the middle layers.",
    "The registry's massive-activation measures (massive_activations, "
    "massive_activation_dims, massive_activation_ratio, massive_activation_top) and the "
    "position-0 shares (sink_share, sink_token_share) of every layer, WikiText, with position "
    "0 and special tokens kept (a BOS token is position 0): the largest |a| per dimension over "
    "every token, the median |a| on the seeded sample. Encoders are shown from their analysis "
    "(special tokens excluded), not checked. Checks per causal model: a layer in the first "
    "quarter of the depth has massive activations and at least half of the layers from there "
    "to the last have them; they sit in few dimensions (at most 1 % of the width, at least 4 "
    "allowed) and the commonest of them is massive in at least 75 % of those layers; the "
    "largest activation is at position 0 in at least half of them.",
    ("massive.png", "Largest |a| over the median |a| (left; dotted: Sun et al.'s 1000) and the "
                    "largest |a| (right; dotted: 100) per layer, WikiText; causal models with "
                    "position 0 kept."),
    reading=(
        "Sun et al.'s test has two thresholds and both apply: |a| > 100 and |a| > 1000 × the "
        "median |a| of the layer (isoscope takes the median over the layer's sampled "
        "coordinates), so a layer with a tiny median (the embedding output) does not pass on the "
        "ratio alone. 'Largest |a|' and 'largest / median' are the extremes over the layers; a "
        "layer counts as having massive activations when some dimension's largest |a| over every "
        "extracted token passes, so a single token is enough. 'Commonest dim' is the dimension "
        "massive in most of those layers (the paper's fixed feature dimension), 'top at position "
        "0' the share of them whose largest activation sits on a sentence's first token. The "
        "last two columns are the attention-sink signature (Xiao et al., 2024): the first token's "
        "share of the middle layer's squared norm against its share of the tokens; a norm share "
        "many times the token share means the first position is carried by the massive "
        "dimensions. For causal models every number comes from a separate pass with position 0 "
        "and special tokens kept (the other claims drop position 0); encoders are shown from "
        "their analysis, special tokens excluded, so an encoder's 'none' concerns its word "
        "tokens only. Caveats: Sun et al. also find massive activations on the first delimiter "
        "('.', a newline), which the position-0 check does not look for (the table's largest "
        "activations name the token); they dissipate in the last layers, which is why "
        "persistence asks for half of the layers rather than all; isoscope does not check that "
        "the values stay nearly constant across layers or inputs; and the causal models' 4-bit "
        "weights are dequantised, so magnitudes are close to, not equal to, the full-precision "
        "models'. The report of a run draws each layer's largest |a| against its threshold and "
        "the dimensions that hold it."
    ),
)

ID_PROFILE = ClaimText(
    "Intrinsic dimension rises then falls across depth",
    "Valeriani et al. (NeurIPS 2023) find, for transformers trained on proteins and images, "
    "that the intrinsic dimension of the representations grows in the first layers to a peak "
    "and then falls, the later layers being low-dimensional.",
    "TwoNN (id_twonn, DADApy's defaults) and GRIDE (id_gride, at the largest scale) on the "
    "seeded distinct sample of every hidden state, embeddings (layer 0) included; the kNN "
    "MLE's median (lid_mle_median) shown beside them. Check per model, corpus and estimator: "
    "the largest ID is at an inner layer (not the first or the last), and both the first and "
    "the last layer are at least 10 % below it.",
    ("id_profile.png", "TwoNN (left) and GRIDE (right) intrinsic dimension per hidden state "
                       "against relative depth, WikiText."),
    reading=(
        "Each cell lists one value per hidden state, the embedding output (layer 0) first. "
        "TwoNN uses each point's two nearest neighbours (μ = r₂/r₁, the largest 10 % of μ "
        "dropped), so it measures the dimension at the sample's smallest scale, where noise "
        "inflates it; GRIDE here uses the 8th and 16th neighbours (μ = r₁₆/r₈), a larger scale "
        "that Denti et al. show is less sensitive to noise, and Valeriani et al. read the ID at "
        "the scale where GRIDE is stable. Both run on Euclidean distances between the distinct "
        "vectors of the seeded sample (special tokens and, for causal models, position 0 left "
        "out); the median kNN-MLE LID of claim 6 is a third estimator, shown and not checked. "
        "The check asks only for a peak at an inner layer with both ends at least 10 % below "
        "it; Valeriani et al. describe more: an expansion in the first layers, a marked "
        "contraction in the intermediate ones, and a roughly constant ID (or a second shallow "
        "peak) near the output. Caveats: their models were trained on proteins and images, so "
        "the claim is transferred to text here. Layer 0 of a model without position embeddings "
        "(both causal models: rotary positions) is the token-embedding table, so its distinct "
        "sample holds one vector per word piece, a different population from the contextual "
        "layers; a high ID there can break 'the first layer is below the peak' for reasons "
        "unrelated to the paper (the report's GRIDE panel shows each layer's curve across "
        "scales). Absolute IDs depend on the sample size and the scale and assume one manifold "
        "of even density: compare the shape across layers, not values across models."
    ),
)

ERANK = ClaimText(
    "Effective rank dips in the intermediate layers of causal models, more than in encoders",
    "Skean et al. (ICML 2025), 'Layer by layer', find that the intermediate layers of "
    "autoregressive models compress their inputs: the matrix entropy of the token "
    "representations has a pronounced dip in the middle of the network, while encoders "
    "(BERT) keep a flatter profile.",
    "Effective rank (Roy & Vetterli 2007: exp of the Shannon entropy of the normalised "
    "singular values of the centred layer, over every extracted token, pooled across "
    "sentences rather than per prompt as Skean et al. do) per hidden state from layer 1; "
    "RankMe beside it. The dip is 1 − (smallest effective rank strictly between the first and "
    "the last layer) / (the smaller of the two ends). Checks per GPT-family model and corpus: "
    "dip ≥ 0.1, and larger than every BERT-family model's dip on the same corpus.",
    ("erank.png", "Effective rank per hidden state from layer 1 (left) and as a share of the "
                  "width (right), WikiText."),
    reading=(
        "Effective rank is the number of directions the centred layer effectively uses: 1 when "
        "all variance lies on one direction, the width (the hidden size, since the tokens far "
        "outnumber it) when every singular value is equal. It is computed from the singular "
        "values themselves, not their squares (Roy & Vetterli), from the exact covariance of "
        "every extracted token (no sample; special tokens and, for causal models, position 0 "
        "left out). RankMe (Garrido et al.) only adds ε = 10⁻⁷ to each normalised singular "
        "value, so it matches the effective rank to the printed digits unless some singular "
        "values vanish: it checks the definition, it is not independent evidence. The table "
        "starts at layer 1; the dip is 1 − (smallest effective rank strictly between layer 1 "
        "and the last layer) / (the smaller of the two), so 0 means no inner layer falls below "
        "both ends and 0.5 that one uses half as many directions; it is a ratio, comparable "
        "across models of different widths where the raw ranks are not. Caveats: Skean et "
        "al. take the matrix entropy of each prompt's own tokens and average over prompts; "
        "pooling every token of a corpus adds the variation between sentences (topic, length, "
        "position), so the numbers are not theirs. A few high-variance directions lower the "
        "effective rank on their own: a dimension that grows in the middle layers (claim 8, "
        "and the report's outlier dimensions) makes a dip without any compression of what the "
        "other directions hold, and centring removes the mean but not such dimensions."
    ),
)

CKA = ClaimText(
    "Adjacent layers are more similar than distant ones (CKA)",
    "Kornblith et al. (ICML 2019) compare layers by linear CKA and find that representations "
    "change gradually: neighbouring layers are the most similar, and similarity falls with "
    "the distance between layers.",
    "Linear CKA between every pair of hidden states on the same seeded tokens (the analysis "
    "results' layer_similarity: a seeded subset of the analysis sample, the same rows in "
    "every layer). Checks per model and corpus: "
    "the mean CKA of adjacent layers exceeds the mean CKA of layers at least half the depth "
    "apart; for at least 90 % of the layers the most similar other layer is an adjacent one.",
    ("cka.png", "Linear CKA between every pair of hidden states (WikiText); brighter is more "
                "similar."),
    reading=(
        "Linear CKA compares two layers' representations of the same tokens: with X and Y "
        "their column-centred rows, CKA = ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F), 1 when one is a "
        "rotation and uniform scaling of the other and near 0 when they are unrelated; it is "
        "unchanged by orthogonal transforms and isotropic scaling but not by other invertible "
        "linear maps (Kornblith et al.). In the heat map (layer against layer, the diagonal 1 "
        "by definition) the paper's pattern is a bright band along the diagonal fading away "
        "from it; square bright blocks are runs of layers with nearly the same geometry. 'Mean "
        "CKA adjacent' averages the pairs one layer apart, 'mean CKA distant' the pairs at "
        "least half the depth (and at least two layers) apart, and the last check asks that "
        "for at least 90 % of the layers the most similar other layer is a neighbour. 'Rows' "
        "is the number of tokens compared, a seeded subset of the analysis sample, the same in "
        "every layer. Caveats: in a residual network each layer adds an update to the previous "
        "one, so adjacent similarity is the expected outcome and the checks fail only where a "
        "distant layer resembles a layer more than its neighbours do, which makes a pass weak "
        "evidence. Linear CKA weighs directions by their variance, "
        "so a few large dimensions shared by two layers can bring it near 1 whatever the "
        "others do: Nguyen et al. (ICLR 2021) trace such blocks to one dominant principal "
        "component carried across layers, and in causal models the large dimensions of claim 8 "
        "are not all at position 0, so dropping it need not remove them. With rows not far "
        "above the width the plain "
        "estimator is biased upwards; the debiased CKA and the mutual k-NN overlap of the same "
        "rows are in the results' layer_similarity and in the report of each run, not checked "
        "here."
    ),
)


def _massive_summary(entries: Sequence[Mapping[str, Any]], width: int | None) -> dict[str, Any]:
    """Where a model's massive activations are, from per-layer massive-activation entries."""
    rows = sorted((e for e in entries if e.get("massive_activation_dims") is not None),
                  key=lambda e: e["layer"])
    layers = [int(e["layer"]) for e in rows]
    hit = [e for e in rows if e["massive_activation_dims"] > 0]
    dims = [[t["dim"] for t in e.get("massive_activation_top") or [] if t.get("massive")]
            for e in hit]
    counts: dict[int, int] = {}
    for ds in dims:
        for j in set(ds):
            counts[j] = counts.get(j, 0) + 1
    commonest = max(counts, key=lambda j: (counts[j], -j)) if counts else None
    at_zero = [bool((e.get("massive_activation_top") or [{}])[0].get("position") == 0) for e in hit]
    ratios = [e.get("massive_activation_ratio") for e in rows]
    return {
        "layers": layers,
        "massive_layers": [int(e["layer"]) for e in hit],
        "max_dims": max((int(e["massive_activation_dims"]) for e in hit), default=0),
        "dim_limit": max(4, (width or 0) // 100),
        "commonest": commonest,
        "commonest_share": counts[commonest] / len(hit) if commonest is not None else None,
        "share_at_zero": float(np.mean(at_zero)) if at_zero else None,
        "max_ratio": max((r for r in ratios if r is not None), default=None),
        "max_abs": max((e.get("max_abs_activation") or 0.0 for e in rows), default=None),
    }


def _massive_checks(m: str, s: Mapping[str, Any]) -> list[Check]:
    """The three checks of claim 8 on one causal model's :func:`_massive_summary`."""
    hit, layers = s["massive_layers"], s["layers"]
    if not layers:
        return [Check(f"{m}: massive activations from an early layer on", None, "not measured")]
    top = max(layers)
    onset = hit[0] if hit else None
    after = [layer for layer in layers if onset is not None and layer >= onset]
    persistent = len(hit) / len(after) if after else 0.0
    early = onset is not None and onset <= max(1.0, top / 4)
    out = [Check(f"{m}: massive activations from an early layer on", early and persistent >= 0.5,
                 f"in layers {hit} of 0–{top} (first at {onset}); largest |a| "
                 f"{fmt(s['max_abs'], 0)}, {fmt(s['max_ratio'], 0)} × the median"
                 if hit else f"none in layers 0–{top} (largest ratio {fmt(s['max_ratio'], 0)})")]
    if not hit:
        return out + [Check(f"{m}: massive activations in a few fixed dimensions", None,
                            "no massive activations"),
                      Check(f"{m}: the largest activation is at position 0", None,
                            "no massive activations")]
    few = s["max_dims"] <= s["dim_limit"]
    out.append(Check(f"{m}: massive activations in a few fixed dimensions",
                     few and (s["commonest_share"] or 0.0) >= 0.75,
                     f"at most {s['max_dims']} massive dimensions per layer (limit "
                     f"{s['dim_limit']}); dimension {s['commonest']} is massive in "
                     f"{fmt(100 * s['commonest_share'], 0)} % of those layers"))
    out.append(Check(f"{m}: the largest activation is at position 0",
                     at_least(s["share_at_zero"], 0.5),
                     f"at position 0 in {fmt(100 * s['share_at_zero'], 0)} % of the layers with "
                     "massive activations"))
    return out


def claim_massive(models: Mapping[str, Any]) -> Claim:
    c = Claim.of(8, MASSIVE)
    rows = []
    for m, d in contextual(models).items():
        causal = d["family"] == "GPT family"
        res = d["analysis"].get("wikitext", {})
        entries = ((d.get("position_zero") or {}).get("massive") or {}).get("layers") \
            if causal else layer_entries(res)
        if entries is None:
            if causal:
                c.check(f"{m}: massive activations from an early layer on", None,
                        "not measured with position 0 kept")
            continue
        s = _massive_summary(entries, res.get("width"))
        mid = min(entries, key=lambda e: abs(e["layer"] - max(s["layers"] or [0]) / 2)) \
            if entries else {}
        rows.append([m, d["family"], "kept" if causal else "excluded (special)",
                     ", ".join(map(str, s["massive_layers"])) or "none",
                     fmt(s["max_abs"], 0), fmt(s["max_ratio"], 0), str(s["max_dims"]),
                     "–" if s["commonest"] is None else str(s["commonest"]),
                     "–" if s["share_at_zero"] is None else f"{100 * s['share_at_zero']:.0f} %",
                     fmt(mid.get("sink_share")), fmt(mid.get("sink_token_share"), 3)])
        if causal:
            c.checks.extend(_massive_checks(m, s))
    c.table(["model", "family", "position 0", "layers with massive activations", "largest |a|",
             "largest / median", "most massive dims in a layer", "commonest dim",
             "top at position 0", "position-0 share of norm² (mid layer)",
             "position-0 share of tokens"], rows, "WikiText.")
    return c


def _peak_inside(x: np.ndarray, y: np.ndarray) -> tuple[bool | None, str]:
    """Whether ``y`` peaks at an inner layer with both ends at least 10 % below the peak."""
    ok = np.isfinite(y)
    if ok.sum() < 3:
        return None, "fewer than three layers with a value"
    x, y = x[ok], y[ok]
    i = int(np.argmax(y))
    inner = 0 < i < y.size - 1
    rise, fall = 1 - y[0] / y[i], 1 - y[-1] / y[i]
    return (inner and rise >= 0.1 and fall >= 0.1,
            f"peak {fmt(y[i], 1)} at layer {int(x[i])}; first layer {fmt(100 * rise, 0)} % "
            f"below it, last layer {fmt(100 * fall, 0)} % below")


def claim_id_profile(models: Mapping[str, Any]) -> Claim:
    c = Claim.of(9, ID_PROFILE)
    rows = []
    for m, _, corpus, res in each_corpus(contextual(models)):
        x, (twonn, gride, lid) = columns(res, "id_twonn", "id_gride", "lid_mle_median")
        rows.append([m, corpus, *(", ".join(fmt(v, 1) for v in y) for y in (twonn, gride, lid))])
        _corpus_checks(c, m, corpus, [
            (f"{name} rises then falls", *_peak_inside(x, y))
            for name, y in (("TwoNN", twonn), ("GRIDE", gride))
        ])
    c.table(["model", "corpus", "TwoNN per layer (0 → last)", "GRIDE per layer",
             "median kNN-MLE LID per layer"], rows)
    return c


def _dip(y: np.ndarray) -> float | None:
    """1 − (smallest inner value) / (the smaller end), on the finite values of ``y``."""
    y = y[np.isfinite(y)]
    if y.size < 3:
        return None
    return float(1 - y[1:-1].min() / min(y[0], y[-1]))


def claim_effective_rank(models: Mapping[str, Any]) -> Claim:
    c = Claim.of(10, ERANK)
    rows = []
    dips: dict[tuple[str, str], float | None] = {}
    for m, _, corpus, res in each_corpus(contextual(models)):
        x, er = series(res, "effective_rank", skip_embedding=True)
        _, rankme = series(res, "rankme", skip_embedding=True)
        dips[(m, corpus)] = _dip(er)
        i = int(np.nanargmin(er)) if np.isfinite(er).any() else None
        rows.append([m, models[m]["family"], corpus, fmt(er[0], 1),
                     "–" if i is None else f"{fmt(er[i], 1)} (layer {int(x[i])})",
                     fmt(er[-1], 1), fmt(dips[(m, corpus)]), fmt(np.nanmean(rankme), 1)])
    for (m, corpus), dip in dips.items():
        if models[m]["family"] != "GPT family":
            continue
        bert = [v for (b, cp), v in dips.items()
                if cp == corpus and models[b]["family"] == "BERT family" and v is not None]
        tests = [("effective rank dips in the middle layers", at_least(dip, 0.1),
                  f"dip {fmt(dip)}")]
        if bert:
            tests.append(("deeper dip than the BERT family's",
                          None if dip is None else bool(dip > max(bert)),
                          f"{fmt(dip)} vs at most {fmt(max(bert))}"))
        _corpus_checks(c, m, corpus, tests)
    c.table(["model", "family", "corpus", "eRank L1", "smallest eRank", "eRank last", "dip",
             "mean RankMe"], rows)
    return c


def similarity_of(d: Mapping[str, Any], corpus: str) -> tuple[Mapping[str, Any] | None, str]:
    """The CKA section of one corpus: the analysis results' ``layer_similarity`` (None for a
    run without it, e.g. a static table)."""
    res = d["analysis"].get(corpus) or {}
    if isinstance(res.get("layer_similarity"), Mapping):
        return res["layer_similarity"], "results' layer_similarity"
    return None, ""


def cka_profile(cka: np.ndarray) -> dict[str, float | None]:
    """Adjacent against distant similarity of a layer × layer CKA matrix."""
    n = cka.shape[0]
    gap = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    far = gap >= max(2, n / 2)
    off = np.where(gap > 0, cka, -np.inf)
    nearest = np.abs(np.argmax(off, axis=1) - np.arange(n)) == 1 if n > 1 else np.zeros(0, bool)
    return {"adjacent": float(np.nanmean(cka[gap == 1])) if n > 1 else None,
            "distant": float(np.nanmean(cka[far])) if far.any() else None,
            "nearest_adjacent": float(nearest.mean()) if n > 1 else None,
            "min": float(np.nanmin(cka)) if n else None}


def claim_cka(models: Mapping[str, Any]) -> Claim:
    c = Claim.of(11, CKA)
    rows = []
    for m, d, corpus, _ in each_corpus(contextual(models)):
        section, source = similarity_of(d, corpus)
        if section is None:
            c.check(f"{m} / {corpus}: adjacent layers more similar than distant ones", None,
                    "no layer similarity")
            continue
        p = cka_profile(np.array(section["cka_linear"], dtype=float))
        rows.append([m, corpus, str(len(section["layers"])), fmt(p["adjacent"]),
                     fmt(p["distant"]), fmt(p["min"]),
                     "–" if p["nearest_adjacent"] is None
                     else f"{100 * p['nearest_adjacent']:.0f} %", fmt(section.get("n")), source])
        adjacent, distant = p["adjacent"], p["distant"]
        _corpus_checks(c, m, corpus, [
            ("adjacent layers more similar than distant ones",
             None if adjacent is None or distant is None else bool(adjacent > distant),
             f"mean CKA {fmt(adjacent, 3)} adjacent vs {fmt(distant, 3)} at least half the depth "
             "apart"),
            ("the most similar layer is an adjacent one", at_least(p["nearest_adjacent"], 0.9),
             "for " + ("–" if p["nearest_adjacent"] is None
                       else f"{100 * p['nearest_adjacent']:.0f} %") + " of the layers"),
        ])
    c.table(["model", "corpus", "layers", "mean CKA adjacent", "mean CKA distant",
             "smallest CKA", "layers whose nearest is adjacent", "rows", "source"], rows)
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
        claim_massive(models),
        claim_id_profile(models),
        claim_effective_rank(models),
        claim_cka(models),
    ]
