"""Checkpoints of a single-process sketch extraction (``extract --keep sample:N``), for resume.

A sketch store commits nothing until the whole corpus has gone through the model: its sketch
(:class:`~isoscope.sketch.StoreSketch`) lives in memory. So that a killed extraction does not
start again from the first token, the sketch is saved every ``every_s`` seconds, after a whole
chunk, into ``STORE/sketch-checkpoint/`` (the sketch's own safetensors + Parquet files, no
pickle) with a small JSON record of the chunks it holds. The folder is written beside and then
renamed over the previous one, so a kill mid-save leaves the older checkpoint whole. A rerun
of the same command (the store's manifest identity is checked by the writer first) loads it and
extracts only the chunks after it; the sketch then accumulates exactly as an uninterrupted run
would (float64 sums in the same chunk order), so the store is the same.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from isoscope._jsonio import read_json, write_json
from isoscope.errors import InputError, StoreError

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "sketch-checkpoint"
OLD_DIR = f".{CHECKPOINT_DIR}.old"
RECORD = "checkpoint.json"


def _plan_record(plan: Any, n_chunks: int) -> dict[str, Any]:
    """What identifies the first ``n_chunks`` chunks of a plan."""
    stop = int(plan.chunks[n_chunks - 1][1]) if n_chunks else 0
    return {"n_chunks": int(n_chunks), "stop_sentence": stop, "n_plan_chunks": len(plan.chunks)}


def load_checkpoint(root: Path, plan: Any, n: int, seed: int) -> tuple[Any, int] | None:
    """The saved sketch and how many chunks of ``plan`` it holds, or None to start afresh.

    A checkpoint from another plan (other chunking or sentences), sample size or seed, or a
    damaged one, is dropped with a log line: the extraction then starts from the first chunk.
    """
    from isoscope.sketch import StoreSketch

    folder = Path(root) / CHECKPOINT_DIR
    if not folder.is_dir() and (Path(root) / OLD_DIR).is_dir():
        folder = Path(root) / OLD_DIR  # killed between the two renames of a save
    if not folder.is_dir():
        return None
    try:
        record = read_json(folder / RECORD, "sketch checkpoint record")
        done = int(record["n_chunks"])
        want = {**_plan_record(plan, done), "n": n, "seed": seed} if 0 < done <= len(plan.chunks) else None
        if want is None or any(record.get(k) != v for k, v in want.items()):
            raise InputError("it was made for another plan, sample size or seed")
        sketch = StoreSketch.load(folder)
        if sketch.n_tokens != int(record["n_tokens"]) or (sketch.n, sketch.seed) != (n, seed):
            raise InputError("its sketch does not match its record")
    except (InputError, StoreError, KeyError, TypeError, ValueError) as exc:
        log.warning("Ignoring the sketch checkpoint in %s (%s); starting from the first chunk.", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    log.info("Resuming the sketch extraction after %d of %d chunks (%d tokens).", done, len(plan.chunks),
             sketch.n_tokens)
    return sketch, done


def remove_checkpoint(root: Path) -> None:
    """Delete the checkpoint once the sketch store is written."""
    for name in (CHECKPOINT_DIR, OLD_DIR):
        shutil.rmtree(Path(root) / name, ignore_errors=True)


class CheckpointingSink:
    """A :class:`~isoscope.extract.SketchSink` that saves its sketch every ``every_s`` seconds.

    Parameters
    ----------
    sink : SketchSink
        The sink chunks are folded into.
    root : path
        The store folder.
    plan : Plan
        The extraction plan (chunk boundaries).
    first_chunk : int
        Chunks of the plan already in the sketch.
    every_s : float
        Seconds between checkpoints (0: after every chunk; ``inf``: never).
    """

    def __init__(self, sink: Any, root: Path, plan: Any, first_chunk: int, every_s: float) -> None:
        self.sink, self.root, self.plan = sink, Path(root), plan
        self.done = int(first_chunk)
        self.every_s = float(every_s)
        self._last = time.monotonic()

    def append(self, arrays: Any, tokens: Any, n_sentences: int) -> None:
        self.sink.append(arrays, tokens, n_sentences)
        self.done += 1
        if self.done < len(self.plan.chunks) and time.monotonic() - self._last >= self.every_s:
            self.save()

    def save(self) -> None:
        """Write the sketch of the chunks so far, replacing the previous checkpoint whole."""
        sketch = self.sink.sketch
        final = self.root / CHECKPOINT_DIR
        tmp = self.root / f".{CHECKPOINT_DIR}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        sketch.save(tmp)
        write_json(tmp / RECORD, {**_plan_record(self.plan, self.done), "n": sketch.n, "seed": sketch.seed,
                                  "n_tokens": sketch.n_tokens})
        old = self.root / OLD_DIR
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        self._last = time.monotonic()
        log.debug("Sketch checkpoint after %d chunks (%d tokens).", self.done, sketch.n_tokens)
