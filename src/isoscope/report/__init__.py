"""Figures and the self-contained HTML report.

Static figures use matplotlib (each function returns a ``Figure``), interactive 3-D views use
plotly; :func:`write_report` puts them into one offline HTML page.

Examples
--------
>>> from isoscope.report import write_report, plot_layer_curves   # doctest: +SKIP
>>> fig = plot_layer_curves(results)                              # doctest: +SKIP
>>> write_report(results, "runs/minilm", store=store)             # doctest: +SKIP
"""

from __future__ import annotations

from isoscope.report._cloud import TokenCloud, cloud_from_arrays, repair_clouds, token_cloud
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
    word_trajectories,
)
from isoscope.report._html import HOW_TO_READ, observations, write_report
from isoscope.report._interactive import plot_pca_cloud_3d, plotly_block, plotly_json
from isoscope.report._style import FAMILIES, PALETTE, SEQUENTIAL_CMAP, style

__all__ = [
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
    "repair_clouds",
    "style",
    "token_cloud",
    "word_trajectories",
    "write_report",
]
