"""Extraction on Ray Data (``isoscope extract --engine ray``) against the single process.

The cluster (a head and two one-CPU worker nodes) is conftest's ``cluster`` fixture. Ray is
a test dependency (``make test`` installs ``isoscope[ray]``): these tests fail, not skip, where
it is missing. Select them with ``-m ray``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import isoscope.distributed._extract as ray_extract
from isoscope.distributed import extract_ray
from isoscope.errors import InputError, StoreLockedError
from isoscope.extract import extract
from isoscope.store import StoreLock, open_store
from tests.distributed.conftest import OBJECT_STORE, SETTINGS, SRC, wait_for_shards

pytestmark = pytest.mark.ray


def _single(model: Path, corpus: Path, out: Path):
    """The single-process store, on one torch thread like each actor (float32 sums over
    another number of threads can differ in the last bits: GPT-2's do)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return extract(str(model), str(corpus), out, progress=False, **SETTINGS)
    finally:
        torch.set_num_threads(threads)


def _same_store(a: Path, b: Path) -> None:
    sa, sb = open_store(a), open_store(b)
    assert sa.n_tokens == sb.n_tokens > 0
    assert sa.tokens().equals(sb.tokens())
    for layer in sa.layers:
        name = f"layer_{layer:03d}.bin"
        assert (a / "layers" / name).read_bytes() == (b / "layers" / name).read_bytes(), name
    keys = ("corpus_sha256", "model_sha256", "layers", "n_sentences", "planned_tokens", "chunk_tokens")
    assert {k: sa.manifest[k] for k in keys} == {k: sb.manifest[k] for k in keys}
    assert not (b / "shards").exists()


@pytest.mark.parametrize("model", ["tiny_bert", "tiny_gpt2"])
def test_ray_store_equals_single_process(cluster, model, corpus, tmp_path, request):
    folder = request.getfixturevalue(model)
    single = _single(folder, corpus, tmp_path / "single")
    ray_store = extract_ray(str(folder), str(corpus), tmp_path / "ray", workers=2, progress=False, **SETTINGS)
    _same_store(tmp_path / "single", tmp_path / "ray")
    record = ray_store.manifest["extraction"]["ray"]
    assert record["shards"] > 2 and record["shards_this_run"] == record["shards"]
    # Every shard was run by an actor, and the per-actor throughput adds up to the corpus.
    assert sum(w["tokens"] for w in record["per_worker"]) == single.n_tokens
    assert all(w["tokens_per_s"] > 0 for w in record["per_worker"])
    assert ray_store.manifest["extraction"]["engine"] == "ray"


def test_worker_node_killed_mid_run(cluster, tiny_bert, corpus, tmp_path, monkeypatch):
    monkeypatch.setenv(ray_extract.PAUSE_ENV, "0.7")  # keeps the run in flight for the kill
    reference = tmp_path / "single"
    _single(tiny_bert, corpus, reference)
    out = tmp_path / "ray"
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["store"] = extract_ray(str(tiny_bert), str(corpus), out, workers=2, progress=False,
                                          **SETTINGS)
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc

    driver = threading.Thread(target=run)
    driver.start()
    wait_for_shards(out, 1)
    assert driver.is_alive()
    victim = cluster.worker_nodes_list.pop(0)
    cluster.remove_node(victim, allow_graceful=False)  # its actor dies mid-shard
    # Where Ray restarts it.
    cluster.worker_nodes_list.append(cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE))
    driver.join(240)
    assert not driver.is_alive(), "the Ray run did not finish after a node was removed"
    assert "error" not in result, result.get("error")
    _same_store(reference, out)


def test_driver_killed_and_rerun_resumes(cluster, tiny_gpt2, corpus, tmp_path):
    reference = tmp_path / "single"
    _single(tiny_gpt2, corpus, reference)
    out = tmp_path / "ray"
    code = ("import functools, isoscope.distributed as d; "
            f"d.extract_ray = functools.partial(d.extract_ray, **{SETTINGS!r}); "
            "from isoscope.cli import app; app()")
    argv = [sys.executable, "-c", code, "extract", "--engine", "ray", "--address", cluster.address,
            "--workers", "2", "--model", str(tiny_gpt2), "--corpus", str(corpus), "--out", str(out),
            "--no-progress"]
    env = {**os.environ, ray_extract.PAUSE_ENV: "0.7"}
    driver = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_shards(out, 1)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert driver.returncode == -signal.SIGKILL
    assert not open_store(out, allow_incomplete=True).manifest["complete"]
    store = extract_ray(str(tiny_gpt2), str(corpus), out, workers=2, progress=False, **SETTINGS)
    record = store.manifest["extraction"]["ray"]
    assert record["shards_this_run"] < record["shards"]  # the committed shards were not run again
    _same_store(reference, out)


def test_second_driver_refused(tiny_bert, corpus, tmp_path):
    out = tmp_path / "ray"
    out.mkdir()
    with StoreLock(out), pytest.raises(StoreLockedError, match="is being written by"):
        extract_ray(str(tiny_bert), str(corpus), out, workers=2, progress=False, **SETTINGS)


def test_import_isoscope_does_not_import_ray():
    code = "import sys, isoscope, isoscope.distributed, isoscope.cli; print('ray' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_missing_ray_is_one_sentence(monkeypatch, tiny_bert, corpus, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(InputError, match=r"install isoscope\[ray\]"):
        extract_ray(str(tiny_bert), str(corpus), tmp_path / "out", progress=False)


def test_ray_options_need_the_ray_engine(tiny_bert, corpus, tmp_path):
    from typer.testing import CliRunner

    from isoscope.cli import app

    result = CliRunner().invoke(app, ["extract", "--model", str(tiny_bert), "--corpus", str(corpus),
                                      "--out", str(tmp_path / "s"), "--workers", "2"])
    assert result.exit_code == 2
    assert "--workers only apply with --engine ray" in result.output
    assert not (tmp_path / "s").exists()


def test_actor_error_reaches_the_user_as_its_sentence():
    from ray.exceptions import RayTaskError

    from isoscope.errors import StoreError

    sentence = "A Ray worker on node-1 loaded other weights for model 'm' than the driver."
    wrapped = RayTaskError("ShardEncoder.__init__", "Traceback ...", StoreError(sentence)).as_instanceof_cause()
    try:
        raise RuntimeError("Ray Data execution failed") from wrapped
    except RuntimeError as exc:
        found = ray_extract._user_error(exc)
    assert isinstance(found, StoreError) and str(found) == sentence
    assert ray_extract._user_error(RuntimeError("no isoscope error inside")) is None
