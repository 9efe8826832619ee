"""Sketch stores at scale: ``--keep sample:N`` over a large corpus vs what ``--keep all`` writes.

Run:  flock /work/wt/timing.lock .venv/bin/python bench/sketch.py
          [--model smollm2] [--corpus ptb:train] [--tokens 1000000] [--keep 50000]
          [--compare-tokens 100000] [--seed 0] [--dtype float16]

Two parts, each extraction in its own child process (``python -m isoscope extract``) so its
peak resident memory (``ru_maxrss`` of that child, from ``os.wait4``) is its own:

1. **Scale**: the sketch extraction of ``--tokens`` tokens (whole sentences). Printed: wall
   time, tokens/s, peak RSS, the store's size on disk, and what ``--keep all`` would write for
   the same tokens (computed: tokens x hidden states x width x bytes per value, the layer
   files alone), so the ratio is of two sizes of the same run.
2. **Equality**: ``--keep all`` and ``--keep sample:N`` over the first ``--compare-tokens``
   tokens, both analysed with the same settings; every scalar measure the registry marks
   "all tokens" (moments of every token) is compared layer by layer, and the largest relative
   difference per key is printed. The keep-all store's real disk size and peak RSS are
   printed beside the sketch's.

The CPU model and the load average before each extraction are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model  # bench/ is on sys.path when a script runs


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def layer_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path / "layers").iterdir() if p.is_file())


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def extract_child(args: argparse.Namespace, out: Path, tokens: int, keep: str) -> dict:
    """``isoscope extract`` in a child process; its wall time and its own peak RSS."""
    cmd = [sys.executable, "-m", "isoscope", "extract", "--model", args.model, "--corpus", args.corpus,
           "--max-tokens", str(tokens), "--keep", keep, "--seed", str(args.seed), "--dtype", args.dtype,
           "--out", str(out), "--no-progress"]
    print(f"  load {os.getloadavg()[0]:.2f}: {' '.join(cmd[1:])}", flush=True)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"extraction failed (exit {os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}")
    return {"seconds": seconds, "peak_rss": usage.ru_maxrss * 1024}


def keep_all_bytes(store) -> int:
    """Bytes the layer files of ``--keep all`` hold for the same tokens, layers and dtype."""
    m = store.manifest
    width = int(m["hidden_size"])
    per_value = 2 if m["dtype"] == "float16" else 4
    return int(m.get("n_tokens_total", store.n_tokens)) * len(store.layers) * width * per_value


def moment_keys() -> list[str]:
    from isoscope.measures import REGISTRY

    return [m.key for m in REGISTRY if m.evidence == "all tokens" and m.scalar]


def rel(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--corpus", default="ptb:train")
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--keep", type=int, default=50_000, help="Sample size N of --keep sample:N.")
    parser.add_argument("--compare-tokens", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--skip-scale", action="store_true", help="Run the equality part only.")
    args = parser.parse_args()

    from isoscope.analysis import analyze
    from isoscope.store import open_store

    print(f"cpu          {cpu_model()} ({os.cpu_count()} logical CPUs)")
    print(f"model        {args.model}, corpus {args.corpus}, dtype {args.dtype}, seed {args.seed}")
    keep = f"sample:{args.keep}"
    with tempfile.TemporaryDirectory(prefix="isoscope-sketch-") as tmp:
        root = Path(tmp)
        if not args.skip_scale:
            print(f"-- scale: {keep} over {args.tokens:,} tokens")
            run = extract_child(args, root / "big", args.tokens, keep)
            store = open_store(root / "big")
            n = int(store.manifest["n_tokens_total"])
            disk, full = folder_bytes(root / "big"), keep_all_bytes(store)
            print(f"tokens       {n:,} ({len(store.layers)} hidden states of width {store.manifest['hidden_size']})")
            print(f"time         {run['seconds']:.0f} s ({n / run['seconds']:.0f} tokens/s), peak RSS {gib(run['peak_rss'])}")
            print(f"disk         sketch store {gib(disk)}; --keep all would write {gib(full)} of layer files "
                  f"(computed) = {full / disk:.0f}x the sketch store")
            del store

        print(f"-- equality: --keep all vs {keep} over {args.compare_tokens:,} tokens")
        runs = {name: extract_child(args, root / name, args.compare_tokens, spec)
                for name, spec in (("all", "all"), ("sketch", keep))}
        full_store, sketch_store = open_store(root / "all"), open_store(root / "sketch")
        for name, path in (("all", root / "all"), ("sketch", root / "sketch")):
            print(f"{name:12s} {runs[name]['seconds']:.0f} s, peak RSS {gib(runs[name]['peak_rss'])}, "
                  f"disk {gib(folder_bytes(path))} (layer files {gib(layer_bytes(path))})")
        print(f"computed     --keep all layer files {gib(keep_all_bytes(sketch_store))} "
              f"(measured {gib(layer_bytes(root / 'all'))})")
        settings = {"sample": min(args.keep, 10_000), "seed": args.seed, "progress": False}
        t = time.perf_counter()
        res_full = analyze(full_store, **settings)
        t_full = time.perf_counter() - t
        t = time.perf_counter()
        res_sketch = analyze(sketch_store, **settings)
        t_sketch = time.perf_counter() - t
        print(f"analyze      keep-all {t_full:.0f} s, sketch {t_sketch:.0f} s "
              f"(sample {settings['sample']}, seed {args.seed}, layers {len(res_full.layers)})")
        worst: dict[str, float] = {}
        for ef, es in zip(res_full.layers, res_sketch.layers, strict=True):
            for key in moment_keys():
                a, b = ef.get(key), es.get(key)
                if a is None and b is None:
                    continue
                if a is None or b is None:
                    worst[key] = math.inf
                    continue
                worst[key] = max(worst.get(key, 0.0), rel(float(a), float(b)))
        print(f"{'measure':28s} largest relative difference over layers (keep-all vs sketch)")
        for key, value in sorted(worst.items()):
            print(f"  {key:26s} {value:.2e}")
        print(f"all equal to 1e-9: {all(v <= 1e-9 for v in worst.values())} ({len(worst)} keys)")


if __name__ == "__main__":
    main()
