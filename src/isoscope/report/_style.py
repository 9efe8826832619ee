"""Colour-blind-safe palette, matplotlib style and the catalogue of per-layer measures.

The panels, labels, units and "how to read" sentences come from the measure registry
(:mod:`isoscope.measures`), so that the figures name every measure as results.json and
docs/results.md do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow (last: low contrast on white)
)
LINESTYLES: tuple[Any, ...] = ("-", "--", ":", "-.", (0, (5, 1.5, 1, 1.5, 1, 1.5)))
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P")
#: Perceptually uniform and colour-blind safe; used for word frequency.
SEQUENTIAL_CMAP = "viridis"
BEFORE_COLOUR = "#999999"
AFTER_COLOUR = PALETTE[0]

RC_PARAMS: dict[str, object] = {
    "figure.dpi": 110,
    "savefig.dpi": 130,
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.7,
    "axes.axisbelow": True,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 4.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "svg.fonttype": "none",
}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Temporarily apply the isoscope matplotlib style."""
    import matplotlib

    with matplotlib.rc_context(cast(Any, RC_PARAMS)):
        yield


@dataclass(frozen=True)
class Family:
    """A panel of the layer-curve figure: related measures drawn together.

    Attributes
    ----------
    title : str
        Panel title.
    ylabel : str
        Y-axis label including the unit.
    keys : tuple of str
        Measure keys in ``results["layers"][i]``; the first is drawn solid.
    labels : tuple of str
        Legend label of each key.
    help : str
        One sentence on how to read the panel.
    ylim : tuple or None
        Fixed y-range, when the measure has one.
    """

    title: str
    ylabel: str
    keys: tuple[str, ...]
    labels: tuple[str, ...]
    help: str
    ylim: tuple[float, float] | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _families() -> tuple[Family, ...]:
    from isoscope.measures import REGISTRY

    out = []
    for panel in REGISTRY.panels():
        ms = REGISTRY.panel_measures(panel.id)
        if ms:
            out.append(Family(panel.title, panel.ylabel, tuple(m.key for m in ms),
                              tuple(m.label for m in ms), panel.help, panel.ylim))
    return tuple(out)


#: The panels of the per-layer figure, from the measure registry (``isoscope.measures``).
FAMILIES: tuple[Family, ...] = _families()


def _not_a_curve() -> frozenset[str]:
    from isoscope.measures import REGISTRY

    return frozenset({"layer", *(m.key for m in REGISTRY if m.panel is None)})


#: Scalar keys never drawn as curves (identifiers, sample sizes, values shown elsewhere).
NOT_A_CURVE = _not_a_curve()


def _headline() -> tuple[tuple[str, str], ...]:
    from isoscope.measures import REGISTRY

    return tuple((m.key, f"{m.label}, {m.unit}") for m in REGISTRY.headline())


#: Measures shown in summaries and before/after panels, in order (registry ``headline``).
HEADLINE_KEYS: tuple[tuple[str, str], ...] = _headline()


def measure_label(key: str) -> str:
    """Return a readable label for a measure key."""
    for k, label in HEADLINE_KEYS:
        if k == key:
            return label
    for fam in FAMILIES:
        if key in fam.keys:
            return f"{fam.labels[fam.keys.index(key)]} ({fam.ylabel})"
    return key.replace("_", " ")
