"""Interactive figures (plotly) and their safe, offline embedding in HTML."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from isoscope.errors import InputError
from isoscope.report._cloud import TokenCloud

_PLOTLY_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _hover(labels: Sequence[str]) -> list[str]:
    # plotly renders hover text as a subset of HTML: escape corpus text so that "<b>" or
    # "<script>" in a token is shown literally.
    return [html.escape(str(s), quote=False) for s in labels]


def plot_pca_cloud_3d(clouds: TokenCloud | Sequence[TokenCloud], *, height: int = 560) -> Any:
    """Interactive 3-D PCA view of token clouds coloured by log word frequency.

    With several clouds (e.g. one per layer) a drop-down menu switches between them.

    Parameters
    ----------
    clouds : TokenCloud or sequence of TokenCloud
        From :func:`isoscope.report.token_cloud` with ``n_components=3``.
    height : int
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    cl = [clouds] if isinstance(clouds, TokenCloud) else list(clouds)
    if not cl:
        raise InputError("No token clouds were given to plot.")
    if any(c.coords.shape[1] < 3 for c in cl):
        raise InputError("3-D views need token clouds with three PCA components.")
    finite = np.concatenate([c.log_freq[np.isfinite(c.log_freq)] for c in cl] + [np.zeros(0)])
    cmin, cmax = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    fig = go.Figure()
    spans: list[tuple[int, int]] = []
    names = []
    for i, c in enumerate(cl):
        start = len(fig.data)
        known = np.isfinite(c.log_freq)
        text = np.array(_hover(c.labels), dtype=object)
        head = f"{c.title}, " if c.title and len({x.title for x in cl}) > 1 else ""
        names.append(
            html.escape(f"{head}layer {c.layer}" if c.layer is not None else head or f"cloud {i}")
        )
        if (~known).any():
            fig.add_trace(
                go.Scatter3d(
                    x=c.coords[~known, 0],
                    y=c.coords[~known, 1],
                    z=c.coords[~known, 2],
                    mode="markers",
                    text=text[~known].tolist(),
                    name="frequency unknown",
                    marker={"size": 2.2, "color": "#b0b0b0", "opacity": 0.6},
                    hovertemplate="%{text}<br>frequency unknown<extra></extra>",
                    visible=i == 0,
                    showlegend=True,
                )
            )
        fig.add_trace(
            go.Scatter3d(
                x=c.coords[known, 0],
                y=c.coords[known, 1],
                z=c.coords[known, 2],
                mode="markers",
                text=text[known].tolist(),
                name="tokens",
                marker={
                    "size": 2.4,
                    "color": c.log_freq[known],
                    "colorscale": "Viridis",
                    "cmin": float(cmin),
                    "cmax": float(cmax),
                    "opacity": 0.85,
                    "colorbar": {
                        "title": {
                            "text": html.escape(c.freq_label).replace(" (", "<br>("),
                            "side": "right",
                        },
                        "thickness": 14,
                        "len": 0.75,
                    },
                },
                hovertemplate="%{text}<br>log10 frequency %{marker.color:.2f}<extra></extra>",
                visible=i == 0,
                showlegend=False,
            )
        )
        spans.append((start, len(fig.data)))

    def axes(c: TokenCloud) -> dict[str, Any]:
        evr = c.explained_variance_ratio
        return {
            f"{a}axis": {
                "title": {"text": f"PC{j + 1} ({evr[j] * 100:.1f}%)"},
                "backgroundcolor": "#fafafa",
                "gridcolor": "#dddddd",
                "zerolinecolor": "#bbbbbb",
            }
            for j, a in enumerate("xyz")
        }

    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 0, "r": 0, "t": 40, "b": 0},
        "template": "plotly_white",
        "scene": {**axes(cl[0]), "aspectmode": "cube"},
        "legend": {
            "x": 0.01,
            "y": 0.86 if len(cl) > 1 else 0.98,
            "bgcolor": "rgba(255,255,255,0.7)",
        },
        "title": {
            "text": f"{names[0]} — {cl[0].n} tokens, seed {cl[0].seed}",
            "x": 0.01,
            "font": {"size": 14},
        },
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"},
    }
    if len(cl) > 1:
        buttons = []
        for i, c in enumerate(cl):
            vis = [spans[i][0] <= t < spans[i][1] for t in range(len(fig.data))]
            buttons.append(
                {
                    "label": names[i],
                    "method": "update",
                    "args": [
                        {"visible": vis},
                        {
                            "title.text": f"{names[i]} — {c.n} tokens, seed {c.seed}",
                            **{f"scene.{k}": v for k, v in axes(c).items()},
                        },
                    ],
                }
            )
        layout["updatemenus"] = [
            {
                "buttons": buttons,
                "x": 0.01,
                "xanchor": "left",
                "y": 0.99,
                "yanchor": "top",
                "direction": "down",
                "showactive": True,
            }
        ]
    fig.update_layout(**layout)
    return fig


def plotly_json(fig: Any) -> str:
    """Serialise a plotly figure to JSON that is safe inside an HTML ``<script>`` element."""
    import plotly.io as pio

    text = pio.to_json(fig, validate=False, pretty=False)
    # '<', '>' and '&' can only occur inside JSON strings, where \u escapes are equivalent;
    # this stops "</script>" in corpus text from closing the script element.
    for ch, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(ch, esc)
    json.loads(text)  # still valid JSON
    return text


def plotly_block(fig: Any, div_id: str, *, height: int | None = None) -> str:
    """Return the HTML (a div and an inline script) that draws ``fig`` with the page's plotly.js.

    The page must contain plotly.js once (see :func:`plotly_js`).
    """
    if not _PLOTLY_ID.match(div_id):
        raise InputError(f"Invalid element id {div_id!r}.")
    h = height or (fig.layout.height or 500)
    return (
        f'<div id="{div_id}" class="plotly-figure" style="height:{int(h)}px"></div>\n'
        "<script>(function(){var f=" + plotly_json(fig) + ";"
        f'Plotly.newPlot("{div_id}",f.data,f.layout,'
        "{responsive:true,displaylogo:false});})();</script>"
    )


def plotly_js() -> str:
    """The bundled plotly.js source (to inline once per page; no network access needed)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().replace("</script", "<\\/script")
