"""Reproduce the papers' findings on the bundled models and write docs/findings.md.

>>> from isoscope.findings import FindingsPlan, collect, render      # doctest: +SKIP
>>> plan = FindingsPlan.make(quick=True)                             # doctest: +SKIP
>>> render(collect(plan, "runs/findings"), "docs/findings.md")       # doctest: +SKIP

:func:`collect` runs extraction, the per-layer suite, the repairs and the task evaluation
for every model of the plan through the public steps of :mod:`isoscope.pipeline`, the code
``isoscope run`` runs (resumable: each step's output is kept as JSON);
:func:`build_claims` checks the claims of Cai et al., Rajaee & Pilehvar and Liang et al.,
and those of later work (massive activations, the intrinsic-dimension profile, effective
rank and layer CKA) on those numbers; :func:`render` writes the page, its figures and the numbers.
"""

from isoscope.findings._claims import Check, Claim, build_claims
from isoscope.findings._collect import collect
from isoscope.findings._plan import DEFAULT_MODELS, FAMILIES, REPAIRS, FindingsPlan
from isoscope.findings._render import render

__all__ = [
    "DEFAULT_MODELS",
    "FAMILIES",
    "REPAIRS",
    "Check",
    "Claim",
    "FindingsPlan",
    "build_claims",
    "collect",
    "render",
]
