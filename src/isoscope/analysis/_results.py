"""The typed result of :func:`~isoscope.analysis.analyze` and its ``results.json`` layout."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isoscope.errors import InputError

#: Version of the ``results.json`` layout; raised whenever a key changes meaning.
#: 1: isoscope 0.1 before the registry (no ``schema_version`` key); 2: the measure registry.
RESULTS_SCHEMA_VERSION = 2


def check_schema(data: Any, where: str = "results.json") -> dict[str, Any]:
    """Return ``data`` if it is an isoscope results dictionary of this schema version.

    Raises
    ------
    InputError
        In one sentence, for another schema version or something that is not a result.
    """
    if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
        raise InputError(f"{where} is not an isoscope results file (no list of per-layer records).")
    if not all(isinstance(e, dict) and isinstance(e.get("layer"), int) for e in data["layers"]):
        raise InputError(
            f"{where} is not an isoscope results file (a per-layer record has no integer 'layer')."
        )
    version = data.get("schema_version", 1)
    if version != RESULTS_SCHEMA_VERSION:
        raise InputError(
            f"{where} has results schema version {version!r} and this isoscope "
            f"({_version()}) reads version {RESULTS_SCHEMA_VERSION}; re-run the analysis with "
            "this version."
        )
    for key, kind in (("source", dict), ("settings", dict), ("measures", dict), ("timings", dict),
                      ("transforms", list)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            found = {str: "a string", bool: "true/false", int: "a number", float: "a number",
                     list: "an array", dict: "an object"}.get(type(data[key]), type(data[key]).__name__)
            want = "an object" if kind is dict else "an array"
            raise InputError(f"{where} is damaged ('{key}' is {found}, not {want}).")
    if data.get("layer_similarity") is not None:
        from isoscope.analysis._similarity import check_section

        check_section(data["layer_similarity"], where)
    from isoscope.measures import REGISTRY

    for entry in data["layers"]:
        for key in REGISTRY.scalar_keys():
            value = entry.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise InputError(
                    f"{where} is damaged (layer {entry['layer']}'s {key!r} is {value!r:.40}, not a number)."
                )
    return data


def _version() -> str:
    from isoscope import __version__

    return __version__


@dataclass
class AnalysisResult:
    """Results of :func:`~isoscope.analysis.analyze`.

    Attributes
    ----------
    source : dict
        What was measured (store path, model, corpus, sizes).
    settings : dict
        Every setting (:class:`~isoscope.analysis.AnalysisSettings`), the derived seeds and
        the sample sizes.
    layers : list of dict
        One entry per layer: ``layer`` and one value per registry key (see docs/results.md),
        plus ``details`` (curves for the report).
    transforms : list of dict
        Repairs measured before and after (:func:`~isoscope.analysis.evaluate_transforms`).
    timings : dict
        Seconds per layer and measure group.
    sample_rows, fit_rows : ndarray or None
        Row ids of the measured sample and of the repairs' fit sample (not in the JSON; the
        pipeline saves them beside it).
    fitted_repairs : list
        Fitted repair estimators aligned with ``transforms`` (saved beside the JSON).
    layer_similarity : dict or None
        Every analysed layer against every other (CKA, mutual k-NN, χ; see docs/results.md);
        None with fewer than two layers or ``similarity_sample=0``.
    """

    source: dict
    settings: dict
    layers: list[dict]
    transforms: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    sample_rows: Any = None
    fit_rows: Any = None
    fitted_repairs: list = field(default_factory=list)
    layer_similarity: dict | None = None

    def measures(self) -> dict[str, dict[str, Any]]:
        """Registry metadata of every key, with the evidence actually used."""
        from isoscope.measures import REGISTRY

        meta = REGISTRY.describe()
        if not self.settings.get("full_layer_stats", True):
            for m in REGISTRY:
                if m.evidence == "all tokens":
                    meta[m.key]["evidence"] = "sample"
        if self.settings.get("exact_partition"):
            # A --keep all store streams its layers; a sketch store ran the model again.
            how = (self.source.get("exact_partition") or {}).get("evidence", "all tokens")
            for key in REGISTRY.group("partition").keys:
                meta[key]["evidence"] = how
        return meta

    def to_dict(self) -> dict:
        """JSON-ready dictionary (NaN and Inf become None)."""
        from isoscope._jsonio import clean_json

        out = {
            "schema_version": RESULTS_SCHEMA_VERSION,
            "isoscope_version": _version(),
            "source": self.source,
            "settings": self.settings,
            "measures": self.measures(),
            "layers": self.layers,
            "timings": self.timings,
        }
        if self.layer_similarity is not None:
            out["layer_similarity"] = self.layer_similarity
        if self.transforms:
            out["transforms"] = self.transforms
        return clean_json(out)

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as indented JSON (atomically) and return the path."""
        from isoscope._jsonio import write_json

        path = Path(path)
        if path.is_dir():
            raise InputError(f"--out {path} is a folder; give a file name such as {path / 'results.json'}.")
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "results") -> AnalysisResult:
        """Rebuild a result from :meth:`to_dict` output (checks the schema version)."""
        data = check_schema(data, where)
        return cls(
            source=dict(data.get("source") or {}),
            settings=dict(data.get("settings") or {}),
            layers=list(data["layers"]),
            transforms=list(data.get("transforms") or []),
            timings=dict(data.get("timings") or {}),
            layer_similarity=data.get("layer_similarity"),
        )

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> AnalysisResult:
        """Read a ``results.json`` written by :meth:`to_json`."""
        from isoscope._jsonio import read_json

        return cls.from_dict(read_json(Path(path), "results file"), str(path))

    def to_frame(self) -> Any:
        """One row per layer, one column per scalar registry key (pandas DataFrame)."""
        import pandas as pd

        from isoscope.measures import REGISTRY

        keys = REGISTRY.scalar_keys()
        return pd.DataFrame([{"layer": e["layer"], **{k: e.get(k) for k in keys}}
                             for e in self.layers])

    def similarity_frame(self) -> Any:
        """One row per pair of analysed layers: CKA, debiased CKA, mutual k-NN, χ (pandas).

        See :func:`isoscope.analysis._similarity.similarity_frame`; empty without the section.
        """
        from isoscope.analysis._similarity import similarity_frame

        return similarity_frame(self.layer_similarity)

    def format_table(self) -> str:
        """Per-layer table of the registry's table measures, and where each came from."""
        from isoscope.measures import REGISTRY

        cols = REGISTRY.table_measures()
        head = ["layer", *(m.table or m.key for m in cols)]
        body = [[str(e["layer"]), *(m.format(e.get(m.key)) for m in cols)] for e in self.layers]
        widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
                  for i, h in enumerate(head)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in body]
        meta = self.measures()
        by: dict[str, list[str]] = {}
        for m in cols:
            by.setdefault(meta[m.key]["evidence"], []).append(m.table or m.key)
        s = self.settings
        sizes = {
            "all tokens": f"{s.get('n_candidates', '?')} tokens",
            "all tokens (second pass through the model)": f"{s.get('n_candidates', '?')} tokens",
            "sample": f"{s.get('n_sampled', '?')} tokens, seed {s.get('seed')}",
            "distinct sample": "distinct vectors, same seed",
        }
        for evidence, names in by.items():
            extra = f" ({sizes[evidence]})" if evidence in sizes else ""
            lines.append(f"  {evidence}{extra}: {', '.join(names)}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Notebook summary: the table as HTML."""
        return self.to_frame().to_html(index=False, float_format=lambda v: f"{v:.3g}")

    def __str__(self) -> str:
        return self.format_table()


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and schema-check a ``results.json`` (a plain dictionary, for report and compare)."""
    from isoscope._jsonio import read_json

    return check_schema(read_json(Path(path), "results file"), str(path))


__all__ = ["AnalysisResult", "RESULTS_SCHEMA_VERSION", "check_schema", "load_results"]
