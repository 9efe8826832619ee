"""Benchmark of isoscope's geometry metrics (issue 3). Not a timed test: run by hand.

    nice python bench/metrics.py [--n 100000] [--dim 384] [--stream-rows 2000000] [--threads 2]

In one process, on the same n x d float32 layer (a synthetic, token-like layer written to a
temporary store: Zipf-distributed word types, a common offset, a frequency direction and
context noise):

1. LID (k=20, exact): isoscope (its symmetric blocked exact search, float64 refinement, true
   distances) against ``skdim.id.MLE`` computing its own neighbours (scikit-learn brute
   force, default settings apart from k); the values are compared with the same estimator
   normalisation (scikit-dimension uses Levina-Bickel's k-1). isoscope's time is split into
   phases (de-duplication, centring, GEMM wait, selection, merging, refinement, certificate).
2. Exact kNN against the machine's matmul bound: the time of the n^2 d multiply-adds, measured
   as float32 GEMMs of cache-sized blocks and scaled to n^2 d (the symmetric search does half
   of them). ``--faiss`` also times faiss's exact search (``IndexFlatL2``) for reference.
3. The whole per-layer suite (``isoscope.metrics.analyze``, default sample sizes) against the
   published research code's approach on the same sample: a dense n x n cosine matrix for
   S_inter, a Python loop over word types with a boolean mask per type for S_intra,
   scikit-learn KMeans + silhouette_score for k = 2..15, faiss with squared distances for LID.
4. Partition isotropy and IsoScore over ``--stream-rows`` x 768 float16 vectors streamed from a
   file on disk, with the Python-heap peak (tracemalloc, numpy buffers included) and the
   process's peak resident memory.

Figures are printed; record them in docs/benchmarks/metrics.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np


def _load() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {_load()}] {msg}", flush=True)


def synthetic_layer(n: int, d: int, seed: int = 0, n_types: int = 20000):
    """A token-like layer: word-type vectors with a decaying spectrum, offset, frequency axis."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_types + 1) ** 1.05
    p /= p.sum()
    words = rng.choice(n_types, size=n, p=p)
    scales = 1.0 / np.sqrt(np.arange(1, d + 1))
    types = rng.standard_normal((n_types, d)).astype(np.float32) * scales.astype(np.float32)
    offset = rng.standard_normal(d).astype(np.float32) * 0.6
    u = rng.standard_normal(d).astype(np.float32)
    u /= np.linalg.norm(u)
    logf = np.log(p[words] * n).astype(np.float32)
    X = types[words] + 0.35 * rng.standard_normal((n, d)).astype(np.float32) * scales.astype(
        np.float32
    )
    X += offset + 0.4 * (logf - logf.mean())[:, None] * u
    sent = np.arange(n) // 20
    tokens = pd.DataFrame(
        {
            "sentence_id": sent,
            "position": np.arange(n) % 20 + 1,
            "token_id": words,
            "token": [f"w{w}" for w in words],
            "word_id": np.arange(n) % 20,
            "word": [f"w{w}" for w in words],
            "is_special": False,
        }
    )
    return X.astype(np.float32), tokens


def matmul_bound(X: np.ndarray, block: int = 4096, repeats: int = 8) -> float:
    """Seconds for n^2 d multiply-adds at this machine's float32 GEMM speed.

    Measured on cache-friendly (block x d) @ (d x block) products, so that the output stays
    small and the rate is the arithmetic bound, not memory traffic.
    """
    n, d = X.shape
    A = np.ascontiguousarray(X[:block])
    B = np.ascontiguousarray(X[block : 2 * block].T)
    A @ B  # warm up
    t = time.perf_counter()
    for _ in range(repeats):
        A @ B
    dt = time.perf_counter() - t
    rate = repeats * block * block * d / dt  # multiply-adds per second
    return n * n * d / rate


def research_style(X: np.ndarray, keys: np.ndarray, lid_k: int, seed: int) -> dict:
    """The published research code's approach (Cai et al. 2021), re-implemented for timing."""
    import faiss
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.metrics.pairwise import cosine_similarity

    out: dict = {}
    t0 = time.perf_counter()
    C = cosine_similarity(X, X)  # dense n x n
    out["s_inter"] = float((C.sum() - C.shape[0]) / (C.shape[0] * (C.shape[0] - 1)))
    del C
    out["t_inter"] = time.perf_counter() - t0
    t = time.perf_counter()
    vals = []
    for k in np.unique(keys):  # per-word Python loop, one boolean mask per type
        tmp = X[keys == k]
        if tmp.shape[0] <= 1:
            continue
        if tmp.shape[0] >= 1000:
            tmp = tmp[np.random.default_rng(seed).choice(len(tmp), 1000, replace=False)]
        c = cosine_similarity(tmp, tmp)
        vals.append((c.sum() - c.shape[0]) / (c.shape[0] * (c.shape[0] - 1)))
    out["s_intra"] = float(np.mean(vals))
    out["t_intra"] = time.perf_counter() - t
    t = time.perf_counter()
    sil = []
    for k in range(2, 16):
        labels = KMeans(n_clusters=k, random_state=seed).fit(X).labels_
        sil.append(silhouette_score(X, labels, sample_size=20000, random_state=seed))
    out["mms"] = float(max(sil))
    out["t_clusters"] = time.perf_counter() - t
    t = time.perf_counter()
    index = faiss.IndexFlatL2(X.shape[1])
    index.add(X)
    D, _ = index.search(X, lid_k + 1)
    D = D[:, 1:]  # squared distances, as published: halves the estimate
    rk = np.max(D, axis=1)
    rk[rk == 0] = 1e-8
    lids = -1 / np.mean(np.log(D / rk[:, None]), axis=1)
    lids = lids[np.isfinite(lids)]
    out["lid_squared"] = float(np.mean(lids))
    out["t_lid"] = time.perf_counter() - t
    out["total_s"] = time.perf_counter() - t0
    return out


def stream_case(rows: int, dim: int, folder: Path, chunk: int, seed: int) -> dict:
    from isoscope.metrics import stream_partition_isotropy

    path = folder / f"stream_{rows}x{dim}.f16"
    rng = np.random.default_rng(seed)
    scales = (1.0 / np.sqrt(np.arange(1, dim + 1))).astype(np.float32)
    offset = rng.standard_normal(dim).astype(np.float32)
    t = time.perf_counter()
    mm = np.memmap(path, dtype=np.float16, mode="w+", shape=(rows, dim))
    for s in range(0, rows, 65536):
        e = min(s + 65536, rows)
        mm[s:e] = rng.standard_normal((e - s, dim), dtype=np.float32) * scales + offset
    mm.flush()
    del mm
    gen_s = time.perf_counter() - t
    data = np.memmap(path, dtype=np.float16, mode="r", shape=(rows, dim))

    def chunks():
        for s in range(0, rows, chunk):
            yield np.asarray(data[s : s + chunk], dtype=np.float32)

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    t = time.perf_counter()
    iso, moments = stream_partition_isotropy(chunks, normalisation="centered")
    score = moments.isoscore()
    dt = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "rows": rows,
        "dim": dim,
        "file_gib": path.stat().st_size / 2**30,
        "generate_s": gen_s,
        "time_s": dt,
        "isotropy_log10": iso.log10,
        "isoscore": score,
        "heap_peak_mib": peak / 2**20,
        "max_rss_mib_before": rss0,
        "max_rss_mib_after": rss1,
        "chunk_rows": chunk,
    }
    path.unlink()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stream-rows", type=int, default=2_000_000)
    ap.add_argument("--stream-dim", type=int, default=768)
    ap.add_argument("--stream-chunk", type=int, default=16384)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: lid,knn,suite,stream")
    ap.add_argument("--faiss", action="store_true", help="also time faiss's exact search")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))

    import faiss
    from threadpoolctl import threadpool_limits

    from isoscope.metrics import analyze, lid_mle
    from isoscope.store import write_store

    faiss.omp_set_num_threads(args.threads)
    limits = threadpool_limits(args.threads)
    res: dict = {
        "n": args.n,
        "dim": args.dim,
        "k": args.k,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "load_start": _load(),
    }
    log(f"building synthetic layer {args.n} x {args.dim}")
    X, tokens = synthetic_layer(args.n, args.dim)
    tmp = Path(tempfile.mkdtemp(prefix="isoscope_bench_"))

    if "lid" not in skip:
        import skdim

        log("isoscope LID (symmetric exact search)")
        phases: dict = {}
        t = time.perf_counter()
        ours = lid_mle(X, k=args.k, timings=phases)
        t_ours = time.perf_counter() - t
        lb = lid_mle(X, k=args.k, variant="levina_bickel", neighbors=ours.neighbors)
        log(f"  {t_ours:.1f} s, LID mean {ours.mean:.3f} (Levina-Bickel {lb.mean:.3f})")
        for key, v in phases.items():
            print(f"    {key:<38} {v:8.2f} s", flush=True)
        print(
            f"    rows searched again in float64 (uncertified): {ours.neighbors.n_recomputed}",
            flush=True,
        )
        log("skdim.id.MLE (own neighbours)")
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = skdim.id.MLE().fit(X, n_neighbors=args.k, comb="mean")
        t_sk = time.perf_counter() - t
        log(f"  {t_sk:.1f} s, LID mean {est.dimension_:.3f}")
        res["lid"] = {
            "isoscope_s": t_ours,
            "skdim_s": t_sk,
            "speedup": t_sk / t_ours,
            "isoscope_amsaleg": ours.mean,
            "isoscope_levina_bickel": lb.mean,
            "skdim": float(est.dimension_),
            "rel_diff_same_estimator": abs(lb.mean - est.dimension_) / est.dimension_,
            "n_duplicates": ours.n_duplicates,
            "isoscope_phases": phases,
            "isoscope_backend": ours.neighbors.backend,
            "n_recomputed_float64": ours.neighbors.n_recomputed,
        }
        print(
            f"RATIO lid skdim/isoscope time = {t_sk / t_ours:.2f}x  "
            f"(value rel. diff {res['lid']['rel_diff_same_estimator']:.2e})",
            flush=True,
        )

    if "knn" not in skip:
        from isoscope.metrics import exact_knn

        log("matmul bound and exact kNN")
        bound = matmul_bound(X, block=min(4096, args.n // 2))
        if "lid" in res:  # the LID run above timed the same search
            t_knn = res["lid"]["isoscope_phases"]["knn"]
        else:
            t = time.perf_counter()
            exact_knn(X, args.k)
            t_knn = time.perf_counter() - t
        res["knn"] = {
            "matmul_bound_s": bound,
            "knn_s": t_knn,
            "ratio": t_knn / bound,
            "gflops_bound": 2 * args.n**2 * args.dim / bound / 1e9,
        }
        print(
            f"RATIO knn (symmetric, float64-refined)/matmul-bound = {t_knn / bound:.2f}x; "
            f"bound {bound:.1f} s",
            flush=True,
        )
        if args.faiss:
            log("faiss exact search (IndexFlatL2), for reference")
            t = time.perf_counter()
            exact_knn(X, args.k, backend="faiss")
            t_faiss = time.perf_counter() - t
            res["knn"]["faiss_refined_s"] = t_faiss
            print(f"  faiss exact + float64 refinement {t_faiss:.1f} s", flush=True)

    if "suite" not in skip:
        log("writing store and running the whole suite (default settings)")
        store = write_store(tmp / "store", {0: X}, tokens, model="synthetic", corpus="synthetic")
        t = time.perf_counter()
        result = analyze(store, progress=False)
        t_suite = time.perf_counter() - t
        e = result.layers[0]
        log(f"  suite {t_suite:.1f} s")
        print(result.format_table(), flush=True)
        s = result.settings
        rows = store.sample_indices(s["sample"], s["seed"])
        Xs = np.asarray(store.layer(0)[rows], dtype=np.float32)
        keys = tokens["token_id"].to_numpy()[rows]
        log("research-code approach on the same sample")
        r = research_style(Xs, keys, args.k, s["seed"])
        log(f"  research approach {r['total_s']:.1f} s")
        res["suite"] = {
            "isoscope_s": t_suite,
            "isoscope_timings": result.timings["layers"]["0"],
            "sample": s["sample"],
            "research_s": r["total_s"],
            "research": r,
            "speedup": r["total_s"] / t_suite,
            "values": {k: e.get(k) for k in ("s_inter", "s_intra", "mms", "lid_mle", "n_clusters")},
        }
        print(
            f"RATIO research-approach/isoscope-suite time = {r['total_s'] / t_suite:.2f}x "
            f"(isoscope suite {t_suite:.1f} s incl. whole-layer streaming)",
            flush=True,
        )
        print(
            f"  S_inter isoscope {e['s_inter']:.4f} vs dense {r['s_inter']:.4f}; "
            f"LID isoscope {e['lid_mle']:.2f} vs squared-distance code {r['lid_squared']:.2f}",
            flush=True,
        )

    if "stream" not in skip:
        log(f"streaming {args.stream_rows} x {args.stream_dim} float16 from disk")
        st = stream_case(args.stream_rows, args.stream_dim, tmp, args.stream_chunk, 0)
        res["stream"] = st
        print(
            f"STREAM {st['rows']} x {st['dim']} ({st['file_gib']:.2f} GiB on disk): "
            f"{st['time_s']:.1f} s, heap peak {st['heap_peak_mib']:.0f} MiB, "
            f"max RSS {st['max_rss_mib_after']:.0f} MiB (before: {st['max_rss_mib_before']:.0f}), "
            f"log10 I(V) {st['isotropy_log10']:.3f}, IsoScore {st['isoscore']:.4f}",
            flush=True,
        )

    limits.restore_original_limits()
    shutil.rmtree(tmp, ignore_errors=True)
    res["load_end"] = _load()
    print(json.dumps(res, indent=2, default=float), flush=True)
    if args.out:
        args.out.write_text(json.dumps(res, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
