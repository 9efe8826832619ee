"""Every measure isoscope reports: panels, keys, definitions, sources and their computations.

Adding a measure means adding one :func:`register` block here (and its test); analyze, the
CLI table, ``to_frame``, the report, findings and ``docs/results.md`` pick it up from the
registry. Groups run in the order they are registered: a group may read the values of earlier
groups from ``data.values`` (the Ethayarajh baselines read ``s_inter``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from isoscope.measures._layer import LayerData
from isoscope.measures._registry import REGISTRY, Measure, Panel, register

CAI = "Cai et al. (ICLR 2021)"
MU = "Mu & Viswanath (ICLR 2018); Rajaee & Pilehvar (ACL 2021)"
ETH = "Ethayarajh (EMNLP 2019)"
ISO = "Rudman et al. (ACL 2022)"
ISO_STAR = "Rudman & Eickhoff (2024)"
AMSALEG = "Amsaleg et al. (KDD 2015), as used by Cai et al. (ICLR 2021)"
VARIANT = "isoscope variant"
DIAG = "diagnostic"

COS = "cosine (−1 … 1)"
CORR = "correlation (−1 … 1)"

for _panel in (
    Panel("s_inter", "Average cosine, random token pairs", COS,
          "High raw values mean all vectors point into a narrow cone; the centred line shows "
          "how much of that is just the clusters' offsets."),
    Panel("s_intra", "Same-word similarity", COS,
          "Mean cosine between occurrences of the same word; compare with S_inter: a gap means "
          "context-independent word identity survives."),
    Panel("self_similarity", "Self-similarity (Ethayarajh 2019)", COS,
          "How alike a word's occurrences are; lower adjusted values mean more context-specific "
          "representations."),
    Panel("intra_sentence", "Intra-sentence similarity", COS,
          "Mean cosine of each token to its sentence mean."),
    Panel("mev", "Maximum explainable variance", "share of variance (0 … 1)",
          "Share of a word's occurrence variance on its first principal component."),
    Panel("partition", "Partition isotropy I(V)", "log10 I(V) (0 = isotropic)",
          "Mu & Viswanath's min/max partition ratio; 0 is perfectly isotropic, very negative "
          "values mean one direction dominates. The headline is on raw vectors, as defined."),
    Panel("isoscore", "IsoScore", "score (0 … 1, 1 = isotropic)",
          "Fraction of dimensions used uniformly (Rudman et al.).", (0.0, 1.02)),
    Panel("effective_rank", "Effective rank", "dimensions",
          "exp of the entropy of the normalised singular values: how many directions the layer "
          "really uses (at most the width)."),
    Panel("lid", "Local intrinsic dimension", "dimensions",
          "Dimension of the neighbourhood around each point (k-NN estimates); far below the "
          "width of the model means a thin manifold."),
    Panel("pca", "PCA components for 80% variance", "components",
          "Few components means the variance lives in a low-dimensional subspace."),
    Panel("clusters", "Cluster structure", "silhouette (−1 … 1)",
          "k-means silhouette (MMS); above ~0.1 the cloud splits into separate clusters."),
    Panel("n_clusters", "Number of clusters", "k (chosen by silhouette)",
          "k with the best silhouette in the searched range; 1 when MMS is below the threshold."),
    Panel("frequency", "Frequency encoding", CORR,
          "Far from 0 means word frequency is written into the main direction or the length of "
          "the vectors.", (-1.02, 1.02)),
    Panel("frequency_pc23", "Frequency on PC2 and PC3", CORR,
          "Correlation of the second and third principal coordinates with log word frequency.",
          (-1.02, 1.02)),
    Panel("norm", "Mean vector length", "L2 norm (model units)",
          "Average Euclidean length of the vectors."),
    Panel("diagnostics", "Diagnostics", "count",
          "Identical vectors (e.g. every [CLS] at layer 0), vectors with no direction, directions "
          "with no variance (LayerNorm) and points where LID is undefined; they are handled "
          "explicitly by the measures."),
):
    REGISTRY.add_panel(_panel)


# ---------------------------------------------------------------------------------------------
# Counts


@register("counts", [
    Measure("n_tokens", "tokens", "count", None, "all tokens",
            "Selected tokens of the layer (special tokens and position 0 as set) behind every "
            "'all tokens' value.", DIAG, fmt="{}"),
    Measure("n_vectors", "sample", "count", None, "sample",
            "Non-zero rows of the seeded sample behind every 'sample' value.", DIAG,
            fmt="{}", table="n", params=("sample", "seed")),
    Measure("n_distinct", "distinct sample", "count", None, "distinct sample",
            "Distinct vectors the neighbour and cluster measures run on (exact duplicates are "
            "removed before sampling).", DIAG, fmt="{}"),
    Measure("n_duplicates", "duplicate vectors", "count", "diagnostics", "sample",
            "Rows of the sample that exactly repeat another row.", DIAG, fmt="{}"),
    Measure("n_zero_rows", "all-zero vectors", "count", "diagnostics", "sample",
            "All-zero rows left out of the sample (they have no direction).", DIAG, fmt="{}"),
])
def _counts(d: LayerData) -> dict[str, Any]:
    return {
        "n_tokens": int(d.moments.n),
        "n_vectors": int(d.sample.shape[0]),
        "n_distinct": int(d.neighbor_points.shape[0]),
        "n_duplicates": int(d.n_duplicates),
        "n_zero_rows": int(d.n_zero_rows),
    }


# ---------------------------------------------------------------------------------------------
# Moments of the whole layer


@register("cosine", [
    Measure("s_inter", "S_inter", COS, "s_inter", "all tokens",
            "Mean cosine over all distinct pairs of tokens, exactly, from the sum of unit "
            "vectors.", CAI, table="S_inter", headline=True),
    Measure("mean_norm", "mean L2 norm", "L2 norm (model units)", "norm", "all tokens",
            "Mean Euclidean norm of the tokens.", DIAG, fmt="{:.3g}", table="norm"),
    Measure("rogue_dims", "rogue dimensions", "share of S_inter", None, "all tokens",
            "The dimensions contributing most to S_inter: c_j = (s_j² − Σ u_ij²) / (n(n−1)) "
            "for unit rows u, s = Σ u.", "Timkey & van Schijndel (EMNLP 2021)", scalar=False,
            params=("rogue_top",)),
], needs=("moments",))
def _cosine(d: LayerData) -> dict[str, Any]:
    m = d.moments
    out: dict[str, Any] = {"mean_norm": m.mean_norm()}
    if m.n - m.n_zero >= 2:
        out["s_inter"] = m.s_inter()
        c = m.rogue_contributions()
        total = float(c.sum())
        order = np.argsort(-c, kind="stable")[: int(d.settings["rogue_top"])]
        out["rogue_dims"] = [
            {"dim": int(j), "contribution": float(c[j]),
             "share": float(c[j] / total) if total != 0 else None}
            for j in order
        ]
    return out


@register("spectrum", [
    Measure("pca_dims_80", "PCA80", "components", "pca", "all tokens",
            "Principal components needed for 80% of the variance of the centred layer.", CAI,
            fmt="{}", table="PCA80", headline=True),
    Measure("n_null_directions", "null directions", "count", "diagnostics", "all tokens",
            "Covariance eigenvalues floored to zero (LayerNorm's null directions).", DIAG,
            fmt="{}"),
], needs=("moments",))
def _spectrum(d: LayerData) -> dict[str, Any]:
    sp = d.spectrum
    d.details["explained_variance_ratio"] = sp.explained_variance_ratio[:100].tolist()
    return {"pca_dims_80": sp.dims_80, "n_null_directions": sp.n_null}


@register("isoscore", [
    Measure("isoscore", "IsoScore", "score (0 … 1)", "isoscore", "all tokens",
            "IsoScore of the layer's covariance.", ISO, table="IsoScore", headline=True),
    Measure("isoscore_star", "IsoScore*", "score (0 … 1)", "isoscore", "sample",
            "IsoScore of the sample covariance shrunk toward the reference covariance "
            "(the whole layer's, or the fit sample's for repairs) with weight zeta.", ISO_STAR,
            table="IsoScore*", params=("isoscore_star_zeta", "isoscore_star_reference")),
    Measure("isoscore_star_reference", "IsoScore* reference", "", None, "sample",
            "Shrinkage target of IsoScore*: layer, fit_sample or scaled_identity.", DIAG,
            scalar=False),
], needs=("moments",))
def _isoscore(d: LayerData) -> dict[str, Any]:
    from isoscope.metrics.isotropy import isoscore, isoscore_star

    out: dict[str, Any] = {}
    if d.moments.n >= 2:
        out["isoscore"] = isoscore(cov=d.moments.covariance())
    ref: Any = d.reference_cov if d.reference_cov is not None else "scaled_identity"
    out["isoscore_star"] = isoscore_star(d.sample, C0=ref, zeta=float(d.settings["isoscore_star_zeta"]))
    if d.reference_cov is None:
        out["isoscore_star_reference"] = "scaled_identity"
    else:
        out["isoscore_star_reference"] = str(d.settings.get("_isoscore_star_reference_name", "layer"))
    return out


@register("effective_rank", [
    Measure("effective_rank", "effective rank", "dimensions", "effective_rank", "all tokens",
            "exp(−Σ p_i log p_i) with p_i = σ_i / Σ σ_j over the singular values σ of the "
            "centred layer.", "Roy & Vetterli (EUSIPCO 2007)", fmt="{:.1f}", table="eRank"),
    Measure("rankme", "RankMe", "dimensions", "effective_rank", "all tokens",
            "exp(−Σ p_i log p_i) with p_i = σ_i / Σ σ_j + ε (ε = 1e-7), on the centred layer.",
            "Garrido et al. (ICML 2023)", fmt="{:.1f}"),
], needs=("moments",))
def _effective_rank(d: LayerData) -> dict[str, Any]:
    # Singular values of the centred n x d layer are sqrt((n - 1) * covariance eigenvalues);
    # the common factor cancels in the normalisation.
    sigma = np.sqrt(np.clip(d.spectrum.eigenvalues, 0.0, None))
    total = float(sigma.sum())
    if total <= 0:
        return {}
    p = sigma / total
    nz = p[p > 0]
    q = p + 1e-7
    return {
        "effective_rank": float(np.exp(-np.sum(nz * np.log(nz)))),
        "rankme": float(np.exp(-np.sum(q * np.log(q)))),
    }


# ---------------------------------------------------------------------------------------------
# The sample


def _partition_measures() -> list[Measure]:
    out = [
        Measure("isotropy_partition", "I(V)", "ratio (0 … 1)", None, "sample",
                "min_c Z(c) / max_c Z(c), Z(c) = Σ_w exp(cᵀv_w), c over both signs of the "
                "eigenvectors of VᵀV, on raw vectors; computed with log-sum-exp.", MU),
        Measure("isotropy_partition_log10", "log10 I(V)", "log10 ratio (≤ 0)", "partition",
                "sample", "log10 of isotropy_partition.", MU, fmt="{:.3g}",
                table="log10 I(V)", headline=True),
    ]
    for norm, how in (("centered", "after subtracting the mean vector"),
                      ("unit", "on unit-length vectors")):
        out += [
            Measure(f"isotropy_partition_{norm}", f"I(V), {norm}", "ratio (0 … 1)", None,
                    "sample", f"I(V) {how}.", VARIANT, paper=False),
            Measure(f"isotropy_partition_{norm}_log10", f"log10 I(V), {norm}",
                    "log10 ratio (≤ 0)", "partition", "sample",
                    f"log10 of isotropy_partition_{norm}.", VARIANT, paper=False, fmt="{:.3g}"),
        ]
    return out


@register("partition", _partition_measures(), needs=("sample",))
def _partition(d: LayerData) -> dict[str, Any]:
    from isoscope.metrics.isotropy import partition_isotropy

    out: dict[str, Any] = {}
    for norm, suffix in (("raw", ""), ("centered", "_centered"), ("unit", "_unit")):
        pi = partition_isotropy(d.sample, normalisation=norm)
        out[f"isotropy_partition{suffix}"] = pi.value
        out[f"isotropy_partition{suffix}_log10"] = pi.log10
    return out


@register("clusters", [
    Measure("n_clusters", "|C|", "k", "n_clusters", "distinct sample",
            "Clusters used: the k with the best mean silhouette, or 1 when MMS is below "
            "no_cluster_mms (Cai et al.'s 'no clusters' rule).", CAI, fmt="{}", table="|C|",
            params=("k_range", "no_cluster_mms", "kmeans_n_init")),
    Measure("best_k", "best k", "k", "n_clusters", "distinct sample",
            "k with the largest mean silhouette in k_range.", CAI, fmt="{}"),
    Measure("mms", "MMS", "silhouette (−1 … 1)", "clusters", "distinct sample",
            "Maximum Mean Silhouette: the best mean silhouette of k-means over k_range "
            "(on a seeded silhouette subsample).", CAI, fmt="{:.2f}", table="MMS",
            headline=True, params=("k_range", "silhouette_sample")),
    Measure("s_inter_centered", "S'_inter", COS, "s_inter", "sample",
            "S_inter of the sample after subtracting each token's k-means cluster mean "
            "(all pairs).", CAI, table="S'_inter", headline=True),
], needs=("neighbors", "clusters"))
def _clusters(d: LayerData) -> dict[str, Any]:
    from isoscope.metrics.cosine import center_by_cluster, s_inter

    cl = d.clusters
    d.details["silhouette_curve"] = {"k": cl.ks, "score": cl.scores}
    d.details["cluster_sizes"] = cl.sizes
    out: dict[str, Any] = {"n_clusters": cl.n_clusters, "best_k": cl.best_k, "mms": cl.mms}
    centered = center_by_cluster(d.sample, cl.predict(d.sample), cl.centers)
    # Rows equal to their cluster mean (a cluster of duplicates) have no direction: left out.
    centered = centered[np.linalg.norm(centered, axis=1) > 0]
    out["s_inter_centered"] = s_inter(centered) if centered.shape[0] >= 2 else None
    return out


@register("lid", [
    Measure("lid_mle", "LID", "dimensions", "lid", "distinct sample",
            "Mean over points of the kNN MLE k / Σ_i log(d_k / d_i) on true (not squared) "
            "distances (lid_variant='levina_bickel' gives (k−1)/Σ).", AMSALEG, fmt="{:.1f}",
            table="LID", headline=True, params=("lid_k", "lid_variant", "lid_metric")),
    Measure("lid_mle_median", "LID (median)", "dimensions", "lid", "distinct sample",
            "Median over points of the same estimate (robust to near-tied neighbourhoods).",
            VARIANT, paper=False, fmt="{:.1f}", params=("lid_k", "lid_variant")),
    Measure("lid_twonn", "TwoNN", "dimensions", "lid", "distinct sample",
            "TwoNN estimate from the ratio of second to first neighbour distances.",
            "Facco et al. (Sci. Rep. 2017)", fmt="{:.1f}", table="TwoNN",
            params=("twonn_discard_fraction",)),
    Measure("lid_n_zero_distances", "LID: zero distances", "count", "diagnostics",
            "distinct sample", "Neighbour distances below the zero tolerance (skipped).", DIAG,
            fmt="{}"),
    Measure("lid_n_undefined", "LID: undefined points", "count", "diagnostics",
            "distinct sample", "Points whose LID is undefined (all neighbours at distance 0).",
            DIAG, fmt="{}"),
], needs=("neighbors",))
def _lid(d: LayerData) -> dict[str, Any]:
    from isoscope.metrics.lid import twonn

    lr = d.lid
    vals = lr.values
    limit = int(d.settings["lid_values_max"])
    if vals.size > limit:
        rng = np.random.default_rng(d.settings.get("_lid_values_seed", d.seed))
        vals = vals[np.sort(rng.choice(vals.size, limit, replace=False))]
    d.details["lid_values"] = vals.tolist()
    return {
        "lid_mle": lr.mean,
        "lid_mle_median": lr.median,
        "lid_n_zero_distances": lr.n_zero_distances,
        "lid_n_undefined": lr.n_undefined,
        "lid_twonn": twonn(d.neighbor_points.astype(np.float32), neighbors=lr.neighbors,
                           discard_fraction=float(d.settings["twonn_discard_fraction"])),
    }


@register("neighbor_audit", [
    Measure("knn_recall_at_k", "kNN recall@k", "share (0 … 1)", None,
            "distinct sample", "With neighbors=ivf or hnsw: mean share of each audited point's "
            "exact lid_k neighbours that the approximate index returned (None when exact).",
            DIAG, fmt="{:.3f}", params=("neighbors", "neighbors_audit")),
    Measure("knn_lid_difference", "LID difference (approx − exact)", "dimensions",
            None, "distinct sample",
            "With neighbors=ivf or hnsw: mean over the audited points of the per-point LID "
            "from the approximate neighbours minus that from the exact ones.", DIAG,
            fmt="{:.3g}", params=("neighbors", "neighbors_audit")),
    Measure("knn_audit_size", "kNN audit: points", "count", None, "distinct sample",
            "Points searched exactly for the audit (seeded: knn_audit_seed).", DIAG, fmt="{}"),
    Measure("knn_audit_seed", "kNN audit: seed", "seed", None, "distinct sample",
            "Seed of the audited subsample (the neighbor_audit stream of the analysis seed).",
            DIAG, fmt="{}"),
], needs=("neighbors",))
def _neighbor_audit(d: LayerData) -> dict[str, Any]:
    d.lid  # noqa: B018 - runs the search, which sets the audit
    audit = dict(d.neighbor_audit or {})
    return {key: audit.get(key) for key in
            ("knn_recall_at_k", "knn_lid_difference", "knn_audit_size", "knn_audit_seed")}


# ---------------------------------------------------------------------------------------------
# Word types and sentences of the whole store


@register("word_types", [
    Measure("s_intra", "S_intra", COS, "s_intra", "word types",
            "Mean cosine between occurrences of the same type (token id by default), over "
            "seeded types with at least s_intra_min_occurrences occurrences, at most "
            "s_intra_cap each.", CAI, table="S_intra", headline=True,
            params=("s_intra_key", "s_intra_min_occurrences", "s_intra_cap",
                    "s_intra_max_types")),
    Measure("s_intra_centered", "S'_intra", COS, "s_intra", "word types",
            "S_intra after subtracting each occurrence's k-means cluster mean.", CAI,
            table="S'_intra"),
    Measure("s_intra_n_types", "word types", "count", None, "word types",
            "Word types behind S_intra.", DIAG, fmt="{}"),
    Measure("self_similarity", "self-similarity", COS, "self_similarity", "word types",
            "Ethayarajh's self-similarity: the same quantity as S_intra.", ETH),
    Measure("self_similarity_adjusted", "self-similarity − baseline", COS, "self_similarity",
            "word types", "Self-similarity minus S_inter (the anisotropy baseline).", ETH),
    Measure("mev", "MEV", "share of variance (0 … 1)", "mev", "word types",
            "Mean share of a type's occurrence variance on its first principal component.", ETH),
    Measure("mev_baseline", "MEV baseline", "share of variance (0 … 1)", "mev", "word types",
            "MEV of random groups of the same sizes.", ETH),
    Measure("mev_adjusted", "MEV − baseline", "share of variance (0 … 1)", "mev", "word types",
            "MEV minus its random-group baseline.", ETH),
], needs=("words", "clusters"))
def _word_types(d: LayerData) -> dict[str, Any]:
    from isoscope.metrics.cosine import center_by_cluster, ethayarajh, s_intra

    assert d.intra_X is not None and d.intra_keys is not None
    iX, ikeys = _nonzero(d.intra_X, d.intra_keys)
    if ikeys.size < 2:
        return {}
    r = s_intra(iX, ikeys, min_occurrences=2, cap=None)
    cl = d.clusters
    ic, ikc = _nonzero(center_by_cluster(iX, cl.predict(iX), cl.centers), ikeys)
    out: dict[str, Any] = {
        "s_intra": r.value,
        "s_intra_n_types": r.n_types,
        "s_intra_centered": s_intra(ic, ikc, min_occurrences=2, cap=None).value,
    }
    eth = ethayarajh(iX, ikeys, baseline=d.values.get("s_inter"), min_occurrences=2, cap=None,
                     seed=int(d.settings.get("_word_types_seed", d.seed)))
    for key in ("self_similarity", "self_similarity_adjusted", "mev", "mev_adjusted",
                "mev_baseline"):
        out[key] = eth[key]
    return out


@register("sentences", [
    Measure("intra_sentence_similarity", "intra-sentence similarity", COS, "intra_sentence",
            "sentences", "Mean cosine of each token to its sentence's mean vector, over seeded "
            "whole sentences.", ETH, params=("ethayarajh_sentences",)),
    Measure("intra_sentence_similarity_adjusted", "intra-sentence − baseline", COS,
            "intra_sentence", "sentences", "Intra-sentence similarity minus S_inter.", ETH),
], needs=("sentences",))
def _sentences(d: LayerData) -> dict[str, Any]:
    from isoscope.metrics.cosine import intra_sentence_similarity

    assert d.sentence_X is not None and d.sentence_ids is not None
    sX, sid = _nonzero(d.sentence_X, d.sentence_ids)
    if sid.size < 2:
        return {}
    iss = intra_sentence_similarity(sX, sid)
    base = d.values.get("s_inter")
    return {"intra_sentence_similarity": iss,
            "intra_sentence_similarity_adjusted": None if base is None else iss - base}


def _frequency_measures() -> list[Measure]:
    out = []
    for i in (1, 2, 3):
        for kind, name in (("spearman", "Spearman"), ("pearson", "Pearson")):
            out.append(Measure(
                f"freq_pc{i}_{kind}", f"PC{i} vs log freq ({name})", CORR,
                "frequency" if i == 1 else "frequency_pc23", "sample",
                f"{name} correlation of the sample's PC{i} coordinate with log word frequency.",
                CAI, fmt="{:+.2f}", table="freq~PC1" if (i, kind) == (1, "spearman") else None,
                headline=(i, kind) == (1, "spearman"),
                params=("frequency_source", "frequency_components")))
    for kind, name in (("spearman", "Spearman"), ("pearson", "Pearson")):
        out.append(Measure(
            f"freq_norm_{kind}", f"norm vs log freq ({name})", CORR, "frequency", "sample",
            f"{name} correlation of the vector norm with log word frequency.", VARIANT,
            paper=False, fmt="{:+.2f}", params=("frequency_source",)))
    out.append(Measure("freq_n", "tokens with a frequency", "count", None, "sample",
                       "Sample rows with a known, positive frequency.", DIAG, fmt="{}"))
    return out


@register("frequency", _frequency_measures(), needs=("frequency",))
def _frequency(d: LayerData) -> dict[str, Any]:
    from isoscope.metrics.frequency import frequency_correlations

    assert d.frequency is not None
    f = d.frequency
    ok = np.isfinite(f) & (f > 0)
    if ok.sum() < 3 or np.unique(f[ok]).size <= 1:
        return {}
    fr = frequency_correlations(
        d.sample[ok], f[ok], n_components=int(d.settings["frequency_components"]),
        # Zipf values are already log10 frequencies; corpus counts are not.
        log=d.settings["frequency_source"] != "zipf",
    )
    d.details["frequency_regions"] = fr["regions"]
    out = {k: v for k, v in fr.items() if k.startswith("freq_")}
    out["freq_n"] = fr["n"]
    return out


def _nonzero(X: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    nz = np.linalg.norm(X, axis=1) > 0
    return X[nz], np.asarray(other)[nz]


# ---------------------------------------------------------------------------------------------
# The measures of 2023-2026 (issue 16): top-direction share, massive activations, outlier
# dimensions, attention sinks, TwoNN/GRIDE and the Zipfian symmetry scores.

SUN = "Sun et al. (COLM 2024), 'Massive activations in large language models'"
OUTLIER = "Kovaleva et al. (Findings ACL 2021); Puccetti et al. (Findings EMNLP 2022)"
SINK = "Xiao et al. (ICLR 2024), attention sinks"
FACCO = "Facco et al. (Sci. Rep. 2017)"
GRIDE = "Denti et al. (Sci. Rep. 2022), GRIDE"
YOKOI = "Yokoi et al. (NeurIPS 2024), Zipfian whitening"
SHARE = "share (0 … 1)"
#: Dimensions listed in ``massive_activation_top``.
MASSIVE_TOP = 10
#: Sun et al.'s thresholds: |a| > 100 and > 1000 x the median |a| of the layer.
MASSIVE_ABS, MASSIVE_FACTOR = 100.0, 1000.0

for _panel in (
    Panel("anisotropy_top1", "Top-direction share", SHARE,
          "Share of the layer's energy along its single top direction: near 1 means one "
          "direction (often the mean, or a massive activation) dominates.", (0.0, 1.02)),
    Panel("massive", "Largest and median |activation|", "|activation| (model units)",
          "Largest absolute coordinate over every token against the median one; massive "
          "activations (Sun et al.) are above 100 and 1000x the median."),
    Panel("massive_ratio", "Largest / median |activation|", "ratio",
          "How many times the largest coordinate exceeds the median one; above 1000 (with "
          "|a| > 100) is a massive activation."),
    Panel("massive_count", "Massive activations", "count",
          "Coordinates (in the sample) and dimensions (over every token) that pass Sun et al.'s "
          "thresholds; 0 for most encoders."),
    Panel("outlier_dimensions", "Outlier dimensions", "count",
          "Dimensions whose mean |activation| is more than 3 standard deviations above the "
          "mean over dimensions; a few of them dominate cosine similarity."),
    Panel("sink", "Position-0 (attention sink) share", SHARE,
          "Share of the squared norm and of the top principal component carried by the first "
          "token of each sentence, against its share of tokens: far above means an attention "
          "sink.", (0.0, 1.02)),
    Panel("zipf_sym", "Zipfian symmetry", "score (0 … 1, 1 = symmetric)",
          "Frequency-weighted symmetry (Yokoi et al.): sym1 near 1 means the weighted mean is "
          "near the origin, sym2 near 1 that the weighted covariance is spread evenly.",
          (0.0, 1.02)),
):
    REGISTRY.add_panel(_panel)


@register("anisotropy_top1", [
    Measure("anisotropy_top1", "top-direction share", SHARE, "anisotropy_top1", "all tokens",
            "σ₁² / Σ σ_i² over the singular values σ of the uncentred layer: the largest "
            "eigenvalue of Σ x xᵀ over its trace. The llm-microscope package's "
            "calculate_anisotropy centres first: that value is anisotropy_top1_centered.",
            "Razzhigaev et al. (EACL 2024), as used by LLM-Microscope (uncentred, issue 16)",
            paper=False),
    Measure("anisotropy_top1_centered", "top-direction share, centred", SHARE,
            "anisotropy_top1", "all tokens",
            "σ₁² / Σ σ_i² of the centred layer (the share of variance on PC1), as "
            "llm-microscope's calculate_anisotropy computes it.",
            "Razzhigaev et al. (EACL 2024), llm-microscope calculate_anisotropy"),
], needs=("moments",))
def _anisotropy_top1(d: LayerData) -> dict[str, Any]:
    out: dict[str, Any] = {}
    w = np.linalg.eigvalsh(d.moments.second_moment())
    total = float(np.clip(w, 0.0, None).sum())
    if total > 0:
        out["anisotropy_top1"] = float(w[-1] / total)
    if d.moments.n >= 2:
        lam = np.clip(d.spectrum.eigenvalues, 0.0, None)
        if lam.sum() > 0:
            out["anisotropy_top1_centered"] = float(lam.max() / lam.sum())
    return out


def _row_names(d: LayerData, rows: np.ndarray) -> dict[str, list[Any]]:
    """Token strings and positions of row ids (None each without a token table)."""
    if d.row_info is None:
        return {"token": [None] * rows.size, "position": [None] * rows.size}
    info = d.row_info(rows)
    return {"token": [str(t) for t in info["token"]],
            "position": [int(p) for p in info["position"]]}


@register("massive_activations", [
    Measure("massive_activations", "massive activations", "count", "massive_count", "sample",
            "Coordinates of the sample with |a| > 100 and |a| > 1000 × the median |a| of the "
            "sample's coordinates.", SUN, fmt="{}"),
    # Both depend on the sample's median |a| (a median does not merge exactly across shards),
    # so their evidence is the sample's even though the maxima come from every token.
    Measure("massive_activation_dims", "massive dimensions", "count", "massive_count",
            "sample", "Dimensions whose largest |a| over every token passes the same two "
            "thresholds (the median |a| from the sample).", SUN, paper=False, fmt="{}"),
    Measure("massive_activation_ratio", "top / median |a|", "ratio", "massive_ratio",
            "sample", "Largest |a| over every token and dimension divided by the median |a| "
            "of the sample's coordinates (the median is estimated on the sample).", SUN,
            fmt="{:.3g}"),
    Measure("max_abs_activation", "largest |a|", "|activation| (model units)", "massive",
            "all tokens", "Largest absolute coordinate over every token and dimension.", SUN,
            fmt="{:.3g}"),
    Measure("median_abs_activation", "median |a|", "|activation| (model units)", "massive",
            "sample", "Median absolute coordinate over every coordinate of the sample.", SUN,
            fmt="{:.3g}"),
    Measure("massive_activation_top", "largest activations", "list", None, "all tokens",
            f"The {MASSIVE_TOP} dimensions with the largest |a| over every token: row id, "
            "token string and position (stores), dimension, signed value and whether it passes "
            "the thresholds.", SUN, scalar=False),
], needs=("moments", "sample"))
def _massive_activations(d: LayerData) -> dict[str, Any]:
    A = np.abs(d.sample)
    median = float(np.median(A))
    threshold = max(MASSIVE_ABS, MASSIVE_FACTOR * median)
    top_abs, value, row = d.moments.max_abs()
    top = float(top_abs.max())
    order = np.argsort(-top_abs, kind="stable")[:MASSIVE_TOP]
    names = _row_names(d, row[order])
    return {
        "massive_activations": int((A > threshold).sum()),
        "massive_activation_dims": int((top_abs > threshold).sum()),
        "massive_activation_ratio": top / median if median > 0 else None,
        "max_abs_activation": top,
        "median_abs_activation": median,
        "massive_activation_top": [
            {"row": int(row[j]), "token": names["token"][i], "position": names["position"][i],
             "dim": int(j), "value": float(value[j]), "massive": bool(top_abs[j] > threshold)}
            for i, j in enumerate(order)
        ],
    }


@register("outlier_dimensions", [
    Measure("outlier_dimensions", "outlier dimensions", "list", None, "all tokens",
            "Dimensions j whose mean |a_j| over every token is more than 3 standard deviations "
            "(over dimensions, ddof 0) above the mean over dimensions, largest first, with "
            "their z-score and the row of their largest |a| (rogue_dims ranks dimensions by "
            "their share of S_inter instead).", OUTLIER, scalar=False),
    Measure("n_outlier_dimensions", "outlier dimensions", "count", "outlier_dimensions",
            "all tokens", "Number of outlier_dimensions.", OUTLIER, fmt="{}"),
], needs=("moments",))
def _outlier_dimensions(d: LayerData) -> dict[str, Any]:
    ma = d.moments.mean_abs()
    mu, sd = float(ma.mean()), float(ma.std())
    if not sd > 0:
        return {"outlier_dimensions": [], "n_outlier_dimensions": 0}
    z = (ma - mu) / sd
    dims = np.flatnonzero(z > 3.0)
    dims = dims[np.argsort(-ma[dims], kind="stable")]
    _, value, row = d.moments.max_abs()
    names = _row_names(d, row[dims])
    return {
        "outlier_dimensions": [
            {"dim": int(j), "mean_abs": float(ma[j]), "z": float(z[j]), "top_row": int(row[j]),
             "top_token": names["token"][i], "top_value": float(value[j])}
            for i, j in enumerate(dims)
        ],
        "n_outlier_dimensions": int(dims.size),
    }


@register("sink_share", [
    Measure("sink_share", "position-0 share of norm²", SHARE, "sink", "sample",
            "Σ ‖x‖² over the sample's position-0 tokens / Σ ‖x‖² over the sample; None "
            "without positions (a plain array) or without position-0 tokens "
            "(drop_position_zero, or encoders whose position 0 is a special token).", SINK,
            paper=False, params=("drop_position_zero", "include_special")),
    Measure("sink_share_pc1", "position-0 share of PC1", SHARE, "sink", "sample",
            "Σ over position-0 tokens of (u₁ᵀ(x − x̄))² / the same sum over the sample, u₁ the "
            "top principal direction of the sample.", SINK, paper=False),
    Measure("sink_token_share", "position-0 share of tokens", SHARE, "sink", "sample",
            "Share of the sample's tokens at position 0 (the value both shares would have "
            "without a sink).", DIAG),
], needs=("sample", "positions"))
def _sink_share(d: LayerData) -> dict[str, Any]:
    from scipy.linalg import eigh

    assert d.positions is not None
    first = d.positions == 0
    if not first.any():
        return {}
    X = d.sample
    norm2 = np.einsum("ij,ij->i", X, X)
    out: dict[str, Any] = {"sink_token_share": float(first.mean()),
                           "sink_share": float(norm2[first].sum() / norm2.sum())}
    Xc = X - X.mean(axis=0)
    if Xc.shape[0] >= 3 and np.any(Xc):
        k = Xc.shape[1]
        _, u = eigh(Xc.T @ Xc, subset_by_index=[k - 1, k - 1])  # the top principal direction
        proj2 = (Xc @ u[:, 0]) ** 2
        out["sink_share_pc1"] = float(proj2[first].sum() / proj2.sum())
    return out


def _gride_id(mu: np.ndarray, n1: int, n2: int) -> tuple[float, float]:
    """GRIDE maximum-likelihood ID and its Fisher-information error at ranks ``n1 < n2``.

    ``mu`` are the ratios r_{n2} / r_{n1}; the likelihood is Denti et al.'s
    f(μ) = d (μ^d − 1)^{n2−n1−1} / (B(n2−n1, n1) μ^{(n2−1)d + 1}).
    """
    from scipy.optimize import brentq

    log_mu = np.log(mu)
    N = mu.size

    def score(dim: float) -> float:
        one_m = -np.expm1(-dim * log_mu)  # 1 − μ^{−d}
        return float(N / dim - np.sum(((n1 - n2 + 1) / one_m + n2 - 1.0) * log_mu))

    lo, hi = 1e-3, 1e3
    if score(lo) <= 0 or score(hi) >= 0:
        return float("nan"), float("nan")
    dim = brentq(score, lo, hi, xtol=1e-9, rtol=1e-12)
    one_m = -np.expm1(-dim * log_mu)
    info = N / dim**2 + (n2 - n1 - 1) * np.sum(log_mu**2 * np.exp(-dim * log_mu) / one_m**2)
    return float(dim), float(info ** -0.5)


@register("intrinsic_dimension", [
    Measure("id_twonn", "TwoNN (DADApy)", "dimensions", "lid", "distinct sample",
            "TwoNN with DADApy's defaults: slope through the origin of −log(1 − F(μ)) against "
            "log μ, μ = r₂/r₁ on Euclidean distances, the largest 10% of μ discarded. "
            "lid_twonn is the same estimator on the lid_metric distances with "
            "twonn_discard_fraction; with the defaults the two coincide.", FACCO,
            fmt="{:.1f}"),
    Measure("id_gride", "GRIDE", "dimensions", "lid", "distinct sample",
            "GRIDE maximum-likelihood ID from μ = r_{2n}/r_n at the largest scale n = 2^k with "
            "2n ≤ lid_k (n = 8, 2n = 16 by default), on Euclidean distances; the whole scale "
            "curve (n = 1, 2, 4, …, with its error and mean distance r) is in details "
            "gride_curve.", GRIDE, fmt="{:.1f}", params=("lid_k",)),
], needs=("neighbors",))
def _intrinsic_dimension(d: LayerData) -> dict[str, Any]:
    from isoscope.metrics._neighbors import exact_knn
    from isoscope.metrics.lid import twonn_from_distances

    s = d.settings
    k = int(s["lid_k"])
    if s["lid_metric"] == "euclidean":
        nb = d.lid.neighbors
    else:
        nb = exact_knn(d.neighbor_points.astype(np.float32), k, metric="euclidean",
                       backend=s["neighbor_backend"])
    D = nb.distances
    out: dict[str, Any] = {}
    ok = D[:, 0] > 0
    if ok.sum() >= 3:
        out["id_twonn"] = twonn_from_distances(D[ok, 0], D[ok, 1], discard_fraction=0.1)
    curve: dict[str, list[Any]] = {"n1": [], "n2": [], "id": [], "err": [], "r": [],
                                   "n_points": []}
    n1 = 1
    while 2 * n1 <= D.shape[1]:
        r1, r2 = D[:, n1 - 1], D[:, 2 * n1 - 1]
        use = (r1 > 0) & (r2 > r1)
        if use.sum() >= 3:
            dim, err = _gride_id(r2[use] / r1[use], n1, 2 * n1)
            curve["n1"].append(n1)
            curve["n2"].append(2 * n1)
            curve["id"].append(dim)
            curve["err"].append(err)
            curve["r"].append(float(np.mean([r1.mean(), r2.mean()])))
            curve["n_points"].append(int(use.sum()))
        n1 *= 2
    d.details["gride_curve"] = curve
    if curve["id"]:
        out["id_gride"] = curve["id"][-1]
    return out


@register("zipf_symmetry", [
    Measure("zipf_sym1", "Zipfian sym1", "score (0 … 1)", "zipf_sym", "sample",
            "1 − ‖Σ p_i x_i‖ / Σ p_i ‖x_i‖ over the sample's rows with a known frequency, "
            "p_i ∝ the row's word frequency (10^zipf for frequency_source='zipf'). Yokoi et "
            "al. weight word types; on a token sample each type also appears in proportion to "
            "its frequency, so this equals the paper's value only for one row per type "
            "(static embeddings).", YOKOI, paper=False, params=("frequency_source",)),
    Measure("zipf_sym2", "Zipfian sym2", "score (0 … 1)", "zipf_sym", "sample",
            "Entropy of the normalised eigenvalues of the p-weighted covariance "
            "Σ p_i (x_i − μ_p)(x_i − μ_p)ᵀ, divided by log d.", YOKOI, paper=False,
            params=("frequency_source",)),
], needs=("sample", "frequency"))
def _zipf_symmetry(d: LayerData) -> dict[str, Any]:
    assert d.frequency is not None
    f = np.asarray(d.frequency, dtype=np.float64)
    if d.settings["frequency_source"] == "zipf":
        f = np.power(10.0, f)
    ok = np.isfinite(f) & (f > 0)
    if ok.sum() < 2:
        return {}
    X = d.sample[ok]
    p = f[ok] / f[ok].sum()
    mu = p @ X
    out: dict[str, Any] = {}
    denom = float(p @ np.linalg.norm(X, axis=1))
    if denom > 0:
        out["zipf_sym1"] = float(1.0 - np.linalg.norm(mu) / denom)
    W = (X - mu) * np.sqrt(p)[:, None]
    lam = np.clip(np.linalg.eigvalsh(W.T @ W), 0.0, None)
    if lam.sum() > 0 and X.shape[1] > 1:
        q = lam[lam > 0] / lam.sum()
        out["zipf_sym2"] = float(-np.sum(q * np.log(q)) / np.log(X.shape[1]))
    return out
