"""Figures and tables of issue 16's report panels: layer × layer similarity, massive
activations, the GRIDE scale curve, outlier dimensions and cross-model similarity.

Each function draws only what ``results.json`` (or ``cross_model.json``) holds, and raises
:class:`~isoscope.errors.InputError` in one sentence when the results lack its keys (older
runs), so the report shows why a panel is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from isoscope.errors import InputError
from isoscope.measures._catalogue import MASSIVE_ABS, MASSIVE_FACTOR
from isoscope.report._figures import (
    ResultsLike,
    _layer_colours,
    _names,
    _new_figure,
    _results_list,
    layer_positions,
    mpl_text,
)
from isoscope.report._style import PALETTE, SEQUENTIAL_CMAP, style


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan


def _matrix(section: Mapping[str, Any], key: str) -> np.ndarray:
    return np.array([[_num(v) for v in row] for row in section[key]], dtype=float)


def similarity_sections(results: ResultsLike) -> list[tuple[str, Mapping[str, Any]]]:
    """``(name, layer_similarity)`` of every run that has the section."""
    res = _results_list(results)
    return [(n, r["layer_similarity"]) for n, r in zip(_names(res), res, strict=True)
            if isinstance(r.get("layer_similarity"), Mapping)]


def _heatmap(ax: Any, fig: Any, M: np.ndarray, layers: Sequence[int], title: str,
             label: str, vmin: float = 0.0, vmax: float = 1.0) -> None:
    im = ax.imshow(M, cmap=SEQUENTIAL_CMAP, vmin=vmin, vmax=vmax, origin="lower",
                   interpolation="nearest")
    ticks = np.unique(np.round(np.linspace(0, len(layers) - 1, min(len(layers), 8))).astype(int))
    ax.set_xticks(ticks, [str(layers[i]) for i in ticks])
    ax.set_yticks(ticks, [str(layers[i]) for i in ticks])
    ax.set_xlabel("layer")
    ax.set_ylabel("layer")
    ax.set_title(title, loc="left")
    ax.grid(False)
    if len(layers) <= 8:
        for i in range(len(layers)):
            for j in range(len(layers)):
                if np.isfinite(M[i, j]):
                    ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if M[i, j] < 0.6 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)


def _sparse_ticks(ax: Any, labels: Sequence[str], most: int = 12) -> None:
    """Label at most ``most`` of the x positions 0..len(labels)-1 (every other one, …)."""
    step = max(1, int(np.ceil(len(labels) / most)))
    at = np.arange(0, len(labels), step)
    ax.set_xticks(at, [labels[int(i)] for i in at], rotation=45 if len(at) > 6 else 0)


def plot_layer_similarity(results: ResultsLike) -> Any:
    """Layer × layer linear CKA (and, for one run, mutual k-NN and consecutive χ).

    Parameters
    ----------
    results : dict or sequence of dict
        Results with a ``layer_similarity`` section; several runs give one CKA map each.

    Returns
    -------
    matplotlib.figure.Figure
    """
    secs = similarity_sections(results)
    if not secs:
        raise InputError("The results have no layer_similarity section (analysed with one layer, "
                         "similarity_sample=0, or an older isoscope).")
    with style():
        if len(secs) > 1:
            fig = _new_figure(4.2 * len(secs), 3.8)
            axes = fig.subplots(1, len(secs), squeeze=False)[0]
            for ax, (name, sec) in zip(axes, secs, strict=True):
                _heatmap(ax, fig, _matrix(sec, "cka_linear"), sec["layers"],
                         f"{mpl_text(name)}: linear CKA (n = {sec.get('n')})", "linear CKA")
            return fig
        name, sec = secs[0]
        fig = _new_figure(13.0, 3.9)
        ax1, ax2, ax3 = fig.subplots(1, 3)
        lay = sec["layers"]
        _heatmap(ax1, fig, _matrix(sec, "cka_linear"), lay, f"Linear CKA (n = {sec.get('n')})",
                 "linear CKA")
        _heatmap(ax2, fig, _matrix(sec, "mutual_knn"), lay,
                 f"Mutual {sec.get('k')}-NN overlap (chance {_num(sec.get('mutual_knn_chance')):.3f})",
                 "share of shared neighbours")
        chi = [_num(v) for v in sec.get("chi_overlap") or []]
        pairs = sec.get("chi_pairs") or []
        x = np.arange(len(chi))
        ax3.plot(x, chi, marker="o", color=PALETTE[0], label="χ (Euclidean k-NN)")
        if sec.get("cka_debiased") is not None:
            deb = _matrix(sec, "cka_debiased")
            ax3.plot(x, [deb[i, i + 1] for i in x], marker="s", ms=7, color=PALETTE[1],
                     label="debiased CKA")
        # dashed with small markers on top: visible where it coincides with the debiased one
        ax3.plot(x, [_matrix(sec, "cka_linear")[i, i + 1] for i in x], marker="^", ms=4,
                 ls="--", color=PALETTE[2], label="linear CKA")
        _sparse_ticks(ax3, [f"{a}→{b}" for a, b in pairs])
        ax3.set_ylim(0, 1.02)
        ax3.set_xlabel("consecutive layers")
        ax3.set_ylabel("similarity (0 … 1)")
        ax3.set_title("Consecutive layers", loc="left")
        ax3.legend(loc="lower right", fontsize=7.5)
    return fig


def _massive_runs(res: list[Mapping[str, Any]]) -> list[int]:
    return [i for i, r in enumerate(res)
            if any(np.isfinite(_num(e.get("max_abs_activation"))) for e in r["layers"])]


def plot_massive_activations(results: ResultsLike) -> Any:
    """Largest |a| against the median |a| per layer, and the dimensions of the largest ones.

    Left: ``max_abs_activation`` and ``median_abs_activation`` per layer (log scale) with Sun
    et al.'s threshold max(100, 1000 × median). Right: the dimensions listed in
    ``massive_activation_top`` per layer, filled where they pass the thresholds.

    Parameters
    ----------
    results : dict or sequence of dict

    Returns
    -------
    matplotlib.figure.Figure
    """
    res = _results_list(results)
    names = _names(res)
    runs = _massive_runs(res)
    if not runs:
        raise InputError("The results have no massive-activation measures (an older isoscope).")
    compare = len(res) > 1
    with style():
        fig = _new_figure(11.0, 3.9)
        ax1, ax2 = fig.subplots(1, 2)
        for m, i in enumerate(runs):
            r = res[i]
            x = layer_positions(r, compare)
            top = np.array([_num(e.get("max_abs_activation")) for e in r["layers"]])
            med = np.array([_num(e.get("median_abs_activation")) for e in r["layers"]])
            colour = PALETTE[m % 8]
            tag = f"{mpl_text(names[i])}: " if compare else ""
            ax1.plot(x, top, marker="o", color=colour, label=f"{tag}largest |a|")
            ax1.plot(x, med, ls="--", color=colour, label=f"{tag}median |a|")
            ax1.plot(x, np.maximum(MASSIVE_ABS, MASSIVE_FACTOR * med), ls=":", color=colour,
                     alpha=0.7, label=f"{tag}threshold")
            for xi, e in zip(x, r["layers"], strict=True):
                for t in e.get("massive_activation_top") or []:
                    if not isinstance(t, Mapping):
                        continue
                    v = abs(_num(t.get("value")))
                    ax2.scatter(xi, _num(t.get("dim")), s=12 + 60 * v / max(np.nanmax(top), 1e-12),
                                color=colour, alpha=0.8,
                                facecolors=colour if t.get("massive") else "none")
        ax1.set_yscale("log")
        ax1.set_ylabel("|activation| (model units, log)")
        ax1.set_title("Largest and median |activation|", loc="left")
        ax1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                   ncol=3, frameon=False)
        ax2.set_ylabel("dimension")
        ax2.set_title("Dimensions of the largest |a| (filled: massive; size: |a|)", loc="left")
        for ax in (ax1, ax2):
            ax.set_xlabel("relative depth" if compare else "layer")
    return fig


def massive_table(results: Mapping[str, Any], per_layer: int = 3) -> dict[str, Any]:
    """The largest activations of each layer: token, position, dimension, value (a table item).

    Parameters
    ----------
    results : dict
    per_layer : int
        Entries of ``massive_activation_top`` shown per layer.

    Returns
    -------
    dict
        ``{"kind": "table", "columns": [...], "rows": [[...], ...]}``.
    """
    rows = []
    for e in results["layers"]:
        for t in (e.get("massive_activation_top") or [])[:per_layer]:
            if isinstance(t, Mapping):
                rows.append([e["layer"], t.get("dim"), _fmt(t.get("value")), t.get("token"),
                             t.get("position"), t.get("row"), "yes" if t.get("massive") else "no"])
    if not rows:
        raise InputError("The results list no largest activations (massive_activation_top).")
    return {"kind": "table", "columns": ["layer", "dim", "value", "token", "position", "row",
                                         "massive"], "rows": rows}


def outlier_table(results: Mapping[str, Any]) -> dict[str, Any]:
    """Outlier dimensions per layer with the token of their largest |a| (a table item).

    Parameters
    ----------
    results : dict

    Returns
    -------
    dict
        ``{"kind": "table", ...}``; layers without outlier dimensions have one row saying so.
    """
    rows = []
    seen = False
    for e in results["layers"]:
        dims = e.get("outlier_dimensions")
        if dims is None:
            continue
        seen = True
        if not dims:
            rows.append([e["layer"], "none", "", "", "", ""])
        for t in dims:
            if isinstance(t, Mapping):
                rows.append([e["layer"], t.get("dim"), _fmt(t.get("z")), _fmt(t.get("mean_abs")),
                             t.get("top_token"), _fmt(t.get("top_value"))])
    if not seen:
        raise InputError("The results have no outlier_dimensions (an older isoscope).")
    return {"kind": "table", "columns": ["layer", "dim", "z-score", "mean |a|",
                                         "token of the dimension's largest |a|",
                                         "that value (signed)"], "rows": rows}


def _fmt(v: Any) -> str:
    x = _num(v)
    return "—" if not np.isfinite(x) else f"{x:.3g}"


def _gride_curves(r: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    found = []
    for e in r["layers"]:
        c = (e.get("details") or {}).get("gride_curve")
        if isinstance(c, Mapping) and c.get("id"):
            found.append((int(e["layer"]), c))
    return found


#: Layers above which the scale curves get a colour bar instead of a legend.
GRIDE_LEGEND_MAX = 8


def plot_gride_curve(results: ResultsLike) -> Any:
    """GRIDE intrinsic dimension against the neighbour scale, one line per layer.

    Uses ``details.gride_curve`` (``n2`` the neighbour rank, ``id`` and its error ``err``).
    For one run a second panel gives the same values against the layer, one line per scale;
    with more than :data:`GRIDE_LEGEND_MAX` layers a colour bar names the layers.

    Parameters
    ----------
    results : dict or sequence of dict
        One panel per run.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    res = _results_list(results)
    names = _names(res)
    curves = [_gride_curves(r) for r in res]
    if not any(curves):
        raise InputError("The results have no GRIDE scale curve (details.gride_curve).")
    shown = [(names[i], cs) for i, cs in enumerate(curves) if cs]
    by_layer = len(shown) == 1
    with style():
        panels = 2 if by_layer else len(shown)
        fig = _new_figure(min(5.5 * panels, 14.0), 3.9)
        axes = fig.subplots(1, panels, squeeze=False)[0]
        for ax, (name, cs) in zip(axes, shown, strict=False):
            colours = _layer_colours(len(cs))
            for (lay, c), colour in zip(cs, colours, strict=True):
                x = np.array([_num(v) for v in c["n2"]])
                y = np.array([_num(v) for v in c["id"]])
                err = np.array([_num(v) for v in c.get("err") or [np.nan] * len(y)])
                ax.errorbar(x, y, yerr=np.where(np.isfinite(err), err, 0.0), marker="o", ms=3,
                            color=colour, capsize=2, lw=1.2, label=f"layer {lay}")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("neighbour rank 2n (scale; μ = r_2n / r_n)")
            ax.set_ylabel("GRIDE intrinsic dimension")
            ax.set_title(f"{mpl_text(name)}: ID across scales" if len(shown) > 1
                         else "ID across scales", loc="left")
            if len(cs) <= GRIDE_LEGEND_MAX:
                ax.legend(fontsize=7, loc="best")
            else:  # a legend of many layers would hide the curves: a colour bar instead
                layers = [lay for lay, _ in cs]
                sm = matplotlib.cm.ScalarMappable(
                    cmap=matplotlib.colors.ListedColormap(colours),
                    norm=matplotlib.colors.Normalize(min(layers) - 0.5, max(layers) + 0.5))
                fig.colorbar(sm, ax=ax, shrink=0.85, label="layer")
        if by_layer:
            _, cs = shown[0]
            ax = axes[1]
            scales = sorted({int(_num(v)) for _, c in cs for v in c["n2"]})
            for j, n2 in enumerate(scales):
                pts = [(lay, _num(c["id"][list(c["n2"]).index(n2)]),
                        _num((c.get("err") or [np.nan] * len(c["id"]))[list(c["n2"]).index(n2)]))
                       for lay, c in cs if n2 in list(c["n2"])]
                xs, y, err = (np.array(v, dtype=float) for v in zip(*pts, strict=True))
                ax.errorbar(xs, y, yerr=np.where(np.isfinite(err), err, 0.0), marker="o", ms=3,
                            capsize=2, lw=1.2, color=PALETTE[j % len(PALETTE)],
                            label=f"2n = {n2}")
            ax.set_xlabel("layer")
            ax.set_ylabel("GRIDE intrinsic dimension")
            ax.set_title("ID across layers, one line per scale", loc="left")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.legend(fontsize=7, loc="best")
    return fig


def plot_cross_model(cross: Mapping[str, Any]) -> Any:
    """Cross-model linear CKA and mutual k-NN at matched relative depth, one line per pair.

    Parameters
    ----------
    cross : dict
        :func:`isoscope.analysis._crossmodel.compare_runs` output.

    Returns
    -------
    matplotlib.figure.Figure
    """
    pairs = [p for p in cross.get("pairs") or [] if isinstance(p, Mapping)]
    if not pairs:
        raise InputError("No two runs could be compared across models.")
    with style():
        fig = _new_figure(11.0, 3.8)
        ax1, ax2 = fig.subplots(1, 2)
        for m, p in enumerate(pairs):
            colour = PALETTE[m % 8]
            a, b = (mpl_text(x) for x in p["models"])
            label = f"{a} vs {b} ({p['n_aligned']} words)"
            ax1.plot(p["depth"], [_num(v) for v in p["cka_linear"]], marker="o", color=colour,
                     label=f"{label}, linear")
            if p.get("cka_debiased") is not None:
                ax1.plot(p["depth"], [_num(v) for v in p["cka_debiased"]], ls="--", marker="s",
                         ms=3, color=colour, label=f"{label}, debiased")
            ax2.plot(p["depth"], [_num(v) for v in p["mutual_knn"]], marker="o", color=colour,
                     label=label)
            ax2.axhline(_num(p.get("mutual_knn_chance")), ls=":", color=colour, alpha=0.7)
        ax1.set_title("Linear CKA at matched depth", loc="left")
        ax2.set_title(f"Mutual {pairs[0].get('k')}-NN overlap (dotted: chance)", loc="left")
        for ax in (ax1, ax2):
            ax.set_xlabel("relative depth (0 = embeddings, 1 = last)")
            ax.set_ylim(0, 1.02)
            ax.legend(fontsize=7, loc="best")
    return fig


def cross_model_table(cross: Mapping[str, Any]) -> dict[str, Any]:
    """The matched layers and their similarity, one row per layer pair (a table item)."""
    rows = []
    for p in cross.get("pairs") or []:
        a, b = p["models"]
        deb = p.get("cka_debiased") or [None] * len(p["depth"])
        for la, lb, t, c, d, k in zip(p["layers_a"], p["layers_b"], p["depth"], p["cka_linear"],
                                      deb, p["mutual_knn"], strict=True):
            rows.append([f"{a} vs {b}", p["n_aligned"], _fmt(t), la, lb, _fmt(c), _fmt(d), _fmt(k)])
    return {"kind": "table", "columns": ["models", "aligned words", "depth", "layer (first)",
                                         "layer (second)", "linear CKA", "debiased CKA",
                                         "mutual k-NN"], "rows": rows}


__all__ = [
    "cross_model_table",
    "massive_table",
    "outlier_table",
    "plot_cross_model",
    "plot_gride_curve",
    "plot_layer_similarity",
    "plot_massive_activations",
    "similarity_sections",
]
