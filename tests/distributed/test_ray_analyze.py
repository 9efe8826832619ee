"""``analyze --engine ray`` on a local Ray cluster equals the single-process analyze.

The cluster (a head and two one-CPU worker nodes) is conftest's ``cluster`` fixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the ray engine needs the isoscope[ray] extra")

from isoscope.analysis import analyze  # noqa: E402
from isoscope.extract import extract  # noqa: E402
from isoscope.metrics._neighbors import exact_knn  # noqa: E402
from tests.distributed.conftest import assert_same  # noqa: E402

RAY_KEYS = ("engine", "ray_address", "ray_workers")
SETTINGS: dict[str, Any] = {"sample": None, "seed": 3, "lid_k": 5, "k_range": [2, 4],
                            "silhouette_sample": None, "chunk_rows": 64}


@pytest.mark.parametrize("model", ["tiny_bert", "tiny_gpt2"])
def test_ray_analyze_equals_single_process(cluster: Any, model: str, corpus_file: Path,
                                           tmp_path: Path, request: pytest.FixtureRequest) -> None:
    folder = request.getfixturevalue(model)
    store = extract(str(folder), str(corpus_file), tmp_path / "s", progress=False)
    local = analyze(store, **SETTINGS)
    dist = analyze(store, engine="ray", ray_address=cluster.address, ray_workers=2, **SETTINGS)
    assert store.n_tokens > 200  # several shards of several chunks, two kNN blocks
    n_compared = assert_same(local.layers, dist.layers, "layers")
    assert n_compared > 100 * len(local.layers)
    assert dist.layers[0]["lid_mle"] is not None and dist.layers[0]["knn_recall_at_k"] is None
    rest = {key: v for key, v in local.settings.items() if key not in RAY_KEYS}
    assert_same(rest, {key: v for key, v in dist.settings.items() if key not in RAY_KEYS})
    assert dist.settings["engine"] == "ray" and local.settings["engine"] == "local"


def test_blocked_search_equals_exact_knn(cluster: Any) -> None:
    from isoscope.distributed import RayEngine

    rng = np.random.default_rng(0)
    X = (rng.standard_normal((500, 12)) + 4.0).astype(np.float32)
    X[7] = X[3]  # an exact duplicate: distance zero, index order decides
    with RayEngine(cluster.address, workers=3) as engine:
        for metric in ("euclidean", "cosine"):
            got = engine.exact_knn(X, 8, metric)
            want = exact_knn(X, 8, metric=metric)
            np.testing.assert_array_equal(got.indices, want.indices)
            np.testing.assert_allclose(got.distances, want.distances, rtol=1e-12, atol=0)


def test_ray_moments_on_an_array(cluster: Any) -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 10)) * np.linspace(0.5, 3.0, 10) + 1.0
    kw = {"sample": None, "seed": 0, "lid_k": 5, "k_range": [2, 3], "chunk_rows": 50}
    local = analyze(X, **kw)
    dist = analyze(X, engine="ray", ray_workers=3, **kw)
    assert_same(local.layers, dist.layers, "layers")


def test_cli_engine_ray_and_approximate_neighbours(cluster: Any, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from isoscope.cli import app

    X = np.random.default_rng(2).standard_normal((300, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "r.json"
    r = CliRunner().invoke(app, [
        "analyze", str(tmp_path / "x.npy"), "--sample", "0", "--lid-k", "5", "--k-max", "3",
        "--no-progress", "--engine", "ray", "--address", cluster.address, "--workers", "2",
        "--neighbors", "hnsw", "--neighbors-audit", "50", "--out", str(out)])
    assert r.exit_code == 0, r.output
    got = json.loads(out.read_text())["layers"][0]
    want = analyze(X, sample=None, seed=0, lid_k=5, k_range=[2, 3], neighbors="hnsw",
                   neighbors_audit=50).layers[0]
    for key in ("s_inter", "lid_mle", "knn_recall_at_k", "knn_lid_difference", "knn_audit_size"):
        assert got[key] == pytest.approx(want[key], rel=1e-9), key
    assert got["knn_audit_size"] == 50
