"""Write docs/findings.md, its figures and the numbers behind them."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from isoscope._jsonio import clean_json, write_json
from isoscope.findings._claims import VERDICT_RULE, build_claims
from isoscope.findings._figures import draw_all
from isoscope.findings._plan import REPAIRS


def _numbers(collected: Mapping[str, Any]) -> dict[str, Any]:
    """The collected data without the point clouds (kept small enough to commit)."""
    models = {}
    for m, d in collected["models"].items():
        slim = {k: v for k, v in d.items() if k not in ("clouds", "analysis", "evaluation")}
        slim["analysis"] = {
            corpus: {**res, "layers": [{k: v for k, v in e.items() if k != "details"}
                                       for e in res.get("layers", [])]}
            for corpus, res in d["analysis"].items()
        }
        slim["evaluation"] = {
            mode: {**ev, "results": [r for r in ev.get("results", [])
                                     if r.get("in_table") is not False]}
            for mode, ev in d.get("evaluation", {}).items() if isinstance(ev, dict)
        }
        if "clouds" in d:
            slim["clouds"] = {
                corpus: [{k: v for k, v in view.items() if k not in ("coords", "zipf")}
                         for view in views]
                for corpus, views in d["clouds"].get("views", {}).items()
            }
        models[m] = slim
    return {**{k: v for k, v in collected.items() if k != "models"}, "models": models}


def _sizes(collected: Mapping[str, Any]) -> list[str]:
    lines = []
    for m, d in collected["models"].items():
        parts = []
        for corpus, res in d["analysis"].items():
            n = res.get("n_tokens")
            layers = [e["layer"] for e in res.get("layers", [])]
            parts.append(f"{corpus}: {n:,} tokens, hidden states {layers[0]}–{layers[-1]}"
                         if n and layers else corpus)
        lines.append(f"`{m}` ({d['family']}): " + "; ".join(parts))
    return lines


def _step_seconds(collected: Mapping[str, Any]) -> list[float]:
    """The ``seconds`` each collected step file recorded when it was computed."""
    out = []
    for d in collected["models"].values():
        for value in d.values():
            if isinstance(value, dict):
                steps = value.values() if "seconds" not in value else [value]
                out += [float(v.get("seconds") or 0) for v in steps
                        if isinstance(v, dict) and "seconds" in v]
    return out


def compute_minutes(collected: Mapping[str, Any]) -> float:
    """Minutes the collected steps took when they were computed (from their JSON files)."""
    return sum(_step_seconds(collected)) / 60


def _duration(seconds: float) -> str:
    """``'3 h 07 min'``, ``'12 min'`` or ``'40 s'``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    h, m = divmod(round(s / 60), 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def run_time_line(collected: Mapping[str, Any]) -> str:
    """The page's run-time cell: total compute time of the step files, and what it covers.

    The step files record their seconds but not the machine, so none is named.
    """
    seconds = _step_seconds(collected)
    total = sum(seconds)
    return (f"{_duration(total)} ({total:,.0f} s), the sum of the seconds recorded by the "
            f"{len(seconds)} step files (a store extracted within a step counts in it; the "
            "steps run one after another, so for a run that went through in one go this is "
            "its wall time less drawing the page). The step files do not record the machine "
            "they ran on")


def render(
    collected: Mapping[str, Any],
    out: str | os.PathLike[str],
    *,
    figure_dir: str = "findings",
    command: str = "make findings",
    work: str = "runs/findings",
    run_time: str = "",
) -> Path:
    """Write the findings page ``out`` with figures and numbers in ``out.parent/figure_dir``.

    Parameters
    ----------
    collected : dict
        From :func:`isoscope.findings.collect`.
    out : path
        The Markdown page (e.g. ``docs/findings.md``).
    figure_dir : str
        Folder, relative to the page, for the PNG figures and ``findings.json``.
    command, work, run_time : str
        Recorded on the page.

    Returns
    -------
    pathlib.Path
        The page.
    """
    import jinja2

    from isoscope import __version__

    page = Path(out)
    fig_dir = page.parent / figure_dir
    fig_dir.mkdir(parents=True, exist_ok=True)
    claims = build_claims(collected, REPAIRS)
    figures = {p.name for p in draw_all(collected, fig_dir, REPAIRS)}
    data_file = f"{figure_dir}/findings.json"
    write_json(page.parent / data_file,
               clean_json({**_numbers(collected),
                           "verdicts": {c.number: c.verdict for c in claims}}),
               indent=1)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("isoscope.findings", "templates"),
        autoescape=False,  # Markdown, not HTML; every value is produced by isoscope itself
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    env.filters["cell"] = lambda v: str(v).replace("|", "\\|")
    plan = dict(collected["plan"])
    try:  # a path relative to the page's folder reads the same on every checkout
        plan["wikitext"] = os.path.relpath(plan["wikitext"], Path.cwd())
    except ValueError:
        pass
    families = {m: d["family"] for m, d in collected["models"].items()}
    text = env.get_template("findings.md.j2").render(
        claims=claims,
        verdict_rule=VERDICT_RULE,
        families=families,
        plan=plan,
        models_line=", ".join(f"`{m}` ({d['family']})" for m, d in collected["models"].items()),
        skipped=collected.get("skipped", {}),
        sizes=_sizes(collected),
        figures=figures,
        figure_dir=figure_dir,
        data_file=data_file,
        command=command,
        work=work,
        version=__version__,
        run_time=run_time or run_time_line(collected),
        generated=_dt.date.today().isoformat(),
        reproduce=f"{command}\n# or, from a checkout: .venv/bin/isoscope findings"
                  + (" --quick" if plan.get("quick") else ""),
    )
    import re

    text = re.sub(r"\n{3,}", "\n\n", text)
    page.write_text(text, encoding="utf-8")
    return page
