"""Figures and the self-contained HTML report.

Static figures use matplotlib (each function returns a ``Figure``), interactive 3-D views use
plotly; :func:`write_report` puts them into one offline HTML page. The report only draws: the
numbers come from ``results.json`` and the pictures of tokens from the artefacts saved beside it
(:mod:`isoscope.artefacts`), so a report can be rendered with no store present.

Examples
--------
>>> from isoscope.artefacts import compute_artefacts, load_artefacts  # doctest: +SKIP
>>> from isoscope.report import write_report, plot_layer_curves      # doctest: +SKIP
>>> compute_artefacts(result, store, "runs/minilm")                  # doctest: +SKIP
>>> write_report(results, "runs/minilm", load_artefacts("runs/minilm"))  # doctest: +SKIP
"""

from __future__ import annotations

from isoscope.artefacts import Artefacts, TokenCloud, token_cloud, word_trajectories
from isoscope.report._cloud import cloud_from_arrays
from isoscope.report._figures import (
    curve_families,
    evaluation_table,
    layer_positions,
    plot_layer_curves,
    plot_lid_distribution,
    plot_pca_cloud,
    plot_pca_spectrum,
    plot_silhouette,
    plot_transform_panels,
    plot_word_trajectories,
)
from isoscope.report._html import HOW_TO_READ, observations, write_report
from isoscope.report._interactive import plot_pca_cloud_3d, plotly_block, plotly_json
from isoscope.report._style import FAMILIES, PALETTE, SEQUENTIAL_CMAP, style

__all__ = [
    "Artefacts",
    "FAMILIES",
    "HOW_TO_READ",
    "PALETTE",
    "SEQUENTIAL_CMAP",
    "TokenCloud",
    "cloud_from_arrays",
    "curve_families",
    "evaluation_table",
    "layer_positions",
    "observations",
    "plot_layer_curves",
    "plot_lid_distribution",
    "plot_pca_cloud",
    "plot_pca_cloud_3d",
    "plot_pca_spectrum",
    "plot_silhouette",
    "plot_transform_panels",
    "plot_word_trajectories",
    "plotly_block",
    "plotly_json",
    "style",
    "token_cloud",
    "word_trajectories",
    "write_report",
]
