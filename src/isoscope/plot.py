"""The report's figures as functions returning matplotlib figures, for notebooks.

Each function draws one panel set of the HTML report with the report's own code
(:mod:`isoscope.report._figures`), so a notebook can show one figure without writing a report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["layer_curves", "spectrum", "token_cloud"]


def layer_curves(result: Any, *, measures: Sequence[str] | None = None, ncols: int = 3) -> Any:
    """Every per-layer measure against layer (one panel per family of measures).

    Parameters
    ----------
    result : AnalysisResult, dict or sequence of them
        One analysis result (or ``results.json`` dict), or several to compare models.
    measures : sequence of str, optional
        Only panels containing one of these keys.
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from isoscope.report._figures import plot_layer_curves

    return plot_layer_curves(result, measures=measures, ncols=ncols)


def spectrum(result: Any, *, layers: Sequence[int] | None = None, n_components: int = 100) -> Any:
    """The PCA spectrum (explained variance per component, and cumulative) per layer.

    Parameters
    ----------
    result : AnalysisResult, dict or sequence of them
    layers : sequence of int, optional
        Layers to draw (default: a spread of the analysed ones).
    n_components : int
        Components shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from isoscope.report._figures import plot_pca_spectrum

    return plot_pca_spectrum(result, layers=layers, n_components=n_components)


def token_cloud(store: Any, layer: int, *, n: int = 2000, seed: int = 0, n_components: int = 3,
                frequency: str = "corpus") -> Any:
    """A seeded sample of a layer's token vectors on its top principal components.

    Parameters
    ----------
    store : EmbeddingStore or path
    layer : int
        Hidden-state index.
    n : int
        Tokens drawn (seeded sample of non-special tokens).
    seed : int
        Seed of the sample and the PCA solver.
    n_components : int
        2 or 3 (3: the report's pairs of components).
    frequency : {"corpus", "zipf"}
        Colour: log10 corpus count of the word, or its wordfreq Zipf value.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import os

    from isoscope.artefacts import token_cloud as _cloud
    from isoscope.report._figures import plot_pca_cloud
    from isoscope.store import open_store

    if isinstance(store, (str, os.PathLike)):
        store = open_store(store)
    return plot_pca_cloud(_cloud(store, layer, n=n, seed=seed, n_components=n_components, frequency=frequency))
