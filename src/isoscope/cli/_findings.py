"""``isoscope findings``: reproduce the papers' claims on the bundled models."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import typer

from isoscope.cli.app import (
    app,
    echo,
    log,
    progress_option,
    seed_option,
    show_progress,
    user_errors,
)


@app.command("findings")
@user_errors
def findings_command(
    quick: bool = typer.Option(
        False, "--quick", help="Reduced run: 10,000 tokens per corpus, 3,000-token samples per layer."
    ),
    model: list[str] = typer.Option(
        [], "--model", "-m", help="Models to include (repeatable; default: every bundled model)."
    ),
    wikitext: Path = typer.Option(
        None, "--wikitext", help="WikiText raw file or folder (default: shared/data/wikitext-2/test.txt)."
    ),
    data_dir: Path = typer.Option(
        None, "--data-dir", help="Folder with wikitext-2/, stsbenchmark/ and word-sim/ (default: ../shared/data)."
    ),
    max_tokens: int = typer.Option(
        None, "--max-tokens", help="Tokens extracted per model and corpus (default 100,000; quick: 10,000; 0 = all)."
    ),
    sample: int = typer.Option(None, "--sample", help="Tokens measured per layer."),
    seed: int = seed_option("every sample, k-means and fit"),
    work: Path = typer.Option(
        Path("runs/findings"), "--work", help="Folder for stores and per-step results (resumable)."
    ),
    out: Path = typer.Option(
        Path("docs/findings.md"), "--out", "-o", help="The Markdown page to write."
    ),
    render_only: bool = typer.Option(
        False, "--render-only", help="Only redraw the page from results already in --work."
    ),
    progress: bool = progress_option(),
) -> None:
    """Run every bundled model over WikiText-2 and PTB, check the papers' claims (and those of later work),
    and write docs/findings.md with its figures.

    Steps already finished with the same settings are reused, so an interrupted run resumes.
    The full run takes hours on 2 CPU cores; --quick takes well under one.
    """
    from isoscope.findings import DEFAULT_MODELS, FindingsPlan, collect, render

    plan = FindingsPlan.make(
        quick,
        models=tuple(dict.fromkeys(model)) if model else DEFAULT_MODELS,
        data_dir=str(data_dir) if data_dir else None,
        wikitext=str(wikitext) if wikitext else None,
        max_tokens=max_tokens or None,
        sample=sample,
        seed=seed,
    )
    if max_tokens == 0:
        plan = dataclasses.replace(plan, max_tokens=None)
    mode = "quick" if quick else "full"
    work_dir = work / mode
    t0 = time.perf_counter()
    show = show_progress(progress)

    if render_only:
        log.info(f"· reading results in {work_dir}")
    collected = collect(plan, work_dir, log=log.info, progress=show, reuse_only=render_only)
    log.info(f"· writing {out} ({(time.perf_counter() - t0) / 60:.0f} min so far)")
    cmd = "make findings" + (" FINDINGS_ARGS=--quick" if quick else "")
    page = render(collected, out, command=cmd, work=str(work_dir))
    echo(f"findings {page}")
