"""Colour-blind-safe palette, matplotlib style and the catalogue of per-layer measures.

The catalogue gives every measure in ``results.json`` a human label, a unit and
one sentence on how to read it, so that figures and the report are readable
without the papers. Measures missing from the catalogue are still plotted under
their key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow (last: low contrast on white)
)
LINESTYLES: tuple[Any, ...] = ("-", "--", ":", "-.", (0, (5, 1.5, 1, 1.5, 1, 1.5)))
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P")
#: Perceptually uniform and colour-blind safe; used for word frequency.
SEQUENTIAL_CMAP = "viridis"
BEFORE_COLOUR = "#999999"
AFTER_COLOUR = PALETTE[0]

RC_PARAMS: dict[str, object] = {
    "figure.dpi": 110,
    "savefig.dpi": 130,
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.7,
    "axes.axisbelow": True,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 4.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "svg.fonttype": "none",
}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Temporarily apply the isoscope matplotlib style."""
    import matplotlib

    with matplotlib.rc_context(cast(Any, RC_PARAMS)):
        yield


@dataclass(frozen=True)
class Family:
    """A panel of the layer-curve figure: related measures drawn together.

    Attributes
    ----------
    title : str
        Panel title.
    ylabel : str
        Y-axis label including the unit.
    keys : tuple of str
        Measure keys in ``results["layers"][i]``; the first is drawn solid.
    labels : tuple of str
        Legend label of each key.
    help : str
        One sentence on how to read the panel.
    ylim : tuple or None
        Fixed y-range, when the measure has one.
    """

    title: str
    ylabel: str
    keys: tuple[str, ...]
    labels: tuple[str, ...]
    help: str
    ylim: tuple[float, float] | None = None
    extra: dict[str, str] = field(default_factory=dict)


FAMILIES: tuple[Family, ...] = (
    Family(
        "Average cosine, random token pairs",
        "cosine (−1 … 1)",
        ("s_inter", "s_inter_centered", "s_inter_all"),
        ("S_inter (raw)", "S_inter (mean removed)", "S_inter (every token, raw)"),
        "High raw values mean all vectors point into a narrow cone; the centred line shows "
        "how much of that is just a shared offset.",
    ),
    Family(
        "Same-word similarity",
        "cosine (−1 … 1)",
        ("s_intra", "s_intra_centered"),
        ("S_intra (raw)", "S_intra (mean removed)"),
        "Mean cosine between occurrences of the same word; compare with S_inter: a gap means "
        "context-independent word identity survives.",
    ),
    Family(
        "Self-similarity (Ethayarajh 2019)",
        "cosine (−1 … 1)",
        ("self_similarity", "self_similarity_adjusted"),
        ("self-similarity", "minus anisotropy baseline"),
        "How alike a word's occurrences are; lower adjusted values mean more context-specific "
        "representations.",
    ),
    Family(
        "Intra-sentence similarity",
        "cosine (−1 … 1)",
        ("intra_sentence_similarity", "intra_sentence_similarity_adjusted"),
        ("intra-sentence", "minus anisotropy baseline"),
        "Mean cosine of each token to its sentence mean.",
    ),
    Family(
        "Maximum explainable variance",
        "share of variance (0 … 1)",
        ("mev", "mev_adjusted", "mev_baseline"),
        ("MEV", "minus anisotropy baseline", "anisotropy baseline"),
        "Share of a word's occurrence variance on its first principal component.",
    ),
    Family(
        "Partition isotropy I(V)",
        "log10 I(V) (0 = isotropic)",
        ("isotropy_partition_log10",),
        ("log10 I(V)",),
        "Mu & Viswanath's min/max partition ratio; 0 is perfectly isotropic, very negative "
        "values mean one direction dominates.",
    ),
    Family(
        "IsoScore",
        "score (0 … 1, 1 = isotropic)",
        ("isoscore", "isoscore_star", "isoscore_all"),
        ("IsoScore", "IsoScore*", "IsoScore (every token)"),
        "Fraction of dimensions used uniformly (Rudman et al.).",
        (0.0, 1.02),
    ),
    Family(
        "Local intrinsic dimension",
        "dimensions",
        ("lid_mle", "lid_mle_median", "lid_twonn"),
        ("MLE mean", "MLE median", "TwoNN"),
        "Dimension of the neighbourhood around each point (k-NN estimates); far below the "
        "width of the model means a thin manifold.",
    ),
    Family(
        "PCA components for 80% variance",
        "components",
        ("pca_dims_80",),
        ("components",),
        "Few components means the variance lives in a low-dimensional subspace.",
    ),
    Family(
        "Cluster structure",
        "silhouette (−1 … 1)",
        ("mms", "silhouette_best"),
        ("MMS", "best silhouette"),
        "k-means silhouette; above ~0.1 the cloud splits into separate clusters.",
    ),
    Family(
        "Number of clusters",
        "k (chosen by silhouette)",
        ("n_clusters", "best_k"),
        ("k used", "best k by silhouette"),
        "k with the best silhouette in the searched range.",
    ),
    Family(
        "Frequency encoding",
        "correlation (−1 … 1)",
        ("freq_pc1_spearman", "freq_pc1_pearson", "freq_norm_spearman", "freq_norm_pearson"),
        (
            "PC1 vs log freq (Spearman)",
            "PC1 vs log freq (Pearson)",
            "norm vs log freq (Spearman)",
            "norm vs log freq (Pearson)",
        ),
        "Far from 0 means word frequency is written into the main direction or the length of "
        "the vectors.",
        (-1.02, 1.02),
    ),
    Family(
        "Frequency on PC2 and PC3",
        "correlation (−1 … 1)",
        ("freq_pc2_spearman", "freq_pc3_spearman", "freq_pc2_pearson", "freq_pc3_pearson"),
        ("PC2 (Spearman)", "PC3 (Spearman)", "PC2 (Pearson)", "PC3 (Pearson)"),
        "Correlation of the second and third principal coordinates with log word frequency.",
        (-1.02, 1.02),
    ),
    Family(
        "Mean vector length",
        "L2 norm (model units)",
        ("mean_norm", "mean_norm_all"),
        ("sample", "every token"),
        "Average Euclidean length of the vectors.",
    ),
    Family(
        "Diagnostics",
        "count (in the sample)",
        (
            "n_duplicates",
            "n_zero_rows",
            "n_null_directions",
            "lid_n_zero_distances",
            "lid_n_undefined",
        ),
        (
            "duplicate vectors",
            "all-zero vectors",
            "null directions",
            "LID: zero distances",
            "LID: undefined points",
        ),
        "Identical vectors (e.g. every [CLS] at layer 0), vectors with no direction, directions "
        "with no variance (LayerNorm) and points where LID is undefined; they are handled "
        "explicitly by the measures.",
    ),
)

#: Scalar keys never drawn as curves (identifiers or sample sizes shown elsewhere).
NOT_A_CURVE = frozenset(
    {"layer", "n_vectors", "n_vectors_all", "isotropy_partition", "s_intra_n_types", "freq_n"}
)

#: Measures shown in summaries and before/after panels, in order.
HEADLINE_KEYS: tuple[tuple[str, str], ...] = (
    ("isoscore", "IsoScore (0…1, ↑ isotropic)"),
    ("isotropy_partition_log10", "log10 I(V) (0 = isotropic)"),
    ("s_inter", "S_inter (cosine)"),
    ("s_inter_centered", "S_inter centred (cosine)"),
    ("s_intra", "S_intra (cosine)"),
    ("pca_dims_80", "PCA dims for 80% var"),
    ("lid_mle", "LID, MLE (dims)"),
    ("mms", "MMS (silhouette)"),
    ("freq_pc1_spearman", "PC1–frequency ρ"),
    ("mean_norm", "mean L2 norm"),
)


def measure_label(key: str) -> str:
    """Return a readable label for a measure key."""
    for k, label in HEADLINE_KEYS:
        if k == key:
            return label
    for fam in FAMILIES:
        if key in fam.keys:
            return f"{fam.labels[fam.keys.index(key)]} ({fam.ylabel})"
    return key.replace("_", " ")
