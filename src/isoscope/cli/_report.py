"""``isoscope report`` and ``isoscope compare``: draw saved runs, with no store present."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from isoscope.cli.app import app, echo, log, progress_option, show_progress, user_errors
from isoscope.errors import InputError

RESULTS = "results.json"


def load_results(path: Path) -> tuple[dict[str, Any], Path]:
    """Read a results file (or a run folder's ``results.json``).

    Parameters
    ----------
    path : Path
        A ``results.json`` file or the run folder holding one.

    Returns
    -------
    results : dict
    file : Path
        The file read; its folder holds the run's ``artefacts/``.
    """
    file = path / RESULTS if path.is_dir() else path
    if not file.is_file():
        raise InputError(f"{path} has no {RESULTS}; run `isoscope run --out {path}` first.")
    from isoscope.analysis import load_results as read_results

    results = read_results(file)
    return results, file


def _formats(items: list[str]) -> tuple[str, ...]:
    allowed = ("png", "svg", "pdf")
    out = tuple(dict.fromkeys(f.strip().lower() for item in items for f in item.split(",") if f))
    bad = [f for f in out if f not in allowed]
    if bad:
        raise InputError(f"--format takes png, svg or pdf, got {', '.join(bad)}.")
    return out or ("png",)


@app.command("report")
@user_errors
def report_command(
    results_json: Path = typer.Argument(
        ..., help="results.json of a run (or its folder); its artefacts/ folder is drawn too."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="HTML file to write (default: report.html beside results.json); figures go to "
        "figures/ beside it.",
    ),
    title: str = typer.Option(None, "--title", help="Page title (default: model and corpus)."),
    fmt: list[str] = typer.Option(
        ["png"], "--format", help="Figure files written beside the report: png, svg, pdf."
    ),
    progress: bool = progress_option(),
) -> None:
    """Render the report of a run from results.json and the artefacts saved beside it.

    No store is read: token clouds, repair views and word trajectories come from the run's
    artefacts/ folder; where it is missing or damaged those panels are left out with a note.
    """
    from isoscope.artefacts import load_artefacts
    from isoscope.report import write_report

    results, file = load_results(results_json)
    if out is None:
        out = file.parent / "report.html"
    if out.is_dir():
        raise InputError(
            f"--out {out} is a folder; give a file name such as {out / 'report.html'}."
        )
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--out takes an .html file name, got {out}.")
    art = load_artefacts(file.parent, results)
    path = write_report(
        results,
        out.parent,
        art,
        title=title,
        formats=_formats(fmt),
        filename=out.name,
        progress=show_progress(progress),
    )
    for note in art.notes:
        log.info(f"note: {note}")
    echo(f"report   {path}")


def write_comparison(
    results: Sequence[Mapping[str, Any]],
    arts: list[Any],
    out: Path,
    *,
    title: str | None = None,
    formats: tuple[str, ...] = ("png", "svg"),
    progress: bool = False,
) -> Path:
    """Cross-model similarity of the runs (``OUT/cross_model.json``), then the comparison report.

    Parameters
    ----------
    results : list of dict
        The runs' results.
    arts : list of Artefacts
        Their loaded artefacts (the word samples are compared).
    out : Path
        Folder of the report.
    title : str, optional
    formats : tuple of str
    progress : bool
        A progress bar over the report's sections.

    Returns
    -------
    Path
        The report file. How many words each pair shares is printed.
    """
    from isoscope._jsonio import clean_json, write_json
    from isoscope.analysis._crossmodel import compare_runs
    from isoscope.report import write_report
    from isoscope.report._figures import _names

    res = list(results)
    cross = compare_runs(res, [a.words for a in arts], _names(res))
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "cross_model.json", clean_json(cross))
    path = write_report(res, out, arts, title=title, formats=formats, cross_model=cross, progress=progress)
    for pair in cross["pairs"]:
        a, b = pair["models"]
        echo(f"aligned  {pair['n_aligned']} words of {a} ({pair['n_words'][0]}) and {b} "
             f"({pair['n_words'][1]})")
    for note in cross["notes"]:
        log.info(f"note: {note}")
    return path


@app.command("compare")
@user_errors
def compare_command(
    runs: list[Path] = typer.Argument(
        ..., help="Run folders written by `isoscope run` (or their results.json)."
    ),
    out: Path = typer.Option(
        Path("runs/compare"), "--out", "-o", help="Folder for the comparison report."
    ),
    title: str = typer.Option(None, "--title", help="Page title (default: the model names)."),
    fmt: list[str] = typer.Option(
        ["png", "svg"], "--format", help="Figure files written beside the report: png, svg, pdf."
    ),
    progress: bool = progress_option(),
) -> None:
    """Put several runs side by side in one report (layer axes normalised to depth).

    Each run is drawn from its results.json and its artefacts/ folder; no store is read.
    Runs of the same corpus are also compared layer against layer (linear CKA and mutual k-NN
    at matched relative depth) on the words both saw, from the word samples the runs saved;
    the numbers go to cross_model.json beside the report.
    """
    from isoscope.artefacts import load_artefacts

    if len(runs) < 2:
        raise InputError("compare needs at least two run folders.")
    loaded = [load_results(Path(r)) for r in runs]
    arts = [load_artefacts(file.parent, res) for res, file in loaded]
    path = write_comparison([r for r, _ in loaded], arts, out, title=title, formats=_formats(fmt),
                            progress=show_progress(progress))
    echo(f"compare  {path}")
