"""Static figures (matplotlib) drawn from results dictionaries and saved artefacts; no store.

Every function returns a :class:`matplotlib.figure.Figure` and never calls
``plt.show()``; figures are created with the object-oriented API so they work
headless and do not accumulate in pyplot's global state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from isoscope.artefacts import TokenCloud
from isoscope.errors import InputError
from isoscope.report._style import (
    AFTER_COLOUR,
    BEFORE_COLOUR,
    FAMILIES,
    HEADLINE_KEYS,
    LINESTYLES,
    MARKERS,
    NOT_A_CURVE,
    PALETTE,
    SEQUENTIAL_CMAP,
    Family,
    style,
)

ResultsLike = Mapping[str, Any] | Sequence[Mapping[str, Any]]


# ----------------------------------------------------------------------------- helpers


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _results_list(results: ResultsLike) -> list[Mapping[str, Any]]:
    if hasattr(results, "to_dict"):  # an AnalysisResult
        results = results.to_dict()
    if isinstance(results, Mapping):
        out = [results]
    else:
        out = [r.to_dict() if hasattr(r, "to_dict") else r for r in results]
    if not out:
        raise InputError("No results were given to plot.")
    for r in out:
        if not isinstance(r, Mapping) or not isinstance(r.get("layers"), list):
            raise InputError("Each results object must be a dict with a 'layers' list.")
    return out


def model_name(results: Mapping[str, Any], default: str = "model") -> str:
    """Return the model name recorded in a results dict (``source.model``)."""
    src = results.get("source") or {}
    name = str(src.get("model") or src.get("path") or default)
    # A local folder is named by its last part; Hugging Face ids ("org/model") stay whole.
    if name.startswith(("/", "./", "../", "~")) or (len(name) > 2 and name[1:3] in (":\\", ":/")):
        name = name.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] or name
    return name


def _names(results: list[Mapping[str, Any]]) -> list[str]:
    names = [model_name(r, f"run {i + 1}") for i, r in enumerate(results)]
    # Two runs of the same model (e.g. two corpora) still need distinct legend entries.
    seen: dict[str, int] = {}
    out = []
    for n, r in zip(names, results, strict=True):
        seen[n] = seen.get(n, 0) + 1
        if names.count(n) > 1:
            corpus = (r.get("source") or {}).get("corpus")
            n = f"{n} [{corpus}]" if corpus else f"{n} #{seen[n]}"
        out.append(n)
    return out


def mpl_text(s: object) -> str:
    """Make corpus text safe for matplotlib (``$`` would start mathtext)."""
    return str(s).replace("\\", "\\\\").replace("$", r"\$")


def _n_layers(results: Mapping[str, Any]) -> int:
    src = results.get("source") or {}
    n = src.get("n_layers")
    layers = [int(lay["layer"]) for lay in results["layers"]]
    if isinstance(n, int) and n > 0 and (not layers or n > max(layers)):
        return n
    return (max(layers) + 1) if layers else 1


def layer_positions(results: Mapping[str, Any], normalise_depth: bool) -> np.ndarray:
    """Return the x position of each entry of ``results["layers"]``.

    With ``normalise_depth`` the hidden-state index is divided by the index of the last
    hidden state, so 0 is the embedding output and 1 the last layer whatever the depth.
    """
    layers = np.array([float(lay["layer"]) for lay in results["layers"]])
    if not normalise_depth:
        return layers
    last = max(_n_layers(results) - 1, 1)
    return layers / last


def _layer_axis_label(normalise_depth: bool) -> str:
    if normalise_depth:
        return "relative depth (0 = embeddings, 1 = last)"
    return "layer (0 = embeddings)"


def _values(results: Mapping[str, Any], key: str) -> np.ndarray:
    out = []
    for lay in results["layers"]:
        v = lay.get(key)
        out.append(float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan)
    return np.array(out, dtype=float)


def _has_values(results: list[Mapping[str, Any]], key: str) -> bool:
    return any(np.isfinite(_values(r, key)).any() for r in results)


def curve_families(results: ResultsLike) -> list[Family]:
    """Return the panels of :func:`plot_layer_curves`: known families with data, then other keys.

    Every numeric scalar in ``results["layers"]`` appears in exactly one panel.
    """
    res = _results_list(results)
    fams: list[Family] = []
    covered: set[str] = set(NOT_A_CURVE)
    for fam in FAMILIES:
        covered.update(fam.keys)
        keys = tuple(k for k in fam.keys if _has_values(res, k))
        if keys:
            labels = tuple(fam.labels[fam.keys.index(k)] for k in keys)
            fams.append(Family(fam.title, fam.ylabel, keys, labels, fam.help, fam.ylim))
    extra: list[str] = []
    for r in res:
        for lay in r["layers"]:
            for k, v in lay.items():
                if k in covered or k in extra or isinstance(v, bool):
                    continue
                if isinstance(v, int | float) and _has_values(res, k):
                    extra.append(k)
    for k in extra:
        fams.append(Family(k.replace("_", " "), "value", (k,), (k,), f"The measure '{k}'."))
    return fams


def _legend_below(fig: Any, handles: list[Any], labels: list[str], title: str | None) -> None:
    if handles:
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=min(len(labels), 4),
            title=title,
            fontsize=8.5,
        )


# ----------------------------------------------------------------------------- per-layer curves


def plot_layer_curves(
    results: ResultsLike,
    *,
    measures: Sequence[str] | None = None,
    normalise_depth: bool | None = None,
    ncols: int = 3,
) -> Any:
    """Plot every per-layer measure against layer, one panel per family of measures.

    Parameters
    ----------
    results : dict or sequence of dict
        One ``results.json`` dict, or several to compare models (one colour per model).
    measures : sequence of str, optional
        Only panels containing one of these keys; default all.
    normalise_depth : bool, optional
        Put layers on a 0..1 depth axis so models of different depth line up.
        Default: True when several results are given.
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    res = _results_list(results)
    if normalise_depth is None:
        normalise_depth = len(res) > 1
    fams = curve_families(res)
    if measures is not None:
        wanted = set(measures)
        fams = [f for f in fams if wanted.intersection(f.keys)]
    if not fams:
        raise InputError("The results contain no per-layer measures to plot.")
    names = _names(res)
    ncols = max(1, min(ncols, len(fams)))
    nrows = math.ceil(len(fams) / ncols)
    with style():
        fig = _new_figure(3.6 * ncols, 2.55 * nrows + (0.5 if len(res) > 1 else 0.0))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        model_handles: list[Any] = []
        for idx, fam in enumerate(fams):
            ax = axes[idx // ncols][idx % ncols]
            for m, r in enumerate(res):
                x = layer_positions(r, normalise_depth)
                for j, key in enumerate(fam.keys):
                    y = _values(r, key)
                    if not np.isfinite(y).any():
                        continue
                    if len(res) == 1:
                        colour, ls = PALETTE[j % len(PALETTE)], "-"
                    else:
                        colour, ls = PALETTE[m % len(PALETTE)], LINESTYLES[j % len(LINESTYLES)]
                    ok = np.isfinite(y)
                    (line,) = ax.plot(
                        x[ok],
                        y[ok],
                        color=colour,
                        linestyle=ls,
                        marker=MARKERS[j % len(MARKERS)],
                        label=fam.labels[j] if (len(res) == 1 or m == 0) else None,
                    )
                    if len(res) > 1 and j == 0 and len(model_handles) < len(res) and idx == 0:
                        model_handles.append(line)
            ax.set_title(fam.title, loc="left")
            ax.set_ylabel(fam.ylabel)
            ax.set_xlabel(_layer_axis_label(normalise_depth))
            if fam.ylim is not None:
                ax.set_ylim(*fam.ylim)
            elif fam.ylabel == "count":  # counts are never negative (an all-zero curve too)
                ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1.0))
                ax.yaxis.get_major_locator().set_params(integer=True)
            if not normalise_depth:
                ax.xaxis.get_major_locator().set_params(integer=True)
            if len(fam.keys) > 1:
                if len(res) > 1:
                    # Line style encodes the variant; show it in black so it does not read as a model.
                    from matplotlib.lines import Line2D

                    handles = [
                        Line2D(
                            [],
                            [],
                            color="#333333",
                            linestyle=LINESTYLES[j % len(LINESTYLES)],
                            label=lab,
                        )
                        for j, lab in enumerate(fam.labels)
                    ]
                    ax.legend(handles=handles, loc="best")
                else:
                    ax.legend(loc="best")
        for idx in range(len(fams), nrows * ncols):
            axes[idx // ncols][idx % ncols].set_visible(False)
        if len(res) > 1:
            if len(model_handles) < len(res):  # first panel lacked some models
                from matplotlib.lines import Line2D

                model_handles = [
                    Line2D([], [], color=PALETTE[m % len(PALETTE)], marker="o")
                    for m in range(len(res))
                ]
            _legend_below(fig, model_handles, names, "model")
    return fig


# ----------------------------------------------------------------------------- PCA spectrum


def _layer_colours(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps[SEQUENTIAL_CMAP]
    if n == 1:
        return [cmap(0.35)]
    return [cmap(0.92 * i / (n - 1)) for i in range(n)]


def _pick_layers(results: Mapping[str, Any], layers: Sequence[int] | None, limit: int) -> list[int]:
    available = [int(lay["layer"]) for lay in results["layers"]]
    if layers is not None:
        return [lay for lay in layers if lay in available]
    if len(available) <= limit:
        return available
    idx = np.unique(np.round(np.linspace(0, len(available) - 1, limit)).astype(int))
    return [available[i] for i in idx]


def _layer_entry(results: Mapping[str, Any], layer: int) -> Mapping[str, Any]:
    for lay in results["layers"]:
        if int(lay["layer"]) == layer:
            return lay
    raise InputError(f"Layer {layer} is not in the results.")


def plot_pca_spectrum(
    results: ResultsLike,
    *,
    layers: Sequence[int] | None = None,
    n_components: int = 100,
) -> Any:
    """Plot the PCA spectrum (explained variance per component and cumulative) per layer.

    Parameters
    ----------
    results : dict or sequence of dict
        One results dict (one line per layer) or several (last layer of each model).
    layers : sequence of int, optional
        Layers to draw for a single model; default up to 7 evenly spaced layers.
    n_components : int
        Number of leading components shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    res = _results_list(results)
    series: list[tuple[str, np.ndarray, Any]] = []
    if len(res) == 1:
        chosen = _pick_layers(res[0], layers, 7)
        for lay, colour in zip(chosen, _layer_colours(len(chosen)), strict=True):
            evr = (_layer_entry(res[0], lay).get("details") or {}).get("explained_variance_ratio")
            if evr:
                series.append((f"layer {lay}", np.asarray(evr, float)[:n_components], colour))
    else:
        for m, (r, name) in enumerate(zip(res, _names(res), strict=True)):
            last = r["layers"][-1]
            evr = (last.get("details") or {}).get("explained_variance_ratio")
            if evr:
                label = f"{name}, layer {last['layer']}"
                series.append((label, np.asarray(evr, float)[:n_components], PALETTE[m % 8]))
    if not series:
        raise InputError("The results contain no explained-variance ratios (details missing).")
    with style():
        fig = _new_figure(9.0, 3.5)
        ax1, ax2 = fig.subplots(1, 2)
        for label, evr, colour in series:
            comp = np.arange(1, len(evr) + 1)
            ax1.plot(comp, np.maximum(evr, 1e-12) * 100, color=colour, label=label, lw=1.5)
            ax2.plot(comp, np.cumsum(evr) * 100, color=colour, label=label, lw=1.5)
        ax1.set_yscale("log")
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax1.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax1.yaxis.set_minor_formatter(NullFormatter())
        ax1.set_title("Variance per principal component", loc="left")
        ax1.set_xlabel("principal component (rank)")
        ax1.set_ylabel("explained variance (% of total, log scale)")
        ax2.axhline(80, color="#666666", lw=0.9, ls="--")
        ax2.text(1, 81.5, "80%", color="#666666", fontsize=8)
        ax2.set_title("Cumulative explained variance", loc="left")
        ax2.set_xlabel("number of principal components")
        ax2.set_ylabel("cumulative explained variance (%)")
        ax2.set_ylim(0, 101)
        ax2.legend(loc="lower right")
    return fig


# ----------------------------------------------------------------------------- clusters


def plot_silhouette(results: ResultsLike, *, layers: Sequence[int] | None = None) -> Any:
    """Plot the k-means silhouette curve per layer and the cluster sizes at the chosen k.

    Parameters
    ----------
    results : dict or sequence of dict
        One results dict; with several, the first is used for cluster sizes and all for the
        silhouette curve of their last layer.
    layers : sequence of int, optional
        Layers to draw; default up to 7 evenly spaced layers.

    Returns
    -------
    matplotlib.figure.Figure
    """
    res = _results_list(results)
    curves: list[tuple[str, Any, Any]] = []
    sizes: list[tuple[str, list[float]]] = []
    if len(res) == 1:
        chosen = _pick_layers(res[0], layers, 7)
        colours = _layer_colours(len(chosen))
        entries = [
            (f"layer {lay}", _layer_entry(res[0], lay), c)
            for lay, c in zip(chosen, colours, strict=True)
        ]
        all_entries = [(f"layer {lay['layer']}", lay) for lay in res[0]["layers"]]
    else:
        entries = [
            (f"{n}, layer {r['layers'][-1]['layer']}", r["layers"][-1], PALETTE[m % 8])
            for m, (r, n) in enumerate(zip(res, _names(res), strict=True))
        ]
        all_entries = [(label, lay) for label, lay, _ in entries]
    for label, lay, colour in entries:
        sc = (lay.get("details") or {}).get("silhouette_curve") or {}
        if sc.get("k") and sc.get("score"):
            curves.append((label, sc, colour))
    for label, lay in all_entries:
        cs = (lay.get("details") or {}).get("cluster_sizes")
        if cs:
            sizes.append((label, [float(s) for s in cs]))
    if not curves and not sizes:
        raise InputError("The results contain no silhouette curves or cluster sizes.")
    with style():
        fig = _new_figure(9.0, max(3.4, 0.28 * len(sizes) + 1.4))
        ax1, ax2 = fig.subplots(1, 2)
        for label, sc, colour in curves:
            k = np.asarray(sc["k"], float)
            s = np.array([np.nan if v is None else float(v) for v in sc["score"]])
            ax1.plot(k, s, color=colour, marker="o", label=label)
            if np.isfinite(s).any():
                b = int(np.nanargmax(s))
                ax1.plot(k[b], s[b], marker="*", ms=11, color=colour, mec="black", mew=0.6)
        ax1.set_title("Silhouette vs number of clusters", loc="left")
        ax1.set_xlabel("k (number of k-means clusters)")
        ax1.set_ylabel("mean silhouette (−1 … 1)")
        ax1.xaxis.get_major_locator().set_params(integer=True)
        if curves:
            ax1.legend(loc="best", ncols=2 if len(curves) > 4 else 1, fontsize=7.5)
        # Cluster sizes as shares of each layer's sample, largest first.
        for row, (_label, cs) in enumerate(sizes):
            share = np.sort(np.asarray(cs))[::-1] / max(sum(cs), 1.0)
            left = 0.0
            for j, w in enumerate(share):
                ax2.barh(row, w * 100, left=left, color=PALETTE[j % 7], edgecolor="white", lw=0.6)
                if w > 0.08:
                    ax2.text(
                        left + w * 50,
                        row,
                        f"{w * 100:.0f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white",
                    )
                left += w * 100
        ax2.set_yticks(range(len(sizes)), [mpl_text(lbl) for lbl, _ in sizes])
        ax2.invert_yaxis()
        ax2.set_xlim(0, 100)
        ax2.grid(axis="y", visible=False)
        ax2.set_title("Cluster sizes at the chosen k", loc="left")
        ax2.set_xlabel("share of sampled tokens (%), largest cluster first")
    return fig


# ----------------------------------------------------------------------------- LID


def plot_lid_distribution(results: ResultsLike) -> Any:
    """Plot the distribution of per-point local intrinsic dimension for each layer.

    Uses ``details.lid_values`` (a seeded subsample of per-point MLE estimates).

    Parameters
    ----------
    results : dict or sequence of dict
        One results dict (all layers), or several (one row of panels per model).

    Returns
    -------
    matplotlib.figure.Figure
    """
    res = _results_list(results)
    names = _names(res)
    data = []
    for r in res:
        layers, vals = [], []
        for lay in r["layers"]:
            v = (lay.get("details") or {}).get("lid_values")
            if v:
                arr = np.asarray([x for x in v if x is not None], float)
                arr = arr[np.isfinite(arr)]
                if arr.size:
                    layers.append(int(lay["layer"]))
                    vals.append(arr)
        data.append((layers, vals))
    if not any(layers for layers, _ in data):
        raise InputError("The results contain no per-point LID values (details.lid_values).")
    n = len(res)
    with style():
        fig = _new_figure(
            max(7.5, min(1.6 + 0.55 * max(len(d[0]) for d in data), 11.0)) if n == 1 else 9.0,
            3.3 * n,
        )
        axes = fig.subplots(n, 1, squeeze=False)[:, 0]
        for m, (ax, (layers, vals)) in enumerate(zip(axes, data, strict=True)):
            if not layers:
                ax.set_visible(False)
                continue
            colour = PALETTE[m % 8] if n > 1 else PALETTE[0]
            parts = ax.violinplot(vals, positions=range(len(layers)), showextrema=False, widths=0.8)
            for body in parts["bodies"]:
                body.set_facecolor(colour)
                body.set_alpha(0.35)
                body.set_edgecolor(colour)
            q1, med, q3 = (np.array([np.percentile(v, q) for v in vals]) for q in (25, 50, 75))
            pos = np.arange(len(layers))
            ax.vlines(pos, q1, q3, color=colour, lw=4)
            ax.scatter(pos, med, color="white", edgecolor=colour, zorder=3, s=22, label="median")
            ax.set_xticks(pos, [str(lay) for lay in layers])
            ax.set_xlabel("layer (hidden-state index, 0 = embeddings)")
            ax.set_ylabel("local intrinsic dimension\n(k-NN MLE, dimensions)")
            top = float(np.percentile(np.concatenate(vals), 99))
            cut = top < max(float(v.max()) for v in vals)
            if cut:
                ax.set_ylim(0, top * 1.08)
            sizes = sorted({len(v) for v in vals})
            title = f"{mpl_text(names[m])}: LID per point" if n > 1 else "LID per point"
            count = f"{sizes[0]}–{sizes[-1]}" if len(sizes) > 1 else f"{sizes[0]}"
            ax.set_title(f"{title} ({count} points per layer)", loc="left")
            if cut:
                ax.text(
                    1.0,
                    1.01,
                    "axis cut at the 99th percentile",
                    transform=ax.transAxes,
                    ha="right",
                    va="bottom",
                    fontsize=7.5,
                    color="#666666",
                )
            ax.grid(axis="x", visible=False)
    return fig


# ----------------------------------------------------------------------------- token clouds


def _scatter_cloud(ax: Any, cloud: TokenCloud, dims: tuple[int, int], norm: Any) -> Any:
    x, y = cloud.coords[:, dims[0]], cloud.coords[:, dims[1]]
    f = cloud.log_freq
    known = np.isfinite(f)
    s = 9 if cloud.n <= 2500 else 4
    ax.scatter(
        x[~known],
        y[~known],
        s=s,
        c="#bbbbbb",
        lw=0,
        alpha=0.6,
        rasterized=True,
        label="frequency unknown",
    )
    # Rare words on top: frequent function words would otherwise hide them.
    order = np.argsort(-f[known])
    sc = ax.scatter(
        x[known][order],
        y[known][order],
        s=s,
        c=f[known][order],
        cmap=SEQUENTIAL_CMAP,
        norm=norm,
        lw=0,
        alpha=0.85,
        rasterized=True,
    )
    evr = cloud.explained_variance_ratio
    ax.set_xlabel(f"PC{dims[0] + 1} ({evr[dims[0]] * 100:.1f}% of variance)")
    ax.set_ylabel(f"PC{dims[1] + 1} ({evr[dims[1]] * 100:.1f}% of variance)")
    ax.set_aspect("equal", adjustable="datalim")
    return sc


def plot_pca_cloud(clouds: TokenCloud | Sequence[TokenCloud], *, ncols: int = 3) -> Any:
    """Plot 2-D PCA views (PC1 vs PC2) of token clouds coloured by log word frequency.

    Parameters
    ----------
    clouds : TokenCloud or sequence of TokenCloud
        Computed clouds (:class:`isoscope.artefacts.Artefacts`); one panel per cloud.
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import Normalize

    cl = [clouds] if isinstance(clouds, TokenCloud) else list(clouds)
    if not cl:
        raise InputError("No token clouds were given to plot.")
    finite = np.concatenate([c.log_freq[np.isfinite(c.log_freq)] for c in cl] + [np.zeros(0)])
    norm = Normalize(*(np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)))
    ncols = max(1, min(ncols, len(cl)))
    nrows = math.ceil(len(cl) / ncols)
    with style():
        fig = _new_figure(3.3 * ncols + 0.9, 3.2 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        sc = None
        for i, c in enumerate(cl):
            ax = axes[i // ncols][i % ncols]
            sc = _scatter_cloud(ax, c, (0, 1), norm)
            ax.grid(False)
            head = f"{mpl_text(c.title)}, " if c.title and len({x.title for x in cl}) > 1 else ""
            ax.set_title(
                f"{head}layer {c.layer}" if c.layer is not None else head or "tokens", loc="left"
            )
        for idx in range(len(cl), nrows * ncols):
            axes[idx // ncols][idx % ncols].set_visible(False)
        if sc is not None and finite.size:
            cb = fig.colorbar(sc, ax=axes.ravel().tolist(), shrink=0.85, pad=0.01)
            cb.set_label(cl[0].freq_label)
        fig.suptitle(
            f"{cl[0].n} tokens per panel (seed {cl[0].seed}); each panel has its own PCA",
            fontsize=8.5,
            x=0.01,
            ha="left",
            color="#555555",
        )
    return fig


# ----------------------------------------------------------------------------- word trajectories


def plot_word_trajectories(data: Mapping[str, Any]) -> Any:
    """Plot chosen words' occurrences as trajectories across layers.

    Left: each occurrence's path through the layer-aligned 2-D PCA plane (hollow circle =
    first layer, filled = last, thick line = the word's mean path). Right: mean cosine
    between a word's occurrences per layer, against the random-pair baseline.

    Parameters
    ----------
    data : dict
        Trajectories computed once by :func:`isoscope.artefacts.word_trajectories` (saved
        with the run's artefacts).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(data, Mapping) or "paths" not in data:
        raise InputError(
            "plot_word_trajectories draws computed trajectories; compute them with "
            "isoscope.artefacts.word_trajectories."
        )
    layers = data["layers"]
    with style():
        fig = _new_figure(9.6, 4.0)
        ax1, ax2 = fig.subplots(1, 2, width_ratios=[1.1, 1])
        for i, w in enumerate(data["words"]):
            colour = PALETTE[i % 7]
            P = data["paths"][w]
            for occ in P:
                ax1.plot(occ[:, 0], occ[:, 1], color=colour, lw=0.7, alpha=0.35)
            mean = P.mean(axis=0)
            ax1.plot(mean[:, 0], mean[:, 1], color=colour, lw=2.4)
            ax1.scatter(P[:, 0, 0], P[:, 0, 1], s=14, facecolor="white", edgecolor=colour, zorder=3)
            ax1.scatter(P[:, -1, 0], P[:, -1, 1], s=14, color=colour, zorder=3)
            ax1.annotate(
                f"L{layers[0]}",
                mean[0],
                fontsize=7,
                color=colour,
                xytext=(3, 3),
                textcoords="offset points",
            )
            ax1.annotate(
                f"L{layers[-1]}",
                mean[-1],
                fontsize=7,
                color=colour,
                xytext=(3, 3),
                textcoords="offset points",
            )
            ax2.plot(
                layers,
                data["self_similarity"][w],
                color=colour,
                marker="o",
                label=f"{mpl_text(w)} ({len(P)} occurrences)",
            )
        ax2.plot(layers, data["baseline"], color="#555555", ls="--", label="random token pairs")
        ax1.set_title("Occurrences moving through the layers", loc="left")
        ax1.set_xlabel("aligned PC1 (unit = RMS radius of the cloud)")
        ax1.set_ylabel("aligned PC2 (unit = RMS radius)")
        ax1.set_aspect("equal", adjustable="datalim")
        ax2.set_title("How alike a word's occurrences are", loc="left")
        ax2.set_xlabel("layer (hidden-state index, 0 = embeddings)")
        ax2.set_ylabel("mean cosine between occurrences (−1 … 1)")
        ax2.xaxis.get_major_locator().set_params(integer=True)
        ax2.legend(loc="best")
    return fig


# ----------------------------------------------------------------------------- repairs


def _bar_label(v: float) -> str:
    if not np.isfinite(v):
        return "n/a"
    if abs(v) >= 100 or float(v).is_integer():
        return f"{v:.0f}"
    if abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.2f}"


def _transform_label(t: Mapping[str, Any]) -> str:
    if t.get("spec"):
        return str(t["spec"])
    params = t.get("params") or {}
    p = ", ".join(f"{k}={v}" for k, v in params.items())
    name = str(t.get("name", "transform"))
    return f"{name}({p})" if p else name


def plot_transform_panels(
    results: Mapping[str, Any],
    *,
    measures: Sequence[str] | None = None,
    ncols: int = 4,
) -> Any:
    """Plot each repair's geometry before and after, one panel per measure.

    Parameters
    ----------
    results : dict
        A results dict with a ``transforms`` list (``name``, ``params``, ``fit``, ``layer``,
        ``before``, ``after``).
    measures : sequence of str, optional
        Measure keys; default the headline measures present in the data.
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ts = list(results.get("transforms") or [])
    if not ts:
        raise InputError("The results contain no transforms to compare.")
    keys = list(measures) if measures is not None else [k for k, _ in HEADLINE_KEYS]

    def num(d: Mapping[str, Any] | None, k: str) -> float:
        v = (d or {}).get(k)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan

    keys = [
        k
        for k in keys
        if any(np.isfinite([num(t.get("before"), k), num(t.get("after"), k)]).any() for t in ts)
    ]
    if not keys:
        raise InputError("The transforms carry no before/after measures to plot.")
    labels = dict(HEADLINE_KEYS)
    multi_layer = len({t.get("layer") for t in ts}) > 1
    # Bars: the untransformed layer(s) first, then each repair.
    bars: list[tuple[str, str, Mapping[str, Any]]] = []
    seen_layers: set[Any] = set()
    for t in ts:
        if t.get("layer") not in seen_layers:
            seen_layers.add(t.get("layer"))
            name = f"original L{t.get('layer')}" if multi_layer else "original"
            bars.append((name, BEFORE_COLOUR, t.get("before") or {}))
    for i, t in enumerate(ts):
        fit = t.get("fit")
        name = _transform_label(t) + (f" [{fit}]" if fit else "")
        if multi_layer:
            name += f" L{t.get('layer')}"
        colours = [c for c in PALETTE if c != AFTER_COLOUR] if i else [AFTER_COLOUR]
        bars.append((name, [AFTER_COLOUR, *colours][i % 7], t.get("after") or {}))
    ncols = max(1, min(ncols, len(keys)))
    nrows = math.ceil(len(keys) / ncols)
    from matplotlib.patches import Patch

    with style():
        fig = _new_figure(2.6 * ncols, 2.3 * nrows + 0.35 + 0.22 * math.ceil(len(bars) / 3))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for idx, k in enumerate(keys):
            ax = axes[idx // ncols][idx % ncols]
            vals = [num(d, k) for _, _, d in bars]
            pos = np.arange(len(bars))
            ax.bar(pos, np.nan_to_num(vals), color=[c for _, c, _ in bars], width=0.75)
            span = np.nanmax(np.abs(vals)) if np.isfinite(vals).any() else 1.0
            for p, v in zip(pos, vals, strict=True):
                txt = _bar_label(v)
                off = 0.02 * (span or 1.0)
                ax.text(
                    p,
                    (v if np.isfinite(v) else 0)
                    + (off if (v if np.isfinite(v) else 0) >= 0 else -off),
                    txt,
                    ha="center",
                    va="bottom" if not np.isfinite(v) or v >= 0 else "top",
                    fontsize=7,
                )
            ax.axhline(0, color="#444444", lw=0.6)
            ax.set_xticks([])
            ax.grid(axis="x", visible=False)
            ax.set_title(labels.get(k, k.replace("_", " ")), loc="left", fontsize=9)
            ax.margins(y=0.15)
        for idx in range(len(keys), nrows * ncols):
            axes[idx // ncols][idx % ncols].set_visible(False)
        names = [mpl_text(n) for n, _, _ in bars]
        handles = [Patch(color=c, label=n) for n, (_, c, _) in zip(names, bars, strict=True)]
        _legend_below(fig, handles, names, None)
    return fig


# ----------------------------------------------------------------------------- evaluation


def _table_records(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    # STS12-16 sub-set rows and the mean-of-sub-sets aggregate are detail, not table columns
    # (the pooled "all" aggregate is the column), as in EvaluationResults.table().
    return [
        r
        for r in rows
        if r.get("in_table", True)
        and r.get("subset") is None
        and r.get("aggregate") != "mean of sub-sets"
    ]


def _cell_value(r: Mapping[str, Any], value: str) -> Any:
    if value == "score":
        return r.get("accuracy") if r.get("accuracy") is not None else r.get("spearman")
    return r.get(value)


def _is_unit_scale(rows: Sequence[Mapping[str, Any]]) -> bool:
    """True when correlations are stored in -1..1 (not already x 100)."""
    vals = [
        abs(float(v))
        for r in rows
        for v in (r.get("spearman"), r.get("pearson"))
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    ]
    return bool(vals) and max(vals) <= 1.0


def evaluation_table(
    results: Mapping[str, Any] | Sequence[Mapping[str, Any]], value: str = "score"
) -> Any:
    """Return the evaluation scores as a table: rows repairs, columns tasks.

    Parameters
    ----------
    results : dict or list
        A results dict with an ``evaluation`` list, or that list itself. Each entry has
        ``task``, ``dataset``, ``transform``, ``fit``, ``spearman``, ``pearson``, ``n``, ``oov``
        (and, from :func:`isoscope.evaluate.evaluate`, ``column``, ``accuracy``, ``subset``).
    value : {"score", "spearman", "pearson", "n", "oov"}
        Which number fills the cells; ``score`` is Spearman, or accuracy for analogy tasks.

    Returns
    -------
    pandas.DataFrame
        Index ``repair`` (transform, with the fit mode in brackets), columns tasks. Scores
        are x 100 (correlations given in -1..1 are scaled); ``n`` and ``oov`` are counts.
    """
    import pandas as pd

    rows = results.get("evaluation") if isinstance(results, Mapping) else results
    rows = _table_records(list(rows or []))
    if not rows:
        return pd.DataFrame()
    scale = 100.0 if value in ("score", "spearman", "pearson") and _is_unit_scale(rows) else 1.0
    recs = []
    for r in rows:
        tr = str(r.get("transform") or "none")
        fit = r.get("fit")
        v = _cell_value(r, value)
        if value == "score" and r.get("accuracy") is not None:
            v = float(v) * (100.0 if float(v) <= 1.0 and scale == 100.0 else 1.0)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            v = float(v) * scale
        column = r.get("column") or f"{r.get('task', '')} / {r.get('dataset', '')}".strip(" /")
        recs.append(
            {
                "repair": tr if not fit or tr == "none" else f"{tr} [{fit}]",
                "task": str(column),
                "value": np.nan if v is None else v,
            }
        )
    df = pd.DataFrame(recs)
    order = list(dict.fromkeys(df["repair"]))
    cols = list(dict.fromkeys(df["task"]))
    table = df.pivot_table(
        index="repair", columns="task", values="value", aggfunc="first", dropna=False
    )
    return table.reindex(index=order, columns=cols)
