"""Token clouds: a seeded subsample of one layer projected onto its first principal components."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isoscope._validation import check_vectors
from isoscope.errors import InputError


@dataclass
class TokenCloud:
    """A layer's token vectors projected onto their first principal components.

    Attributes
    ----------
    coords : numpy.ndarray of shape (n, k)
        PCA coordinates (``k`` = 2 or 3), centred on the sample mean.
    log_freq : numpy.ndarray of shape (n,)
        Log10 frequency of each point's word (NaN where unknown); the colour of each point.
    labels : list of str
        Hover text for each point (token and word, as read from the corpus, unescaped).
    explained_variance_ratio : numpy.ndarray of shape (k,)
        Share of the sample's variance on each shown component.
    layer : int or None
        Hidden-state index the vectors come from.
    seed : int
        Seed of the subsample.
    n_total : int
        Number of rows the sample was drawn from.
    freq_label : str
        What ``log_freq`` measures, for the colour bar.
    title : str
        Model name (or other identifier) shown in titles.
    settings : dict
        Sampling settings (include_special, drop_position_zero), for the report.
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

    @property
    def n(self) -> int:
        """Number of points shown."""
        return int(self.coords.shape[0])


def _pca(X: np.ndarray, n_components: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    k = min(n_components, X.shape[0] - 1, X.shape[1])
    if k < 1:
        raise InputError("At least two distinct vectors are needed for a PCA view.")
    pca = PCA(n_components=k, svd_solver="full", random_state=seed)
    coords = pca.fit_transform(X)
    ratio = pca.explained_variance_ratio_
    if k < n_components:  # pad so that 3-D views of tiny inputs still work
        coords = np.hstack([coords, np.zeros((coords.shape[0], n_components - k))])
        ratio = np.concatenate([ratio, np.zeros(n_components - k)])
    return coords, np.asarray(ratio, dtype=float)


def cloud_from_arrays(
    X: Any,
    *,
    log_freq: Any = None,
    labels: list[str] | None = None,
    n: int = 2000,
    seed: int = 0,
    n_components: int = 3,
    layer: int | None = None,
    freq_label: str = "log10 word frequency",
    title: str = "",
) -> TokenCloud:
    """Build a :class:`TokenCloud` from an array of vectors.

    Parameters
    ----------
    X : array-like of shape (n_vectors, d)
        Vectors, one per row.
    log_freq : array-like of shape (n_vectors,), optional
        Colour value per row (log word frequency); NaN where unknown.
    labels : list of str, optional
        Hover text per row.
    n : int
        Maximum number of points; a seeded subsample is drawn when there are more rows.
    seed : int
        Seed of the subsample and the PCA solver.
    n_components : int
        2 or 3.
    layer : int, optional
        Hidden-state index, for titles.
    freq_label : str
        Meaning of ``log_freq``, for the colour bar.
    title : str
        Model name for titles.

    Returns
    -------
    TokenCloud
    """
    X = check_vectors(X, name="vectors", min_rows=2)
    m = X.shape[0]
    rows = np.arange(m)
    if m > n:
        rows = np.sort(np.random.default_rng(seed).choice(m, size=n, replace=False))
    freq = np.full(m, np.nan) if log_freq is None else np.asarray(log_freq, dtype=float)
    if freq.shape != (m,):
        raise InputError(f"log_freq must have one value per vector ({m}), got shape {freq.shape}.")
    if labels is not None and len(labels) != m:
        raise InputError(f"labels must have one entry per vector ({m}), got {len(labels)}.")
    coords, ratio = _pca(X[rows], n_components, seed)
    return TokenCloud(
        coords=coords,
        log_freq=freq[rows],
        labels=[labels[i] for i in rows] if labels is not None else [f"row {i}" for i in rows],
        explained_variance_ratio=ratio,
        layer=layer,
        seed=seed,
        n_total=m,
        freq_label=freq_label,
        title=title,
    )


def _token_info(store: Any, rows: Any, frequency: str) -> tuple[np.ndarray, str, list[str]]:
    """Colour values, colour-bar label and hover labels of some token rows."""
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
) -> TokenCloud:
    """Sample ``n`` tokens of one layer of an :class:`~isoscope.store.EmbeddingStore` and project them.

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
        Passed to :meth:`EmbeddingStore.sample`.
    frequency : {"corpus", "zipf"}
        Colour by log10 of the word's count in this corpus, or by its wordfreq Zipf value
        (log10 frequency per billion words).

    Returns
    -------
    TokenCloud
    """
    if layer not in store.layers:
        raise InputError(f"Layer {layer} is not in the store (stored layers: {store.layers}).")
    if frequency not in ("corpus", "zipf"):
        raise InputError(f"frequency must be 'corpus' or 'zipf', got {frequency!r}.")
    X, rows = store.sample(
        layer,
        n,
        seed,
        include_special=include_special,
        drop_position_zero=drop_position_zero,
    )
    X = check_vectors(X, name=f"layer {layer} vectors", min_rows=2)
    freq, label, labels = _token_info(store, rows, frequency)
    coords, ratio = _pca(X.astype(np.float64), n_components, seed)
    manifest = getattr(store, "manifest", {}) or {}
    return TokenCloud(
        coords=coords,
        log_freq=freq,
        labels=labels,
        explained_variance_ratio=ratio,
        layer=int(layer),
        seed=int(seed),
        n_total=int(store.n_tokens),
        freq_label=label,
        title=str(manifest.get("model", "")),
        settings={
            "include_special": bool(include_special),
            "drop_position_zero": bool(drop_position_zero),
            "frequency": frequency,
        },
    )


def _spec(t: Mapping[str, Any]) -> str:
    if t.get("spec"):
        return str(t["spec"])
    params = t.get("params") or {}
    args = ",".join(f"{k}={'none' if v is None else v}" for k, v in params.items())
    return f"{t.get('name')}:{args}" if args else str(t.get("name"))


def repair_clouds(
    store: Any,
    transforms: Sequence[Mapping[str, Any]],
    *,
    n: int = 2000,
    seed: int = 0,
    include_special: bool = False,
    drop_position_zero: bool = False,
    frequency: str = "corpus",
) -> list[TokenCloud]:
    """2-D token clouds of a layer before and after each repair, for side-by-side panels.

    Each repair is refitted for this view the way it was measured: ``transductive`` on the
    shown tokens themselves, ``inductive`` on a disjoint seeded sample of the other tokens
    (of the same size, or all that remain). Repairs that need extra fit inputs (learned
    removal's word pairs) are left out.

    Parameters
    ----------
    store : EmbeddingStore
        The store the results were measured on.
    transforms : sequence of dict
        ``results["transforms"]`` entries (``name``/``spec``, ``params``, ``fit``, ``layer``).
    n, seed, include_special, drop_position_zero, frequency
        As for :func:`token_cloud`.

    Returns
    -------
    list of TokenCloud
        The original layer first (title ``original``), then one per repair.
    """
    from isoscope.transforms import from_spec

    if not transforms:
        raise InputError("There are no repairs to show.")
    layer = int(transforms[0].get("layer", store.layers[-1]))
    if layer not in store.layers:
        raise InputError(f"Layer {layer} is not in the store (stored layers: {store.layers}).")
    rows = store.sample_indices(n, seed, include_special, drop_position_zero)
    data = store.layer(layer)
    X = check_vectors(
        np.asarray(data[rows], dtype=np.float64), name=f"layer {layer} vectors", min_rows=3
    )
    rest = np.setdiff1d(store.sample_indices(None, seed, include_special, drop_position_zero), rows)
    fit_rows = rest
    if len(rest) > len(rows):
        fit_rows = np.sort(
            np.random.default_rng(seed + 1).choice(rest, size=len(rows), replace=False)
        )
    X_fit = np.asarray(data[fit_rows], dtype=np.float64) if len(fit_rows) >= 3 else None
    freq, label, labels = _token_info(store, rows, frequency)

    def make(Y: np.ndarray, title: str, note: str) -> TokenCloud:
        coords, ratio = _pca(Y, 2, seed)
        return TokenCloud(
            coords=coords,
            log_freq=freq,
            labels=labels,
            explained_variance_ratio=ratio,
            layer=layer,
            seed=seed,
            n_total=int(store.n_tokens),
            freq_label=label,
            title=title,
            settings={"fit": note},
        )

    clouds = [make(X, "original", "")]
    for t in transforms:
        if int(t.get("layer", layer)) != layer:
            continue
        est = from_spec(_spec(t))
        if getattr(est, "extra_fit_inputs", ()) and "pairs" in est.extra_fit_inputs:
            continue
        if "random_state" in est.get_params() and est.get_params()["random_state"] is None:
            est.set_params(random_state=seed)
        transductive = t.get("fit") == "transductive" or X_fit is None
        est.fit(X if transductive else X_fit)
        Y = np.asarray(est.transform(X), dtype=np.float64)
        name = str(t.get("name") or _spec(t))
        mode = "transductive" if transductive else "inductive"
        clouds.append(make(Y, f"{name} [{mode}]", mode))
    return clouds
