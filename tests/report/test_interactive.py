"""Plotly figures and their safe embedding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from isoscope.errors import InputError
from isoscope.report import cloud_from_arrays, plot_pca_cloud_3d, plotly_block, plotly_json

EVIL = "</script><script>window.__pwned=1</script>"


def make_cloud(n=60, seed=0, layer=0, labels=None):
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0, 4, n)
    freq[:5] = np.nan
    return cloud_from_arrays(
        rng.normal(size=(n, 6)), log_freq=freq, labels=labels, layer=layer, seed=seed
    )


def test_3d_cloud_traces_and_layer_menu():
    fig = plot_pca_cloud_3d([make_cloud(layer=0), make_cloud(seed=1, layer=6)])
    # Per cloud: a grey trace for unknown frequency and a coloured one.
    assert len(fig.data) == 4
    assert [tr.visible for tr in fig.data] == [True, True, False, False]
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["layer 0", "layer 6"]
    assert buttons[1].args[0]["visible"] == [False, False, True, True]
    coloured = fig.data[1]
    assert len(coloured.x) == 55 and coloured.marker.colorscale
    assert "PC1" in fig.layout.scene.xaxis.title.text


def test_3d_cloud_escapes_hover_text_and_needs_three_components():
    labels = [f"tok{i}" for i in range(60)]
    labels[10] = "<b>bold</b>"
    fig = plot_pca_cloud_3d(make_cloud(labels=labels))
    texts = [t for tr in fig.data for t in tr.text]
    assert "&lt;b&gt;bold&lt;/b&gt;" in texts and "<b>bold</b>" not in texts
    flat = cloud_from_arrays(np.random.default_rng(0).normal(size=(20, 4)), n_components=2)
    with pytest.raises(InputError):
        plot_pca_cloud_3d(flat)


def test_plotly_json_cannot_close_the_script_element():
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], text=[EVIL, "a & b"]), layout={"title": EVIL})
    text = plotly_json(fig)
    assert "<" not in text and ">" not in text and "&" not in text
    data = json.loads(text)
    assert data["data"][0]["text"] == [EVIL, "a & b"]
    block = plotly_block(fig, "fig-1", height=300)
    assert block.count("</script>") == 1 and block.endswith("</script>")
    assert 'id="fig-1"' in block and "height:300px" in block
    with pytest.raises(InputError):
        plotly_block(fig, 'x" onload="alert(1)')
