"""Repairs measured before and after on a layer: :func:`evaluate_transforms`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from isoscope.analysis._suite import Prepared, _progress, layer_data, prepare, word_inputs
from isoscope.errors import InputError, IsoscopeError
from isoscope.measures import REGISTRY, measure_layer


def check_repairs(specs: Sequence[str], fit_inputs: Mapping[str, Any] | None) -> None:
    """Fail before any work on a bad spec or a repair whose declared fit inputs are missing."""
    from isoscope.transforms import from_spec, repair_for

    given = {k for k, v in (fit_inputs or {}).items() if v is not None}
    for spec in specs:
        from_spec(spec)  # a bad spec fails here, before any measuring
        entry = repair_for(spec)
        missing = [name for name in entry.fit_inputs if name not in given]
        if missing:
            how = entry.supply.get(missing[0], "")
            raise InputError(
                f"The repair {spec!r} needs the fit input {missing[0]!r}, which was not given"
                + (f": {how}" if how else ".")
            )


def _scalars(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: entry.get(k) for k in REGISTRY.scalar_keys() if k in entry}


def evaluate_transforms(
    source: Any,
    specs: Sequence[str],
    *,
    layers: Sequence[int] | None = None,
    transductive: bool = False,
    sample: int | None = 10000,
    seed: int = 0,
    fit_sample: int | None = None,
    fit_inputs: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    fitted: list | None = None,
    **settings: Any,
) -> list[dict]:
    """Measure each repair before and after on the same sample, inductively or transductively.

    The measured (evaluation) sample is the seeded sample :func:`analyze` uses. An inductive
    repair (default) is fitted on a disjoint seeded sample of the other rows (``fit_sample``
    rows, default the size of the evaluation sample, drawn from the ``fit_rows`` seed
    stream); a transductive one on the evaluation sample itself. Before and after are both
    measured on the evaluation sample alone (moments included), so they compare like with
    like; IsoScore* shrinks toward the covariance of the (repaired) fit rows on both sides.

    Parameters
    ----------
    source : EmbeddingStore, path, array or a prepared source
    specs : sequence of str
        Repair specs (``isoscope.transforms.from_spec``).
    layers : sequence of int, optional
        Layers to evaluate (default: the last stored layer).
    transductive : bool
    sample, seed, settings : as for :func:`analyze`.
    fit_sample : int, optional
    fit_inputs : mapping, optional
        Extra fit inputs by name (``{"pairs": (A, B, scores)}`` for learned removal); each
        repair receives the ones it declares.
    progress : bool, optional
    fitted : list, optional
        Receives ``(fitted estimator, fit row ids)`` per returned entry, in order.

    Returns
    -------
    list of dict
        ``name``, ``spec``, ``params``, ``fit``, ``layer``, ``fit_n``, ``eval_n``, ``seed``,
        ``evidence``, ``before`` and ``after`` (scalar measures).
    """
    from isoscope.transforms import fit_repair, repair_for

    check_repairs(specs, fit_inputs)
    p = source if isinstance(source, Prepared) else prepare(
        source, layers, {"sample": sample, "seed": seed, **settings})
    s = p.settings
    lay = p.src.resolve_layers(layers if layers is not None else [p.layers[-1]])
    eval_rows = p.sample_rows
    if transductive:
        fit_rows = eval_rows
    else:
        rest = np.setdiff1d(p.candidates, eval_rows, assume_unique=True)
        if rest.size < 2:
            raise InputError(
                "No rows are left outside the measured sample to fit the repair inductively; "
                "lower --sample or use --transductive."
            )
        m = int(fit_sample) if fit_sample is not None else eval_rows.size
        rng = np.random.default_rng(p.seeds["fit_rows"])
        fit_rows = np.sort(rng.choice(rest, size=min(m, rest.size), replace=False))
    out = []
    for layer in _progress(lay, progress, "isoscope transforms"):
        X_eval = p.src.rows(layer, eval_rows)
        X_fit = X_eval if transductive else p.src.rows(layer, fit_rows)
        ref_before = np.cov(np.asarray(X_fit, dtype=np.float64), rowvar=False)
        before = measure_layer(layer_data(
            X_eval, s, seeds=p.seeds, reference_cov=ref_before, reference_name="fit_sample",
            **word_inputs(p, layer)))
        for spec in specs:
            try:
                model = fit_repair(spec, X_fit, inputs=fit_inputs, random_state=int(s.seed))
            except IsoscopeError:
                raise
            except (TypeError, ValueError) as exc:
                raise InputError(
                    f"The repair {spec!r} could not be fitted on layer {layer}: {exc}"
                ) from None
            if fitted is not None:
                fitted.append((model, fit_rows))

            def apply(a: np.ndarray, model: Any = model) -> np.ndarray:
                return np.asarray(model.transform(a), dtype=np.float64)

            ref_after = np.cov(apply(X_fit), rowvar=False)
            after = measure_layer(layer_data(
                apply(X_eval), s, seeds=p.seeds, reference_cov=ref_after,
                reference_name="fit_sample", **word_inputs(p, layer, apply)))
            entry = repair_for(spec)
            out.append({
                "name": entry.name,
                "spec": spec,
                "params": model.get_params(deep=False),
                "fit": "transductive" if transductive else "inductive",
                "fit_inputs": sorted(n for n in (fit_inputs or {})
                                     if n in entry.fit_inputs + entry.optional_fit_inputs),
                "layer": int(layer),
                "fit_n": int(fit_rows.size),
                "eval_n": int(eval_rows.size),
                "seed": int(s.seed),
                "evidence": "every measure on the evaluation sample (moments included)",
                "isoscore_star_reference": "fit_sample",
                "before": _scalars(before),
                "after": _scalars(after),
            })
    return out
