"""Figures of the findings page (matplotlib, colour-blind-safe palette, PNG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from isoscope.findings._claims import (
    contextual,
    depth,
    layer_entries,
    of_family,
    series,
    similarity_of,
)
from isoscope.findings._plan import ISOTROPY_KEY, ISOTROPY_LABEL
from isoscope.measures._catalogue import MASSIVE_ABS, MASSIVE_FACTOR
from isoscope.report import PALETTE, SEQUENTIAL_CMAP, style

_STYLES = {"BERT family": "-", "GPT family": "--", "static": ":"}


def _colours(models: Sequence[str]) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def _curves(ax: Any, models: Mapping[str, Any], corpus: str, key: str, colours: dict[str, str],
            *, absolute: bool = False, per_width: bool = False) -> None:
    for m, d in models.items():
        res = d["analysis"].get(corpus)
        if res is None:
            continue
        _, y = series(res, key)
        if absolute:
            y = np.abs(y)
        if per_width:
            y = y / float(res.get("width") or np.nan)
        if d["family"] == "static":
            if np.isfinite(y).any():
                ax.axhline(y[0], color=colours[m], ls=":", lw=1.5, label=f"{m} (static)")
            continue
        ax.plot(depth(res), y, _STYLES.get(d["family"], "-"), color=colours[m], marker="o",
                ms=3, label=m)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _legend(fig: Any, axes: Any) -> None:
    handles, labels = [], []
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5),
               bbox_to_anchor=(0.5, -0.04))


def fig_cosine(models: Mapping[str, Any], out: Path, corpora: Sequence[str]) -> Path:
    import matplotlib.pyplot as plt

    colours = _colours(list(models))
    with style():
        fig, axes = plt.subplots(2, len(corpora), figsize=(4.2 * len(corpora), 6.2), squeeze=False)
        for j, corpus in enumerate(corpora):
            for i, (key, label) in enumerate((("s_inter", "S_inter"), ("s_intra", "S_intra"))):
                ax = axes[i, j]
                _curves(ax, models, corpus, key, colours)
                ax.set_title(f"{label} — {corpus}")
                ax.set_xlabel("relative depth (0 = embeddings)")
                ax.set_ylabel("mean cosine")
        _legend(fig, axes)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        return _save(fig, out / "cosine.png")


def fig_clusters(models: Mapping[str, Any], out: Path) -> Path:
    import matplotlib.pyplot as plt

    colours = _colours(list(models))
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        _curves(axes[0], models, "wikitext", "mms", colours)
        axes[0].axhline(0.1, color="#777777", ls="--", lw=1)
        axes[0].set_title("MMS — WikiText (position 0 left out)")
        axes[0].set_xlabel("relative depth")
        axes[0].set_ylabel("maximum mean silhouette")
        ax = axes[1]
        for m, d in of_family(models, "GPT family").items():
            pz = d.get("position_zero")
            if not pz:
                continue
            top = max(e["layer"] for e in d["analysis"]["wikitext"]["layers"])
            xs = [e["layer"] / top for e in pz["layers"]]
            ax.plot(xs, [e["mms"] for e in pz["layers"]], "--", marker="s", color=colours[m],
                    label=f"{m}, position 0 kept")
            for x, e in zip(xs, pz["layers"], strict=True):
                ax.annotate(f"|C|={e['n_clusters']}", (x, e["mms"]), fontsize=7,
                            textcoords="offset points", xytext=(2, 4))
        ax.axhline(0.1, color="#777777", ls="--", lw=1)
        ax.set_title("MMS — causal models, position 0 kept")
        ax.set_xlabel("relative depth")
        ax.set_ylim(0, 1.05)
        _legend(fig, axes)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        return _save(fig, out / "clusters.png")


def fig_centering(models: Mapping[str, Any], out: Path) -> Path:
    import matplotlib.pyplot as plt

    colours = _colours(list(models))
    with style():
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for m, d in contextual(models).items():
            res = d["analysis"]["wikitext"]
            x = depth(res)
            ax.plot(x, series(res, "s_inter")[1], "-", color=colours[m], marker="o", ms=3,
                    label=f"{m} S_inter")
            ax.plot(x, series(res, "s_inter_centered")[1], "--", color=colours[m], marker="x",
                    ms=4, label=f"{m} S'_inter")
        ax.axhline(0, color="#777777", lw=0.8)
        ax.set_xlabel("relative depth")
        ax.set_ylabel("mean cosine")
        ax.set_title("Per-cluster centering — WikiText")
        ax.legend(ncol=2, fontsize=7)
        fig.tight_layout()
        return _save(fig, out / "centering.png")


def fig_manifolds(models: Mapping[str, Any], out: Path) -> Path | None:
    import matplotlib.pyplot as plt

    with_views = {m: d for m, d in contextual(models).items()
                  if d.get("clouds", {}).get("views", {}).get("wikitext")}
    if not with_views:
        return None
    ncols = max(len(d["clouds"]["views"]["wikitext"]) for d in with_views.values())
    with style():
        fig = plt.figure(figsize=(3.0 * ncols, 2.9 * len(with_views)))
        sc = None
        for i, (m, d) in enumerate(with_views.items()):
            for j, v in enumerate(d["clouds"]["views"]["wikitext"]):
                ax = fig.add_subplot(len(with_views), ncols, i * ncols + j + 1, projection="3d")
                xyz = np.asarray(v["coords"], dtype=float)
                z = np.asarray([np.nan if f is None else f for f in v["zipf"]], dtype=float)
                sc = ax.scatter(xyz[:, 0], xyz[:, 1], xyz[:, 2], c=z, cmap=SEQUENTIAL_CMAP,
                                s=2, alpha=0.7, vmin=1, vmax=7.5, linewidths=0)
                share = float(np.sum(v["explained_variance_ratio"][:3]))
                ax.set_title(f"{m} · layer {v['layer']}\n({100 * share:.0f} % var. on 3 PCs)",
                             fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_zticks([])
                ax.view_init(elev=20, azim=35)
        if sc is not None:
            cb = fig.colorbar(sc, ax=fig.axes, shrink=0.5, pad=0.02)
            cb.set_label("Zipf frequency")
        return _save(fig, out / "manifolds.png")


def fig_frequency(models: Mapping[str, Any], out: Path) -> Path:
    import matplotlib.pyplot as plt

    colours = _colours(list(models))
    views = {m: d["clouds"]["views"]["wikitext"] for m, d in contextual(models).items()
             if d.get("clouds", {}).get("views", {}).get("wikitext")}
    ncols = max(len(views), 1)
    with style():
        fig = plt.figure(figsize=(3.2 * max(ncols, 2), 6.4))
        ax = fig.add_subplot(2, 1, 1)
        _curves(ax, models, "wikitext", "freq_pc1_spearman", colours, absolute=True)
        ax.axhline(0.7, color="#777777", ls="--", lw=1)
        ax.annotate("Liang et al.: |ρ| ≈ 0.7", (0.0, 0.71), fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_xlabel("relative depth")
        ax.set_ylabel("|ρ(PC1, Zipf)|")
        ax.set_title("PC1 against word frequency — WikiText")
        ax.legend(fontsize=7, ncol=3)
        sc = None
        for j, (m, vs) in enumerate(views.items()):
            top = max(v["layer"] for v in vs)
            v = min(vs, key=lambda v: abs(v["layer"] - top / 2))
            a = fig.add_subplot(2, ncols, ncols + j + 1)
            xyz = np.asarray(v["coords"], dtype=float)
            z = np.asarray([np.nan if f is None else f for f in v["zipf"]], dtype=float)
            order = np.argsort(np.nan_to_num(z, nan=-1))
            sc = a.scatter(xyz[order, 0], xyz[order, 1], c=z[order], cmap=SEQUENTIAL_CMAP, s=2,
                           vmin=1, vmax=7.5, linewidths=0)
            a.set_title(f"{m} · layer {v['layer']}", fontsize=8)
            a.set_xlabel("PC1")
            a.set_ylabel("PC2")
            a.set_xticks([])
            a.set_yticks([])
        fig.subplots_adjust(hspace=0.45)
        if sc is not None:
            cb = fig.colorbar(sc, ax=fig.axes[1:], shrink=0.8, pad=0.02)
            cb.set_label("Zipf frequency")
        return _save(fig, out / "frequency.png")


def fig_lid(models: Mapping[str, Any], out: Path) -> Path:
    import matplotlib.pyplot as plt

    colours = _colours(list(models))
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        _curves(axes[0], models, "wikitext", "lid_mle_median", colours)
        axes[0].set_title("LID (kNN MLE, k = 20) — WikiText")
        axes[0].set_ylabel("median LID")
        _curves(axes[1], models, "wikitext", "lid_mle_median", colours, per_width=True)
        axes[1].set_title("LID / width — WikiText")
        axes[1].set_ylabel("share of the width")
        for ax in axes:
            ax.set_xlabel("relative depth")
        _legend(fig, axes)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        return _save(fig, out / "lid.png")


def fig_repairs(models: Mapping[str, Any], out: Path, repairs: Sequence[str]) -> Path:
    import matplotlib.pyplot as plt

    names = list(models)
    labels = ["none", *repairs]
    width = 0.8 / len(labels)
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for k, rep in enumerate(labels):
            vals = []
            for m in names:
                entries = [e for e in models[m].get("repairs", {}).get("transforms", [])
                           if e["fit"] == "inductive"]
                if rep == "none":
                    e = entries[0]["before"] if entries else None
                else:
                    e = next((e["after"] for e in entries if e["name"] == rep), None)
                v = None if not e else e.get(ISOTROPY_KEY)
                vals.append(np.nan if v is None else v)
            axes[0].bar(np.arange(len(names)) + k * width, vals, width, label=rep,
                        color=PALETTE[k % len(PALETTE)])
            deltas = []
            for m in names:
                recs = models[m].get("evaluation", {}).get("inductive", {}).get("results", [])
                sts = {r["transform"]: r["spearman"] for r in recs
                       if r.get("task") == "stsb" and r.get("in_table") is not False}
                deltas.append(np.nan if rep not in sts or "none" not in sts or sts[rep] is None
                              else sts[rep] - sts["none"])
            axes[1].bar(np.arange(len(names)) + k * width, deltas, width, label=rep,
                        color=PALETTE[k % len(PALETTE)])
        for ax in axes:
            ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=15)
            ax.axhline(0, color="#777777", lw=0.8)
        axes[0].set_ylabel(f"log10 {ISOTROPY_LABEL}\n(0 = isotropic)")
        axes[0].set_title("Partition isotropy, last layer (inductive fit)")
        axes[1].set_ylabel("Δ Spearman × 100")
        axes[1].set_title("STS-B change (inductive fit)")
        axes[0].legend(fontsize=7, ncol=len(labels))
        fig.tight_layout()
        return _save(fig, out / "repairs.png")


def fig_cka(models: Mapping[str, Any], out: Path) -> Path | None:
    """Linear CKA heat maps (WikiText), one per contextual model with layer similarity."""
    import matplotlib.pyplot as plt

    maps = [(m, sec) for m, d in contextual(models).items()
            for sec in [similarity_of(d, "wikitext")[0]] if sec is not None]
    if not maps:
        return None
    with style():
        fig, axes = plt.subplots(1, len(maps), figsize=(3.6 * len(maps), 3.4), squeeze=False)
        for ax, (m, sec) in zip(axes[0], maps, strict=True):
            layers = sec["layers"]
            im = ax.imshow(np.array(sec["cka_linear"], dtype=float), cmap=SEQUENTIAL_CMAP,
                           vmin=0.0, vmax=1.0, origin="lower", interpolation="nearest")
            ticks = np.unique(np.round(np.linspace(0, len(layers) - 1,
                                                   min(len(layers), 6))).astype(int))
            ax.set_xticks(ticks, [str(layers[i]) for i in ticks])
            ax.set_yticks(ticks, [str(layers[i]) for i in ticks])
            ax.set_xlabel("layer")
            ax.set_ylabel("layer")
            ax.set_title(m.rstrip("/").rsplit("/", 1)[-1])  # a local path: its folder name
            ax.grid(False)
        fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="linear CKA")
        return _save(fig, out / "cka.png")


def _massive_entries(d: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    """Per-layer massive-activation entries: causal models with position 0 kept (the
    position_zero step), encoders from their WikiText analysis (as claim 8 reads them)."""
    if d["family"] == "GPT family":
        return list(((d.get("position_zero") or {}).get("massive") or {}).get("layers") or [])
    return list(layer_entries(d["analysis"].get("wikitext") or {}))


def fig_massive(models: Mapping[str, Any], out: Path) -> Path | None:
    """Largest |a| over the median |a| and the largest |a| per layer (claim 8), WikiText."""
    import matplotlib.pyplot as plt

    colours = _colours(list(models))
    drawn = False
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for m, d in contextual(models).items():
            rows = [e for e in _massive_entries(d) if e.get("max_abs_activation") is not None]
            if not rows:
                continue
            layers = np.array([e["layer"] for e in rows], dtype=float)
            x = layers / max(float(layers.max()), 1.0)
            ratio = [np.nan if e.get("massive_activation_ratio") is None
                     else float(e["massive_activation_ratio"]) for e in rows]
            top = [float(e["max_abs_activation"]) for e in rows]
            style_ = _STYLES.get(d["family"], "-")
            axes[0].plot(x, ratio, style_, color=colours[m], marker="o", ms=3, label=m)
            axes[1].plot(x, top, style_, color=colours[m], marker="o", ms=3, label=m)
            drawn = True
        if not drawn:
            plt.close(fig)
            return None
        axes[0].axhline(MASSIVE_FACTOR, color="black", ls=":", lw=1)
        axes[0].set_title("Largest / median |a| — WikiText")
        axes[0].set_ylabel(f"ratio (log; dotted: {MASSIVE_FACTOR:.0f})")
        axes[1].axhline(MASSIVE_ABS, color="black", ls=":", lw=1)
        axes[1].set_title("Largest |a| — WikiText")
        axes[1].set_ylabel(f"|a|, model units (log; dotted: {MASSIVE_ABS:.0f})")
        for ax in axes:
            ax.set_yscale("log")
            ax.set_xlabel("relative depth")
        _legend(fig, axes)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        return _save(fig, out / "massive.png")


def fig_id_profile(models: Mapping[str, Any], out: Path) -> Path:
    """TwoNN and GRIDE intrinsic dimension against relative depth (claim 9), WikiText."""
    import matplotlib.pyplot as plt

    ctx = contextual(models)
    colours = _colours(list(models))
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for ax, key, title in ((axes[0], "id_twonn", "TwoNN"),
                               (axes[1], "id_gride", "GRIDE (ranks 8 and 16)")):
            _curves(ax, ctx, "wikitext", key, colours)
            ax.set_title(f"{title} — WikiText")
            ax.set_ylabel("intrinsic dimension")
            ax.set_xlabel("relative depth (0 = embedding output)")
        _legend(fig, axes)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        return _save(fig, out / "id_profile.png")


def fig_effective_rank(models: Mapping[str, Any], out: Path) -> Path:
    """Effective rank, and as a share of the width, against depth from layer 1 (claim 10)."""
    import matplotlib.pyplot as plt

    colours = _colours(list(models))
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for m, d in contextual(models).items():
            res = d["analysis"].get("wikitext")
            if res is None:
                continue
            x, er = series(res, "effective_rank", skip_embedding=True)
            rel = x / max(float(x.max()), 1.0) if x.size else x
            width = float(res.get("width") or np.nan)
            style_ = _STYLES.get(d["family"], "-")
            axes[0].plot(rel, er, style_, color=colours[m], marker="o", ms=3, label=m)
            axes[1].plot(rel, er / width, style_, color=colours[m], marker="o", ms=3, label=m)
        axes[0].set_title("Effective rank — WikiText")
        axes[0].set_ylabel("effective rank (directions)")
        axes[1].set_title("Effective rank / width — WikiText")
        axes[1].set_ylabel("share of the width")
        for ax in axes:
            ax.set_xlabel("relative depth (layer 1 on)")
        _legend(fig, axes)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        return _save(fig, out / "erank.png")


def draw_all(collected: Mapping[str, Any], out: Path, repairs: Sequence[str]) -> list[Path]:
    """Every figure of the page into ``out``."""
    models = collected["models"]
    corpora = [c for c in ("wikitext", "ptb")
               if any(c in d["analysis"] for d in models.values())]
    made = [
        fig_cosine(models, out, corpora),
        fig_clusters(models, out),
        fig_centering(models, out),
        fig_manifolds(models, out),
        fig_frequency(models, out),
        fig_lid(models, out),
        fig_repairs(models, out, repairs),
        fig_massive(models, out),
        fig_id_profile(models, out),
        fig_effective_rank(models, out),
        fig_cka(models, out),
    ]
    return [p for p in made if p is not None]
