"""``isoscope export``: a model with a fitted repair, saved as a sentence-transformers model."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import typer

from isoscope.cli.app import (
    app,
    corpus_split,
    drop_position_zero_option,
    echo,
    progress_option,
    seed_option,
    show_progress,
    split_option,
    user_errors,
)
from isoscope.errors import InputError


@app.command("export")
@user_errors
def export_command(
    model: str = typer.Option("minilm", "--model", "-m", help="Short name, Hugging Face name or local folder."),
    transform: str = typer.Option(..., "--transform", help="The repair spec (whiten, abtt:n_components=3, ...)."),
    fit_corpus: str = typer.Option(
        ..., "--fit-corpus", help="Corpus spec whose pooled sentence vectors the repair is fitted on (text:PATH, ptb, ...)."
    ),
    split: str = split_option(),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the sentence-transformers model to."),
    pooling: str = typer.Option("mean", help="mean, cls, last or first_last (as isoscope evaluate)."),
    layer: str = typer.Option(None, help="Hidden state, or a list or range to average; default last."),
    exclude_special: bool = typer.Option(False, "--exclude-special", help="Drop special tokens from mean pooling."),
    drop_position_zero: bool = drop_position_zero_option("pooling"),
    max_sentences: int = typer.Option(None, "--max-sentences", help="A seeded sample of at most N fit sentences (default 20000)."),
    batch_size: int = typer.Option(64, help="Sentences per forward pass."),
    seed: int = seed_option("the fit sample and seeded repairs"),
    device: str = typer.Option("cpu", help="Torch device."),
    progress: bool = progress_option(),
) -> None:
    """Fit a repair on a corpus's pooled sentence vectors and save model + repair for sentence-transformers.

    Load the result with ``SentenceTransformer(OUT)``: an affine repair (all but cluster) is saved as
    sentence-transformers' own Dense module. The cluster repair (isoscope.export.RepairModule) and
    poolings other than mean/cls of the last layer (IsoscopePooling) need
    ``SentenceTransformer(OUT, trust_remote_code=True)``: sentence-transformers 6.0 and later (checked
    with 6.3.0) import a modules.json class outside their own namespace only with that flag.
    """
    from isoscope._jsonio import write_json
    from isoscope.cli._evaluate import _parse_layer
    from isoscope.corpora import load_corpus
    from isoscope.export import (
        fit_sentence_repair,
        needs_trust_remote_code,
        to_sentence_transformer,
    )
    from isoscope.models import load_encoder
    from isoscope.models.hf import quiet_transformers

    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}.")
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} is not empty; choose a new folder for the exported model.")
    chosen_layer = _parse_layer(layer)
    show = show_progress(progress)
    spec, hf_split = corpus_split(fit_corpus, split)
    corpus = load_corpus(spec, split=hf_split)
    encoder = load_encoder(model, device=device)
    kw: dict[str, Any] = dict(pooling=pooling, layer=chosen_layer, include_special=not exclude_special,
              drop_position_zero=drop_position_zero)
    repair = fit_sentence_repair(encoder, transform, corpus.sentences, max_sentences=max_sentences, seed=seed,
                                 batch_size=batch_size, progress=show, **kw)
    st = to_sentence_transformer(encoder, repair, device=device, **kw)
    with nullcontext() if show else quiet_transformers():  # transformers' "Writing shards" bar
        st.save(str(out))
    write_json(out / "isoscope_export.json", {
        "model": encoder.name, "source": str(encoder.source), "transform": transform,
        "fit_corpus": corpus.name, "fit_split": split, "fit_corpus_sentences": len(corpus),
        "fit_n": int(repair.fit_info_["n_samples"]),
        "seed": seed, "pooling": pooling, "layer": chosen_layer, "include_special": not exclude_special,
        "drop_position_zero": drop_position_zero, "max_length": int(encoder.max_length),
    }, indent=2)
    flag = ", trust_remote_code=True" if needs_trust_remote_code(st) else ""
    echo(f"wrote {out} ({encoder.name} + {transform} fitted on {corpus.name}); "
         f"load with SentenceTransformer({str(out)!r}{flag})")


@app.command("export-layer")
@user_errors
def export_layer_command(
    store: Path = typer.Argument(..., help="Store folder."),
    layer: int = typer.Option(..., "--layer", "-l", help="Hidden state (0 = embeddings, -1 = last stored)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for layer_<L>.parquet (a datasets-readable file)."),
    chunk_rows: int = typer.Option(65536, help="Rows read from the layer at a time (one Parquet row group)."),
    progress: bool = progress_option(),
) -> None:
    """Write one store layer with its token table to Parquet for datasets (probes, sparse autoencoders)."""
    from isoscope._hf import layer_to_parquet
    from isoscope.store import open_store

    opened = open_store(store)
    index = opened._check_layer(layer)
    path = layer_to_parquet(opened, index, out / f"layer_{index}.parquet", chunk_rows=chunk_rows,
                            progress=show_progress(progress))
    echo(f"wrote {path} ({opened.n_tokens} tokens x {opened.hidden_size}); "
         f"datasets.Dataset.from_parquet({str(path)!r}) reads it")
