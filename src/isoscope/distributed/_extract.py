"""``isoscope extract --engine ray``: the extraction on a Ray Data actor pool.

The driver tokenises and plans the corpus exactly as the single-process :func:`isoscope.extract.
extract` does (:func:`isoscope.extract.prepare_extraction`), locks the store (a second driver is
refused), cuts the plan into shards (:func:`isoscope.distributed._shards.plan_shards`) and runs
``map_batches`` over them with an actor pool of :class:`ShardEncoder` (the model is loaded once
per actor). Each actor runs the single-process extraction loop (:func:`isoscope.extract.
run_chunks`) on its shard and returns the shard's files; the driver commits each shard
atomically under ``STORE/shards`` and merges committed shards in shard order through the
store's :class:`~isoscope.store.StoreWriter`.

With ``keep="sample:N"`` (a sketch store, :mod:`isoscope.sketch`) each actor folds its shard
into a :class:`~isoscope.sketch.StoreSketch` over the shard's global row ids
(:class:`isoscope.distributed._shards.ShardSketch`) and returns the sketch's files; the driver
commits them the same way, merges the shard sketches with
:meth:`~isoscope.sketch.StoreSketch.merge` in shard order and writes the sketch store with
:func:`~isoscope.sketch.write_sketch_store` once every shard is in. The shard folders stay
until then, so a killed driver, rerun, reloads the committed shard sketches.

Faults: Ray Data restarts a dead actor and retries its task (``max_restarts=-1`` and
``max_task_retries=-1``, Ray Data's defaults for actor pools); a shard is committed once
whichever copy arrives first, and merged once (the writer counts its chunks). A driver killed
and rerun with the same command merges the shards already committed and extracts only the rest.

Ray is imported only here, and only when this engine runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from isoscope._validation import check_positive_int
from isoscope.distributed import _shards
from isoscope.errors import InputError, IsoscopeError, StoreError
from isoscope.store import EmbeddingStore, StoreWriter

logger = logging.getLogger(__name__)

#: Seconds each actor waits after encoding a shard (fault-injection tests only: it keeps a
#: run in flight long enough to kill a node or the driver mid-run). Unset in normal use.
PAUSE_ENV = "ISOSCOPE_RAY_SHARD_PAUSE"


def require_ray() -> Any:
    """Import Ray and Ray Data, or raise one sentence saying how to install them."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError(
            "The ray engine needs Ray Data, which is not installed; install isoscope[ray] "
            "(pip install 'isoscope[ray]')."
        ) from None
    return ray


class ShardEncoder:
    """A Ray Data actor: loads the model once, then extracts whole shards.

    Parameters
    ----------
    model : str or encoder
        What :func:`isoscope.extract.load_model` loads.
    settings : dict
        ``layers``, ``dtype``, ``batch_size``, ``batch_tokens``, ``device``,
        ``trust_remote_code``, ``max_length``, ``threads``, ``model_sha256`` (the driver's, or
        None), ``linear_kernel`` (the driver's choice, which the actor follows), ``keep``
        (``{"n": N, "seed": S}`` for a sketch store, None to keep every vector) and ``pause``
        (seconds, tests only).
    """

    def __init__(self, model: Any, settings: dict[str, Any]) -> None:
        import torch

        from isoscope.extract import load_model, weights_hash

        self.settings = settings
        if settings["threads"]:
            torch.set_num_threads(int(settings["threads"]))
        # The driver timed the kernels once; every actor runs the kernel it chose (a timing of
        # its own could choose the other, whose float32 sums differ in the last bits).
        saved = os.environ.get("ISOSCOPE_ONEDNN")
        os.environ["ISOSCOPE_ONEDNN"] = "0"
        try:
            self.encoder = load_model(model, device=settings["device"],
                                      trust_remote_code=settings["trust_remote_code"],
                                      max_length=settings["max_length"])
        finally:
            if saved is None:
                os.environ.pop("ISOSCOPE_ONEDNN")
            else:
                os.environ["ISOSCOPE_ONEDNN"] = saved
        if settings["linear_kernel"] == "onednn-packed" and getattr(self.encoder, "model", None) is not None:
            from isoscope.models._onednn import _eligible, pack_linear_layers

            if _eligible(self.encoder.model):
                pack_linear_layers(self.encoder.model)
                self.encoder.linear_kernel = "onednn-packed"
        expected = settings["model_sha256"]
        if expected is not None and weights_hash(self.encoder) != expected:
            raise StoreError(
                f"A Ray worker on {os.uname().nodename} loaded other weights for model {model!r} "
                "than the driver; give every node the same model files."
            )
        self.worker = f"{os.uname().nodename}/pid {os.getpid()}"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Extract each shard of the batch; one output row per shard (its meta and files)."""
        from isoscope.extract import ExtractionJob, Plan, run_chunks, tokenize_sentences

        s = self.settings
        metas, payloads = [], []
        for i in range(len(batch["shard"])):
            began = time.perf_counter()
            shard = _shards.Shard(*(int(batch[k][i]) for k in (
                "shard", "first_chunk", "stop_chunk", "first_sentence", "stop_sentence", "n_tokens")))
            sentences = [str(t) for t in batch["sentences"][i]]
            chunks = [(int(a), int(b)) for a, b in batch["chunks"][i]]
            lengths, truncated, tokens = tokenize_sentences(self.encoder, sentences)
            if int(lengths.sum()) != shard.n_tokens:
                raise StoreError(
                    f"A Ray worker on {os.uname().nodename} tokenised shard {shard.id} into "
                    f"{int(lengths.sum())} tokens, not the driver's {shard.n_tokens}; give every node "
                    "the same tokenizer files."
                )
            plan = Plan(sentences, lengths, truncated, chunks, tokens)
            job = ExtractionJob(self.encoder, plan, {}, s["layers"], np.dtype(s["dtype"]), s["batch_size"],
                                s["batch_tokens"])
            buffer: _shards.ShardBuffer | _shards.ShardSketch
            if s["keep"] is None:
                buffer = _shards.ShardBuffer(s["layers"], s["dtype"])
            else:
                buffer = _shards.ShardSketch(s["layers"], self.encoder.hidden_size, s["keep"]["n"],
                                             s["keep"]["seed"], int(batch["first_row"][i]))
            run_chunks(job, range(len(chunks)), buffer, first_sentence=shard.first_sentence)
            seconds = time.perf_counter() - began
            meta, payload = _shards.pack_shard(shard, buffer, {
                "worker": self.worker, "tokens": shard.n_tokens, "seconds": seconds,
                "linear_kernel": getattr(self.encoder, "linear_kernel", "torch"),
            }, keep=s["keep"])
            if s["pause"]:
                time.sleep(float(s["pause"]))
            metas.append(meta)
            payloads.append(payload)
        return {"shard": np.asarray(batch["shard"]), "meta": np.array(metas, dtype=object),
                "payload": np.array(payloads, dtype=object)}


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray for one run: the caller's connection if one is open (left open); otherwise a local
    instance started for the run (``address`` None) or a connection to ``address``, closed after.

    The dashboard is not started and worker logs are not forwarded, so nothing reaches the
    network beyond the cluster itself.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        ray.init(num_cpus=num_cpus, **kwargs)
    else:
        kwargs.pop("include_dashboard")  # a property of the cluster, not of a connecting driver
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as exc:
            raise InputError(f"Cannot reach the Ray cluster at {address!r}: {' '.join(str(exc).split())}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _default_workers(ray: Any, cpus_per_worker: int, gpus_per_worker: float | None) -> int:
    resources = ray.cluster_resources()
    if gpus_per_worker:
        gpus = float(resources.get("GPU", 0))
        if gpus < gpus_per_worker:
            raise InputError(f"The Ray cluster has {gpus:g} GPUs, fewer than --gpus-per-worker {gpus_per_worker:g}.")
        return max(1, int(gpus // gpus_per_worker))
    return max(1, int(float(resources.get("CPU", 1)) // cpus_per_worker))


def extract_ray(
    model: str | Any = "minilm",
    corpus: str | Any = "ptb",
    out: str | os.PathLike[str] = "store",
    *,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: int = 1,
    gpus_per_worker: float | None = None,
    chunks_per_shard: int = 1,
    max_sentences: int | None = None,
    max_tokens: int | None = None,
    layers: str | Sequence[int] | None = "all",
    dtype: str = "float16",
    batch_size: int | None = None,
    batch_tokens: int | None = None,
    chunk_tokens: int = 16384,
    device: str = "cpu",
    trust_remote_code: bool = False,
    max_length: int | None = None,
    seed: int = 0,
    progress: bool = True,
    keep: str = "all",
) -> EmbeddingStore:
    """Extract like :func:`isoscope.extract.extract`, with the model run by a pool of Ray actors.

    The store is the one the single process writes for the same arguments: the same
    manifest identity, chunks and token table, and the same layer bytes where the single
    process runs on the same device with as many torch threads as an actor
    (``cpus_per_worker``): float32 sums over another number of threads can differ in the
    last bits.
    The arguments shared with :func:`~isoscope.extract.extract` mean the same.

    Parameters
    ----------
    address : str, optional
        ``"auto"`` (the cluster this machine belongs to, e.g. after ``ray start --head``) or
        ``HOST:PORT``. None: use the caller's open Ray connection, or start a local instance
        for the run and shut it down after.
    workers : int, optional
        Actors in the pool (default: the cluster's CPUs / ``cpus_per_worker``, or its GPUs /
        ``gpus_per_worker``).
    cpus_per_worker : int
        CPUs reserved by each actor, and its torch threads.
    gpus_per_worker : float, optional
        GPUs reserved by each actor; the actors then run the model on ``cuda`` (Ray sets
        each actor's visible devices).
    chunks_per_shard : int
        Chunks of ``chunk_tokens`` tokens per shard, the unit of distribution and of recovery.
    keep : {"all", "sample:N"}
        As for :func:`~isoscope.extract.extract`: ``sample:N`` writes a sketch store whose
        sample rows (global row ids and token rows) are the single process's for the same
        ``seed``, and whose moments equal its moments to rounding (the shards' float64
        accumulators are merged, not summed in one pass). Unlike the single process, a
        killed sketch run resumes from the shards already committed.

    Returns
    -------
    EmbeddingStore
    """
    from tqdm.auto import tqdm

    from isoscope.extract import prepare_extraction

    if workers is not None and workers < 1:
        raise InputError("--workers must be at least 1.")
    if cpus_per_worker < 1:
        raise InputError("--cpus-per-worker must be at least 1.")
    if gpus_per_worker is not None and gpus_per_worker <= 0:
        raise InputError("--gpus-per-worker must be positive.")
    check_positive_int(chunks_per_shard, "--chunks-per-shard", allow_none=False)
    require_ray()  # before the model is loaded: a missing extra is the first thing said
    job = prepare_extraction(
        model, corpus, out, max_sentences=max_sentences, max_tokens=max_tokens, layers=layers,
        dtype=dtype, batch_size=batch_size, batch_tokens=batch_tokens, chunk_tokens=chunk_tokens,
        device=device, trust_remote_code=trust_remote_code, max_length=max_length, seed=seed,
        keep=keep,
    )
    plan, out = job.plan, Path(out)
    keep_spec = None if job.keep_n is None else {"n": job.keep_n, "seed": int(seed)}
    with StoreWriter(out, job.manifest) as writer:  # the lock: a second driver stops here
        if writer.complete:
            _shards.remove_shards(out)  # a driver killed between writing a sketch store and this
            return EmbeddingStore(out)
        if keep_spec is not None and writer.n_chunks:
            writer.reset()  # killed while writing the sketch store: written anew from the shard sketches
        job.check_resume(writer)
        shards = _shards.plan_shards(plan.chunks, plan.lengths, chunks_per_shard)
        _shards.clean_temporary(out)
        committed = _shards.committed_shards(out, shards, keep_spec)
        merged: _Merger | _SketchMerger
        if keep_spec is None:
            merged = _Merger(writer, shards)
        else:
            from isoscope.sketch import StoreSketch

            merged = _SketchMerger(out, shards, StoreSketch(job.layers, job.encoder.hidden_size,
                                                            keep_spec["n"], keep_spec["seed"]))
        committed |= {s.id for s in shards[: merged.next]}  # merged by an earlier driver
        merged.advance(committed)
        todo = [s for s in shards[merged.next :] if s.id not in committed]
        settings = {
            "layers": job.layers, "dtype": job.dtype.name, "batch_size": job.batch_size,
            "batch_tokens": job.batch_tokens,
            "device": "cuda" if gpus_per_worker and device == "cpu" else device,
            "trust_remote_code": trust_remote_code, "max_length": max_length,
            "threads": cpus_per_worker, "model_sha256": job.manifest["model_sha256"],
            "linear_kernel": job.manifest["extraction"]["linear_kernel"], "keep": keep_spec,
            "pause": float(os.environ.get(PAUSE_ENV, 0) or 0),
        }
        done_tokens = sum(s.n_tokens for s in shards if s.id in committed)
        bar = tqdm(total=plan.n_tokens, unit="tok", desc=f"extract {job.encoder.name} (ray)",
                   disable=not progress, initial=done_tokens, smoothing=0.1)
        throughput: dict[str, dict[str, Any]] = {}
        local_cpus = None if workers is None else max(os.cpu_count() or 1, workers * cpus_per_worker)
        began = time.perf_counter()
        n_workers = workers
        with bar:
            bar.set_postfix_str(f"shards {len(committed)}/{len(shards)}")
            if todo:
                with ray_session(address, local_cpus) as ray:
                    n_workers = workers or _default_workers(ray, cpus_per_worker, gpus_per_worker)
                    for meta, payload in _run_pool(ray, plan, todo, model, settings, n_workers,
                                                   cpus_per_worker, gpus_per_worker):
                        info = _worker_record(meta)
                        # A second copy of a shard (a retried task) is neither committed nor counted.
                        if info["shard"] not in committed and _shards.commit_shard(out, meta, payload):
                            committed.add(info["shard"])
                            _count(throughput, info)
                            bar.update(info["tokens"])
                            bar.set_postfix_str(f"shards {len(committed)}/{len(shards)}")
                        merged.advance(committed)
            merged.advance(committed)
        if merged.next != len(shards):
            raise StoreError(
                f"The Ray run on store {out} ended with {len(shards) - merged.next} shards not "
                "extracted; run the same command again to resume it."
            )
        if keep_spec is None:
            _shards.remove_shards(out)
        record = _throughput_record(throughput)
        for row in record:
            logger.info("ray worker %s: %d shards, %d tokens, %.0f tokens/s", row["worker"], row["shards"],
                        row["tokens"], row["tokens_per_s"])
        n_tokens = writer.n_tokens if isinstance(merged, _Merger) else merged.sketch.n_tokens
        extra = job.final_extra(n_tokens) or {}
        extra["extraction"] = {**job.manifest["extraction"], "engine": "ray", "ray": {
            "address": address or "local", "workers": n_workers, "cpus_per_worker": cpus_per_worker,
            "gpus_per_worker": gpus_per_worker, "worker_device": settings["device"],
            "chunks_per_shard": chunks_per_shard, "shards": len(shards),
            "shards_this_run": sum(int(r["shards"]) for r in record),
            "wall_seconds": time.perf_counter() - began, "per_worker": record,
        }}
        if isinstance(merged, _Merger):
            return writer.finalize(extra)
        from isoscope.sketch import write_sketch_store

        store = write_sketch_store(writer, merged.sketch, len(plan.sentences), extra)
        _shards.remove_shards(out)  # only now: until the store is written, a rerun reloads them
        return store


class _Merger:
    """Merges committed shards into the writer in shard order, as far as they go."""

    def __init__(self, writer: StoreWriter, shards: list[_shards.Shard]) -> None:
        self.writer = writer
        self.shards = shards
        self.next = 0
        # Shards whose chunks the store already counts (merged before a driver was killed).
        while self.next < len(shards) and shards[self.next].stop_chunk <= writer.n_chunks:
            self._drop(shards[self.next])
            self.next += 1

    def _drop(self, shard: _shards.Shard) -> None:
        import shutil

        shutil.rmtree(_shards.shards_dir(self.writer.root) / shard.name, ignore_errors=True)

    def advance(self, committed: set[int]) -> None:
        while self.next < len(self.shards) and self.shards[self.next].id in committed:
            _shards.merge_shard(self.writer, self.shards[self.next])
            self.next += 1


class _SketchMerger:
    """Folds committed shard sketches into the store's sketch in shard order, as far as they go.

    The shard folders are kept (they are the only copy until the sketch store is written).
    """

    def __init__(self, root: Path, shards: list[_shards.Shard], sketch: Any) -> None:
        self.root = root
        self.shards = shards
        self.sketch = sketch
        self.next = 0

    def advance(self, committed: set[int]) -> None:
        while self.next < len(self.shards) and self.shards[self.next].id in committed:
            self.sketch.merge(_shards.load_shard_sketch(self.root, self.shards[self.next]))
            self.next += 1


def _run_pool(ray: Any, plan: Any, todo: list[_shards.Shard], model: Any, settings: dict[str, Any], workers: int,
              cpus_per_worker: int, gpus_per_worker: float | None) -> Iterator[tuple[str, bytes]]:
    """Yield (meta, payload) of each shard as the actor pool finishes it."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver's own bar counts shards and tokens
    ends = np.concatenate([[0], np.cumsum(plan.lengths)])
    rows = [{
        "shard": s.id, "first_chunk": s.first_chunk, "stop_chunk": s.stop_chunk,
        "first_sentence": s.first_sentence, "stop_sentence": s.stop_sentence, "n_tokens": s.n_tokens,
        "first_row": int(ends[s.first_sentence]),  # the shard's first global row (sketch ids)
        "sentences": plan.sentences[s.first_sentence : s.stop_sentence],
        # The shard's chunks as sentence ranges relative to its first sentence.
        "chunks": [[a - s.first_sentence, b - s.first_sentence] for a, b in plan.chunks[s.first_chunk : s.stop_chunk]],
    } for s in todo]
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        ShardEncoder, batch_size=1, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=min(workers, len(rows))),
        fn_constructor_kwargs={"model": os.fspath(model) if isinstance(model, os.PathLike) else model,
                               "settings": settings},
        num_cpus=cpus_per_worker, num_gpus=gpus_per_worker or None,
    )
    try:
        for row in dataset.iter_rows():
            yield str(row["meta"]), bytes(row["payload"])
    except Exception as exc:
        cause = _user_error(exc)
        if cause is None:
            raise
        raise cause from None  # an actor's one-sentence error, without Ray's wrapping


def _user_error(exc: BaseException | None) -> IsoscopeError | None:
    """The isoscope error an actor raised, found inside Ray's wrapping exceptions."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None)  # RayTaskError keeps the actor's exception here
        if isinstance(inner, BaseException):
            exc = inner
            continue
        if isinstance(exc, IsoscopeError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _worker_record(meta_text: str) -> dict[str, Any]:
    from isoscope._jsonio import decode_json

    meta = decode_json(meta_text.encode("utf-8"))
    return {"shard": int(meta["shard"]), **meta["worker"]}


def _count(throughput: dict[str, dict[str, Any]], info: dict[str, Any]) -> None:
    row = throughput.setdefault(info["worker"], {"shards": 0, "tokens": 0, "seconds": 0.0,
                                                  "linear_kernel": info["linear_kernel"]})
    row["shards"] += 1
    row["tokens"] += int(info["tokens"])
    row["seconds"] += float(info["seconds"])


def _throughput_record(throughput: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"worker": w, "shards": int(r["shards"]), "tokens": int(r["tokens"]),
             "seconds": round(r["seconds"], 3),
             "tokens_per_s": round(r["tokens"] / r["seconds"], 1) if r["seconds"] > 0 else 0.0,
             "linear_kernel": r["linear_kernel"]}
            for w, r in sorted(throughput.items())]
