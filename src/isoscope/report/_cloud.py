"""Token clouds from arrays in memory.

Clouds of a store's layers are computed once, with the analysis' own rows, by
:func:`isoscope.artefacts.compute_artefacts`; the report only draws them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from isoscope._validation import check_vectors
from isoscope.artefacts import TokenCloud
from isoscope.errors import InputError


def cloud_from_arrays(
    X: Any,
    *,
    log_freq: Any = None,
    labels: list[str] | None = None,
    n: int = 2000,
    seed: int = 0,
    n_components: int = 3,
    layer: int | None = None,
    freq_label: str = "log10 word frequency",
    title: str = "",
) -> TokenCloud:
    """Build a :class:`TokenCloud` from an array of vectors.

    Parameters
    ----------
    X : array-like of shape (n_vectors, d)
        Vectors, one per row.
    log_freq : array-like of shape (n_vectors,), optional
        Colour value per row (log word frequency); NaN where unknown.
    labels : list of str, optional
        Hover text per row.
    n : int
        Maximum number of points; a seeded subsample is drawn when there are more rows.
    seed : int
        Seed of the subsample and the PCA solver.
    n_components : int
        2 or 3.
    layer : int, optional
        Hidden-state index, for titles.
    freq_label : str
        Meaning of ``log_freq``, for the colour bar.
    title : str
        Model name for titles.

    Returns
    -------
    TokenCloud
    """
    X = check_vectors(X, name="vectors", min_rows=2)
    m = X.shape[0]
    rows = np.arange(m)
    if m > n:
        rows = np.sort(np.random.default_rng(seed).choice(m, size=n, replace=False))
    freq = np.full(m, np.nan) if log_freq is None else np.asarray(log_freq, dtype=float)
    if freq.shape != (m,):
        raise InputError(f"log_freq must have one value per vector ({m}), got shape {freq.shape}.")
    if labels is not None and len(labels) != m:
        raise InputError(f"labels must have one entry per vector ({m}), got {len(labels)}.")
    return TokenCloud.project(
        X[rows],
        rows,
        n_components=n_components,
        seed=seed,
        log_freq=freq[rows],
        labels=[labels[i] for i in rows] if labels is not None else [f"row {i}" for i in rows],
        layer=layer,
        n_total=m,
        freq_label=freq_label,
        title=title,
    )


__all__ = ["TokenCloud", "cloud_from_arrays"]
