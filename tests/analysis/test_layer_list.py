"""analyze on a list of per-layer arrays: one entry per layer, each as if analysed alone."""

from __future__ import annotations

import numpy as np
import pytest

from isoscope.analysis import analyze
from isoscope.errors import InputError

FAST = {"k_range": [2, 3], "silhouette_sample": 150, "lid_k": 8, "similarity_sample": 0}
KEYS = ("s_inter", "isoscore", "effective_rank", "lid_mle", "mean_norm")


def _layers() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    base = rng.standard_normal((200, 10))
    # Three distinct "hidden states": drifting mean, growing anisotropy.
    return [(base + i) * np.linspace(1.0, 1.0 + 2 * i, 10) for i in range(3)]


def test_layer_list_matches_each_array_alone() -> None:
    arrays = _layers()
    res = analyze(arrays, sample=150, seed=1, progress=False, **FAST)
    assert [e["layer"] for e in res.layers] == [0, 1, 2]
    assert res.source["kind"] == "layer list" and res.source["n_layers"] == 3
    for i, X in enumerate(arrays):
        alone = analyze(X, sample=150, seed=1, progress=False, **FAST).layers[0]
        for key in KEYS:
            assert key in alone and alone[key] is not None, key
            assert res.layers[i][key] == alone[key], (i, key)
    # The layers really differ, so the comparison above is per layer, not one value repeated.
    assert len({e["isoscore"] for e in res.layers}) == 3

    frame = res.to_frame()
    assert list(frame["layer"]) == [0, 1, 2]
    assert frame.loc[2, "s_inter"] == res.layers[2]["s_inter"]
    html = res._repr_html_()
    assert html.startswith("<table") and html.count("<tr>") == 3  # one body row per layer
    assert f"{res.layers[1]['isoscore']:.3g}" in html

    # A tuple and a negative layer index behave as the list does.
    last = analyze(tuple(arrays), -1, sample=150, seed=1, progress=False, **FAST)
    assert [e["layer"] for e in last.layers] == [2]
    assert last.layers[0]["isoscore"] == res.layers[2]["isoscore"]


def test_ragged_layer_list_is_refused() -> None:
    arrays = _layers()
    with pytest.raises(InputError, match="same number of rows") as err:
        analyze([arrays[0], arrays[1][:150]], progress=False, **FAST)
    msg = str(err.value)
    assert msg.count(". ") == 0 and msg.endswith(".") and "(200, 10)" in msg and "(150, 10)" in msg
    with pytest.raises(InputError, match="Item 1 of the layer list is a str"):
        analyze([arrays[0], "layer"], progress=False, **FAST)
    with pytest.raises(InputError, match="empty"):
        analyze([], progress=False, **FAST)
