"""Extraction throughput and memory: isoscope vs the research code's naive loop vs the compute bound.

Run:  .venv/bin/python bench/extract.py [--corpus PATH] [--tokens N] [--naive-tokens N] [--threads T] [--repeats R]

(a) isoscope's extraction of every hidden state (float16 store on disk) over the whole corpus
    (WikiText-2 test by default; --tokens N keeps the first N tokens);
(b) the naive loop of the published research code: one sentence at a time, every hidden state
    of every token kept in Python lists. Those lists take about 86 kB a token, so (b) runs on the
    first --naive-tokens tokens only, and isoscope runs on that same slice for the ratio;
(c) the plain batched Hugging Face loop every speed figure is divided by: sentences sorted by
    length, 64 a batch, padded, output_hidden_states=True, float16 copies kept in memory, on the
    main run's corpus in the same run;
(d) the compute bound: measured float32 matmul FLOP/s / (2 x non-embedding parameters). The
    matmul rate is the best of ten 2048 x 2048 products, with PyTorch's default kernel (MKL) and
    with oneDNN on a pre-packed weight (the kernel isoscope's linear layers use), each measured
    before and after the main run; the highest of the four gives the bound (the strictest figure).
Then the layer cut-off (only layers up to 2 requested) and peak memory for growing corpora,
each in a fresh subprocess. The 1-minute load average is printed before every timed run: on a
shared machine the figures are only meaningful when it is low.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model  # bench/ is on sys.path when a script runs

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wikitext-2" / "test.txt"


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def best_seconds(run, repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``run``, after one warm-up call."""
    run()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_flops(threads: int, n: int = 2048, repeats: int = 10) -> dict[str, float]:
    """Best float32 n x n matmul rate of PyTorch's default (MKL) and of oneDNN on a packed weight."""
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    rates = {}
    kernels = {"torch.mm": lambda: torch.mm(a, b)}
    if hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
        packed = torch.ops.mkldnn._reorder_linear_weight(b.t().contiguous(), n)
        kernels["oneDNN packed"] = lambda: torch.ops.mkldnn._linear_pointwise(a, packed, None, "none", [], "")
    with torch.inference_mode():
        for name, run in kernels.items():
            rates[name] = 2 * n**3 / best_seconds(run, repeats)
    return rates



def gemm_shapes(config) -> list[tuple[int, int, int]]:
    """(in, out, count) of the linear layers one transformer block runs per token, from its config."""
    h = int(config.hidden_size)
    inter = int(getattr(config, "intermediate_size", 4 * h))
    # Q, K, V and the attention output (h x h each), then the feed-forward pair.
    return [(h, h, 4), (h, inter, 1), (inter, h, 1)]


def shape_bound(config, n_blocks: int, threads: int, rows: int = 4096, repeats: int = 10) -> dict[str, float]:
    """Tokens/s bound from the best float32 rate of the model's own GEMM shapes (rows tokens a batch).

    Each shape is timed as ``torch.nn.functional.linear`` and as oneDNN on a pre-packed weight
    on a (rows x in) input, best of ``repeats``, and the faster kernel counts; the bound is tokens per second if every block did nothing but these GEMMs at
    those rates (attention's own products, norms and activations excluded).
    """
    import torch

    torch.set_num_threads(threads)
    seconds_per_token = 0.0
    rates = {}
    with torch.inference_mode():
        for n_in, n_out, count in gemm_shapes(config):
            x = torch.randn(rows, n_in)
            w = torch.randn(n_out, n_in)
            b = torch.randn(n_out)
            kernels = {"torch": lambda x=x, w=w, b=b: torch.nn.functional.linear(x, w, b)}
            if hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
                packed = torch.ops.mkldnn._reorder_linear_weight(w, rows)
                kernels["oneDNN"] = lambda x=x, p=packed, b=b: torch.ops.mkldnn._linear_pointwise(
                    x, p, b, "none", [], "")
            best = min(best_seconds(kernel, repeats) for kernel in kernels.values())
            rate = 2 * rows * n_in * n_out / best
            # The faster kernel of the two gives the bound (the strictest figure).
            rates[f"{rows}x{n_in}x{n_out}"] = rate
            seconds_per_token += count * 2 * n_in * n_out / rate
    return {"tokens_per_s": 1 / (n_blocks * seconds_per_token), **rates}


def plain_model(source: str):
    """A freshly loaded Hugging Face model and tokenizer, as a user's own script would have them."""
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(source).eval(), AutoTokenizer.from_pretrained(source)


def plain_loop(model, tok, sentences: list[str], max_length: int, batch_size: int = 64) -> tuple[int, float]:
    """The plain batched Hugging Face loop every figure is divided by.

    Sentences sorted by token length, 64 a batch, padded, ``output_hidden_states=True``, and a
    float16 copy of every hidden state of every real token kept in memory. Tokenisation is timed.
    """
    import torch

    t = time.perf_counter()
    lengths = [len(ids) for ids in tok(sentences, truncation=True, max_length=max_length)["input_ids"]]
    order = sorted(range(len(sentences)), key=lengths.__getitem__)
    kept = []
    n_tokens = 0
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            batch = [sentences[i] for i in order[s : s + batch_size]]
            enc = tok(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            out = model(**enc, output_hidden_states=True)
            mask = enc["attention_mask"].bool()
            kept.append([h[mask].to(torch.float16) for h in out.hidden_states])
            n_tokens += int(mask.sum())
    return n_tokens, time.perf_counter() - t


def non_embedding_params(model) -> int:
    emb = {id(p) for name, m in model.named_modules() if "embed" in name.lower() for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in emb)


def naive_loop(encoder, sentences: list[str]) -> tuple[int, float]:
    """One sentence at a time, all hidden states kept as nested Python lists (as in the research code)."""
    import torch

    kept = []
    n_tokens = 0
    t = time.perf_counter()
    with torch.no_grad():
        for s in sentences:
            enc = encoder.tokenizer(s, return_tensors="pt", truncation=True, max_length=encoder.max_length)
            out = encoder.model(**enc, output_hidden_states=True)
            kept.append([h[0].tolist() for h in out.hidden_states])
            n_tokens += enc["input_ids"].shape[1]
    return n_tokens, time.perf_counter() - t


def peak_rss_child(corpus: str, repeat: int, layers: str) -> dict:
    """Extract `repeat` copies of the corpus in a fresh process; return tokens and peak RSS (Linux)."""
    code = f"""
import json, resource, sys, tempfile, pathlib
from isoscope.extract import extract
text = pathlib.Path({corpus!r}).read_text(encoding='utf-8')
d = pathlib.Path(tempfile.mkdtemp())
(d / 'c.txt').write_text(text * {repeat}, encoding='utf-8')
s = extract('minilm', 'wikitext:' + str(d / 'c.txt'), d / 'store', layers={layers!r}, progress=False)
# VmHWM, not getrusage: ru_maxrss survives fork+exec, so it would report this parent's peak.
hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))
print(json.dumps({{'tokens': s.n_tokens, 'peak_rss_mb': int(hwm.split()[1]) / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory_table(corpus: str) -> None:
    print("peak resident memory of a fresh process extracting layers 0,1 (WikiText-2 test repeated):")
    for repeat in (1, 4):
        r = peak_rss_child(corpus, repeat, "0,1")
        print(f"  {r['tokens']:>9,} tokens: peak RSS {r['peak_rss_mb']:,.0f} MiB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    ap.add_argument("--tokens", type=int, default=None, help="tokens for the main run (default: all)")
    ap.add_argument("--naive-tokens", type=int, default=15_000,
                    help="tokens for the naive loop and the runs compared with it")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2,
                    help="alternating runs of isoscope and the plain loop; the best of each counts")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--only-memory", action="store_true")
    args = ap.parse_args()
    if not Path(args.corpus).exists():
        sys.exit(f"corpus {args.corpus} not found; pass --corpus PATH")

    if args.only_memory:
        memory_table(args.corpus)
        return

    import torch

    from isoscope.corpora import load_corpus
    from isoscope.extract import extract, plan_extraction
    from isoscope.models import load_encoder

    torch.set_num_threads(args.threads)
    encoder = load_encoder("minilm")
    corpus = load_corpus("wikitext:" + args.corpus)
    small = plan_extraction(encoder, corpus.sentences, max_tokens=args.naive_tokens, chunk_tokens=16384)
    params = non_embedding_params(encoder.model)
    flops_before = matmul_flops(args.threads)

    rows = []
    main_plan = plan_extraction(encoder, corpus.sentences, max_tokens=args.tokens, chunk_tokens=16384)
    model, tok = plain_model(str(encoder.source))
    iso_times: list[float] = []
    plain_times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        # No warm-up: the first isoscope run pays the first-call costs (imports, the wordfreq
        # table). The two methods alternate, each pair in the other order, so a load that comes
        # and goes on a shared machine falls on both.
        for r in range(args.repeats):
            for method in (("isoscope", "plain") if r % 2 == 0 else ("plain", "isoscope")):
                print(f"[{load()}] {method}, all layers, main run {r + 1}/{args.repeats}", flush=True)
                t = time.perf_counter()
                if method == "isoscope":
                    store = extract(encoder, corpus, Path(tmp) / f"full{r}", max_tokens=args.tokens,
                                    progress=False)
                    iso_times.append(time.perf_counter() - t)
                else:
                    n_plain, _ = plain_loop(model, tok, list(main_plan.sentences), encoder.max_length)
                    plain_times.append(time.perf_counter() - t)
                print(f"  {(iso_times if method == 'isoscope' else plain_times)[-1]:.1f} s", flush=True)
        del model
        dt = dt_main = min(iso_times)
        dt_plain = min(plain_times)
        rows.append(("isoscope extract (all 7 hidden states)", store.n_tokens, dt, load()))
        rows.append(("plain HF loop (sorted, 64 a batch, fp16 copies)", n_plain, dt_plain, load()))
        flops_after = matmul_flops(args.threads)
        print(f"[{load()}] isoscope, all layers, naive-loop slice", flush=True)
        t = time.perf_counter()
        same = extract(encoder, corpus, Path(tmp) / "same", max_tokens=args.naive_tokens, progress=False)
        dt_same = time.perf_counter() - t
        rows.append(("  same, first tokens only", same.n_tokens, dt_same, load()))
        print(f"[{load()}] isoscope, layers 0-2, naive-loop slice", flush=True)
        t = time.perf_counter()
        part = extract(encoder, corpus, Path(tmp) / "part", max_tokens=args.naive_tokens, layers="0,1,2",
                       progress=False)
        dt_part = time.perf_counter() - t
        rows.append(("  same, layers 0-2 only", part.n_tokens, dt_part, load()))
    print(f"[{load()}] naive loop, naive-loop slice", flush=True)
    n_naive, dt_naive = naive_loop(encoder, small.sentences)
    rows.append(("naive loop (1 sentence, Python lists)", n_naive, dt_naive, load()))

    shapes = shape_bound(encoder.model.config, encoder.n_layers - 1, args.threads)
    flops = max(*flops_before.values(), *flops_after.values())
    bound = flops / (2 * params)
    # The same with PyTorch's default kernel only (the definition used before oneDNN came in).
    bound_mm = max(flops_before["torch.mm"], flops_after["torch.mm"]) / (2 * params)
    rates = ", ".join(f"{k} {flops_before[k] / 1e9:.1f} / {flops_after[k] / 1e9:.1f}" for k in flops_before)
    print(f"\nmachine: {args.threads} threads, float32 2048^2 matmul GFLOP/s before / after the main run: "
          f"{rates} (bound uses {flops / 1e9:.1f})")
    print(f"CPU: {cpu_model()}")
    print(f"isoscope's linear layers: {encoder.linear_kernel}")
    shape_rates = ", ".join(f"{k} {v / 1e9:.1f}" for k, v in shapes.items() if k != "tokens_per_s")
    print(f"the model's own GEMM shapes, GFLOP/s: {shape_rates} -> bound {shapes['tokens_per_s']:,.0f} tokens/s")
    print(f"minilm non-embedding parameters: {params / 1e6:.2f} M -> compute bound {bound:,.0f} tokens/s "
          f"({bound_mm:,.0f} from torch.mm alone)")
    print(f"corpus: {args.corpus} ({store.manifest['n_sentences']} paragraphs, {store.n_tokens} tokens; naive-loop "
          f"slice: {len(small.sentences)} paragraphs, {small.n_tokens} tokens)\n")
    print(f"{'method':<42} {'tokens':>8} {'seconds':>8} {'tok/s':>9} {'of bound':>9} {'(torch.mm)':>10}  load after")
    for name, n, dt, ld in rows:
        print(f"{name:<42} {n:>8} {dt:>8.1f} {n / dt:>9,.0f} {n / dt / bound:>9.1%} {n / dt / bound_mm:>10.1%}  {ld}")
    pairs = ", ".join(f"{p / i:.2f}x" for i, p in zip(iso_times, plain_times, strict=True))
    print(f"\nisoscope / plain HF loop speed ratio (main run, both in this run): "
          f"{(store.n_tokens / dt_main) / (n_plain / dt_plain):.2f}x best of {args.repeats} each "
          f"(run by run: {pairs})")
    print(f"plain HF loop: {n_plain / dt_plain / shapes['tokens_per_s']:.1%} of the GEMM-shape bound; isoscope: "
          f"{store.n_tokens / dt_main / shapes['tokens_per_s']:.1%}")
    print(f"isoscope / naive loop speed ratio (same slice): {(same.n_tokens / dt_same) / (n_naive / dt_naive):.2f}x")
    print(f"layers 0-2 vs all layers time ratio (same slice): {dt_part / dt_same:.2f} (blocks 3-6 are not run)")

    if not args.skip_memory:
        memory_table(args.corpus)
    print(f"\n(peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB)")


if __name__ == "__main__":
    main()
