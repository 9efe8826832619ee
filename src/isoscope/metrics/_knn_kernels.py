"""Compiled selection kernels for the symmetric self-kNN (numba, optional).

One pass over a block of float32 squared distances offers every entry below a row's (or a
column's) current threshold to that row's (column's) running k-smallest list, in place.
Rows (columns) are split between threads, so no two threads write the same list. Without
numba, :mod:`isoscope.metrics._neighbors` falls back to numpy (threshold masks and merges).
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(inline="always")
def _offer(dist, idx, thr, pos, q, j, v):  # pragma: no cover - compiled
    # Replace the current maximum of row q's list, then find the new maximum.
    p = pos[q]
    dist[q, p] = v
    idx[q, p] = j
    m = dist[q, 0]
    mp = 0
    for t in range(1, dist.shape[1]):
        if dist[q, t] > m:
            m = dist[q, t]
            mp = t
    thr[q] = m
    pos[q] = mp


@nb.njit(parallel=True, nogil=True, cache=True)
def select_rows(D, s, s2, diagonal, dist, idx, thr, pos):  # pragma: no cover - compiled
    """Row side: entry (r, c) is a candidate neighbour s2+c of point s+r."""
    b, w = D.shape
    for r in nb.prange(b):
        q = s + r
        t = thr[q]
        for c in range(w):
            v = D[r, c]
            if v < t and not (diagonal and c == r):
                _offer(dist, idx, thr, pos, q, s2 + c, v)
                t = thr[q]


@nb.njit(parallel=True, nogil=True, cache=True)
def select_cols(D, s, s2, dist, idx, thr, pos, n_parts):  # pragma: no cover - compiled
    """Column side: entry (r, c) is a candidate neighbour s+r of point s2+c."""
    b, w = D.shape
    step = (w + n_parts - 1) // n_parts
    for part in nb.prange(n_parts):
        c0 = part * step
        c1 = min(w, c0 + step)
        for r in range(b):
            for c in range(c0, c1):
                v = D[r, c]
                if v < thr[s2 + c]:
                    _offer(dist, idx, thr, pos, s2 + c, s + r, v)


def warm_up() -> None:
    """Compile (or load from cache) the kernels on a tiny problem."""
    D = np.zeros((2, 2), dtype=np.float32)
    dist = np.full((4, 1), np.inf, dtype=np.float32)
    idx = np.full((4, 1), -1, dtype=np.int64)
    thr = np.full(4, np.inf, dtype=np.float32)
    pos = np.zeros(4, dtype=np.int64)
    select_rows(D, 0, 0, True, dist, idx, thr, pos)
    select_cols(D, 0, 2, dist, idx, thr, pos, 2)
