"""The per-layer measurement suite: :func:`analyze` and :class:`AnalysisResult`.

Every number is computed on a seeded sample whose size, seed and row filter are recorded in
``settings``; measures that need word identity (S_intra, Ethayarajh, frequency) read the
store's token table and are ``None`` for plain arrays. Moments of the whole layer (every
selected row, not only the sample) are streamed chunk by chunk in float64 and reported as
``*_all`` values; they also give IsoScore*'s shrinkage target.

Definitions worth knowing when quoting the numbers:

- ``s_inter`` is the exact mean cosine over all pairs of the sampled tokens;
  ``s_inter_centered`` the same after subtracting each token's k-means cluster mean
  (all pairs, not only within-cluster pairs).
- ``s_intra`` groups occurrences by ``s_intra_key`` (token id by default, as Cai et al.'s
  code; ``"word"`` for lower-cased words) over the whole store, types with at least
  ``s_intra_min_occurrences`` occurrences, at most ``s_intra_cap`` per type and
  ``s_intra_max_types`` types (seeded). ``self_similarity`` is the same quantity under
  Ethayarajh's name; its ``_adjusted`` value subtracts ``s_inter`` (the anisotropy baseline).
- ``isotropy_partition`` uses ``isotropy_normalisation`` and both signs of every eigenvector.
- ``lid_mle`` is Amsaleg et al.'s estimator (k / sum log(d_k/d_i)) averaged over the distinct
  sampled points; scikit-dimension's MLE is the Levina-Bickel variant, (k-1)/k times it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isoscope.errors import InputError, IsoscopeError
from isoscope.metrics._neighbors import count_duplicates
from isoscope.metrics.clusters import kmeans_silhouette
from isoscope.metrics.cosine import (
    center_by_cluster,
    ethayarajh,
    rogue_dimensions,
    s_inter,
    s_intra,
)
from isoscope.metrics.frequency import frequency_correlations
from isoscope.metrics.isotropy import NORMALISATIONS, isoscore, isoscore_star, partition_isotropy
from isoscope.metrics.lid import lid_mle, twonn
from isoscope.metrics.spectrum import spectrum
from isoscope.metrics.streaming import StreamingMoments

__all__ = [
    "AnalysisResult",
    "analyze",
    "DEFAULT_SETTINGS",
    "measure_vectors",
    "evaluate_transforms",
]

DEFAULT_SETTINGS: dict[str, Any] = {
    "sample": 10000,
    "seed": 0,
    "include_special": False,
    "drop_position_zero": False,
    "isotropy_normalisation": "centered",
    "k_range": [2, 15],
    "silhouette_sample": 3000,
    # k-means++ with one initialisation (scikit-learn's own default, n_init="auto") per k: on
    # a 10,000 x 384 sample this is about 3x faster than three random-seeded faiss restarts,
    # which dominated the run time of the whole suite.
    "kmeans_backend": "sklearn",
    "kmeans_n_init": 1,
    "kmeans_max_iter": 50,
    "no_cluster_mms": 0.1,
    "lid_k": 20,
    "lid_metric": "euclidean",
    "lid_variant": "amsaleg",
    "lid_values_max": 2000,
    "twonn_discard_fraction": 0.1,
    "neighbor_backend": "auto",
    "s_intra_key": "token",
    "s_intra_min_occurrences": 5,
    "s_intra_cap": 50,
    "s_intra_max_types": 1000,
    "ethayarajh_sentences": 300,
    "isoscore_star_zeta": 0.2,
    "isoscore_star_reference": "layer",
    "frequency_source": "word_count",
    "frequency_components": 3,
    "rogue_top": 5,
    "full_layer_stats": True,
    "chunk_rows": 32768,
    "threads": None,
}

# Scalar keys of a layer entry, in table order (see results_schema.md).
SCALAR_KEYS = (
    "n_vectors",
    "n_duplicates",
    "mean_norm",
    "s_inter",
    "s_inter_centered",
    "s_intra",
    "s_intra_centered",
    "self_similarity",
    "self_similarity_adjusted",
    "intra_sentence_similarity",
    "intra_sentence_similarity_adjusted",
    "mev",
    "mev_adjusted",
    "isotropy_partition",
    "isotropy_partition_log10",
    "isoscore",
    "isoscore_star",
    "lid_mle",
    "lid_mle_median",
    "lid_twonn",
    "pca_dims_80",
    "n_clusters",
    "mms",
    "silhouette_best",
    "freq_pc1_spearman",
    "freq_pc1_pearson",
    "freq_norm_spearman",
    "s_inter_all",
    "isoscore_all",
    "n_vectors_all",
)


def _clean(obj: Any) -> Any:
    """JSON-ready copy: numpy scalars to Python, NaN/Inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


@dataclass
class AnalysisResult:
    """Results of :func:`analyze`: settings, one entry per layer, transforms and timings.

    ``to_dict()`` / ``to_json(path)`` give the layout of ``results_schema.md``;
    ``format_table()`` a per-layer text table; ``to_frame()`` a tidy pandas table of scalars.
    """

    source: dict
    settings: dict
    layers: list[dict]
    transforms: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    #: Store row ids of the measured sample (the same rows in every layer).
    sample_rows: Any = None
    #: Store row ids each repair was fitted on (the sample itself when transductive).
    fit_rows: Any = None
    #: Fitted repair estimators, aligned with ``transforms``.
    fitted_repairs: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (NaN and Inf become None)."""
        from isoscope import __version__

        out = {
            "isoscope_version": __version__,
            "source": self.source,
            "settings": self.settings,
            "layers": self.layers,
            "timings": self.timings,
        }
        if self.transforms:
            out["transforms"] = self.transforms
        return _clean(out)

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as indented JSON (atomically) and return the path."""
        path = Path(path)
        if path.is_dir():
            raise InputError(f"--out {path} is a folder; give a file name such as {path / 'results.json'}.")
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    def to_frame(self) -> Any:
        """One row per layer, scalar columns only (pandas DataFrame)."""
        import pandas as pd

        rows = [{"layer": e["layer"], **{k: e.get(k) for k in SCALAR_KEYS}} for e in self.layers]
        return pd.DataFrame(rows)

    def format_table(self) -> str:
        """Per-layer table of the main measures as fixed-width text."""
        cols = [
            ("layer", "layer", "{}"),
            ("n", "n_vectors", "{}"),
            ("S_inter", "s_inter", "{:.3f}"),
            ("S'_inter", "s_inter_centered", "{:.3f}"),
            ("S_intra", "s_intra", "{:.3f}"),
            ("S'_intra", "s_intra_centered", "{:.3f}"),
            ("log10 I(V)", "isotropy_partition_log10", "{:.3g}"),
            ("IsoScore", "isoscore", "{:.3f}"),
            ("IsoScore*", "isoscore_star", "{:.3f}"),
            ("LID", "lid_mle", "{:.1f}"),
            ("TwoNN", "lid_twonn", "{:.1f}"),
            ("PCA80", "pca_dims_80", "{}"),
            ("|C|", "n_clusters", "{}"),
            ("MMS", "mms", "{:.2f}"),
            ("freq~PC1", "freq_pc1_spearman", "{:+.2f}"),
            ("norm", "mean_norm", "{:.3g}"),
        ]
        body = []
        for e in self.layers:
            row = []
            for _, key, fmt in cols:
                v = e.get(key)
                row.append(
                    "-"
                    if v is None or (isinstance(v, float) and not math.isfinite(v))
                    else fmt.format(v)
                )
            body.append(row)
        head = [c[0] for c in cols]
        widths = [
            max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(head)
        ]
        lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in body]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Sources


class _Source:
    """Uniform access to a store or a single array."""

    def __init__(self, source: Any) -> None:
        self.store: Any = None
        self.array: np.ndarray | None = None
        self.info: dict[str, Any] = {}
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if path.suffix == ".npy" and path.is_file():
                try:
                    self.array = np.load(path, mmap_mode="r", allow_pickle=False)
                except (OSError, ValueError) as exc:
                    raise InputError(f"Could not read {path} as a .npy array ({exc}).") from None
                self.info = {"kind": "array", "path": str(path)}
            elif path.is_dir():
                from isoscope.store import open_store

                self.store = open_store(path)
            elif not path.exists():
                raise InputError(
                    f"{path} does not exist; give an embedding store folder or a .npy file."
                )
            else:
                raise InputError(f"{path} is neither an embedding store folder nor a .npy file.")
        elif isinstance(source, np.ndarray) or (
            hasattr(source, "__array__") and not hasattr(source, "layer")
        ):
            self.array = np.asarray(source)
            self.info = {"kind": "array", "path": None}
        elif hasattr(source, "layer") and hasattr(source, "tokens"):
            self.store = source
        else:
            raise InputError(
                f"Cannot analyse a {type(source).__name__}; give an EmbeddingStore, a store path, "
                "an array or a .npy path."
            )
        if self.array is not None:
            if self.array.ndim != 2:
                raise InputError(
                    f"The array must be 2-D (n vectors x d dims), got shape {self.array.shape}."
                )
            if not np.issubdtype(self.array.dtype, np.number):
                raise InputError(f"The array must be numeric, got dtype {self.array.dtype}.")
            self.layers = [0]
            self.n_rows = int(self.array.shape[0])
        else:
            st: Any = self.store
            m = st.manifest
            self.info = {
                "kind": "store",
                "path": str(st.path),
                "model": m.get("model"),
                "corpus": m.get("corpus"),
                "model_type": m.get("model_type", "encoder"),
                "n_tokens": int(st.n_tokens),
                "hidden_size": int(st.hidden_size),
                "dtype": m.get("dtype"),
            }
            self.layers = list(st.layers)
            self.n_rows = int(st.n_tokens)
        self._tokens = None

    @property
    def has_words(self) -> bool:
        return self.store is not None

    def tokens(self) -> Any:
        if self._tokens is None and self.store is not None:
            self._tokens = self.store.tokens()
        return self._tokens

    def candidates(self, include_special: bool, drop_position_zero: bool) -> np.ndarray:
        if self.store is None:
            return np.arange(self.n_rows)
        return np.flatnonzero(self.store.row_mask(include_special, drop_position_zero))

    def data(self, layer: int) -> np.ndarray:
        if self.store is None:
            assert self.array is not None
            return self.array
        return self.store.layer(layer)

    def rows(self, layer: int, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.data(layer)[rows], dtype=np.float32)

    def iter_rows(
        self, layer: int, mask: np.ndarray | None, chunk_rows: int
    ) -> Iterator[np.ndarray]:
        data = self.data(layer)
        for s in range(0, data.shape[0], chunk_rows):
            block = np.asarray(data[s : s + chunk_rows], dtype=np.float32)
            yield block if mask is None else block[mask[s : s + chunk_rows]]


def _resolve_layers(src: _Source, layers: Sequence[int] | int | None) -> list[int]:
    if layers is None:
        return list(src.layers)
    if isinstance(layers, int | np.integer):
        layers = [int(layers)]
    out = []
    for layer in layers:
        layer = int(layer)
        if layer < 0 and -len(src.layers) <= layer:
            layer = src.layers[layer]
        if layer not in src.layers:
            raise InputError(f"Layer {layer} is not available (available layers: {src.layers}).")
        if layer not in out:
            out.append(layer)
    return out


# --------------------------------------------------------------------------------------------
# Word-identity context (rows chosen once, shared by every layer)


@dataclass
class _WordContext:
    intra_rows: np.ndarray | None = None
    intra_keys: np.ndarray | None = None
    sentence_rows: np.ndarray | None = None
    sentence_ids: np.ndarray | None = None
    sample_freq: np.ndarray | None = None
    n_types: int = 0


def _word_context(src: _Source, cand: np.ndarray, sample_rows: np.ndarray, s: dict) -> _WordContext:
    from isoscope.metrics.cosine import select_groups

    ctx = _WordContext()
    if not src.has_words:
        return ctx
    tok = src.tokens()
    if s["s_intra_key"] == "token":
        keys = tok["token_id"].to_numpy()[cand].astype(object)
        keys[tok["token_id"].to_numpy()[cand] < 0] = None
    elif s["s_intra_key"] == "word":
        words = tok["word"].astype(str).str.lower().to_numpy()[cand].astype(object)
        words[words == ""] = None
        keys = words
    else:
        raise InputError(f"Unknown s_intra_key {s['s_intra_key']!r}; use token or word.")
    rows, codes, names = select_groups(
        keys,
        min_occurrences=s["s_intra_min_occurrences"],
        cap=s["s_intra_cap"],
        max_groups=s["s_intra_max_types"],
        seed=s["seed"],
    )
    if rows.size:
        ctx.intra_rows = cand[rows]
        ctx.intra_keys = codes
        ctx.n_types = int(names.size)
    sid = tok["sentence_id"].to_numpy()[cand]
    uniq = np.unique(sid)
    n_sent = min(int(s["ethayarajh_sentences"]), uniq.size)
    if n_sent > 0:
        rng = np.random.default_rng(s["seed"])
        chosen = rng.choice(uniq, size=n_sent, replace=False)
        m = np.isin(sid, chosen)
        ctx.sentence_rows = cand[m]
        ctx.sentence_ids = sid[m]
    if s["frequency_source"] in ("word_count", "zipf") and s["frequency_source"] in tok:
        ctx.sample_freq = tok[s["frequency_source"]].to_numpy()[sample_rows].astype(np.float64)
    return ctx


# --------------------------------------------------------------------------------------------
# Measuring one set of vectors


def _drop_zero_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nz = np.linalg.norm(X, axis=1) > 0
    return (X if nz.all() else X[nz]), nz


def _timed(timings: dict, name: str) -> Any:
    class _T:
        def __enter__(self) -> None:
            self.t = time.perf_counter()

        def __exit__(self, *exc: object) -> None:
            timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - self.t, 4)

    return _T()


def measure_vectors(
    X: np.ndarray,
    settings: dict | None = None,
    *,
    intra_X: np.ndarray | None = None,
    intra_keys: np.ndarray | None = None,
    sentence_X: np.ndarray | None = None,
    sentence_ids: np.ndarray | None = None,
    frequency: np.ndarray | None = None,
    reference_cov: np.ndarray | None = None,
    timings: dict | None = None,
) -> dict:
    """Run every measure on one sample of vectors and return a layer entry (without ``layer``).

    Parameters
    ----------
    X : ndarray of shape (n, d)
        The seeded sample.
    settings : dict, optional
        Overrides of :data:`DEFAULT_SETTINGS`.
    intra_X, intra_keys : optional
        Occurrence vectors and their type codes for S_intra / self-similarity / MEV.
    sentence_X, sentence_ids : optional
        Whole sentences for the intra-sentence similarity.
    frequency : ndarray of shape (n,), optional
        Corpus frequency of every row of ``X`` for the frequency correlations.
    reference_cov : ndarray, optional
        IsoScore* shrinkage target (e.g. the streamed covariance of the whole layer).
    timings : dict, optional
        Filled with seconds per measure group.

    Returns
    -------
    dict
        Scalars of ``results_schema.md`` plus ``rogue_dims`` and ``details``.
    """
    s = {**DEFAULT_SETTINGS, **(settings or {})}
    t = timings if timings is not None else {}
    X = np.asarray(X)
    X, nz = _drop_zero_rows(X)
    if frequency is not None:
        frequency = np.asarray(frequency)[nz]
    n = X.shape[0]
    lid_k = int(s["lid_k"])
    if n <= max(lid_k, int(s["k_range"][1]), 2):
        raise InputError(
            f"Only {n} non-zero vectors to measure; need more than "
            f"{max(lid_k, int(s['k_range'][1]))} (lid_k and the largest k)."
        )
    out: dict[str, Any] = {"n_vectors": int(n), "n_zero_rows": int((~nz).sum())}
    details: dict[str, Any] = {}
    X64 = X.astype(np.float64)
    with _timed(t, "cosine"):
        out["n_duplicates"] = count_duplicates(X)
        out["mean_norm"] = float(np.linalg.norm(X64, axis=1).mean())
        out["s_inter"] = s_inter(X64)
        rogue, _ = rogue_dimensions(X64, top=int(s["rogue_top"]))
        out["rogue_dims"] = rogue
    with _timed(t, "spectrum"):
        sp = spectrum(X64)
        out["pca_dims_80"] = sp.dims_80
        out["n_null_directions"] = sp.n_null
        details["explained_variance_ratio"] = sp.explained_variance_ratio[:100].tolist()
    with _timed(t, "isotropy"):
        pi = partition_isotropy(X64, normalisation=s["isotropy_normalisation"])
        out["isotropy_partition"] = pi.value
        out["isotropy_partition_log10"] = pi.log10
        out["isoscore"] = isoscore(X64)
        c0: Any = reference_cov if reference_cov is not None else "scaled_identity"
        out["isoscore_star"] = isoscore_star(X64, C0=c0, zeta=float(s["isoscore_star_zeta"]))
        out["isoscore_star_reference"] = "layer" if reference_cov is not None else "scaled_identity"
    with _timed(t, "clusters"):
        cl = kmeans_silhouette(
            X64,
            tuple(s["k_range"]),
            silhouette_sample=s["silhouette_sample"],
            seed=int(s["seed"]),
            n_init=int(s["kmeans_n_init"]),
            max_iter=int(s["kmeans_max_iter"]),
            min_mms=s["no_cluster_mms"],
            backend=str(s["kmeans_backend"]),
        )
        out["n_clusters"] = cl.n_clusters
        out["best_k"] = cl.best_k
        out["mms"] = cl.mms
        out["silhouette_best"] = cl.mms
        details["silhouette_curve"] = {"k": cl.ks, "score": cl.scores}
        details["cluster_sizes"] = cl.sizes
        centered = center_by_cluster(X64, cl.labels, cl.centers)
        # Rows equal to their cluster mean (a cluster of duplicates) have no direction: left out.
        cz, _ = _drop_zero_rows(centered)
        out["s_inter_centered"] = s_inter(cz) if cz.shape[0] >= 2 else None
    with _timed(t, "lid"):
        lr = lid_mle(
            X,
            k=lid_k,
            metric=s["lid_metric"],
            variant=s["lid_variant"],
            backend=s["neighbor_backend"],
        )
        out["lid_mle"] = lr.mean
        out["lid_mle_median"] = lr.median
        out["lid_n_zero_distances"] = lr.n_zero_distances
        out["lid_n_undefined"] = lr.n_undefined
        out["lid_twonn"] = twonn(
            X, neighbors=lr.neighbors, discard_fraction=float(s["twonn_discard_fraction"])
        )
        vals = lr.values
        m = int(s["lid_values_max"])
        if vals.size > m:
            rng = np.random.default_rng(int(s["seed"]))
            vals = vals[np.sort(rng.choice(vals.size, m, replace=False))]
        details["lid_values"] = vals.tolist()
    for key in (
        "s_intra",
        "s_intra_centered",
        "self_similarity",
        "self_similarity_adjusted",
        "intra_sentence_similarity",
        "intra_sentence_similarity_adjusted",
        "mev",
        "mev_adjusted",
        "freq_pc1_spearman",
        "freq_pc1_pearson",
        "freq_norm_spearman",
    ):
        out.setdefault(key, None)
    if intra_X is not None and intra_keys is not None and len(intra_keys):
        with _timed(t, "word_types"):
            iX, ikeys = _drop_zero_with(intra_X, intra_keys)
            if ikeys.size >= 2:
                cap = None  # rows are already capped and selected
                r = s_intra(iX, ikeys, min_occurrences=2, cap=cap)
                out["s_intra"] = r.value
                out["s_intra_n_types"] = r.n_types
                ic = center_by_cluster(iX, cl.predict(iX), cl.centers)
                ic, ikc = _drop_zero_with(ic, ikeys)
                out["s_intra_centered"] = s_intra(ic, ikc, min_occurrences=2, cap=None).value
                sX, sid = (None, None)
                if sentence_X is not None and sentence_ids is not None:
                    sX, sid = _drop_zero_with(sentence_X, sentence_ids)
                eth = ethayarajh(
                    iX,
                    ikeys,
                    sentence_X=sX,
                    sentence_ids=sid,
                    baseline=out["s_inter"],
                    min_occurrences=2,
                    cap=None,
                    seed=int(s["seed"]),
                )
                for key in (
                    "self_similarity",
                    "self_similarity_adjusted",
                    "intra_sentence_similarity",
                    "intra_sentence_similarity_adjusted",
                    "mev",
                    "mev_adjusted",
                    "mev_baseline",
                ):
                    out[key] = eth[key]
    if frequency is not None:
        with _timed(t, "frequency"):
            ok = np.isfinite(frequency) & (frequency > 0)
            if ok.sum() >= 3 and np.unique(frequency[ok]).size > 1:
                fr = frequency_correlations(
                    X64[ok],
                    frequency[ok],
                    n_components=int(s["frequency_components"]),
                    # Zipf values are already log10 frequencies; corpus counts are not.
                    log=s["frequency_source"] != "zipf",
                )
                for key, v in fr.items():
                    if key.startswith("freq_"):
                        out[key] = v
                out["freq_n"] = fr["n"]
                details["frequency_regions"] = fr["regions"]
    out["details"] = details
    return out


def _drop_zero_with(X: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    nz = np.linalg.norm(X, axis=1) > 0
    return X[nz], np.asarray(other)[nz]


# --------------------------------------------------------------------------------------------
# The suite


def _progress(iterable: Any, enabled: bool | None, desc: str) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit="layer", leave=False)


def _settings(overrides: dict) -> dict:
    unknown = sorted(set(overrides) - set(DEFAULT_SETTINGS))
    if unknown:
        raise InputError(f"Unknown analysis setting(s): {', '.join(unknown)}.")
    s = {**DEFAULT_SETTINGS, **overrides}
    if s["isotropy_normalisation"] not in NORMALISATIONS:
        raise InputError(
            f"Unknown isotropy normalisation {s['isotropy_normalisation']!r}; "
            f"use one of {', '.join(NORMALISATIONS)}."
        )
    if s["sample"] is not None and int(s["sample"]) < 3:
        raise InputError(f"The sample size must be at least 3, got {s['sample']}.")
    s["k_range"] = [int(s["k_range"][0]), int(s["k_range"][1])]
    if s["isoscore_star_reference"] not in ("layer", "scaled_identity"):
        raise InputError("isoscore_star_reference must be layer or scaled_identity.")
    return s


@dataclass
class _Prepared:
    src: _Source
    settings: dict
    layers: list[int]
    cand: np.ndarray
    sample_rows: np.ndarray
    words: _WordContext


def _prepare(source: Any, layers: Any, settings: dict) -> _Prepared:
    src = source if isinstance(source, _Source) else _Source(source)
    s = _settings(settings)
    if src.store is None:
        s["include_special"] = None
        s["drop_position_zero"] = None
    lay = _resolve_layers(src, layers)
    cand = src.candidates(bool(s["include_special"]), bool(s["drop_position_zero"]))
    if cand.size < 3:
        raise InputError(
            f"Only {cand.size} vectors are selected for analysis; at least 3 are needed."
        )
    n = s["sample"]
    if n is None or int(n) >= cand.size:
        sample_rows = cand
    else:
        rng = np.random.default_rng(int(s["seed"]))
        sample_rows = np.sort(rng.choice(cand, size=int(n), replace=False))
    s["n_candidates"] = int(cand.size)
    s["n_sampled"] = int(sample_rows.size)
    words = _word_context(src, cand, sample_rows, s)
    return _Prepared(src, s, lay, cand, sample_rows, words)


def _layer_inputs(
    p: _Prepared, layer: int, transform: Callable[[np.ndarray], np.ndarray] | None = None
) -> dict:
    f = transform or (lambda a: a)
    w = p.words
    kw: dict[str, Any] = {"frequency": w.sample_freq}
    if w.intra_rows is not None:
        kw["intra_X"] = f(p.src.rows(layer, w.intra_rows))
        kw["intra_keys"] = w.intra_keys
    if w.sentence_rows is not None:
        kw["sentence_X"] = f(p.src.rows(layer, w.sentence_rows))
        kw["sentence_ids"] = w.sentence_ids
    return kw


def _full_layer(p: _Prepared, layer: int) -> StreamingMoments | None:
    s = p.settings
    if not s["full_layer_stats"]:
        return None
    mask = None
    if p.cand.size != p.src.n_rows:
        mask = np.zeros(p.src.n_rows, dtype=bool)
        mask[p.cand] = True
    acc = StreamingMoments()
    for block in p.src.iter_rows(layer, mask, int(s["chunk_rows"])):
        acc.update(block)
    return acc


def analyze(
    source: Any,
    layers: Sequence[int] | int | None = None,
    *,
    sample: int | None = 10000,
    seed: int = 0,
    transforms: Sequence[str] | None = None,
    transductive: bool = False,
    transform_layers: Sequence[int] | None = None,
    progress: bool | None = None,
    **settings: Any,
) -> AnalysisResult:
    """Run every geometry measure on every requested layer.

    Parameters
    ----------
    source : EmbeddingStore, path, ndarray or .npy path
        A store (folder or object), or one layer of vectors (n x d) for the measures that
        need no word identity (S_intra, Ethayarajh and frequency are then None).
    layers : int or sequence of int, optional
        Hidden-state indices (negative counts from the last); all stored layers by default.
    sample : int or None
        Seeded uniform sample of rows measured per layer (None: all rows). The same rows are
        used for every layer.
    seed : int
        Seeds the sample, k-means, the silhouette subsample and word-type selection.
    transforms : sequence of str, optional
        Repairs to evaluate (``isoscope.transforms.from_spec`` specs, e.g. ``"abtt:n_components=3"``);
        see :func:`evaluate_transforms`.
    transductive : bool
        Fit repairs on the measured sample itself instead of a disjoint seeded sample.
    transform_layers : sequence of int, optional
        Layers on which repairs are evaluated (default: the last analysed layer).
    progress : bool, optional
        Show a progress bar per layer (default: when stderr is a terminal).
    **settings
        Any key of :data:`DEFAULT_SETTINGS` (``lid_k``, ``k_range``, ``isotropy_normalisation``,
        ``include_special``, ``drop_position_zero``, ``threads``...). ``threads`` limits the
        BLAS/OpenMP and faiss thread pools while the suite runs (default: leave them alone).

    Returns
    -------
    AnalysisResult
    """
    with _thread_limit(settings.get("threads")):
        return _analyze(
            source,
            layers,
            sample=sample,
            seed=seed,
            transforms=transforms,
            transductive=transductive,
            transform_layers=transform_layers,
            progress=progress,
            **settings,
        )


@contextlib.contextmanager
def _thread_limit(threads: int | None) -> Iterator[None]:
    """Limit BLAS/OpenMP and faiss threads (on a busy shared CPU, spinning pools are very slow)."""
    if threads is None:
        yield
        return
    if int(threads) < 1:
        raise InputError(f"threads must be at least 1, got {threads}.")
    from threadpoolctl import threadpool_limits

    faiss_mod: Any = None
    before = 0
    try:
        import faiss as faiss_mod

        before = int(faiss_mod.omp_get_max_threads())
        faiss_mod.omp_set_num_threads(int(threads))
    except ImportError:  # pragma: no cover
        faiss_mod = None
    try:
        with threadpool_limits(int(threads)):
            yield
    finally:
        if faiss_mod is not None:
            faiss_mod.omp_set_num_threads(before)


def _analyze(
    source: Any,
    layers: Sequence[int] | int | None,
    *,
    sample: int | None,
    seed: int,
    transforms: Sequence[str] | None,
    transductive: bool,
    transform_layers: Sequence[int] | None,
    progress: bool | None,
    **settings: Any,
) -> AnalysisResult:
    t0 = time.perf_counter()
    if transforms:
        from isoscope.transforms import from_spec

        for spec in transforms:  # fail on a bad spec before any measuring
            from_spec(spec)
    p = _prepare(source, layers, {"sample": sample, "seed": seed, **settings})
    s = p.settings
    entries = []
    timings: dict[str, Any] = {"layers": {}}
    for layer in _progress(p.layers, progress, "isoscope analyze"):
        lt: dict[str, float] = {}
        with _timed(lt, "read"):
            X = p.src.rows(layer, p.sample_rows)
            kw = _layer_inputs(p, layer)
        with _timed(lt, "full_layer"):
            acc = _full_layer(p, layer)
        ref = None
        if acc is not None and acc.n >= 2 and s["isoscore_star_reference"] == "layer":
            ref = acc.covariance()
        entry: dict[str, Any] = {"layer": int(layer)}
        entry.update(measure_vectors(X, s, reference_cov=ref, timings=lt, **kw))
        if acc is not None:
            entry["n_vectors_all"] = int(acc.n)
            entry["s_inter_all"] = acc.s_inter() if acc.n - acc.n_zero >= 2 else None
            entry["isoscore_all"] = acc.isoscore() if acc.n >= 2 else None
            entry["mean_norm_all"] = acc.mean_norm()
        entries.append(entry)
        timings["layers"][str(layer)] = lt
    result = AnalysisResult(source=p.src.info, settings=s, layers=entries, timings=timings)
    result.sample_rows = p.sample_rows
    if transforms:
        tl = list(transform_layers) if transform_layers is not None else [p.layers[-1]]
        fitted: list[Any] = []
        result.transforms = evaluate_transforms(
            p, transforms, layers=tl, transductive=transductive, before=entries,
            progress=progress, fitted=fitted,
        )
        result.fitted_repairs = [est for est, _ in fitted]
        result.fit_rows = fitted[0][1] if fitted else None
        s["transductive"] = bool(transductive)
        s["transform_layers"] = _resolve_layers(p.src, tl)
    timings["total_s"] = round(time.perf_counter() - t0, 3)
    return result


def evaluate_transforms(
    source: Any,
    specs: Sequence[str],
    *,
    layers: Sequence[int] | None = None,
    transductive: bool = False,
    sample: int | None = 10000,
    seed: int = 0,
    fit_sample: int | None = None,
    before: list[dict] | None = None,
    progress: bool | None = None,
    fit_params: Mapping[str, Mapping[str, Any]] | None = None,
    fitted: list | None = None,
    **settings: Any,
) -> list[dict]:
    """Measure each repair before and after, fitted inductively or transductively.

    The measured (evaluation) sample is the same seeded sample :func:`analyze` uses. An
    inductive repair (default) is fitted on a disjoint seeded sample of the remaining rows
    (``fit_sample`` rows, default the size of the evaluation sample); a transductive one on
    the evaluation sample itself. Which one is recorded in every entry.

    Parameters
    ----------
    source : EmbeddingStore, path, ndarray or a prepared source
    specs : sequence of str
        ``isoscope.transforms.from_spec`` specs.
    layers : sequence of int, optional
        Layers to evaluate (default: the last stored layer).
    transductive : bool
    sample, seed, settings : as for :func:`analyze`.
    fit_sample : int, optional
    before : list of dict, optional
        Layer entries already measured on the same sample (skips re-measuring "before").
    progress : bool, optional
    fit_params : mapping, optional
        Extra keyword arguments of ``fit`` per spec, e.g.
        ``{"learned": {"pairs": (A, B, scores)}}`` for :class:`~isoscope.transforms.LearnedRemoval`.
    fitted : list, optional
        Receives ``(fitted estimator, fit row ids)`` per returned entry, in the same order.

    Returns
    -------
    list of dict
        ``name``, ``spec``, ``params``, ``fit``, ``layer``, ``fit_n``, ``eval_n``, ``seed``,
        ``before`` and ``after`` (scalar measures).
    """
    from isoscope.transforms import from_spec

    if isinstance(source, _Prepared):
        p = source
    else:
        p = _prepare(source, layers, {"sample": sample, "seed": seed, **settings})
    s = p.settings
    lay = _resolve_layers(p.src, layers if layers is not None else [p.layers[-1]])
    ests = []
    for spec in specs:
        est = from_spec(spec)
        ests.append((spec, est))
    eval_rows = p.sample_rows
    if transductive:
        fit_rows = eval_rows
    else:
        rest = np.setdiff1d(p.cand, eval_rows, assume_unique=True)
        m = int(fit_sample) if fit_sample is not None else eval_rows.size
        if rest.size < 2:
            raise InputError(
                "No rows are left outside the measured sample to fit the repair inductively; "
                "lower --sample or use --transductive."
            )
        rng = np.random.default_rng(int(s["seed"]) + 1)
        fit_rows = np.sort(rng.choice(rest, size=min(m, rest.size), replace=False))
    by_layer = {e["layer"]: e for e in (before or [])}
    out = []
    for layer in _progress(lay, progress, "isoscope transforms"):
        X_eval = p.src.rows(layer, eval_rows)
        X_fit = X_eval if transductive else p.src.rows(layer, fit_rows)
        if layer in by_layer:
            before_entry = by_layer[layer]
        else:
            before_entry = measure_vectors(X_eval, s, **_layer_inputs(p, layer))
        for spec, est in ests:
            before_scalars = {k: before_entry.get(k) for k in SCALAR_KEYS if k in before_entry}
            from sklearn.base import clone

            model = clone(est)
            try:
                model.fit(X_fit, **dict((fit_params or {}).get(spec, {})))
            except IsoscopeError:
                raise
            except (TypeError, ValueError) as exc:
                raise InputError(
                    f"The repair {spec!r} could not be fitted on layer {layer}: {exc}"
                ) from None

            if fitted is not None:
                fitted.append((model, fit_rows))

            def apply(a: np.ndarray, model: Any = model) -> np.ndarray:
                return np.asarray(model.transform(a), dtype=np.float64)

            # IsoScore* before and after shrink toward the covariance of the (repaired) fit rows,
            # so that both sides use the same kind of reference.
            ref_b = np.cov(np.asarray(X_fit, dtype=np.float64), rowvar=False)
            ref_a = np.cov(apply(X_fit), rowvar=False)
            after = measure_vectors(
                apply(X_eval), s, reference_cov=ref_a, **_layer_inputs(p, layer, apply)
            )
            before_scalars["isoscore_star"] = isoscore_star(
                np.asarray(X_eval, dtype=np.float64), C0=ref_b, zeta=float(s["isoscore_star_zeta"])
            )
            params = {k: _clean(v) for k, v in est.get_params(deep=False).items()}
            out.append(
                {
                    "name": spec.split(":", 1)[0].strip().lower(),
                    "spec": spec,
                    "params": params,
                    "fit": "transductive" if transductive else "inductive",
                    "layer": int(layer),
                    "fit_n": int(fit_rows.size),
                    "eval_n": int(eval_rows.size),
                    "seed": int(s["seed"]),
                    "isoscore_star_reference": "fit_sample",
                    "before": before_scalars,
                    "after": {k: after.get(k) for k in SCALAR_KEYS if k in after},
                }
            )
    return out
