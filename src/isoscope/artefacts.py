"""What a report draws beyond ``results.json``, computed once from the store and saved beside it.

The report only draws. Everything it shows that is not a number in ``results.json`` comes from
the artefacts computed here, once, right after the analysis:

* **token clouds**: 3-D PCA coordinates of a seeded subset of the measured sample, per chosen
  layer, with each point's store row id, token string and word frequency;
* **repair views**: 2-D PCA coordinates of the same measured rows of a repaired layer before
  and after each repair, computed with the repairs *fitted by the analysis* (never refitted);
* **word trajectories**: chosen words' occurrences followed across layers, with their
  self-similarity (mean cosine between occurrences) per layer;
* **word sample**: the words of seeded whole sentences (each the mean of its tokens' vectors)
  in every analysed layer, so that ``isoscope compare`` can put two models' layers side by
  side on the words both saw (:mod:`isoscope.analysis._crossmodel`).

They are written under ``RUN_DIR/artefacts/``: arrays as safetensors (no pickle), the fitted
repairs with :func:`isoscope.transforms.save_transform`, and one ``index.json`` that says what
each file is, for which layer, with which seed, rows and method. :func:`load_artefacts` reads
them back without the store.

Examples
--------
>>> from isoscope.artefacts import compute_artefacts, load_artefacts   # doctest: +SKIP
>>> result = analyze(store, transforms=["abtt"])                        # doctest: +SKIP
>>> compute_artefacts(result, store, "runs/minilm")                     # doctest: +SKIP
>>> art = load_artefacts("runs/minilm")                                 # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isoscope._jsonio import clean_json, read_json, write_json
from isoscope._validation import check_vectors
from isoscope.errors import InputError, IsoscopeError

FOLDER = "artefacts"
INDEX = "index.json"
FORMAT = "isoscope-artefacts"
FORMAT_VERSION = 1
_META_KEY = "isoscope"


@dataclass
class TokenCloud:
    """A layer's token vectors projected onto their first principal components.

    Attributes
    ----------
    coords : numpy.ndarray of shape (n, k)
        PCA coordinates (``k`` = 2 or 3), centred on the shown points' mean.
    log_freq : numpy.ndarray of shape (n,)
        Log10 frequency of each point's word (NaN where unknown); the colour of each point.
    labels : list of str
        Hover text for each point (token and word, as read from the corpus, unescaped).
    explained_variance_ratio : numpy.ndarray of shape (k,)
        Share of the shown points' variance on each component.
    layer : int or None
        Hidden-state index the vectors come from.
    seed : int
        Seed of the subsample.
    n_total : int
        Number of rows the points were drawn from.
    freq_label : str
        What ``log_freq`` measures, for the colour bar.
    title : str
        Model name, or the repair shown, for titles.
    settings : dict
        How the points were chosen and projected (sampling filters, fit mode, repair), for the
        report.
    rows : numpy.ndarray of shape (n,), optional
        Store row id of each point.
    pca_mean, pca_components : numpy.ndarray, optional
        The projection: ``coords = (vectors - pca_mean) @ pca_components.T``.
    """

    coords: np.ndarray
    log_freq: np.ndarray
    labels: list[str]
    explained_variance_ratio: np.ndarray
    layer: int | None = None
    seed: int = 0
    n_total: int = 0
    freq_label: str = "log10 word frequency"
    title: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    rows: np.ndarray | None = None
    pca_mean: np.ndarray | None = None
    pca_components: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of points shown."""
        return int(self.coords.shape[0])

    @classmethod
    def project(
        cls, X: np.ndarray, rows: np.ndarray, *, n_components: int, seed: int, **fields: Any
    ) -> TokenCloud:
        """Project the vectors ``X`` on their first principal components as a cloud.

        Parameters
        ----------
        X : numpy.ndarray of shape (n, d)
            The shown points' vectors.
        rows : numpy.ndarray of shape (n,)
            Row id of each point.
        n_components : int
            2 or 3 (see :func:`pca_projection`).
        seed : int
            Seed of the subsample, and of the PCA solver.
        **fields
            The other attributes (``log_freq``, ``labels``, ``layer``, ``n_total``, ...).

        Returns
        -------
        TokenCloud
        """
        coords, ratio, mean, comps = pca_projection(X, n_components, seed)
        return cls(
            coords=coords,
            explained_variance_ratio=ratio,
            seed=seed,
            rows=np.asarray(rows, dtype=np.int64),
            pca_mean=mean,
            pca_components=comps,
            **fields,
        )


@dataclass
class Artefacts:
    """Everything a report draws that is not in ``results.json``.

    Attributes
    ----------
    clouds : list of TokenCloud
        3-D token clouds, one per chosen layer (the same rows in every layer).
    repair_views : list of TokenCloud
        2-D views of each repaired layer: the layer as extracted (``settings["transform"]`` is
        None) followed by one view per repair (``settings["transform"]`` = its index in
        ``results["transforms"]``), all of the same rows.
    trajectories : dict or None
        Word trajectories (see :func:`word_trajectories`).
    words : dict or None
        The word sample (see :func:`isoscope.analysis._crossmodel.word_sample`).
    repairs : list
        The fitted repairs, aligned with ``results["transforms"]`` (None where not saved).
    rows : dict of str to numpy.ndarray
        ``sample_rows`` (the measured sample) and, where repairs were fitted, ``fit_rows``.
    index : dict
        The content of ``index.json``.
    notes : list of str
        Why a panel is missing (no artefacts folder, a damaged file, a repair not saved).
    path : pathlib.Path or None
        The artefacts folder, when saved or loaded from disk.
    """

    clouds: list[TokenCloud] = field(default_factory=list)
    repair_views: list[TokenCloud] = field(default_factory=list)
    trajectories: dict[str, Any] | None = None
    words: dict[str, Any] | None = None
    repairs: list[Any] = field(default_factory=list)
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    index: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def store_manifest(self) -> dict[str, Any]:
        """The store's manifest as recorded when the artefacts were computed."""
        return dict(self.index.get("store") or {})

    @property
    def empty(self) -> bool:
        """True when there is nothing to draw."""
        return not (self.clouds or self.repair_views or self.trajectories)


# ----------------------------------------------------------------------------- computing


def seeds(seed: int | np.random.SeedSequence, n: int) -> list[np.random.Generator]:
    """``n`` independent generators derived from one seed (``SeedSequence(seed).spawn``)."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    return [np.random.default_rng(s) for s in root.spawn(n)]


def pca_projection(
    X: np.ndarray, n_components: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Project rows on their first principal components.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, d)
    n_components : int
    seed : int
        Seed of the PCA solver.

    Returns
    -------
    coords : (n, n_components), ratio : (n_components,), mean : (d,), components : (n_components, d)
        Components beyond the rank of ``X`` are zero (so 3-D views of tiny inputs still work).
    """
    from sklearn.decomposition import PCA

    X = np.asarray(X, dtype=np.float64)
    k = min(n_components, X.shape[0] - 1, X.shape[1])
    if k < 1:
        raise InputError("At least two distinct vectors are needed for a PCA view.")
    pca = PCA(n_components=k, svd_solver="full", random_state=seed).fit(X)
    comps = np.zeros((n_components, X.shape[1]))
    comps[:k] = pca.components_
    ratio = np.zeros(n_components)
    ratio[:k] = pca.explained_variance_ratio_
    mean = np.asarray(pca.mean_, dtype=np.float64)
    return (X - mean) @ comps.T, ratio, mean, comps


def token_info(
    store: Any, rows: Any, frequency: str = "corpus"
) -> tuple[np.ndarray, str, list[str]]:
    """Colour values, colour-bar label and hover labels of some token rows of a store.

    Parameters
    ----------
    store : EmbeddingStore
    rows : array-like of int
        Store row ids.
    frequency : {"corpus", "zipf"}
        log10 of the word's count in this corpus, or its wordfreq Zipf value.

    Returns
    -------
    log_freq : numpy.ndarray, freq_label : str, labels : list of str
    """
    if frequency not in ("corpus", "zipf"):
        raise InputError(f"frequency must be 'corpus' or 'zipf', got {frequency!r}.")
    tok = store.tokens(columns=["token", "word", "word_count", "zipf"]).iloc[np.asarray(rows)]
    if frequency == "corpus":
        counts = tok["word_count"].to_numpy(dtype=float)
        freq = np.where(counts > 0, np.log10(np.maximum(counts, 1.0)), np.nan)
        label = "log10 count of the word in this corpus"
    else:
        z = tok["zipf"].to_numpy(dtype=float)
        freq = np.where(z > 0, z, np.nan)
        label = "Zipf frequency (log10 per billion words)"
    labels = [
        f"{t} ({w})" if w and w != t else str(t)
        for t, w in zip(tok["token"].astype(str), tok["word"].astype(str), strict=True)
    ]
    return freq, label, labels


def _cloud_of_rows(
    store: Any,
    layer: int,
    rows: np.ndarray,
    *,
    n_components: int,
    seed: int,
    frequency: str,
    transform: Any = None,
) -> TokenCloud:
    X = check_vectors(
        np.asarray(store.layer(layer)[rows], dtype=np.float64),
        name=f"layer {layer} vectors",
        min_rows=2,
    )
    if transform is not None:
        X = np.asarray(transform.transform(X), dtype=np.float64)
    freq, label, labels = token_info(store, rows, frequency)
    manifest = getattr(store, "manifest", {}) or {}
    return TokenCloud.project(
        X,
        rows,
        n_components=n_components,
        seed=int(seed),
        log_freq=freq,
        labels=labels,
        layer=int(layer),
        n_total=int(store.n_tokens),
        freq_label=label,
        title=str(manifest.get("model", "")),
    )


def token_cloud(
    store: Any,
    layer: int,
    *,
    n: int = 2000,
    seed: int = 0,
    n_components: int = 3,
    include_special: bool = False,
    drop_position_zero: bool = False,
    frequency: str = "corpus",
    rows: Any = None,
) -> TokenCloud:
    """Project ``n`` tokens of one layer of a store onto its first principal components.

    Parameters
    ----------
    store : EmbeddingStore
        The store to read.
    layer : int
        Hidden-state index (0 = embedding output).
    n : int
        Number of tokens (seeded sample without replacement).
    seed : int
        Sampling seed; the same seed picks the same tokens in every layer.
    n_components : int
        2 or 3.
    include_special, drop_position_zero : bool
        Passed to :meth:`EmbeddingStore.sample_indices` (ignored when ``rows`` is given).
    frequency : {"corpus", "zipf"}
        Colour by log10 of the word's count in this corpus, or by its wordfreq Zipf value.
    rows : array-like of int, optional
        The store rows to show (e.g. the analysis' measured sample); default a seeded sample.

    Returns
    -------
    TokenCloud
    """
    if layer not in store.layers:
        raise InputError(f"Layer {layer} is not in the store (stored layers: {store.layers}).")
    if frequency not in ("corpus", "zipf"):
        raise InputError(f"frequency must be 'corpus' or 'zipf', got {frequency!r}.")
    if rows is None:
        rows = store.sample_indices(n, seed, include_special, drop_position_zero)
    cloud = _cloud_of_rows(
        store, layer, np.asarray(rows), n_components=n_components, seed=seed, frequency=frequency
    )
    cloud.settings = {
        "include_special": bool(include_special),
        "drop_position_zero": bool(drop_position_zero),
        "frequency": frequency,
    }
    return cloud


def _default_words(tokens: Any, n_words: int, min_occurrences: int) -> list[str]:
    t = tokens[~tokens["is_special"] & (tokens["word_id"] >= 0)]
    occ = t.drop_duplicates(["sentence_id", "word_id"])
    words = occ["word"].astype(str).str.lower()
    counts = words[words.str.fullmatch(r"[a-z]{3,}")].value_counts()
    counts = counts[counts >= min_occurrences]
    if counts.empty:
        return []
    # A spread over the frequency range: the most frequent word and rarer ones.
    idx = np.unique(np.round(np.geomspace(1, len(counts), num=n_words)).astype(int) - 1)
    return [str(w) for w in counts.index[idx]]


def word_trajectories(
    store: Any,
    words: Sequence[str] | None = None,
    *,
    layers: Sequence[int] | None = None,
    max_occurrences: int = 12,
    n_background: int = 1000,
    seed: int = 0,
    background_rows: Any = None,
    seed_sequence: np.random.SeedSequence | None = None,
) -> dict[str, Any]:
    """Follow chosen words' occurrences across layers (2-D paths and self-similarity).

    Each layer is projected on the first two principal components of a background sample of
    tokens; consecutive layers are aligned with an orthogonal Procrustes rotation fitted on the
    same background tokens (scale normalised to unit RMS radius), so a trajectory shows how an
    occurrence moves relative to the rest of the cloud.

    Parameters
    ----------
    store : EmbeddingStore
        The store to read.
    words : sequence of str, optional
        Words (matched lower-cased); default: up to 4 words spread over the frequency range.
    layers : sequence of int, optional
        Layers to follow; default all stored layers.
    max_occurrences : int
        At most this many occurrences per word (seeded choice); vectors are the mean of the
        word's sub-word tokens.
    n_background : int
        Background tokens used for the projection (a seeded subset of ``background_rows``).
    seed : int
        Seed of the occurrence choice, the background subset and the random pairs
        (independent streams of ``SeedSequence(seed)``).
    background_rows : array-like of int, optional
        Rows the background is drawn from (e.g. the measured sample); default all rows that
        are not special tokens.
    seed_sequence : numpy.random.SeedSequence, optional
        Draw from this sequence instead of ``SeedSequence(seed)`` (``seed`` is then only
        recorded); lets a caller keep these draws independent of its own.

    Returns
    -------
    dict
        ``layers``, ``words``, ``paths`` (word -> array (n_occ, n_layers, 2)),
        ``self_similarity`` (word -> array (n_layers,): mean cosine between the word's
        occurrences), ``baseline`` (mean cosine of random background pairs per layer),
        ``contexts`` (word -> sentence ids), ``occurrence_rows`` (word -> list of row-id
        arrays, one per occurrence), ``background_rows``, ``seed``, ``n_background``.
    """
    from scipy.linalg import orthogonal_procrustes
    from sklearn.decomposition import PCA

    layers = [int(x) for x in (store.layers if layers is None else layers)]
    missing = [lay for lay in layers if lay not in store.layers]
    if missing:
        raise InputError(f"Layers {missing} are not in the store (stored: {store.layers}).")
    tokens = store.tokens(columns=["sentence_id", "word_id", "word", "is_special"])
    tokens = tokens.reset_index(drop=True)
    if words is None:
        words = _default_words(tokens, 4, 3)
        if not words:
            raise InputError(
                "No word occurs at least 3 times in the store; name the words to follow."
            )
    occ_rng, bg_rng, pair_rng = seeds(seed if seed_sequence is None else seed_sequence, 3)
    occ_rows: dict[str, list[np.ndarray]] = {}
    contexts: dict[str, list[int]] = {}
    lower = tokens["word"].astype(str).str.lower()
    for w in words:
        hit = tokens[(lower == w.lower()) & ~tokens["is_special"] & (tokens["word_id"] >= 0)]
        groups = list(hit.groupby(["sentence_id", "word_id"], sort=True).indices.values())
        if not groups or w in occ_rows:
            continue
        if len(groups) > max_occurrences:
            pick = np.sort(occ_rng.choice(len(groups), max_occurrences, replace=False))
            groups = [groups[i] for i in pick]
        occ_rows[w] = [hit.index.to_numpy()[g].astype(np.int64) for g in groups]
        contexts[w] = [int(tokens.loc[hit.index[g[0]], "sentence_id"]) for g in groups]
    if not occ_rows:
        raise InputError("None of the chosen words occur in the store.")
    pool = (
        np.asarray(background_rows, dtype=np.int64)
        if background_rows is not None
        else np.flatnonzero(store.row_mask(False, False))
    )
    bg = pool
    if pool.size > n_background:
        bg = np.sort(bg_rng.choice(pool, size=int(n_background), replace=False))
    if bg.size < 3:
        raise InputError("At least 3 background tokens are needed to follow words across layers.")
    paths = {w: np.zeros((len(r), len(layers), 2)) for w, r in occ_rows.items()}
    selfsim = {w: np.full(len(layers), np.nan) for w in occ_rows}
    baseline = np.full(len(layers), np.nan)
    prev = None
    pairs = pair_rng.integers(0, len(bg), size=(2, min(2000, len(bg) * 4)))
    pairs = pairs[:, pairs[0] != pairs[1]]
    for li, lay in enumerate(layers):
        arr = store.layer(lay)
        B = np.asarray(arr[bg], dtype=np.float64)
        pca = PCA(n_components=2, svd_solver="full").fit(B)
        Bp = pca.transform(B)
        scale = np.sqrt((Bp**2).sum(axis=1).mean()) or 1.0
        Bp /= scale
        R = np.eye(2)
        if prev is not None:
            R, _ = orthogonal_procrustes(Bp, prev)
        prev = Bp @ R
        Bn = B / np.maximum(np.linalg.norm(B, axis=1, keepdims=True), 1e-12)
        baseline[li] = float(np.mean(np.sum(Bn[pairs[0]] * Bn[pairs[1]], axis=1)))
        for w, rows in occ_rows.items():
            V = np.stack([np.asarray(arr[r], dtype=np.float64).mean(axis=0) for r in rows])
            paths[w][:, li, :] = (pca.transform(V) / scale) @ R
            if len(V) > 1:
                Vn = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
                S = Vn @ Vn.T
                m = len(V)
                selfsim[w][li] = float((S.sum() - np.trace(S)) / (m * (m - 1)))
    return {
        "layers": layers,
        "words": list(occ_rows),
        "paths": paths,
        "self_similarity": selfsim,
        "baseline": baseline,
        "contexts": contexts,
        "occurrence_rows": occ_rows,
        "background_rows": bg,
        "seed": int(seed),
        "n_background": int(len(bg)),
        "max_occurrences": int(max_occurrences),
    }


def _results_dict(result: Any) -> dict[str, Any]:
    if hasattr(result, "to_dict"):
        return dict(result.to_dict())
    if isinstance(result, Mapping) and isinstance(result.get("layers"), list):
        return dict(result)
    raise InputError("compute_artefacts takes an AnalysisResult or a results dict with 'layers'.")


def fingerprint(results: Mapping[str, Any]) -> str:
    """A short hash of what identifies an analysis (source, seed, sample, repairs).

    ``load_artefacts(run_dir, results)`` uses it to refuse artefacts of another analysis.
    """
    st = results.get("settings") or {}
    key = {
        "source": results.get("source") or {},
        "seed": st.get("seed"),
        "sample": st.get("sample"),
        "n_sampled": st.get("n_sampled"),
        "layers": [lay.get("layer") for lay in results.get("layers") or []],
        "transforms": [
            [t.get("spec") or t.get("name"), t.get("layer"), t.get("fit"), t.get("fit_n")]
            for t in results.get("transforms") or []
        ],
    }
    text = json.dumps(json.loads(json.dumps(key, default=str)), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _subset(rows: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    if n is None or rows.size <= n:
        return rows
    return np.sort(rng.choice(rows, size=int(n), replace=False))


def _default_cloud_layers(analysed: list[int], repaired: list[int]) -> list[int]:
    picks = {analysed[0], analysed[len(analysed) // 2], analysed[-1], *repaired}
    return sorted(p for p in picks if p in analysed)


def compute_artefacts(
    result: Any,
    store: Any,
    run_dir: str | os.PathLike[str] | None = None,
    *,
    cloud_layers: Sequence[int] | None = None,
    cloud_n: int = 2000,
    repair_n: int = 2000,
    words: Sequence[str] | None = None,
    trajectory_layers: Sequence[int] | None = None,
    max_occurrences: int = 12,
    n_background: int = 1000,
    seed: int | None = None,
    frequency: str = "corpus",
    n_words: int | None = None,
) -> Artefacts:
    """Compute, once, everything a report draws that is not in ``results.json``, and save it.

    Parameters
    ----------
    result : AnalysisResult or dict
        The analysis. An :class:`~isoscope.metrics.AnalysisResult` carries ``sample_rows``
        (the measured sample), ``fit_rows`` and ``fitted_repairs``: the clouds and views then
        show (a seeded subset of) the measured rows, and each repair view applies the repair
        the analysis fitted. A plain results dict has none of these: the rows are drawn from
        the store with the analysis' sampling settings, and no repair views are made (a note
        says so) because repairs are never refitted for a picture.
    store : EmbeddingStore
        The store the analysis read.
    run_dir : path, optional
        Folder to save into (``run_dir/artefacts/``, replaced atomically); None keeps the
        artefacts in memory only.
    cloud_layers : sequence of int, optional
        Layers drawn as 3-D token clouds; default the first, middle and last analysed layers
        plus the repaired layers.
    cloud_n : int
        Points per cloud (a seeded subset of the measured sample; the same rows in every layer).
    repair_n : int
        Points per repair view (a seeded subset of the measured sample).
    words : sequence of str, optional
        Words followed across layers; default a few words spread over the frequency range.
    trajectory_layers : sequence of int, optional
        Layers the trajectories cross; default the analysed layers.
    max_occurrences, n_background : int
        See :func:`word_trajectories`.
    seed : int, optional
        Seed of every subset here (independent streams of ``SeedSequence(seed)``); default the
        analysis seed (``settings.seed``) or 0.
    frequency : {"corpus", "zipf"}
        What colours the points (see :func:`token_info`).
    n_words : int, optional
        Words of the word sample (default
        :data:`isoscope.analysis._crossmodel.N_WORDS`; 0 saves none).

    Returns
    -------
    Artefacts
        With ``path`` set when saved.
    """
    res = _results_dict(result)
    st = res.get("settings") or {}
    seed = int(st.get("seed") or 0) if seed is None else int(seed)
    if frequency not in ("corpus", "zipf"):
        raise InputError(f"frequency must be 'corpus' or 'zipf', got {frequency!r}.")
    analysed = [int(lay["layer"]) for lay in res["layers"] if int(lay["layer"]) in store.layers]
    if not analysed:
        raise InputError("None of the analysed layers is in the store; is it the analysis' store?")
    special = bool(st.get("include_special") or False)
    pos0 = bool(st.get("drop_position_zero") or False)
    notes: list[str] = []
    sample_rows = getattr(result, "sample_rows", None)
    if sample_rows is not None:
        sample_rows = np.asarray(sample_rows, dtype=np.int64)
        rows_source = "the analysis' measured sample (AnalysisResult.sample_rows)"
    else:
        sample_rows = np.asarray(
            store.sample_indices(st.get("sample"), int(st.get("seed") or 0), special, pos0),
            dtype=np.int64,
        )
        rows_source = "drawn from the store with the analysis' sampling settings"
    if sample_rows.size < 3:
        raise InputError(f"Only {sample_rows.size} sample rows; at least 3 are needed.")
    if int(sample_rows.max()) >= int(store.n_tokens) or int(sample_rows.min()) < 0:
        raise InputError("The analysis' sample rows are not rows of this store.")
    transforms = list(res.get("transforms") or [])
    fitted = list(getattr(result, "fitted_repairs", None) or [])
    if fitted and len(fitted) != len(transforms):
        raise InputError(
            f"The result has {len(fitted)} fitted repairs for {len(transforms)} repair entries."
        )
    fit_rows = getattr(result, "fit_rows", None)
    ss_cloud, ss_repair, ss_traj = np.random.SeedSequence(seed).spawn(3)
    rng_cloud, rng_repair = np.random.default_rng(ss_cloud), np.random.default_rng(ss_repair)
    sampling = {"include_special": special, "drop_position_zero": pos0, "frequency": frequency}

    # Token clouds: the same rows (a subset of the measured sample) in every layer.
    repaired = sorted({int(t["layer"]) for t in transforms if "layer" in t})
    lays = (
        list(cloud_layers)
        if cloud_layers is not None
        else _default_cloud_layers(analysed, repaired)
    )
    bad = [lay for lay in lays if lay not in store.layers]
    if bad:
        raise InputError(f"Layers {bad} are not in the store (stored layers: {store.layers}).")
    cloud_rows = _subset(sample_rows, cloud_n, rng_cloud)
    clouds = []
    for lay in lays:
        c = _cloud_of_rows(store, lay, cloud_rows, n_components=3, seed=seed, frequency=frequency)
        c.settings = dict(sampling)
        clouds.append(c)

    # Repair views: the fitted repairs applied to measured rows; never refitted.
    views: list[TokenCloud] = []
    repairs: list[Any] = [None] * len(transforms)
    if transforms and not fitted:
        notes.append(
            "The repairs' token views are not drawn: the analysis did not hand over its fitted "
            "repairs, and a repair is never refitted for a picture."
        )
    if fitted:
        view_rows = _subset(sample_rows, repair_n, rng_repair)
        for lay in repaired:
            if lay not in store.layers:
                continue
            orig = _cloud_of_rows(
                store, lay, view_rows, n_components=2, seed=seed, frequency=frequency
            )
            orig.title = "original"
            orig.settings = {**sampling, "transform": None, "fit": None}
            views.append(orig)
            for i, (t, est) in enumerate(zip(transforms, fitted, strict=True)):
                if int(t.get("layer", -1)) != lay:
                    continue
                repairs[i] = est
                try:
                    v = _cloud_of_rows(
                        store,
                        lay,
                        view_rows,
                        n_components=2,
                        seed=seed,
                        frequency=frequency,
                        transform=est,
                    )
                except (IsoscopeError, ValueError, TypeError) as exc:
                    notes.append(f"The token view of repair {i} is not drawn: {exc}")
                    continue
                label = str(t.get("name") or t.get("spec") or f"repair {i}")
                fit = t.get("fit")
                v.title = f"{label} [{fit}]" if fit else label
                v.settings = {
                    **sampling,
                    "transform": i,
                    "spec": t.get("spec"),
                    "fit": fit,
                    "fit_n": t.get("fit_n"),
                }
                views.append(v)

    traj = None
    try:
        traj = word_trajectories(
            store,
            words,
            layers=trajectory_layers if trajectory_layers is not None else analysed,
            max_occurrences=max_occurrences,
            n_background=n_background,
            seed=seed,
            background_rows=sample_rows,
            seed_sequence=ss_traj,
        )
    except InputError as exc:
        notes.append(f"Word trajectories are not drawn: {exc}")

    from isoscope.analysis._crossmodel import N_WORDS, word_sample

    wsample = None
    if n_words != 0:
        wsample = word_sample(store, analysed, n_words=N_WORDS if n_words is None else int(n_words),
                              seed=seed, include_special=special, drop_position_zero=pos0)
        if wsample is None:
            notes.append("No word sample is saved: the store has no word ids.")

    manifest = {k: v for k, v in (getattr(store, "manifest", {}) or {}).items() if k != "layers"}
    manifest.setdefault("n_tokens", int(store.n_tokens))
    manifest.setdefault("hidden_size", int(getattr(store, "hidden_size", 0) or 0))
    from isoscope import __version__

    index: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "isoscope_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "results_fingerprint": fingerprint(res),
        "seed": seed,
        "seeding": "numpy SeedSequence(seed).spawn(3): cloud rows, repair-view rows, trajectories",
        "store": {**manifest, "path": str(getattr(store, "path", ""))},
        "rows": {
            "file": "rows.safetensors",
            "source": rows_source,
            "n_sample": int(sample_rows.size),
            "n_fit": None if fit_rows is None else int(np.asarray(fit_rows).size),
        },
        "notes": notes,
    }
    rows = {"sample_rows": sample_rows}
    if fit_rows is not None:
        rows["fit_rows"] = np.asarray(fit_rows, dtype=np.int64)
    art = Artefacts(
        clouds=clouds,
        repair_views=views,
        trajectories=traj,
        words=wsample,
        repairs=repairs,
        rows=rows,
        index=index,
        notes=list(notes),
    )
    if run_dir is not None:
        save_artefacts(art, run_dir, transforms)
    return art


# ----------------------------------------------------------------------------- saving


def _save_cloud(path: Path, cloud: TokenCloud) -> None:
    from safetensors.numpy import save_file

    tensors = {
        "coords": np.ascontiguousarray(cloud.coords, dtype=np.float64),
        "log_freq": np.ascontiguousarray(cloud.log_freq, dtype=np.float64),
        "explained_variance_ratio": np.ascontiguousarray(
            cloud.explained_variance_ratio, dtype=np.float64
        ),
    }
    if cloud.rows is not None:
        tensors["rows"] = np.ascontiguousarray(cloud.rows, dtype=np.int64)
    if cloud.pca_mean is not None and cloud.pca_components is not None:
        tensors["pca_mean"] = np.ascontiguousarray(cloud.pca_mean, dtype=np.float64)
        tensors["pca_components"] = np.ascontiguousarray(cloud.pca_components, dtype=np.float64)
    meta = {
        "labels": list(cloud.labels),
        "layer": cloud.layer,
        "seed": cloud.seed,
        "n_total": cloud.n_total,
        "freq_label": cloud.freq_label,
        "title": cloud.title,
        "settings": cloud.settings,
    }
    save_file(tensors, str(path), metadata={_META_KEY: json.dumps(meta, default=str)})


def _cloud_entry(kind: str, file: str, cloud: TokenCloud, how: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "file": file,
        "layer": cloud.layer,
        "n": cloud.n,
        "n_total": cloud.n_total,
        "seed": cloud.seed,
        "components": int(cloud.coords.shape[1]),
        "title": cloud.title,
        "settings": cloud.settings,
        "how": how,
    }


def save_artefacts(
    art: Artefacts,
    run_dir: str | os.PathLike[str],
    transforms: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write ``art`` to ``run_dir/artefacts/`` (replacing an older folder only when complete).

    Parameters
    ----------
    art : Artefacts
    run_dir : path
    transforms : sequence of dict
        ``results["transforms"]``, to describe each saved repair.

    Returns
    -------
    pathlib.Path
        The artefacts folder.
    """
    from safetensors.numpy import save_file

    from isoscope.transforms import save_transform

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    final = run / FOLDER
    tmp = Path(tempfile.mkdtemp(prefix=f".{FOLDER}-", dir=run))
    try:
        index = dict(art.index)
        save_file(
            {k: np.ascontiguousarray(v, dtype=np.int64) for k, v in art.rows.items()},
            str(tmp / "rows.safetensors"),
        )
        index["rows"] = {**(index.get("rows") or {}), "keys": sorted(art.rows)}
        source = str((index.get("rows") or {}).get("source") or "the measured sample")
        (tmp / "clouds").mkdir()
        index["clouds"] = []
        for c in art.clouds:
            name = f"clouds/layer_{c.layer}.safetensors"
            _save_cloud(tmp / name, c)
            index["clouds"].append(
                _cloud_entry(
                    "token_cloud",
                    name,
                    c,
                    "PCA (3 components, fitted on the shown points) of the layer's vectors at "
                    f"the shown rows, a seeded subset of {source}.",
                )
            )
        index["repair_views"] = []
        index["repairs"] = []
        if art.repair_views or any(r is not None for r in art.repairs):
            (tmp / "views").mkdir()
            (tmp / "repairs").mkdir()
        notes = list(index.get("notes") or [])
        for i, est in enumerate(art.repairs):
            if est is None:
                continue
            t = transforms[i] if i < len(transforms) else {}
            name = (
                f"repairs/{i}-{str(t.get('name') or 'repair')}-layer_{t.get('layer')}.safetensors"
            )
            try:
                save_transform(est, tmp / name)
            except IsoscopeError as exc:
                notes.append(f"Repair {i} was not saved: {exc}")
                continue
            index["repairs"].append(
                {
                    "transform": i,
                    "file": name,
                    "spec": t.get("spec"),
                    "layer": t.get("layer"),
                    "fit": t.get("fit"),
                    "fit_n": t.get("fit_n"),
                    "how": "the estimator the analysis fitted, saved with "
                    "isoscope.transforms.save_transform (safetensors + JSON header)",
                }
            )
        for j, v in enumerate(art.repair_views):
            tr = v.settings.get("transform")
            name = (
                f"views/layer_{v.layer}_{'original' if tr is None else f'repair_{tr}'}.safetensors"
            )
            _save_cloud(tmp / name, v)
            how = (
                "PCA (2 components, fitted on the shown points) of the layer as extracted"
                if tr is None
                else "PCA (2 components, fitted on the shown points) of the fitted repair "
                "applied to the shown rows; the repair is the analysis' own, not refitted"
            )
            entry = _cloud_entry("repair_view", name, v, how)
            entry["order"] = j
            index["repair_views"].append(entry)
        if art.trajectories is not None:
            index["trajectories"] = _save_trajectories(
                tmp / "trajectories.safetensors", art.trajectories
            )
        else:
            index["trajectories"] = None
        if art.words is not None:
            from isoscope.analysis._crossmodel import save_word_sample

            index["words"] = save_word_sample(tmp / "words.safetensors", art.words)
        index["notes"] = notes
        write_json(tmp / INDEX, clean_json(index))
        old = None
        if final.exists():
            old = run / f".{FOLDER}-old-{os.getpid()}"
            if old.exists():
                shutil.rmtree(old)
            final.rename(old)
        tmp.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    art.index = index
    art.notes = notes
    art.path = final
    return final


def _save_trajectories(path: Path, data: Mapping[str, Any]) -> dict[str, Any]:
    from safetensors.numpy import save_file

    words = list(data["words"])
    tensors: dict[str, np.ndarray] = {
        "layers": np.asarray(data["layers"], dtype=np.int64),
        "baseline": np.asarray(data["baseline"], dtype=np.float64),
        "background_rows": np.asarray(data["background_rows"], dtype=np.int64),
    }
    for i, w in enumerate(words):
        tensors[f"paths.{i}"] = np.ascontiguousarray(data["paths"][w], dtype=np.float64)
        tensors[f"self_similarity.{i}"] = np.asarray(data["self_similarity"][w], dtype=np.float64)
        occ = data["occurrence_rows"][w]
        tensors[f"occurrence_rows.{i}"] = np.concatenate(occ).astype(np.int64)
        tensors[f"occurrence_offsets.{i}"] = np.cumsum([0] + [len(o) for o in occ]).astype(np.int64)
    meta = {
        "words": words,
        "contexts": {str(i): data["contexts"][w] for i, w in enumerate(words)},
        "seed": data["seed"],
        "n_background": data["n_background"],
        "max_occurrences": data.get("max_occurrences"),
    }
    save_file(tensors, str(path), metadata={_META_KEY: json.dumps(meta)})
    return {
        "file": path.name,
        "words": words,
        "layers": [int(x) for x in data["layers"]],
        "seed": data["seed"],
        "n_background": data["n_background"],
        "how": "each layer projected on the 2 principal components of the background rows (a "
        "seeded subset of the measured sample), consecutive layers aligned by orthogonal "
        "Procrustes; self_similarity = mean cosine between a word's occurrences (each the mean "
        "of its sub-word tokens), baseline = mean cosine of random background pairs",
    }


# ----------------------------------------------------------------------------- loading


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as fh:
        meta = (fh.metadata() or {}).get(_META_KEY)
        arrays = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    return arrays, (json.loads(meta) if meta else {})


def _load_cloud(path: Path) -> TokenCloud:
    arrays, meta = _read(path)
    coords = arrays["coords"]
    labels = [str(x) for x in meta.get("labels") or []]
    if len(labels) != coords.shape[0] or arrays["log_freq"].shape != (coords.shape[0],):
        raise ValueError("the labels or frequencies do not match the points")
    return TokenCloud(
        coords=coords,
        log_freq=arrays["log_freq"],
        labels=labels,
        explained_variance_ratio=arrays["explained_variance_ratio"],
        layer=meta.get("layer"),
        seed=int(meta.get("seed") or 0),
        n_total=int(meta.get("n_total") or 0),
        freq_label=str(meta.get("freq_label") or "log10 word frequency"),
        title=str(meta.get("title") or ""),
        settings=dict(meta.get("settings") or {}),
        rows=arrays.get("rows"),
        pca_mean=arrays.get("pca_mean"),
        pca_components=arrays.get("pca_components"),
    )


def _load_trajectories(path: Path) -> dict[str, Any]:
    arrays, meta = _read(path)
    words = [str(w) for w in meta["words"]]
    occ = {}
    for i, w in enumerate(words):
        flat, off = arrays[f"occurrence_rows.{i}"], arrays[f"occurrence_offsets.{i}"]
        occ[w] = [flat[a:b] for a, b in zip(off[:-1], off[1:], strict=True)]
    return {
        "layers": [int(x) for x in arrays["layers"]],
        "words": words,
        "paths": {w: arrays[f"paths.{i}"] for i, w in enumerate(words)},
        "self_similarity": {w: arrays[f"self_similarity.{i}"] for i, w in enumerate(words)},
        "baseline": arrays["baseline"],
        "contexts": {w: list(meta["contexts"][str(i)]) for i, w in enumerate(words)},
        "occurrence_rows": occ,
        "background_rows": arrays["background_rows"],
        "seed": int(meta.get("seed") or 0),
        "n_background": int(meta.get("n_background") or 0),
        "max_occurrences": meta.get("max_occurrences"),
    }


def load_artefacts(
    run_dir: str | os.PathLike[str], results: Mapping[str, Any] | None = None
) -> Artefacts:
    """Read the artefacts saved beside a results file; never raises for a missing or bad folder.

    Parameters
    ----------
    run_dir : path
        The run folder holding ``artefacts/`` (or the artefacts folder itself).
    results : dict, optional
        The results these artefacts should belong to; artefacts of another analysis (other
        source, seed, sample or repairs) are then ignored, with a note.

    Returns
    -------
    Artefacts
        What could be read; ``notes`` says what could not (a missing folder, a damaged file).
    """
    root = Path(run_dir)
    folder = root if (root / INDEX).is_file() else root / FOLDER
    if not folder.is_dir():
        return Artefacts(
            notes=[
                f"No artefacts folder at {folder}; token clouds, repair views and word "
                "trajectories are not drawn."
            ]
        )
    try:
        index = read_json(folder / INDEX, "artefacts index")
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise InputError(
                f"The artefacts index {folder / INDEX} is not an isoscope artefacts index."
            )
    except InputError as exc:
        return Artefacts(
            path=folder,
            notes=[f"{exc} Token clouds, repair views and word trajectories are not drawn."],
        )
    try:
        return _read_index(folder, index, results)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a hand-edited index
        return Artefacts(
            path=folder,
            notes=[
                f"The artefacts index {folder / INDEX} is damaged ({type(exc).__name__}: {exc}); "
                "token clouds, repair views and word trajectories are not drawn."
            ],
        )


def _entries(index: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    items = index.get(key) or []
    if not isinstance(items, list) or not all(isinstance(e, dict) for e in items):
        raise TypeError(f"{key!r} is not a list of records")
    return items


def _read_index(
    folder: Path, index: dict[str, Any], results: Mapping[str, Any] | None
) -> Artefacts:
    if int(index.get("format_version") or 0) > FORMAT_VERSION:
        return Artefacts(
            path=folder,
            notes=[
                f"The artefacts in {folder} were written by a newer isoscope; upgrade to draw them."
            ],
        )
    notes = [str(n) for n in index.get("notes") or []]
    if results is not None and index.get("results_fingerprint") != fingerprint(results):
        return Artefacts(
            path=folder,
            index=index,
            notes=[
                f"The artefacts in {folder} belong to another analysis than this results "
                "file (source, seed, sample or repairs differ); they are not drawn."
            ],
        )
    clouds, views_index, repairs_index = (
        _entries(index, "clouds"),
        _entries(index, "repair_views"),
        _entries(index, "repairs"),
    )
    traj_entry = index.get("trajectories")
    rows_entry = index.get("rows") or {}
    if not isinstance(rows_entry, dict) or not isinstance(traj_entry, dict | None):
        raise TypeError("'rows' or 'trajectories' is not a record")
    art = Artefacts(index=index, path=folder, notes=notes)

    def attempt(what: str, fn: Any) -> Any:
        try:
            return fn()
        except IsoscopeError as exc:
            art.notes.append(f"{what} is not drawn: {exc}")
        except Exception as exc:  # safetensors raises several private error types
            art.notes.append(
                f"{what} is not drawn: its file is damaged ({type(exc).__name__}: {exc})."
            )
        return None

    def safe_path(name: str) -> Path:
        p = (folder / str(name)).resolve()
        if not p.is_relative_to(folder.resolve()):
            raise InputError(f"{name} points outside the artefacts folder.")
        return p

    for e in clouds:
        c = attempt(
            f"The token cloud of layer {e.get('layer')}",
            lambda e=e: _load_cloud(safe_path(e["file"])),
        )
        if c is not None:
            art.clouds.append(c)
    views = [
        attempt(f"The repair view {e.get('file')}", lambda e=e: _load_cloud(safe_path(e["file"])))
        for e in views_index
    ]
    if any(v is None for v in views):
        art.notes.append("The repairs' token views are not drawn: one of their files is damaged.")
    else:
        art.repair_views = [v for v in views if v is not None]
    words_entry = index.get("words")
    if isinstance(words_entry, dict) and words_entry.get("file"):
        from isoscope.analysis._crossmodel import load_word_sample

        art.words = attempt(
            "The word sample", lambda: load_word_sample(safe_path(words_entry["file"]))
        )
    if traj_entry:
        art.trajectories = attempt(
            "Word trajectories", lambda: _load_trajectories(safe_path(traj_entry["file"]))
        )
    if rows_entry.get("file"):
        rows = attempt("The row ids", lambda: _read(safe_path(rows_entry["file"]))[0])
        art.rows = dict(rows or {})
    from isoscope.transforms import load_transform

    for e in repairs_index:
        i = int(e.get("transform", -1))
        est = attempt(f"Repair {i}", lambda e=e: load_transform(safe_path(e["file"])))
        if est is not None and i >= 0:
            art.repairs.extend([None] * (i + 1 - len(art.repairs)))
            art.repairs[i] = est
    return art


__all__ = [
    "Artefacts",
    "TokenCloud",
    "compute_artefacts",
    "fingerprint",
    "load_artefacts",
    "pca_projection",
    "save_artefacts",
    "seeds",
    "token_cloud",
    "token_info",
    "word_trajectories",
]
