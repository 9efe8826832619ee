"""``isoscope run``: extract, measure, repair, evaluate and report, one or several models."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import typer

from isoscope.cli.app import (
    app,
    corpus_split,
    drop_position_zero_option,
    echo,
    log,
    progress_option,
    seed_option,
    show_progress,
    split_option,
    transductive_option,
    user_errors,
)
from isoscope.errors import InputError
from isoscope.pipeline import RESULTS, STORE, resolve_layer

__all__ = ["RESULTS", "STORE", "resolve_layer", "run_model", "slug"]


def slug(text: str) -> str:
    """A folder name for a model name, HF id or path (``org/model`` -> ``org-model``)."""
    name = Path(text.rstrip("/\\")).name if os.sep in text and Path(text).exists() else text
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return s or "model"


def parse_transforms(items: list[str]) -> list[str]:
    """Repair specs from repeated or comma-separated ``--transform`` values ("none" dropped)."""
    from isoscope.evaluate import parse_transforms as _parse

    return [t for t in _parse(items) if t != "none"] if items else []


def run_model(
    model: str,
    run_dir: Path,
    *,
    corpus: str = "ptb",
    split: str | None = None,
    max_tokens: int | None = 50_000,
    tasks: list[tuple[str, str]] | None = None,
    transforms: list[str] | None = None,
    layer: str = "last",
    sample: int | None = 10_000,
    seed: int = 0,
    transductive: bool = False,
    drop_position_zero: bool = False,
    fit_on: str | None = None,
    words: list[str] | None = None,
    progress: bool = False,
    report: bool = True,
) -> tuple[dict[str, Any], Any]:
    """One model through :func:`isoscope.pipeline.run`; returns the results and the store.

    Step lines go to the ``isoscope.cli`` logger (stderr; stdout carries only the final paths).
    """
    from isoscope.pipeline import RunSettings, run

    settings = RunSettings(
        model=model, corpus=corpus, split=split, max_tokens=max_tokens, sample=sample, seed=seed,
        transforms=list(transforms or []), layer=layer, transductive=transductive,
        drop_position_zero=drop_position_zero, tasks=list(tasks or []), fit_on=fit_on,
    )
    out = run(settings, run_dir, progress=progress, log=log.info, report=report, words=words)
    return out.results, out.store


@app.command("run")
@user_errors
def run_command(
    model: list[str] = typer.Option(
        ["minilm"],
        "--model",
        "-m",
        help="Short name, Hugging Face name or local folder; repeat to compare models side by side.",
    ),
    corpus: str = typer.Option(
        "ptb", "--corpus", "-c",
        help="ptb[:split], wikitext:PATH, text:PATH, jsonl:PATH, hf:PATH[#column] or a path.",
    ),
    split: str = split_option(),
    max_tokens: int = typer.Option(
        50_000, "--max-tokens", help="Tokens to extract (whole sentences; 0 = all)."
    ),
    task: list[str] = typer.Option(
        [], "--task", "-t", help="NAME=PATH evaluation task, repeatable (see `isoscope evaluate`)."
    ),
    transform: list[str] = typer.Option(
        [],
        "--transform",
        help="Repairs measured before/after and evaluated, e.g. abtt,whiten,cluster (repeatable).",
    ),
    layer: str = typer.Option(
        "last", "--layer", help="Layer the repairs and evaluation use: last, first or an index."
    ),
    sample: int = typer.Option(
        10_000, "--sample", help="Tokens measured per layer (seeded sample; 0 = all)."
    ),
    seed: int = seed_option("every sample, k-means and fit"),
    transductive: bool = transductive_option("the measured data"),
    drop_position_zero: bool = drop_position_zero_option("the measures and pooling"),
    word: list[str] = typer.Option(
        [],
        "--word",
        help="Word followed across layers in the report (repeatable; default: a few "
        "words spread over the frequency range).",
    ),
    fit_on: str = typer.Option(
        None,
        "--fit-on",
        help="Sentences the repairs are fitted on for evaluation: 'corpus' (the extracted "
        "corpus), a file as for `isoscope evaluate --fit-on`, or by default the task's "
        "training split (STS-B, SICK).",
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Run folder (default runs/MODEL, or runs/A-vs-B)."
    ),
    progress: bool = progress_option(),
) -> None:
    """Extract, measure every layer, repair, evaluate, and write report.html + results.json.

    With several --model options each model gets its own folder and report inside OUT, and
    OUT/report.html compares them with layers normalised to depth.
    """
    models = list(dict.fromkeys(model))
    if max_tokens < 0 or sample < 0:
        raise InputError("--max-tokens and --sample must be positive (0 means all).")
    from isoscope._validation import parse_tasks  # numpy: imported when the command runs

    tasks = parse_tasks(task)
    transforms = parse_transforms(transform)
    show = show_progress(progress)
    corpus, hf_split = corpus_split(corpus, split)
    if out is None:
        out = Path("runs") / "-vs-".join(slug(m) for m in models)
    slugs = [slug(m) for m in models]
    if len(set(slugs)) != len(slugs):
        raise InputError("Two --model values map to the same folder name; give distinct models.")
    all_results, run_dirs = [], []
    for i, m in enumerate(models):
        run_dir = out if len(models) == 1 else out / slugs[i]
        if len(models) > 1:
            log.info(f"[{i + 1}/{len(models)}] {m}")
        res, _ = run_model(
            m,
            run_dir,
            corpus=corpus,
            split=hf_split,
            max_tokens=max_tokens or None,
            tasks=tasks,
            transforms=transforms,
            layer=layer,
            sample=sample or None,
            seed=seed,
            transductive=transductive,
            drop_position_zero=drop_position_zero,
            fit_on=fit_on,
            words=word,
            progress=show,
        )
        all_results.append(res)
        run_dirs.append(run_dir)
        echo(f"report   {run_dir / 'report.html'}")
        echo(f"results  {run_dir / RESULTS}")
    if len(models) > 1:
        from isoscope.artefacts import load_artefacts
        from isoscope.cli._report import write_comparison

        log.info("· writing the comparison report")
        # Each run saved its artefacts; the comparison only draws them (and compares their
        # word samples across models).
        arts = [load_artefacts(d, r) for d, r in zip(run_dirs, all_results, strict=True)]
        path = write_comparison(all_results, arts, out, formats=("png", "svg"), progress=show)
        echo(f"compare  {path}")

