"""``layer_similarity``: every analysed layer of one model against every other, on the same rows.

The per-layer measure registry describes one layer at a time; this section of
``results.json`` sits beside ``layers`` and compares layers (linear and debiased CKA, mutual
k-NN overlap for every pair; the χ neighbourhood overlap of consecutive layers). Its keys are
described by :data:`SIMILARITY_KEYS`, from which ``docs/results.md`` is generated.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from isoscope.errors import InputError
from isoscope.metrics.similarity import HUH, KORNBLITH, SONG, VALERIANI

#: ``(key, definition, source)`` of every key of the ``layer_similarity`` section.
SIMILARITY_KEYS: tuple[tuple[str, str, str], ...] = (
    ("layers", "The compared hidden-state indices, in the order of the matrices' rows.", "–"),
    ("cka_linear", "Matrix (layers × layers) of linear CKA ⟨K_a, K_b⟩_F / (‖K_a‖_F ‖K_b‖_F), "
     "K = X Xᵀ of the column-centred rows (biased HSIC); 1 = the same geometry up to rotation "
     "and scale.", KORNBLITH),
    ("cka_debiased", "The same with the unbiased HSIC estimator (zero-diagonal Gram matrices); "
     "None when similarity_debiased is off.", SONG),
    ("mutual_knn", "Matrix of mutual k-NN overlap: mean over rows of |N_a(i) ∩ N_b(i)| / k, the "
     "k = similarity_k nearest other rows by cosine similarity in each layer.", HUH),
    ("mutual_knn_chance", "k / (n − 1): the overlap of two unrelated neighbourhoods.", HUH),
    ("chi_overlap", "χ of each consecutive pair (chi_pairs): the same overlap with Euclidean "
     "neighbours (k = similarity_k).", VALERIANI),
    ("chi_pairs", "The consecutive layer pairs of chi_overlap.", VALERIANI),
    ("n", "Rows compared (a seeded subset of the measured sample, the same rows in every "
     "layer; rows that are all-zero in some layer dropped).", "–"),
    ("k", "Neighbours per row of mutual_knn and chi_overlap (similarity_k).", "–"),
    ("seed", "Seed of the row subset (SeedSequence(seed).spawn stream 'similarity').", "–"),
    ("n_duplicates", "Exact duplicate rows per layer (their neighbours tie; ties are broken by "
     "row order).", "–"),
    ("n_zero_rows", "Rows of the subset left out because they are all-zero in some layer.", "–"),
    ("evidence", "'sample'.", "–"),
    ("how", "How the rows and neighbours were chosen, in words (wall time: "
     "timings.layer_similarity_s).", "–"),
)


def _subset(rows: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    if n is None or rows.size <= n:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=int(n), replace=False))


def compare_layers(
    reps: list[np.ndarray], *, k: int, debiased: bool, backend: str = "auto"
) -> dict[str, Any]:
    """CKA, mutual k-NN and consecutive χ of representations of the same rows.

    Parameters
    ----------
    reps : list of ndarray of shape (n, d_i)
        One array per layer (float64, no all-zero rows).
    k : int
        Neighbours of the overlaps (clipped to ``n − 1``).
    debiased : bool
        Also compute debiased CKA.
    backend : str
        Neighbour backend (:func:`isoscope.metrics.exact_knn`).

    Returns
    -------
    dict
        ``cka_linear``, ``cka_debiased``, ``mutual_knn``, ``mutual_knn_chance``, ``chi_overlap``
        and ``k`` (matrices as nested lists).
    """
    from isoscope.metrics.similarity import cka_matrix, consecutive_overlap, knn_overlap_matrix

    n = reps[0].shape[0]
    k = min(int(k), n - 1)
    return {
        "cka_linear": cka_matrix(reps).tolist(),
        "cka_debiased": cka_matrix(reps, debiased=True).tolist() if debiased and n >= 4 else None,
        "mutual_knn": knn_overlap_matrix(reps, k, metric="cosine", backend=backend).tolist(),
        "mutual_knn_chance": k / (n - 1),
        "chi_overlap": consecutive_overlap(reps, k, metric="euclidean", backend=backend).tolist(),
        "k": k,
    }


def layer_similarity(p: Any, timings: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The ``layer_similarity`` section of a prepared analysis (None for fewer than 2 layers).

    Parameters
    ----------
    p : isoscope.analysis._suite.Prepared
        The analysis' source, layers, sample rows, settings and derived seeds.
    timings : dict, optional
        Receives ``layer_similarity_s``.

    Returns
    -------
    dict or None
        See :data:`SIMILARITY_KEYS`.
    """
    from isoscope.metrics._neighbors import count_duplicates

    s = p.settings
    if len(p.layers) < 2 or s.similarity_sample == 0:
        return None
    t0 = time.perf_counter()
    seed = int(p.seeds["similarity"])
    rows = _subset(np.asarray(p.sample_rows), s.similarity_sample, seed)
    reps = [np.asarray(p.src.rows(layer, rows), dtype=np.float64) for layer in p.layers]
    keep = np.logical_and.reduce([np.linalg.norm(X, axis=1) > 0 for X in reps])
    if keep.sum() <= max(int(s.similarity_k), 3):
        raise InputError(
            f"Only {int(keep.sum())} rows are non-zero in every layer; layer similarity needs "
            f"more than {max(int(s.similarity_k), 3)} (lower similarity_k or set "
            "similarity_sample=0)."
        )
    reps = [X[keep] for X in reps]
    out: dict[str, Any] = {"layers": [int(x) for x in p.layers]}
    out.update(compare_layers(reps, k=int(s.similarity_k), debiased=bool(s.similarity_debiased),
                              backend=str(s.neighbor_backend)))
    out["chi_pairs"] = [[int(a), int(b)] for a, b in zip(p.layers[:-1], p.layers[1:], strict=True)]
    out.update(
        n=int(keep.sum()),
        n_zero_rows=int((~keep).sum()),
        seed=seed,
        n_duplicates=[count_duplicates(np.asarray(X, dtype=np.float32)) for X in reps],
        evidence="sample",
        how="a seeded subset of the measured sample (the same rows in every layer); CKA on "
        "column-centred rows, mutual k-NN by cosine, chi by Euclidean distance, neighbours from "
        "the exact backend with ties broken by row order",
    )
    if timings is not None:
        timings["layer_similarity_s"] = round(time.perf_counter() - t0, 3)
    return out


def check_section(section: Any, where: str) -> None:
    """Raise InputError in one sentence when a ``layer_similarity`` section is malformed."""
    if not isinstance(section, dict) or not isinstance(section.get("layers"), list):
        raise InputError(f"{where} is damaged ('layer_similarity' has no list of layers).")
    m = len(section["layers"])
    for key in ("cka_linear", "cka_debiased", "mutual_knn"):
        mat = section.get(key)
        if mat is None and key == "cka_debiased":
            continue
        ok = isinstance(mat, list) and len(mat) == m and all(
            isinstance(r, list) and len(r) == m
            and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in r)
            for r in mat
        )
        if not ok:
            raise InputError(
                f"{where} is damaged (layer_similarity's {key!r} is not a {m} x {m} matrix of "
                "numbers)."
            )


def similarity_frame(section: dict[str, Any] | None) -> Any:
    """One row per pair of layers: ``layer_a``, ``layer_b``, CKA, mutual k-NN and χ (pandas).

    Parameters
    ----------
    section : dict or None
        A ``layer_similarity`` section.

    Returns
    -------
    pandas.DataFrame
        Empty (with the columns) when the section is absent; ``chi_overlap`` is NaN except for
        consecutive layers.
    """
    import pandas as pd

    cols = ["layer_a", "layer_b", "cka_linear", "cka_debiased", "mutual_knn", "chi_overlap"]
    if not section:
        return pd.DataFrame(columns=cols)
    lay = section["layers"]
    chi = {tuple(pair): v for pair, v in zip(section.get("chi_pairs") or [],
                                             section.get("chi_overlap") or [], strict=False)}
    deb = section.get("cka_debiased")
    recs = []
    for i, a in enumerate(lay):
        for j, b in enumerate(lay):
            recs.append({
                "layer_a": a, "layer_b": b,
                "cka_linear": section["cka_linear"][i][j],
                "cka_debiased": None if deb is None else deb[i][j],
                "mutual_knn": section["mutual_knn"][i][j],
                "chi_overlap": chi.get((a, b), chi.get((b, a))),
            })
    return pd.DataFrame(recs, columns=cols).astype({c: float for c in cols[2:]})
