"""The registry types: a :class:`Measure` per results key, grouped into computations.

A *measure* is one number (or list) in a layer entry of ``results.json``: its key, label,
unit, the panel it is drawn in, the evidence it comes from and where its definition comes
from. A *measure group* is one function that computes several related measures from a
:class:`~isoscope.measures.LayerData` (LID mean, median and TwoNN share one neighbour search).
Every consumer (analyze, the CLI table, ``to_frame``, the report, findings and
``docs/results.md``) reads the registry instead of keeping its own list of keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from isoscope.errors import InputError

#: Where a measure's numbers come from.
#:
#: - ``"all tokens"``: exact, from float64 accumulators streamed over every selected token of
#:   the layer (mean, covariance, sum of unit vectors, norms);
#: - ``"sample"``: the seeded sample (the same rows in every layer);
#: - ``"distinct sample"``: the seeded sample drawn from the layer's distinct vectors (exact
#:   duplicates removed *before* sampling), for neighbour and cluster measures;
#: - ``"word types"`` / ``"sentences"``: occurrences of seeded word types / whole seeded
#:   sentences over the whole store.
Evidence = Literal["all tokens", "sample", "distinct sample", "word types", "sentences"]
EVIDENCE: tuple[str, ...] = ("all tokens", "sample", "distinct sample", "word types", "sentences")

#: What a measure group needs from the layer (checked before it runs).
NEEDS: tuple[str, ...] = ("moments", "sample", "neighbors", "clusters", "words", "sentences",
                          "frequency", "positions")


@dataclass(frozen=True)
class Panel:
    """A panel of the per-layer figure: measures drawn together on one axis.

    Attributes
    ----------
    id : str
        Name that :attr:`Measure.panel` refers to.
    title, ylabel : str
        Axis title and y label (with the unit).
    help : str
        One sentence on how to read the panel.
    ylim : tuple of float or None
        Fixed y-range, where the measure has one.
    """

    id: str
    title: str
    ylabel: str
    help: str
    ylim: tuple[float, float] | None = None


@dataclass(frozen=True)
class Measure:
    """One key of a layer entry in ``results.json``.

    Attributes
    ----------
    key : str
        The results key.
    label : str
        Short human label (table header, legend).
    unit : str
        Unit or range, e.g. ``"cosine (-1 … 1)"``.
    panel : str or None
        :class:`Panel` id it is drawn in; None for values not drawn as a curve.
    evidence : str
        One of :data:`EVIDENCE`.
    definition : str
        One sentence: what exactly is computed.
    source : str
        Citation of the definition, or ``"isoscope variant"`` / ``"diagnostic"``.
    paper : bool
        True when the value is the cited paper's own definition.
    fmt : str
        ``str.format`` pattern for tables.
    table : str or None
        Column header in the CLI table (None: not in the table).
    headline : bool
        Shown in summaries and the repairs' before/after panels.
    scalar : bool
        A number (False for lists such as ``rogue_dims``).
    params : tuple of str
        Analysis settings the value depends on.
    """

    key: str
    label: str
    unit: str
    panel: str | None
    evidence: str
    definition: str
    source: str
    paper: bool = True
    fmt: str = "{:.3f}"
    table: str | None = None
    headline: bool = False
    scalar: bool = True
    params: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.evidence not in EVIDENCE:
            raise ValueError(f"{self.key}: unknown evidence {self.evidence!r}")

    def format(self, value: Any) -> str:
        """``value`` for a table cell (``-`` when missing or not finite)."""
        import math

        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "-"
        try:
            return self.fmt.format(value)
        except (TypeError, ValueError):
            return str(value)

    def describe(self) -> dict[str, Any]:
        """JSON-ready metadata (written to ``results.json`` under ``measures``)."""
        return {
            "label": self.label,
            "unit": self.unit,
            "evidence": self.evidence,
            "source": self.source,
            "paper": self.paper,
            "definition": self.definition,
        }


@dataclass(frozen=True)
class MeasureGroup:
    """A function computing several :class:`Measure` values from one layer.

    ``compute(data)`` returns a mapping from measure keys (a subset of ``measures``) to
    values, and may add arrays to ``data.details``. Groups run in registration order, so a
    group may read the values of earlier groups from ``data.values``.
    """

    name: str
    measures: tuple[Measure, ...]
    compute: Callable[[Any], Mapping[str, Any]]
    needs: frozenset[str] = field(default_factory=frozenset)

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys this group produces."""
        return tuple(m.key for m in self.measures)

    @property
    def uses_moments(self) -> bool:
        """True when some of its values come from the whole-layer moments."""
        return "moments" in self.needs


class Registry:
    """Ordered registry of measure groups and panels (see :func:`register`)."""

    def __init__(self) -> None:
        self._groups: dict[str, MeasureGroup] = {}
        self._measures: dict[str, Measure] = {}
        self._panels: dict[str, Panel] = {}

    def add_panel(self, panel: Panel) -> Panel:
        """Register a figure panel."""
        if panel.id in self._panels:
            raise ValueError(f"panel {panel.id!r} is registered twice")
        self._panels[panel.id] = panel
        return panel

    def add(self, group: MeasureGroup) -> MeasureGroup:
        """Register a group; its keys must be new and its panels known."""
        if group.name in self._groups:
            raise ValueError(f"measure group {group.name!r} is registered twice")
        unknown = sorted(set(group.needs) - set(NEEDS))
        if unknown:
            raise ValueError(f"{group.name}: unknown needs {unknown}")
        for m in group.measures:
            if m.key in self._measures:
                raise ValueError(f"measure key {m.key!r} is registered twice")
            if m.panel is not None and m.panel not in self._panels:
                raise ValueError(f"{m.key}: unknown panel {m.panel!r}")
        self._groups[group.name] = group
        for m in group.measures:
            self._measures[m.key] = m
        return group

    def groups(self) -> list[MeasureGroup]:
        """Groups in the order they run."""
        return list(self._groups.values())

    def group(self, name: str) -> MeasureGroup:
        """The group called ``name``."""
        return self._groups[name]

    def __iter__(self) -> Iterator[Measure]:
        return iter(self._measures.values())

    def __contains__(self, key: object) -> bool:
        return key in self._measures

    def __len__(self) -> int:
        return len(self._measures)

    def __getitem__(self, key: str) -> Measure:
        try:
            return self._measures[key]
        except KeyError:
            raise InputError(f"Unknown measure {key!r}; see docs/results.md for the keys.") from None

    def get(self, key: str) -> Measure | None:
        """The measure with this key, or None."""
        return self._measures.get(key)

    def panels(self) -> list[Panel]:
        """Panels in registration order."""
        return list(self._panels.values())

    def panel_measures(self, panel_id: str) -> list[Measure]:
        """Measures drawn in one panel, in registration order."""
        return [m for m in self._measures.values() if m.panel == panel_id]

    def scalar_keys(self) -> tuple[str, ...]:
        """Every scalar key, in registry order (the columns of ``to_frame``)."""
        return tuple(m.key for m in self._measures.values() if m.scalar)

    def table_measures(self) -> list[Measure]:
        """Measures shown in the CLI table, in order."""
        return [m for m in self._measures.values() if m.table]

    def headline(self) -> list[Measure]:
        """Measures shown in summaries and before/after panels."""
        return [m for m in self._measures.values() if m.headline]

    def describe(self) -> dict[str, dict[str, Any]]:
        """``{key: metadata}`` for ``results.json``."""
        return {m.key: m.describe() for m in self._measures.values()}


#: The one registry every consumer reads.
REGISTRY = Registry()


def register(
    name: str, measures: list[Measure] | tuple[Measure, ...], *, needs: tuple[str, ...] = ()
) -> Callable[[Callable[[Any], Mapping[str, Any]]], Callable[[Any], Mapping[str, Any]]]:
    """Decorator: register ``fn(data) -> {key: value}`` as a measure group.

    Parameters
    ----------
    name : str
        Group name (also the timing key).
    measures : list of Measure
        The keys it produces, with their metadata.
    needs : tuple of str
        What it reads (see :data:`NEEDS`); a group whose needs are unavailable (no word
        identities for a plain array, say) is skipped and its keys are None.
    """

    def deco(fn: Callable[[Any], Mapping[str, Any]]) -> Callable[[Any], Mapping[str, Any]]:
        REGISTRY.add(MeasureGroup(name, tuple(measures), fn, frozenset(needs)))
        return fn

    return deco
