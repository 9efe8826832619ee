"""The self-contained HTML report: figures, how-to-read notes, settings, tables."""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import io
import json
import math
import os
import platform
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from isoscope._jsonio import write_atomic, write_text_atomic
from isoscope.artefacts import Artefacts, TokenCloud
from isoscope.errors import InputError
from isoscope.report import _figures as F
from isoscope.report._interactive import plot_pca_cloud_3d, plotly_block, plotly_js
from isoscope.report._style import HEADLINE_KEYS

HOW_TO_READ = {
    "curves": (
        "Each panel follows one measure from the embedding layer (left) to the last layer (right). "
        "Cosine-based measures run from −1 to 1; for anisotropy, values near 0 after centring "
        "mean the raw similarity was only a shared offset. IsoScore and I(V) are 1 (log10: 0) for "
        "a perfectly isotropic cloud. Dashed or second-colour lines are variants of the same "
        "measure (centred, baseline-adjusted, another estimator)."
    ),
    "spectrum": (
        "Left: how much of the total variance each principal direction carries (log scale). A "
        "first component far above the rest is a dominant direction (often a common offset or "
        "frequency). Right: how many directions are needed to reach 80% of the variance; curves "
        "that rise steeply use few dimensions."
    ),
    "clouds": (
        "Every dot is one token occurrence, placed by the first principal components of its layer "
        "(each panel has its own PCA, axes in model units). Colour is the word's log frequency: "
        "yellow = frequent, purple = rare, grey = unknown. Separate islands are clusters; a band "
        "ordered by colour means frequency is encoded geometrically; a curled band is the "
        "'Swiss roll' manifold Cai et al. found in GPT-family models. Drag to rotate the 3-D view, "
        "scroll to zoom, hover for the token; the menu switches layers."
    ),
    "clusters": (
        "Left: mean silhouette of k-means for each number of clusters k (star = best). Values "
        "above ~0.1 indicate real cluster structure; near 0 means one blob. Right: how the sampled "
        "tokens split among the clusters at the chosen k — one huge cluster plus a tiny one often "
        "means a few outlier tokens (e.g. position 0) rather than meaningful groups."
    ),
    "lid": (
        "Local intrinsic dimension estimates how many dimensions a small neighbourhood around each "
        "point really spans (k-NN maximum-likelihood estimator). The violin shows the spread over "
        "points, the bar the interquartile range and the white dot the median. Values far below "
        "the model width mean tokens lie on thin manifolds."
    ),
    "trajectories": (
        "Left: selected occurrences of a few words, followed through the layers in a 2-D plane "
        "(the first two principal components of a background sample, rotated layer by layer to "
        "line up). Thin lines are single occurrences, the thick line their mean; hollow circles "
        "mark the first layer, filled ones the last. Right: mean cosine between a word's "
        "occurrences; falling towards the dashed random-pair line means the model makes the "
        "word's vectors context-specific."
    ),
    "repairs": (
        "Each panel is one measure; the grey bar is the layer as extracted, coloured bars the same "
        "layer after each repair. Repairs are fitted either on other data (inductive) or on the "
        "evaluated vectors themselves (transductive, optimistic). More isotropic is not "
        "automatically better: compare with the evaluation table. Below, measured tokens of the "
        "layer in 2-D PCA before and after each repair, transformed by the very repair the "
        "analysis fitted (never refitted for the picture): a repair that removes a dominant "
        "direction turns an elongated or banded cloud into a rounder one."
    ),
    "evaluation": (
        "Spearman correlation × 100 between model similarities and human judgements (analogy: "
        "accuracy × 100; higher is better); rows are repairs, columns tasks. Cells are shaded by the change from the "
        "un-repaired row: blue = better, vermillion = worse. Hover a cell for Pearson, the number of "
        "pairs and the out-of-vocabulary count."
    ),
    "layer_similarity": (
        "Left: linear CKA between every pair of layers on the same sampled tokens (1 = the same "
        "geometry up to rotation and scale, 0 = unrelated); a bright band along the diagonal "
        "that fades away from it means adjacent layers are more alike than distant ones, bright "
        "blocks are groups of layers that compute little new. Middle: the share of each token's "
        "k nearest neighbours (cosine) that two layers agree on, a local measure beside CKA's "
        "global one; the chance level is printed in the title. Right: how much each layer keeps "
        "of the previous one's neighbourhoods (χ, Euclidean) and its CKA; dips mark layers that "
        "reorganise the space. Linear CKA weighs coordinates by their variance, so a few huge "
        "ones (massive activations, see below) can decide it alone: square blocks of CKA near 1 "
        "where the k-NN overlap stays moderate are such a case."
    ),
    "massive": (
        "Left: the largest absolute coordinate over every token of each layer (solid), the "
        "median one (dashed) and Sun et al.'s threshold for a massive activation (dotted: above "
        "100 and 1000 × the median). A solid line far above the dotted one is a massive "
        "activation; in causal models it usually appears from an early layer on. Right: which "
        "dimensions hold each layer's largest values (filled circles pass the threshold, larger "
        "circles are larger |a|); the same few dimensions across layers are the model's massive "
        "dimensions. The largest |a| is taken over every token, the median on the measured "
        "sample. The table lists the three largest activations of each layer with the token, "
        "its position in the sentence and its row in the store; in causal models they sit at "
        "position 0 (the attention sink of Xiao et al.) unless the run dropped position 0."
    ),
    "gride": (
        "GRIDE intrinsic dimension of each layer measured at growing neighbourhood scales "
        "(neighbour ranks n and 2n, x axis). A flat curve means the dimension is well defined; "
        "a curve that falls with scale means noise inflates the small-scale estimate, one that "
        "rises means curvature or several manifolds (Denti et al.: read the dimension where the "
        "curve is flat). Compare layers at the same scale: for a single run the right panel "
        "draws each scale against the layer, where the dimension often rises then falls across "
        "depth (Valeriani et al.). Distances are Euclidean, on the distinct sampled vectors. "
        "Bars are the estimator's standard error (from its Fisher information), which does not "
        "include the choice of scale."
    ),
    "outliers": (
        "Dimensions whose mean |activation| over every token is more than 3 standard "
        "deviations above the mean over dimensions (Kovaleva et al.; Puccetti et al.), with the "
        "token holding each dimension's largest value. A handful of such dimensions dominate "
        "cosine similarity and anisotropy; the same dimension in many layers is a rogue "
        "dimension of the model. The last column is the signed value of that largest "
        "coordinate; a layer without outlier dimensions shows 'none'."
    ),
    "cross_model": (
        "The same words of the same sentences in two models, compared at the same relative "
        "depth: every layer of the shallower model against the other model's nearest layer. "
        "Words are matched by sentence, text and occurrence, each word the mean of its tokens, "
        "so models with different tokenisers can be compared; the number of matched words is "
        "given per pair. High CKA or mutual k-NN means the two models arrange these words "
        "alike at that depth (Huh et al.'s 'platonic' convergence). Where one model has massive "
        "activations, linear CKA follows those few coordinates and can fall near 0 while the "
        "mutual k-NN (cosine) stays well above chance: compare runs made with "
        "--drop-position-zero."
    ),
    "table": "All scalar measures per layer; '—' marks a measure that could not be computed.",
    "settings": (
        "Everything needed to reproduce the numbers: model, corpus, sample sizes, seeds, "
        "normalisation and package versions."
    ),
}

# ----------------------------------------------------------------------------- small helpers


def _fig_to_png(fig: Any, dpi: int = 130) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3g}"
        if abs(v) >= 100:
            return f"{v:,.1f}"
        return f"{v:.3f}"
    if isinstance(v, list | tuple):
        if len(v) > 12:
            return f"[{', '.join(_fmt(x) for x in v[:12])}, … ({len(v)} values)]"
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return json.dumps(v, default=str, ensure_ascii=False)
    return str(v)


def _plain(v: Any) -> str:
    """Format a setting: floats as written (0.1, 1e-08), everything else as :func:`_fmt`."""
    if isinstance(v, float) and math.isfinite(v):
        return f"{v:.6g}"
    if isinstance(v, list | tuple) and all(isinstance(x, int | float) for x in v) and len(v) <= 12:
        return "[" + ", ".join(_plain(x) for x in v) + "]"
    return _fmt(v)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if (
            isinstance(v, Mapping)
            and v
            and all(not isinstance(x, Mapping) for x in v.values())
            and len(v) > 8
        ):
            out.append((key, ", ".join(f"{a}={_plain(b)}" for a, b in v.items())))
        elif isinstance(v, Mapping):
            out.extend(_flatten(v, key + "."))
        else:
            out.append((key, _plain(v)))
    return out


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    vers = {"python": platform.python_version()}
    for pkg in (
        "isoscope",
        "numpy",
        "scipy",
        "scikit-learn",
        "torch",
        "transformers",
        "faiss-cpu",
        "matplotlib",
        "plotly",
    ):
        try:
            vers[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return vers


def _num(d: Mapping[str, Any] | None, k: str) -> float | None:
    v = (d or {}).get(k)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
        return None
    return float(v)


def observations(results: Mapping[str, Any]) -> list[str]:
    """Return a few plain-language sentences summarising a results dict (numbers included)."""
    layers = results.get("layers") or []
    if not layers:
        return []
    first, last = layers[0], layers[-1]
    out: list[str] = []
    si, sic = _num(last, "s_inter"), _num(last, "s_inter_centered")
    if si is not None:
        s = f"At the last layer ({last['layer']}) two random tokens have mean cosine {si:.2f}"
        if sic is not None:
            s += f", and {sic:.2f} once each token's k-means cluster mean is removed (S'_inter)"
            if si - sic > 0.2:
                s += ": most of that similarity is a shared offset (a cone)"
        out.append(s + ".")
    iso0, iso1 = _num(first, "isoscore"), _num(last, "isoscore")
    if iso0 is not None and iso1 is not None and len(layers) > 1:
        out.append(
            f"IsoScore goes from {iso0:.2f} at layer {first['layer']} to {iso1:.2f} at layer "
            f"{last['layer']} (1 = all directions used equally)."
        )
    d80 = _num(last, "pca_dims_80")
    if d80 is not None:
        out.append(f"{int(d80)} principal components hold 80% of the last layer's variance.")
    lid = _num(last, "lid_mle")
    if lid is not None:
        out.append(f"The local intrinsic dimension at the last layer is about {lid:.0f}.")
    k, mms = _num(last, "n_clusters"), _num(last, "mms")
    if k is not None and mms is not None:
        verdict = "clear clusters" if mms > 0.1 else "no strong cluster structure"
        out.append(f"k-means picks k = {int(k)} at the last layer with MMS {mms:.2f} ({verdict}).")
    rho = _num(last, "freq_pc1_spearman")
    if rho is not None:
        out.append(
            f"The first principal component correlates with log word frequency at "
            f"ρ = {rho:.2f} (Spearman)."
        )
    table = F.evaluation_table(results.get("evaluation") or [], "score")
    if not table.empty and "none" in table.index and len(table.index) > 1:
        for col in table.columns:
            base = table.loc["none", col]
            others = table.drop(index="none")[col].dropna()
            if others.empty or not math.isfinite(float(base)):
                continue
            best = str(others.idxmax())
            delta = float(others.max()) - float(base)
            verb = "raises" if delta > 0.5 else "lowers" if delta < -0.5 else "barely changes"
            out.append(
                f"On {col}, the best repair ({best}) {verb} the score: {float(base):.1f} → "
                f"{float(others.max()):.1f} ({delta:+.1f}, × 100)."
            )
    return out


def _layer_table(results: Mapping[str, Any]) -> dict[str, Any]:
    keys: list[str] = []
    for lay in results["layers"]:
        for k, v in lay.items():
            if k in ("layer", "details") or k in keys or isinstance(v, list | dict):
                continue
            keys.append(k)
    rows = [[str(lay["layer"])] + [_fmt(lay.get(k)) for k in keys] for lay in results["layers"]]
    # Which evidence each column came from (all tokens, the sample, ...), as results.json says.
    meta = results.get("measures") or {}
    evidence = ["evidence", *((meta.get(k) or {}).get("evidence", "") for k in keys)] if meta else []
    return {"columns": ["layer", *keys], "rows": rows, "evidence": evidence}


def _evaluation_view(results: Mapping[str, Any]) -> dict[str, Any] | None:
    ev = list(results.get("evaluation") or [])
    if not ev:
        return None
    table = F.evaluation_table(ev, "score")
    if table.empty:
        return None
    extra = {v: F.evaluation_table(ev, v) for v in ("pearson", "n", "oov")}
    base_name = next((r for r in table.index if r == "none"), None)

    def finite(x: Any) -> bool:
        return x is not None and isinstance(x, int | float) and math.isfinite(float(x))

    rows = []
    for repair in table.index:
        cells = []
        for task in table.columns:
            v = table.loc[repair, task]
            if not finite(v):
                cells.append({"text": "—", "cls": "na", "title": "not evaluated"})
                continue
            cls = ""
            if base_name is not None and repair != base_name:
                b = table.loc[base_name, task]
                if finite(b):
                    d = float(v) - float(b)
                    cls = "up" if d > 0.5 else "down" if d < -0.5 else "same"
            p, n, oov = (
                extra[k].loc[repair, task] if task in extra[k] else None
                for k in ("pearson", "n", "oov")
            )
            title = f"Pearson {_fmt(p) if finite(p) else '—'}; n = {_fmt(n)}; OOV = {_fmt(oov)}"
            cells.append({"text": f"{float(v):.1f}", "cls": cls, "title": title})
        rows.append({"repair": repair, "cells": cells})
    return {"columns": list(table.columns), "rows": rows}


# Top-level result keys with their own place in the report; other dicts go to Settings.
_SHOWN_KEYS = frozenset(
    {"source", "settings", "timings", "layers", "transforms", "evaluation", "layer_similarity"}
)

# ----------------------------------------------------------------------------- report builder


class _Builder:
    def __init__(self, out_dir: Path, formats: Sequence[str], dpi: int, progress: bool = False) -> None:
        from tqdm.auto import tqdm

        self.out_dir = out_dir
        self.fig_dir = out_dir / "figures"
        self.formats = tuple(formats)
        self.dpi = dpi
        self.sections: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.figure_files: list[Path] = []
        self.uses_plotly = False
        #: One tick per drawn section (the number of sections depends on the results).
        self.bar = tqdm(desc="report", unit="section", disable=not progress, leave=False)

    def image(self, fig: Any, name: str, alt: str) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        try:
            png = _fig_to_png(fig, self.dpi)
            self.fig_dir.mkdir(parents=True, exist_ok=True)
            for fmt in self.formats:
                path = self.fig_dir / f"{name}.{fmt}"

                def save(p: Path, fmt: str = fmt) -> None:
                    if fmt == "png":
                        p.write_bytes(png)  # the bytes already drawn for the page
                    else:
                        fig.savefig(p, format=fmt, facecolor="white")

                write_atomic(path, save)
                self.figure_files.append(path)
            w, h = fig.get_size_inches()
        finally:
            plt.close(fig)
        return {
            "kind": "img",
            "src": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
            "alt": alt,
            "width": int(w * 96),
            "name": name,
        }

    def section(self, sid: str, title: str, how: str | None, build: Any) -> None:
        entry: dict[str, Any] = {"id": sid, "title": title, "how": how, "items": [], "error": None}
        try:
            entry["items"] = build()
        except InputError as exc:
            entry["error"] = str(exc)
        except (KeyboardInterrupt, SystemExit):
            raise  # an interrupt surfacing inside matplotlib stops the report
        except OSError:
            raise  # a full disk or a permission problem is not a figure's fault: stop
        except Exception as exc:  # a figure must not take the whole report down
            msg = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"report section {sid!r} could not be drawn: {msg}", stacklevel=2)
            self.errors.append(f"{sid}: {msg}")
            entry["error"] = f"This section could not be drawn ({msg})."
        self.sections.append(entry)
        self.bar.update()


def _per_result(x: Any, n: int, what: str, single: tuple[type, ...]) -> list[Any]:
    if x is None:
        return [None] * n
    if isinstance(x, single) or not isinstance(x, list | tuple):
        return [x] + [None] * (n - 1)
    if len(x) != n:
        raise InputError(f"Got {len(x)} {what} for {n} results; give one per result or none.")
    return list(x)


def _raw_results(results: Any) -> list[Any]:
    """The given result objects, unconverted (an AnalysisResult keeps its fitted repairs)."""
    if isinstance(results, Mapping) or hasattr(results, "to_dict"):
        return [results]
    return list(results)


def _artefact_sets(
    results: Any,
    res: list[Mapping[str, Any]],
    artefacts: Any,
    store: Any,
    out: Path,
    compute: dict[str, Any],
) -> list[Artefacts | None]:
    """One :class:`Artefacts` (or None) per result: given, loaded from a folder, or computed."""
    from isoscope.artefacts import compute_artefacts, load_artefacts

    n = len(res)
    if store is not None:
        if artefacts is not None:
            raise InputError("Give write_report either artefacts or a store, not both.")
        stores = _per_result(store, n, "stores", ())
        raw = _raw_results(results)
        return [
            None if s is None else compute_artefacts(raw[i], s, out if n == 1 else None, **compute)
            for i, s in enumerate(stores)
        ]
    items = _per_result(artefacts, n, "artefact sets", (Artefacts, str, os.PathLike))
    sets: list[Artefacts | None] = []
    for a, r in zip(items, res, strict=True):
        if a is None or isinstance(a, Artefacts):
            sets.append(a)
        elif isinstance(a, str | os.PathLike):
            sets.append(load_artefacts(a, r))
        else:
            raise InputError(
                f"artefacts must be Artefacts objects or run folders, got {type(a).__name__}."
            )
    return sets


def write_report(
    results: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    artefacts: Any = None,
    *,
    store: Any = None,
    title: str | None = None,
    cloud_layers: Sequence[int] | None = None,
    cloud_n: int = 2000,
    words: Sequence[str] | None = None,
    seed: int | None = None,
    formats: Sequence[str] = ("png",),
    dpi: int = 130,
    filename: str = "report.html",
    cross_model: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> Path:
    """Write a self-contained HTML report (and its figures) for one or several runs.

    The report only draws: numbers come from ``results``, token clouds, repair views and word
    trajectories from ``artefacts`` (computed once by
    :func:`isoscope.artefacts.compute_artefacts`). Nothing here reads a store.

    Parameters
    ----------
    results : dict, AnalysisResult or a sequence of them
        ``results.json`` content (``analyze(...).to_dict()`` plus optional ``evaluation``);
        several give a comparison with layer axes normalised to depth.
    out_dir : path
        Folder for the HTML file and ``figures/``; created if needed.
    artefacts : Artefacts, run folder, or a sequence of them (one per result), optional
        What is drawn beside the numbers; a folder is read with
        :func:`~isoscope.artefacts.load_artefacts` (checked against its result). Without
        artefacts the token panels are left out; notes of missing or damaged artefacts are
        shown in the summary.
    store : EmbeddingStore or sequence of EmbeddingStore, optional
        Convenience: compute the artefacts first with
        :func:`~isoscope.artefacts.compute_artefacts` (saved into ``out_dir/artefacts`` for a
        single result, kept in memory for a comparison). Repair views need an
        ``AnalysisResult`` with its fitted repairs. Not together with ``artefacts``.
    title : str, optional
        Page title; default built from the model and corpus names.
    cloud_layers, cloud_n, words, seed
        Passed to ``compute_artefacts`` when ``store`` is given; otherwise unused.
    formats : sequence of str
        Figure files written to ``out_dir/figures`` ("png", "svg", "pdf"), each atomically.
    dpi : int
        Resolution of PNG figures.
    filename : str
        Name of the HTML file.
    cross_model : dict, optional
        Cross-model similarity of the runs
        (:func:`isoscope.analysis._crossmodel.compare_runs`, computed by ``isoscope compare``),
        drawn as its own section with the number of aligned words.
    progress : bool
        Show a tqdm bar that ticks once per drawn section.

    Returns
    -------
    pathlib.Path
        Path of the written HTML file.

    Raises
    ------
    OSError
        When a file cannot be written (a full disk); no partial figure or HTML file is left.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    res = F._results_list(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arts = _artefact_sets(
        results,
        res,
        artefacts,
        store,
        out,
        {"cloud_layers": cloud_layers, "cloud_n": cloud_n, "words": words, "seed": seed},
    )
    b = _Builder(out, formats, dpi, progress)
    names = F._names(res)
    compare = len(res) > 1

    b.section(
        "curves",
        "Geometry layer by layer",
        HOW_TO_READ["curves"],
        lambda: [
            b.image(
                F.plot_layer_curves(res, normalise_depth=compare),
                "layer_curves",
                "Per-layer curves of every measure",
            )
        ],
    )
    b.section(
        "spectrum",
        "PCA spectrum",
        HOW_TO_READ["spectrum"],
        lambda: [
            b.image(
                F.plot_pca_spectrum(res),
                "pca_spectrum",
                "Explained variance per principal component",
            )
        ],
    )

    cloud_info: dict[str, Any] = {}
    cl: list[TokenCloud] = []
    for a, name in zip(arts, names, strict=True):
        if a is None or not a.clouds:
            continue
        shown = a.clouds if not compare else [max(a.clouds, key=lambda c: c.layer or 0)]
        cl.extend(dataclasses.replace(c, title=name) for c in shown)
    if cl:

        def clouds() -> list[dict[str, Any]]:
            st = cl[0].settings
            cloud_info.update(
                n=cl[0].n,
                n_total=cl[0].n_total,
                seed=cl[0].seed,
                layers=[c.layer for c in cl],
                filter=", ".join(
                    [
                        "special tokens "
                        + ("included" if st.get("include_special") else "excluded"),
                        *(["position 0 dropped"] if st.get("drop_position_zero") else []),
                    ]
                ),
            )
            items = [b.image(F.plot_pca_cloud(cl), "pca_cloud_2d", "Token clouds in 2-D PCA")]
            b.uses_plotly = True
            items.append(
                {
                    "kind": "plotly",
                    "html": plotly_block(plot_pca_cloud_3d(cl), "pca-cloud-3d", height=600),
                }
            )
            return items

        b.section("clouds", "Token clouds", HOW_TO_READ["clouds"], clouds)
    b.section(
        "clusters",
        "Clusters",
        HOW_TO_READ["clusters"],
        lambda: [b.image(F.plot_silhouette(res), "clusters", "Silhouette curve and cluster sizes")],
    )
    b.section(
        "lid",
        "Local intrinsic dimension",
        HOW_TO_READ["lid"],
        lambda: [
            b.image(
                F.plot_lid_distribution(res), "lid_distribution", "Distribution of per-point LID"
            )
        ],
    )
    _geometry_sections(b, res, names, cross_model)
    traj_data = arts[0].trajectories if arts[0] is not None else None
    traj: list[str] = list(traj_data["words"]) if traj_data else []
    if traj_data:
        b.section(
            "trajectories",
            "Words across layers" + (f" — {names[0]}" if compare else ""),
            HOW_TO_READ["trajectories"],
            lambda: [
                b.image(
                    F.plot_word_trajectories(traj_data),
                    "word_trajectories",
                    "Word occurrences across layers",
                )
            ],
        )
    for i, r in enumerate(res):
        if r.get("transforms"):
            suffix = f" — {names[i]}" if compare else ""
            tag = f"_{i}" if compare else ""

            def repairs(
                r: Mapping[str, Any] = r, a: Artefacts | None = arts[i], tag: str = tag
            ) -> list[dict[str, Any]]:
                items = [
                    b.image(
                        F.plot_transform_panels(r),
                        f"repairs{tag}",
                        "Measures before and after each repair",
                    )
                ]
                views = a.repair_views if a is not None else []
                if len(views) > 1:
                    items.append(
                        b.image(
                            F.plot_pca_cloud(views, ncols=4),
                            f"repairs_clouds{tag}",
                            "The repaired layer's measured tokens before and after each fitted "
                            "repair",
                        )
                    )
                return items

            b.section(
                f"repairs-{i}",
                "Repairs: before and after" + suffix,
                HOW_TO_READ["repairs"],
                repairs,
            )

    evaluations = [(names[i], _evaluation_view(r)) for i, r in enumerate(res)]
    evaluations = [(n, e) for n, e in evaluations if e is not None]
    artefact_notes = [
        (name, note)
        for a, name in zip(arts, names, strict=True)
        if a is not None
        for note in a.notes
    ]

    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("isoscope.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    from markupsafe import Markup

    for sec in b.sections:
        for item in sec["items"]:
            if item["kind"] == "plotly":
                item["html"] = Markup(item["html"])  # built by plotly_block with escaped JSON
    runs = []
    for r, name, a in zip(res, names, arts, strict=True):
        src = dict(r.get("source") or {})
        runs.append(
            {
                "name": name,
                "source": _flatten(src),
                "settings": _flatten(r.get("settings") or {}),
                "manifest": _flatten(a.store_manifest if a is not None else {}),
                "timings": _flatten(r.get("timings") or {}),
                "extra": [
                    (f"{key}.{k}", v)
                    for key, val in r.items()
                    if isinstance(val, Mapping) and key not in _SHOWN_KEYS
                    for k, v in _flatten(val)
                ],
                "observations": observations(r),
                "table": _layer_table(r),
                "headline": _headline(r),
                "corpus": src.get("corpus"),
                "model_type": src.get("model_type"),
                "n_layers": len(r["layers"]),
                "transforms": [
                    {
                        "label": F._transform_label(t),
                        "fit": t.get("fit"),
                        "layer": t.get("layer"),
                        "fit_n": t.get("fit_n"),
                        "params": ", ".join(
                            f"{k}={'None' if v is None else _plain(v)}"
                            for k, v in (t.get("params") or {}).items()
                        )
                        or "—",
                        "eval_n": t.get("eval_n"),
                    }
                    for t in r.get("transforms") or []
                ],
            }
        )
    if title is None:
        corpora = sorted({str(run["corpus"]) for run in runs if run["corpus"]})
        title = " vs ".join(names) + (f" on {', '.join(corpora)}" if corpora else "")
    html_text = env.get_template("report.html.j2").render(
        title=title,
        runs=runs,
        compare=compare,
        sections=b.sections,
        evaluations=evaluations,
        how=HOW_TO_READ,
        words=traj,
        cloud_seed=cloud_info.get("seed", traj_data["seed"] if traj_data else None),
        traj_seed=traj_data["seed"] if traj_data else None,
        cloud_info=cloud_info,
        artefact_notes=artefact_notes,
        report_versions=_versions(),
        isoscope_version=str(res[0].get("isoscope_version", "")),
        generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        plotly_js=Markup(plotly_js()) if b.uses_plotly else None,
        css=Markup(_read_template("report.css")),
        errors=b.errors,
    )
    b.bar.close()
    path = out / filename
    write_text_atomic(path, html_text)
    return path


def _geometry_sections(b: _Builder, res: list[Mapping[str, Any]], names: list[str],
                       cross: Mapping[str, Any] | None) -> None:
    """Issue 16's panels: layer similarity, massive activations, GRIDE, outlier dimensions."""
    from isoscope.report import _geometry as G

    compare = len(res) > 1
    if G.similarity_sections(res):
        b.section("layer-similarity", "Layers against layers", HOW_TO_READ["layer_similarity"],
                  lambda: [b.image(G.plot_layer_similarity(res), "layer_similarity",
                                   "Layer x layer linear CKA, mutual k-NN and consecutive overlap")])

    def per_run(table: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for name, r in zip(names, res, strict=True):
            try:
                t = table(r)
            except InputError as exc:
                items.append({"kind": "note", "text": f"{name}: {exc}" if compare else str(exc)})
                continue
            items.append({**t, "caption": name if compare else None})
        return items

    def massive() -> list[dict[str, Any]]:
        return [b.image(G.plot_massive_activations(res), "massive_activations",
                        "Largest and median |activation| per layer, and their dimensions"),
                *per_run(G.massive_table)]

    b.section("massive", "Massive activations", HOW_TO_READ["massive"], massive)
    b.section("gride", "Intrinsic dimension across scales (GRIDE)", HOW_TO_READ["gride"],
              lambda: [b.image(G.plot_gride_curve(res), "gride_curve",
                               "GRIDE intrinsic dimension per neighbour scale and layer")])
    b.section("outliers", "Outlier dimensions", HOW_TO_READ["outliers"],
              lambda: per_run(G.outlier_table))
    if cross is not None:
        def cross_items() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = [{"kind": "note", "text": n}
                                           for n in cross.get("notes") or []]
            for p in cross.get("pairs") or []:
                a, c = p["models"]
                items.append({"kind": "note", "text": (
                    f"{a} vs {c}: {p['n_aligned']} words aligned (of {p['n_words'][0]} and "
                    f"{p['n_words'][1]} saved), k = {p.get('k')}.")})
            if cross.get("pairs"):
                items.insert(0, b.image(G.plot_cross_model(cross), "cross_model",
                                        "Cross-model CKA and mutual k-NN at matched depth"))
                items.append(G.cross_model_table(cross))
            return items

        b.section("cross-model", "Across models", HOW_TO_READ["cross_model"], cross_items)


def _read_template(name: str) -> str:
    from importlib.resources import files

    return (files("isoscope.report") / "templates" / name).read_text(encoding="utf-8")


def _headline(results: Mapping[str, Any]) -> list[dict[str, str]]:
    layers = results.get("layers") or []
    if not layers:
        return []
    first, last = layers[0], layers[-1]
    meta = results.get("measures") or {}
    cards = []
    for k, label in HEADLINE_KEYS:
        a, z = _num(first, k), _num(last, k)
        if z is None:
            continue
        cards.append(
            {
                "label": label,
                "last": _fmt(last.get(k)),
                "first": _fmt(first.get(k)),
                "trend": "" if a is None else ("↑" if z > a else "↓" if z < a else "→"),
                "evidence": (meta.get(k) or {}).get("evidence", ""),
            }
        )
    return cards[:8]


__all__ = ["HOW_TO_READ", "observations", "write_report"]
