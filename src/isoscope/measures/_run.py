"""Run the registered measure groups on one :class:`LayerData`."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from isoscope.measures._layer import LayerData
from isoscope.measures._registry import REGISTRY, MeasureGroup


def measure_layer(
    data: LayerData,
    groups: Iterable[MeasureGroup] | None = None,
    *,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Every registered measure of one layer, as a layer entry (without ``layer``).

    Parameters
    ----------
    data : LayerData
    groups : iterable of MeasureGroup, optional
        A subset of the registry (default: every group, in registry order).
    timings : dict, optional
        Receives the seconds spent per group.

    Returns
    -------
    dict
        One value per key of the groups that ran (None where a group's inputs are missing or
        a value is undefined), and ``details`` (curves and arrays for the report).
    """
    t = timings if timings is not None else {}
    out: dict[str, Any] = {}
    for group in REGISTRY.groups() if groups is None else groups:
        values: dict[str, Any] = {}
        if all(data.has(need) for need in group.needs):
            t0 = time.perf_counter()
            values = dict(group.compute(data))
            t[group.name] = round(t.get(group.name, 0.0) + time.perf_counter() - t0, 4)
            unknown = set(values) - set(group.keys)
            if unknown:  # pragma: no cover - a registry bug, caught by the registry tests
                raise RuntimeError(f"{group.name} returned unregistered keys {sorted(unknown)}")
        for key in group.keys:
            out[key] = values.get(key)
        data.values.update(values)
    out["details"] = data.details
    return out
