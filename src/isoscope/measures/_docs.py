"""``docs/results.md``: every key of ``results.json``, generated from the registry."""

from __future__ import annotations

from isoscope.measures._registry import EVIDENCE, REGISTRY

_EVIDENCE_HELP = {
    "all tokens": "exact, from float64 accumulators over every selected token of the layer",
    "sample": "the seeded sample (the same rows in every layer)",
    "distinct sample": "a seeded sample of the layer's distinct vectors (duplicates removed "
    "before sampling)",
    "word types": "occurrences of seeded word types over the whole store",
    "sentences": "seeded whole sentences of the store",
}


def results_reference() -> str:
    """The Markdown text of ``docs/results.md``."""
    from isoscope.analysis import RESULTS_SCHEMA_VERSION

    lines = [
        "# Keys of `results.json`",
        "",
        "Generated from the measure registry (`isoscope.measures`) by "
        "`python -m isoscope.measures > docs/results.md`; a test checks that it is current.",
        "",
        f"Schema version {RESULTS_SCHEMA_VERSION}. Each layer entry of `results.json` holds "
        "the keys below; `measures` in the same file repeats each key's evidence and source, "
        "and `settings` the sample size, seed, layers and every parameter named here.",
        "",
        "Evidence:",
        "",
    ]
    lines += [f"- **{e}**: {_EVIDENCE_HELP[e]}." for e in EVIDENCE]
    lines += [
        "",
        "With `analyze --exact-partition` the `partition` keys come from every selected token "
        "instead of the sample: evidence **all tokens** for a `--keep all` store (its layers "
        "streamed), **all tokens (second pass through the model)** for a sketch store (its "
        "extraction run twice more; `source.exact_partition` records the run).",
        "",
        "A value whose source says *isoscope variant* is not a paper's definition; it sits "
        "beside the paper's value under its own key.",
        "",
    ]
    for group in REGISTRY.groups():
        lines += [f"## {group.name.replace('_', ' ')}", ""]
        lines += ["| key | definition | evidence | source | parameters |", "|---|---|---|---|---|"]
        for m in group.measures:
            params = ", ".join(f"`{p}`" for p in m.params) or "–"
            source = m.source if m.paper or m.source != "isoscope variant" else "*isoscope variant*"
            lines.append(
                f"| `{m.key}` | {m.definition} ({m.unit}) | {m.evidence} | {source} | {params} |"
            )
        lines.append("")
    lines += _similarity_reference()
    return "\n".join(lines)


def _similarity_reference() -> list[str]:
    """The ``layer_similarity`` section (beside ``layers``: layers against each other)."""
    from isoscope.analysis._similarity import SIMILARITY_KEYS

    lines = [
        "## layer similarity (section `layer_similarity`)",
        "",
        "Not a per-layer key: a section beside `layers` that compares every analysed layer "
        "with every other on the same rows (absent with fewer than two layers or "
        "`similarity_sample=0`; `AnalysisResult.similarity_frame()` gives one row per pair). "
        "Parameters: `similarity_sample`, `similarity_k`, `similarity_debiased`, "
        "`neighbor_backend`.",
        "",
        "| key | definition | source |",
        "|---|---|---|",
    ]
    lines += [f"| `{k}` | {d.replace('|', chr(92) + '|')} | {src} |" for k, d, src in SIMILARITY_KEYS]
    lines.append("")
    return lines
