"""``isoscope run`` (extract, measure, repair, evaluate, report) and ``isoscope compare``."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import typer

from isoscope.cli.app import app, echo, progress_enabled, user_errors
from isoscope.errors import InputError

RESULTS = "results.json"
STORE = "store"


def log(message: str) -> None:
    """Progress line on stderr (stdout carries only the final paths)."""
    typer.echo(message, err=True)


def slug(text: str) -> str:
    """A folder name for a model name, HF id or path (``org/model`` -> ``org-model``)."""
    name = Path(text.rstrip("/\\")).name if os.sep in text and Path(text).exists() else text
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return s or "model"


def parse_tasks(items: list[str]) -> list[tuple[str, str]]:
    """``NAME=PATH`` items (as for ``isoscope evaluate``)."""
    tasks = []
    for item in items:
        name, eq, path = item.partition("=")
        if not eq or not name.strip() or not path.strip():
            raise InputError(f"--task takes NAME=PATH (e.g. stsb=sts-test.csv), got {item!r}.")
        tasks.append((name.strip(), path.strip()))
    return tasks


def parse_transforms(items: list[str]) -> list[str]:
    """Repair specs from repeated or comma-separated ``--transform`` values ("none" dropped)."""
    from isoscope.evaluate import parse_transforms as _parse

    return [t for t in _parse(items) if t != "none"] if items else []


def resolve_layer(spec: str, layers: list[int]) -> int:
    """``last``, ``first``, a hidden-state index or a negative index into the stored layers."""
    text = spec.strip().lower()
    if text == "last":
        return layers[-1]
    if text == "first":
        return layers[0]
    try:
        value = int(text)
    except ValueError:
        raise InputError(
            f"--layer takes 'last', 'first' or a hidden-state index, got {spec!r}."
        ) from None
    if value < 0:
        if -value > len(layers):
            raise InputError(
                f"--layer {value} is out of range: the store has {len(layers)} layers."
            )
        return layers[value]
    if value not in layers:
        raise InputError(f"Layer {value} is not in the store (stored layers: {layers}).")
    return value


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def run_model(
    model: str,
    run_dir: Path,
    *,
    corpus: str = "ptb",
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
    """Extract (or reuse) a store, analyse every layer, measure repairs, evaluate, report.

    Returns
    -------
    results : dict
        What is written to ``run_dir/results.json``.
    store : EmbeddingStore
    """
    from isoscope.extract import extract
    from isoscope.metrics import analyze

    run_dir.mkdir(parents=True, exist_ok=True)
    transforms = list(transforms or [])
    tasks = list(tasks or [])
    t0 = time.perf_counter()
    log(
        f"· {model}: extracting up to {max_tokens or 'all'} tokens of {corpus} into {run_dir / STORE}"
    )
    store = extract(
        model, corpus, run_dir / STORE, max_tokens=max_tokens, seed=seed, progress=progress
    )
    t_extract = time.perf_counter() - t0
    log(
        f"  {store.n_tokens} tokens, layers {store.layers[0]}–{store.layers[-1]}, width "
        f"{store.hidden_size} ({t_extract:.0f} s)"
    )
    chosen = resolve_layer(layer, store.layers)
    what = f" and {len(transforms)} repair(s) on layer {chosen}" if transforms else ""
    log(
        f"· measuring {len(store.layers)} layers on a sample of {sample or 'all'} tokens (seed {seed}){what}"
    )
    t1 = time.perf_counter()
    result = analyze(
        store,
        sample=sample,
        seed=seed,
        transforms=transforms or None,
        transductive=transductive,
        transform_layers=[chosen],
        drop_position_zero=drop_position_zero,
        progress=progress,
    )
    results = result.to_dict()
    log(f"  done ({time.perf_counter() - t1:.0f} s)")
    if tasks:
        from isoscope.evaluate import evaluate

        fit: Any = fit_on
        if fit_on == "corpus":
            from isoscope.corpora import load_corpus

            fit = load_corpus(corpus).sentences[: int(store.manifest.get("n_sentences") or 0)]
        log(
            f"· evaluating on {', '.join(n for n, _ in tasks)} with repairs: none"
            + "".join(f", {t}" for t in transforms)
        )
        t2 = time.perf_counter()
        ev = evaluate(
            model,
            tasks,
            transforms=["none", *transforms],
            layer=chosen,
            drop_position_zero=drop_position_zero,
            transductive=transductive,
            fit_on=fit,
            seed=seed,
            progress=progress,
            log=log,
        ).to_dict()
        results["evaluation"] = ev["results"]
        results["evaluation_settings"] = ev["settings"]
        log(f"  done ({time.perf_counter() - t2:.0f} s)")
    results["run"] = {
        "command": "isoscope run",
        "model": model,
        "corpus": corpus,
        "max_tokens": max_tokens,
        "sample": sample,
        "seed": seed,
        "layer": chosen,
        "transforms": transforms,
        "transductive": transductive,
        "drop_position_zero": drop_position_zero,
        "tasks": [f"{n}={p}" for n, p in tasks],
        "fit_on": fit_on,
        "store": str(run_dir / STORE),
    }
    results.setdefault("timings", {})["run_total_s"] = round(time.perf_counter() - t0, 3)
    _write_json(run_dir / RESULTS, results)
    if report:
        from isoscope.report import write_report

        log("· drawing figures and writing the report")
        write_report(
            results, run_dir, store=store, seed=seed, words=words or None, formats=("png", "svg")
        )
    return results, store


def load_run(path: Path) -> tuple[dict[str, Any], Any]:
    """Read a run folder (or a results.json file) and open its store when it is complete."""
    from isoscope.errors import StoreError
    from isoscope.store import open_store

    file = path if path.is_file() else path / RESULTS
    if not file.exists():
        raise InputError(f"{path} has no {RESULTS}; run `isoscope run --out {path}` first.")
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{file} is not a readable results file ({exc}).") from None
    layers = results.get("layers") if isinstance(results, dict) else None
    if not isinstance(layers, list) or not all(
        isinstance(row, dict) and isinstance(row.get("layer"), int) for row in layers
    ):
        raise InputError(f"{file} is not an isoscope results file (no list of per-layer records).")
    store = None
    store_dir = file.parent / STORE
    if store_dir.is_dir():
        try:
            store = open_store(store_dir)
        except StoreError as exc:
            log(f"  note: {exc} Token clouds for this run are skipped.")
    return results, store


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
        "ptb", "--corpus", "-c", help="ptb[:split], wikitext:PATH, text:PATH, jsonl:PATH or a path."
    ),
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
    seed: int = typer.Option(0, "--seed", help="Seed of every sample, k-means and fit."),
    transductive: bool = typer.Option(
        False, "--transductive", help="Fit repairs on the measured data itself."
    ),
    drop_position_zero: bool = typer.Option(
        False,
        "--drop-position-zero",
        help="Leave the first position out (causal models without BOS).",
    ),
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
    progress: bool = typer.Option(
        None, "--progress/--no-progress", help="Progress bars (default: on a terminal)."
    ),
) -> None:
    """Extract, measure every layer, repair, evaluate, and write report.html + results.json.

    With several --model options each model gets its own folder and report inside OUT, and
    OUT/report.html compares them with layers normalised to depth.
    """
    models = list(dict.fromkeys(model))
    if max_tokens < 0 or sample < 0:
        raise InputError("--max-tokens and --sample must be positive (0 means all).")
    tasks = parse_tasks(task)
    transforms = parse_transforms(transform)
    show = progress_enabled() if progress is None else progress
    if out is None:
        out = Path("runs") / "-vs-".join(slug(m) for m in models)
    slugs = [slug(m) for m in models]
    if len(set(slugs)) != len(slugs):
        raise InputError("Two --model values map to the same folder name; give distinct models.")
    all_results, stores = [], []
    for i, m in enumerate(models):
        run_dir = out if len(models) == 1 else out / slugs[i]
        if len(models) > 1:
            log(f"[{i + 1}/{len(models)}] {m}")
        res, store = run_model(
            m,
            run_dir,
            corpus=corpus,
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
        stores.append(store)
        echo(f"report   {run_dir / 'report.html'}")
        echo(f"results  {run_dir / RESULTS}")
    if len(models) > 1:
        from isoscope.report import write_report

        log("· writing the comparison report")
        path = write_report(all_results, out, store=stores, seed=seed, formats=("png", "svg"))
        echo(f"compare  {path}")

