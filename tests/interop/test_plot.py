"""isoscope.plot draws the report's figures from a result or a store."""

from __future__ import annotations

import numpy as np


def test_plot_functions_return_figures(tmp_path):
    import pandas as pd
    from matplotlib.figure import Figure

    from isoscope import plot
    from isoscope.analysis import analyze
    from isoscope.store import write_store

    rng = np.random.default_rng(0)
    arrays = {i: rng.normal(size=(300, 16)) + i for i in range(3)}
    words = [f"w{i % 40}" for i in range(300)]
    store = write_store(tmp_path / "s", arrays, pd.DataFrame({"word": words, "token": words, "sentence_id": np.arange(300) // 10, "position": np.arange(300) % 10}))
    result = analyze(store, sample=200, seed=0)
    for fig in (plot.layer_curves(result), plot.spectrum(result), plot.token_cloud(store, 1, n=100)):
        assert isinstance(fig, Figure) and fig.axes
