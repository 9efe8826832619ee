"""Fixtures and helpers of the Ray tests (extraction, sketch stores, analyze).

A head (no CPUs) and two worker nodes of one CPU each run on this machine
(``ray.cluster_utils.Cluster``), so each of the two actors sits on its own node and removing a
node kills one.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import pytest

# Chunks end where packed batches end, so both are small: several shards per run.
SETTINGS = {"chunk_tokens": 48, "batch_tokens": 48}
SRC = str(Path(__file__).resolve().parents[2] / "src")
#: Bytes of object store per node: the tests move kilobytes, and /dev/shm is shared.
OBJECT_STORE = 80 * 1024**2


@pytest.fixture(scope="package")
def cluster():
    """A head without CPUs and two one-CPU worker nodes, shared by the package's Ray tests
    (starting one costs seconds); the driver connects to it. Torn down after the package."""
    import ray
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
    node = {"object_store_memory": OBJECT_STORE}
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, **node})
    nodes = [c.add_node(num_cpus=1, **node) for _ in range(2)]
    c.wait_for_nodes()
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    c.worker_nodes_list = nodes  # type: ignore[attr-defined]
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sixty random sentences of a small vocabulary, one per line."""
    import random

    words = "the cat sat on the mat a dog chased it across the garden unbelievably".split()
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("ray") / "corpus.txt"
    path.write_text("\n".join(" ".join(rng.choices(words, k=rng.randint(3, 12))) for _ in range(60)) + "\n")
    return path


def wait_for_shards(out: Path, n: int, timeout: float = 300.0) -> None:
    """Until at least ``n`` shards are committed or merged (one chunk per shard).

    The first shard waits for the actors to start (torch and the model imported on a one-CPU
    node); on a loaded 2-core machine that took over 120 s, hence the generous limit.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = out / "progress.json"
        merged = 0
        try:
            merged = json.loads(progress.read_text())["n_chunks"] if progress.exists() else 0
        except (OSError, ValueError, KeyError):
            pass
        staged = len(list((out / "shards").glob("shard_*"))) if (out / "shards").exists() else 0
        if merged + staged >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {n} shards committed in {timeout} s")


def assert_same(a: Any, b: Any, where: str = "") -> int:
    """Recursive equality, floats to 1e-9 relative; returns the number of numbers compared."""
    if isinstance(a, dict):
        assert set(a) == set(b), where
        return sum(assert_same(a[key], b[key], f"{where}.{key}") for key in a)
    if isinstance(a, list | tuple):
        assert len(a) == len(b), where
        return sum(assert_same(x, y, f"{where}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True)))
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            assert a is b, where
        elif math.isnan(a):
            assert math.isnan(b), where
        else:
            assert b == pytest.approx(a, rel=1e-9, abs=1e-12), where
        return 1
    assert a == b, where
    return 1
