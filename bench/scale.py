"""Ray overhead: ``extract --engine ray`` with W one-thread workers vs the single process with W threads.

Run:  flock /work/wt/timing.lock .venv/bin/python bench/scale.py [--corpus PATH] [--tokens N] [--workers W] [--repeats R]

Both extractions run in this process, one after the other, on the same corpus (WikiText-2 test
from ../shared/data by default; --tokens N keeps the first N tokens, whole sentences) with
MiniLM (the bundled default model), every hidden state, float16:

(a) the single process, torch on W threads (``isoscope.extract.extract``);
(b) Ray: a local Ray instance started for the run, W actors of one CPU and one torch thread
    each (``isoscope.distributed.extract_ray``), the driver merging shards into the store.

Tokens/s are end to end (what a user waits for: model load, for Ray also starting the local
instance and the actors, and the merge). The actors' own rate (tokens over the seconds they
spent on shards, summed over actors) is printed beside it, so the fixed start-up cost is seen
apart from the per-token cost. Also printed: the CPU model, the 1-minute load average before
each run, and whether the two stores are byte-identical. --repeats R runs R such pairs, so
a ratio is always of two runs made back to back.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _machine import cpu_model  # bench/ is on sys.path when a script runs

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wikitext-2" / "test.txt"



def same_layers(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in (a / "layers").iterdir())
    return all((a / "layers" / n).read_bytes() == (b / "layers" / n).read_bytes() for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--tokens", type=int, default=None, help="Keep the first N tokens (default: all).")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--repeats", type=int, default=1, help="Pairs of runs (single, then Ray).")
    args = parser.parse_args()
    if not args.corpus.exists():
        raise SystemExit(f"corpus {args.corpus} not found (the shared/data folder beside the checkout)")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import torch

    from isoscope.distributed import extract_ray
    from isoscope.extract import extract

    spec = f"wikitext:{args.corpus}"
    settings = {"max_tokens": args.tokens, "progress": False}
    print(f"cpu          {cpu_model()} ({os.cpu_count()} logical CPUs)")
    print(f"model        {args.model}, corpus {args.corpus.name}, max tokens {args.tokens or 'all'}")
    for repeat in range(args.repeats):
        print(f"-- pair {repeat + 1} of {args.repeats}")
        run_pair(args, spec, settings, extract, extract_ray, torch)


def run_pair(args: argparse.Namespace, spec: str, settings: dict, extract, extract_ray, torch) -> None:
    """One single-process run and one Ray run, back to back, and their figures."""
    with tempfile.TemporaryDirectory(prefix="isoscope-scale-") as tmp:
        single_out, ray_out = Path(tmp) / "single", Path(tmp) / "ray"
        torch.set_num_threads(args.workers)
        print(f"single       {args.workers} threads, load {os.getloadavg()[0]:.2f}", flush=True)
        t = time.perf_counter()
        single = extract(args.model, spec, single_out, **settings)
        single_s = time.perf_counter() - t
        n = single.n_tokens
        print(f"ray          {args.workers} workers x 1 thread, load {os.getloadavg()[0]:.2f}", flush=True)
        t = time.perf_counter()
        ray_store = extract_ray(args.model, spec, ray_out, workers=args.workers, cpus_per_worker=1, **settings)
        ray_s = time.perf_counter() - t
        record = ray_store.manifest["extraction"]["ray"]
        actors = sum(w["tokens_per_s"] for w in record["per_worker"])
        print(f"tokens       {n} ({record['shards']} shards of up to {single.manifest['chunk_tokens']} tokens)")
        print(f"single       {n / single_s:8.0f} tokens/s  ({single_s:.1f} s)")
        print(f"ray          {n / ray_s:8.0f} tokens/s  ({ray_s:.1f} s end to end; actors on shards: "
              f"{actors:.0f} tokens/s summed)")
        for w in record["per_worker"]:
            print(f"  actor      {w['tokens_per_s']:8.0f} tokens/s  ({w['shards']} shards, {w['tokens']} tokens)")
        print(f"ratio        ray / single = {single_s / ray_s:.2f} end to end, "
              f"{actors / (n / single_s):.2f} actors' rate; load after {os.getloadavg()[0]:.2f}")
        print(f"identical    layer files byte-identical: {same_layers(single_out, ray_out)}, "
              f"token tables equal: {single.tokens().equals(ray_store.tokens())}", flush=True)


if __name__ == "__main__":
    main()
