"""``isoscope extract`` and ``isoscope info``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from isoscope.cli.app import (
    app,
    corpus_split,
    echo,
    progress_option,
    seed_option,
    show_progress,
    split_option,
    user_errors,
)


@app.command("extract")
@user_errors
def extract_command(
    out: Path = typer.Option(..., "--out", "-o", help="Store folder to create or resume."),
    model: str = typer.Option("minilm", "--model", "-m", help="Short name, Hugging Face name or local folder."),
    corpus: str = typer.Option(
        "ptb", "--corpus", "-c",
        help="ptb[:split], wikitext:PATH, text:PATH, jsonl:PATH, hf:PATH[#column] or a path.",
    ),
    split: str = split_option(),
    max_sentences: int = typer.Option(None, "--max-sentences", help="Keep at most this many sentences."),
    max_tokens: int = typer.Option(None, "--max-tokens", help="Stop once this many tokens (whole sentences) are stored."),
    layers: str = typer.Option(
        "all", "--layers", help="'all', 'last', hidden-state indices like 0,3,6 or a range 0-6."
    ),
    dtype: str = typer.Option("float16", "--dtype", help="float16 or float32."),
    batch_size: int = typer.Option(
        None, "--batch-size",
        help="Sentences per forward pass (default: 256 for packed BERT/GPT-2 rows, else 64).",
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    max_length: int = typer.Option(None, "--max-length", help="Truncate sentences at this many tokens."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow the model's own code to run."),
    progress: bool = progress_option(),
    keep: str = typer.Option(
        "all", "--keep",
        help="'all' stores every vector; 'sample:N' a sketch store: moments of every token and a "
             "seeded sample of N token rows (--seed).",
    ),
    seed: int = seed_option("the --keep sample"),
    engine: str = typer.Option(
        "single", "--engine", help="single (this process) or ray (a Ray Data actor pool; needs isoscope\\[ray])."
    ),
    address: str = typer.Option(
        None, "--address", help="Ray cluster: auto or HOST:PORT (default: a local Ray instance for the run)."
    ),
    workers: int = typer.Option(None, "--workers", help="Ray actors (default: the cluster's CPUs, or GPUs)."),
    cpus_per_worker: int = typer.Option(None, "--cpus-per-worker", help="CPUs and torch threads per Ray actor (default 1)."),
    gpus_per_worker: float = typer.Option(None, "--gpus-per-worker", help="GPUs per Ray actor (the actors then run on cuda)."),
    chunks_per_shard: int = typer.Option(
        None, "--chunks-per-shard",
        help="Chunks (of about 16,384 tokens) per Ray shard, the unit of distribution and of resume "
             "(default 1; more cuts per-shard overhead, fewer loses less to a killed driver).",
    ),
) -> None:
    """Extract every hidden state of a model over a corpus into a store (resumable)."""
    from isoscope._validation import check_positive_int, parse_layers
    from isoscope.errors import InputError

    chosen = parse_layers(layers)
    ray_options = {"--address": address, "--workers": workers, "--cpus-per-worker": cpus_per_worker,
                   "--gpus-per-worker": gpus_per_worker, "--chunks-per-shard": chunks_per_shard}
    if engine not in {"single", "ray"}:
        raise InputError(f"--engine must be single or ray, not {engine!r}.")
    given = [name for name, value in ray_options.items() if value is not None]
    if engine == "single" and given:
        raise InputError(f"{', '.join(given)} only apply with --engine ray.")
    corpus, hf_split = corpus_split(corpus, split)
    spec: Any = corpus
    if hf_split is not None:
        from isoscope.corpora import load_corpus

        # a loaded Corpus carries the split of an hf: dataset to either engine
        spec = load_corpus(corpus, max_sentences=max_sentences, split=hf_split)
    common: dict[str, Any] = {"max_sentences": max_sentences, "max_tokens": max_tokens, "layers": chosen, "dtype": dtype,
              "batch_size": batch_size, "device": device, "max_length": max_length,
              "trust_remote_code": trust_remote_code, "progress": show_progress(progress)}
    if engine == "ray":
        from isoscope.distributed import extract_ray

        per_shard = check_positive_int(chunks_per_shard, "--chunks-per-shard")
        store = extract_ray(model, spec, out, address=address, workers=workers,
                            cpus_per_worker=cpus_per_worker or 1, gpus_per_worker=gpus_per_worker,
                            chunks_per_shard=per_shard or 1, keep=keep, seed=seed, **common)
        # Per-worker throughput is logged by extract_ray (INFO, shown unless --quiet).
    else:
        from isoscope.extract import extract

        store = extract(model, spec, out, keep=keep, seed=seed, **common)
    echo(summary(store))


def summary(store: object) -> str:
    """Human-readable summary of a store's manifest."""
    m = store.manifest  # type: ignore[attr-defined]
    lines = [
        f"store       {store.path}",  # type: ignore[attr-defined]
        f"model       {m.get('model')} ({m.get('model_type')}, {m.get('n_layers')} hidden states, width {m.get('hidden_size')})",
        f"corpus      {m.get('corpus')}",
        f"sentences   {m.get('n_sentences')}  (truncated at {m.get('max_length')} tokens: {m.get('n_truncated', 0)})",
        f"tokens      {m.get('n_tokens')}",
        f"layers      {m.get('layers')}",
        f"dtype       {m.get('dtype')}",
        f"complete    {m.get('complete')}",
    ]
    keep = m.get("keep")
    if isinstance(keep, dict) and keep.get("mode") == "sample":
        lines.insert(5, f"keep        sample of {keep.get('n')} token rows (seed {keep.get('seed')}) "
                        f"of {m.get('n_tokens_total')}; moments of every token in sketch.safetensors")
    info = m.get("corpus_info")
    replaced = info.get("invalid_utf8_replaced") if isinstance(info, dict) else None
    if replaced:
        lines.append(f"warning     {replaced} invalid UTF-8 byte(s) in the corpus were replaced by U+FFFD")
    v = m.get("versions") or {}
    if v:
        lines.append("versions    " + ", ".join(f"{k} {val}" for k, val in sorted(v.items())))
    return "\n".join(lines)


@app.command("info")
@user_errors
def info_command(
    store: Path = typer.Argument(..., help="A store folder."),
    verify: bool = typer.Option(
        False, "--verify", help="Re-read every file against the checksums recorded when it was written."
    ),
) -> None:
    """Print the summary of a store (file sizes are always checked; --verify reads everything)."""
    from isoscope.store import EmbeddingStore

    s = EmbeddingStore(store, allow_incomplete=True)
    if verify:
        checked = s.verify()
    echo(summary(s))
    if verify:
        echo(f"verify      {verified(checked)}")
    if s.manifest.get("complete"):
        t = s.tokens(["is_special", "word"])
        n_special = int(t["is_special"].sum())
        n_types = t.loc[~t["is_special"], "word"].str.lower().nunique()
        echo(f"special     {n_special} tokens flagged special; {n_types} word types")


def verified(checked: dict) -> str:
    """The "ok" line of a full check: what :meth:`EmbeddingStore.verify` compared, with the counts."""
    if checked["chunks"]:
        what = f"{checked['chunks']} committed chunks match their checksums"
    elif checked["checksums"]:
        what = f"{checked['layers']} layer files and the token table match their checksums"
    else:
        what = (f"{checked['layers']} layer files have their sizes and the token table is whole "
                "(a format 1 store records no checksums)")
    return f"ok: {what} ({checked['tokens']} tokens)"


@app.command("verify")
@user_errors
def verify_command(store: Path = typer.Argument(..., help="A store folder (complete or unfinished).")) -> None:
    """Re-read every file of a store against its checksums: "ok" with the counts, or the first
    damaged file and chunk in one sentence (exit 2)."""
    from isoscope.store import EmbeddingStore

    echo(verified(EmbeddingStore(store, allow_incomplete=True).verify()))
