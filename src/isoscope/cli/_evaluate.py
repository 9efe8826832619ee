"""``isoscope evaluate``: task scores before and after each isotropy repair."""

from __future__ import annotations

from pathlib import Path

import typer

from isoscope.cli.app import (
    app,
    drop_position_zero_option,
    echo,
    log,
    progress_option,
    seed_option,
    show_progress,
    transductive_option,
    user_errors,
)
from isoscope.errors import InputError


def _parse_layer(text: str | None) -> int | list[int] | None:
    """``--layer``: None (the last hidden state), one index, or a list of indices to average."""
    if text is None or not text.strip():
        return None
    from isoscope._validation import parse_layers

    parts = parse_layers(text, option="--layer", allow_all=False)
    assert parts is not None  # allow_all=False never gives None
    return parts[0] if len(parts) == 1 else parts


@app.command("evaluate")
@user_errors
def evaluate_command(
    task: list[str] = typer.Option(
        ..., "--task", "-t",
        help="NAME=PATH, repeatable. Names: stsb, sick, sts (sts12..sts16: a SentEval folder), "
        "pairs (CSV/TSV sentence1,sentence2,score), wordsim, analogy; classification probes: "
        "sst2, mrpc, classify (labelled CSV/TSV), classify-pairs (labelled pair CSV/TSV), each a "
        "folder of train/dev/test files or comma-separated files.",
    ),
    model: str = typer.Option(
        "minilm", "--model", "-m", help="Short name, Hugging Face name, local folder, or static table (glove-50d, .txt/.bin/.npy)."
    ),
    pooling: str = typer.Option("mean", help="mean, cls, last (last real token) or first_last (hidden states 1 and last, averaged)."),
    layer: str = typer.Option(
        None, help="Hidden state (0 = embeddings, -1 = last), or a list or range (1,6 or 1-3) to average; default last."
    ),
    exclude_special: bool = typer.Option(
        False, "--exclude-special", help="Drop special tokens from mean pooling (default: included, as sentence-transformers)."
    ),
    drop_position_zero: bool = drop_position_zero_option("pooling"),
    transform: list[str] = typer.Option(
        ["none"], "--transform", help="Repairs, comma-separated or repeated: none,center,abtt,cluster,learned,whiten,zipf,standardize."
    ),
    level: str = typer.Option("sentence", help="Repair pooled sentence vectors (sentence) or token vectors before pooling (token)."),
    fit_on: str = typer.Option(
        None, "--fit-on", help="Sentences to fit repairs on (STS-B/SICK/pair file, KIND=PATH or plain text). "
        "Default: the STS-B train split for STS-B, SICK TRAIN rows for SICK."
    ),
    transductive: bool = transductive_option("the evaluation data", "labelled"),
    word_vectors: str = typer.Option(
        "alone", "--word-vectors", help="Contextual word vectors: alone (word encoded on its own), input (input embeddings) or a store path."
    ),
    learn_on: list[str] = typer.Option([], "--learn-on", help="Word-similarity files that train 'learned' removal (not evaluated)."),
    restrict_vocab: int = typer.Option(300_000, help="Word tasks: only the first N words of a static table (gensim's default)."),
    text_column: str = typer.Option(
        None, "--text-column", help="classify / classify-pairs: the text column (pairs: A,B); default found by name."
    ),
    label_column: str = typer.Option(None, "--label-column", help="classify / classify-pairs: the label column."),
    max_train: int = typer.Option(
        None, "--max-train", help="Classification: a seeded sample of at most N training examples (recorded)."
    ),
    batch_size: int = typer.Option(64, help="Sentences per forward pass."),
    seed: int = seed_option("fit samples and seeded repairs"),
    cache_dir: Path = typer.Option(None, "--cache-dir", help="Embedding cache folder (default $ISOSCOPE_CACHE/evaluate)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the embedding cache."),
    device: str = typer.Option("cpu", help="Torch device for transformer models."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the results JSON here."),
    progress: bool = progress_option(),
) -> None:
    """Score a model on STS / SICK-R / word-similarity / analogy / classification tasks before and after repairs.

    Prints one table (rows: repairs, columns: tasks, Spearman x 100; analogy and classification:
    accuracy x 100, MRPC also F1; STS12-16: the pooled "all" score) and writes every row, with
    its fit mode (classification: train/validation/test sizes and the chosen C), to --out.
    Classification repairs are always fitted on the task's training split.
    """
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}.")
    chosen_layer = _parse_layer(layer)
    if out is not None:
        from isoscope._validation import check_output_file

        check_output_file(out)
    from isoscope._validation import parse_tasks

    tasks = parse_tasks(task)
    from isoscope.evaluate import evaluate
    from isoscope.evaluate._run import _load_model

    if device != "cpu":
        from isoscope.models import load_encoder
        from isoscope.models.registry import BUNDLED

        info = BUNDLED.get(model)
        loaded = _load_model(model) if info is not None and info.kind == "static" else load_encoder(model, device=device)
    else:
        loaded = _load_model(model)

    results = evaluate(
        loaded,
        tasks,
        transforms=transform,
        pooling=pooling,
        layer=chosen_layer,
        include_special=not exclude_special,
        drop_position_zero=drop_position_zero,
        level=level,
        fit_on=fit_on,
        transductive=transductive,
        word_vectors=word_vectors,
        learn_on=learn_on or None,
        restrict_vocab=restrict_vocab,
        text_column=text_column,
        label_column=label_column,
        max_train=max_train,
        cache=False if no_cache else (cache_dir if cache_dir is not None else True),
        batch_size=batch_size,
        seed=seed,
        progress=show_progress(progress),
        log=log.info,
    )
    echo(results.format_table())
    if out is not None:
        written = results.to_json(out)
        echo(f"wrote {written}")
