"""Chunked float64 accumulators for measures that are sums over vectors.

A layer far larger than memory is measured chunk by chunk; accumulators from different chunks
(or machines) merge exactly (up to float64 rounding): mean and covariance with Chan et al.'s
pairwise update, the sum of unit vectors (S_inter, rogue dimensions), the per-dimension sum
and maximum of absolute activations (outlier dimensions, massive activations) and log Z(c)
with a running log-sum-exp.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from isoscope.errors import InputError
from isoscope.metrics.isotropy import (
    NORMALISATIONS,
    PartitionIsotropy,
    isoscore,
    isotropy_from_log_z,
)
from isoscope.metrics.spectrum import floored_eigh

__all__ = [
    "StreamingMoments",
    "StreamingLogPartition",
    "partition_accumulator",
    "stream_partition_isotropy",
    "stream_moments",
]


def _check_chunk(chunk: Any, d: int | None) -> np.ndarray:
    X = np.asarray(chunk, dtype=np.float64)
    if X.ndim != 2:
        raise InputError(f"Each chunk must be a 2-D array, got shape {X.shape}.")
    if d is not None and X.shape[1] != d:
        raise InputError(f"Chunk has {X.shape[1]} dimensions, expected {d}.")
    if not np.isfinite(X).all():
        raise InputError("A chunk of vectors contains NaN or Inf values.")
    return X


class StreamingMoments:
    """Mergeable float64 accumulator of count, mean, scatter, sum of unit vectors and norms.

    Per dimension it also keeps the sum of absolute values (``sum_abs_``) and the largest
    absolute value (``max_abs_``) with the row it came from (``max_row_``) and its sign
    (``max_value_``).

    Parameters
    ----------
    d : int, optional
        Dimension; inferred from the first chunk when omitted.

    Examples
    --------
    >>> acc = StreamingMoments()
    >>> for chunk in chunks:            # doctest: +SKIP
    ...     acc.update(chunk)
    >>> acc.covariance(), acc.s_inter()  # doctest: +SKIP
    """

    def __init__(self, d: int | None = None) -> None:
        self.d = d
        self.n = 0
        self.n_zero = 0
        self.sum_norm_ = 0.0
        self._init(d or 0)
        self.d = d  # None until the first chunk fixes it

    def _init(self, d: int) -> None:
        self.d = d
        self.mean_ = np.zeros(d)
        self.m2_ = np.zeros((d, d))
        self.sum_unit_ = np.zeros(d)
        self.sum_unit_sq_ = np.zeros(d)
        self.sum_abs_ = np.zeros(d)
        self.max_abs_ = np.full(d, -np.inf)
        self.max_value_ = np.zeros(d)
        self.max_row_ = np.full(d, -1, dtype=np.int64)

    def update(self, chunk: Any, rows: Any = None) -> StreamingMoments:
        """Add a chunk of rows (any float dtype); returns self.

        Parameters
        ----------
        chunk : array-like of shape (m, d)
        rows : array-like of int of shape (m,), optional
            Row ids of the chunk, recorded with the per-dimension maxima (default: the
            position of each row in the stream, counting from 0).
        """
        X = _check_chunk(chunk, self.d)
        if X.shape[0] == 0:
            return self
        if rows is None:
            ids = np.arange(self.n, self.n + X.shape[0], dtype=np.int64)
        else:
            ids = np.asarray(rows, dtype=np.int64)
            if ids.shape != (X.shape[0],):
                raise InputError(f"rows has shape {ids.shape}, expected ({X.shape[0]},).")
        if self.n == 0:
            self._init(X.shape[1])
        other = StreamingMoments(X.shape[1])
        other._init(X.shape[1])
        other.n = X.shape[0]
        other.mean_ = X.mean(axis=0)
        Xc = X - other.mean_
        other.m2_ = Xc.T @ Xc
        norms = np.linalg.norm(X, axis=1)
        nz = norms > 0
        other.n_zero = int((~nz).sum())
        U = X[nz] / norms[nz, None]
        other.sum_unit_ = U.sum(axis=0)
        other.sum_unit_sq_ = (U * U).sum(axis=0)
        other.sum_norm_ = float(norms.sum())
        A = np.abs(X)
        other.sum_abs_ = A.sum(axis=0)
        other.max_abs_ = A.max(axis=0)
        # The row of a maximum is needed only where this chunk beats what was seen before.
        cols = np.flatnonzero(other.max_abs_ >= self.max_abs_) if self.n else np.arange(X.shape[1])
        arg = A[:, cols].argmax(axis=0) if cols.size < X.shape[1] else A.argmax(axis=0)
        other.max_value_ = np.zeros(X.shape[1])
        other.max_value_[cols] = X[arg, cols]
        other.max_row_ = np.full(X.shape[1], -1, dtype=np.int64)
        other.max_row_[cols] = ids[arg]
        return self.merge(other)

    def merge(self, other: StreamingMoments) -> StreamingMoments:
        """Merge another accumulator into this one (in place); returns self."""
        if other.n == 0:
            return self
        if self.n == 0:
            self.d, self.n, self.n_zero = other.d, other.n, other.n_zero
            self.mean_ = other.mean_.copy()
            self.m2_ = other.m2_.copy()
            self.sum_unit_ = other.sum_unit_.copy()
            self.sum_unit_sq_ = other.sum_unit_sq_.copy()
            self.sum_norm_ = other.sum_norm_
            self.sum_abs_ = other.sum_abs_.copy()
            self.max_abs_ = other.max_abs_.copy()
            self.max_value_ = other.max_value_.copy()
            self.max_row_ = other.max_row_.copy()
            return self
        if other.d != self.d:
            raise InputError(f"Cannot merge accumulators of dimension {self.d} and {other.d}.")
        n = self.n + other.n
        delta = other.mean_ - self.mean_
        self.m2_ += other.m2_ + np.outer(delta, delta) * (self.n * other.n / n)
        self.mean_ += delta * (other.n / n)
        self.n = n
        self.n_zero += other.n_zero
        self.sum_unit_ += other.sum_unit_
        self.sum_unit_sq_ += other.sum_unit_sq_
        self.sum_norm_ += other.sum_norm_
        self.sum_abs_ += other.sum_abs_
        # Ties keep the smaller row id (the row seen first in one ordered stream), so merging
        # shards in any order names the same rows.
        tie = (other.max_abs_ == self.max_abs_) & (other.max_row_ >= 0) & (other.max_row_ < self.max_row_)
        take = (other.max_abs_ > self.max_abs_) | tie
        self.max_abs_ = np.where(take, other.max_abs_, self.max_abs_)
        self.max_value_ = np.where(take, other.max_value_, self.max_value_)
        self.max_row_ = np.where(take, other.max_row_, self.max_row_)
        return self

    def _need(self, k: int = 2) -> None:
        if self.n < k:
            raise InputError(f"At least {k} vectors are needed, got {self.n}.")

    @property
    def mean(self) -> np.ndarray:
        """Mean vector."""
        self._need(1)
        return self.mean_.copy()

    def covariance(self) -> np.ndarray:
        """Sample covariance (divisor n - 1)."""
        self._need(2)
        return self.m2_ / (self.n - 1)

    def second_moment(self) -> np.ndarray:
        """Raw second moment ``sum x x^T`` (the V^T V of I(V) with raw normalisation)."""
        self._need(1)
        return self.m2_ + self.n * np.outer(self.mean_, self.mean_)

    def s_inter(self) -> float:
        """Exact mean cosine over all distinct pairs of the non-zero rows seen."""
        m = self.n - self.n_zero
        if m < 2:
            raise InputError("S_inter needs at least 2 non-zero vectors.")
        s = self.sum_unit_
        return float((s @ s - m) / (m * (m - 1.0)))

    def rogue_contributions(self) -> np.ndarray:
        """Per-dimension contributions to :meth:`s_inter` (they sum to it)."""
        m = self.n - self.n_zero
        if m < 2:
            raise InputError("Rogue dimensions need at least 2 non-zero vectors.")
        return (self.sum_unit_**2 - self.sum_unit_sq_) / (m * (m - 1.0))

    def mean_norm(self) -> float:
        """Mean Euclidean norm of the rows."""
        self._need(1)
        return self.sum_norm_ / self.n

    def mean_abs(self) -> np.ndarray:
        """Per-dimension mean absolute value ``(1/n) sum_i |x_ij|``."""
        self._need(1)
        return self.sum_abs_ / self.n

    def max_abs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-dimension largest absolute value, its signed value and the row it came from.

        Returns
        -------
        max_abs, value : ndarray of shape (d,), float64
        row : ndarray of shape (d,), int64
            The ids given to :meth:`update` (stream positions by default); the smaller row
            id wins a tie.
        """
        self._need(1)
        return self.max_abs_.copy(), self.max_value_.copy(), self.max_row_.copy()

    def isoscore(self) -> float:
        """IsoScore of the accumulated covariance."""
        return isoscore(cov=self.covariance())


class StreamingLogPartition:
    """Mergeable running log-sum-exp of ``c^T v`` for fixed directions c (columns).

    Parameters
    ----------
    directions : ndarray of shape (d, m)
    shift : ndarray of shape (d,), optional
        Subtracted from every row first (the mean, for the centred normalisation).
    unit : bool
        Scale every row to unit length first.
    """

    def __init__(
        self, directions: np.ndarray, *, shift: np.ndarray | None = None, unit: bool = False
    ):
        self.directions = np.asarray(directions, dtype=np.float64)
        self.shift = None if shift is None else np.asarray(shift, dtype=np.float64)
        self.unit = unit
        m = self.directions.shape[1]
        self.max_ = np.full(m, -np.inf)
        self.scaled_ = np.zeros(m)  # sum exp(p - max_)
        self.n = 0

    def update(self, chunk: Any) -> StreamingLogPartition:
        """Add a chunk of rows; returns self."""
        X = _check_chunk(chunk, self.directions.shape[0])
        if X.shape[0] == 0:
            return self
        if self.shift is not None:
            X = X - self.shift
        if self.unit:
            norms = np.linalg.norm(X, axis=1, keepdims=True)
            if np.any(norms == 0):
                raise InputError(
                    "Unit normalisation needs non-zero vectors, but a chunk has an all-zero row."
                )
            X = X / norms
        P = X @ self.directions
        cmax = P.max(axis=0)
        csum = np.exp(P - cmax).sum(axis=0)
        self._combine(cmax, csum, X.shape[0])
        return self

    def _combine(self, cmax: np.ndarray, csum: np.ndarray, n: int) -> None:
        new_max = np.maximum(self.max_, cmax)
        with np.errstate(invalid="ignore"):
            a = np.where(np.isfinite(self.max_), self.scaled_ * np.exp(self.max_ - new_max), 0.0)
        self.scaled_ = a + csum * np.exp(cmax - new_max)
        self.max_ = new_max
        self.n += n

    def merge(self, other: StreamingLogPartition) -> StreamingLogPartition:
        """Merge another accumulator over the same directions; returns self."""
        if other.directions.shape != self.directions.shape:
            raise InputError("Cannot merge log-partition accumulators over different directions.")
        if other.n:
            self._combine(other.max_, other.scaled_, other.n)
        return self

    @property
    def log_z(self) -> np.ndarray:
        """log Z(c) for every direction."""
        if self.n == 0:
            raise InputError("No vectors were accumulated.")
        return self.max_ + np.log(self.scaled_)


def stream_moments(chunks: Iterable[Any], *, unit: bool = False) -> StreamingMoments:
    """Accumulate :class:`StreamingMoments` over an iterable of chunks (rows scaled to unit if asked)."""
    acc = StreamingMoments()
    for c in chunks:
        if unit:
            X = _check_chunk(c, None)
            nrm = np.linalg.norm(X, axis=1, keepdims=True)
            if np.any(nrm == 0):
                raise InputError(
                    "Unit normalisation needs non-zero vectors, but a chunk has an all-zero row."
                )
            c = X / nrm
        acc.update(c)
    return acc


def partition_accumulator(moments: StreamingMoments, normalisation: str) -> StreamingLogPartition:
    """The empty log Z(c) accumulator of I(V)'s second pass, directions fixed by ``moments``.

    Parameters
    ----------
    moments : StreamingMoments
        Moments of the rows the second pass will see (of their unit-scaled copies for
        ``"unit"``).
    normalisation : {"raw", "centered", "unit"}
        ``c`` runs over both signs of the eigenvectors of the raw second moment (raw, unit)
        or of the scatter about the mean (centred, whose pass subtracts that mean).

    Returns
    -------
    StreamingLogPartition
        Feed it the rows (as they are: it centres or scales them itself); its ``log_z`` goes
        to :func:`~isoscope.metrics.isotropy.isotropy_from_log_z`.
    """
    if normalisation not in NORMALISATIONS:
        raise InputError(
            f"Unknown normalisation {normalisation!r}; use one of {', '.join(NORMALISATIONS)}."
        )
    M = moments.m2_ if normalisation == "centered" else moments.second_moment()
    _, U, _ = floored_eigh(M)
    return StreamingLogPartition(
        np.hstack([U, -U]),
        shift=moments.mean if normalisation == "centered" else None,
        unit=normalisation == "unit",
    )


def stream_partition_isotropy(
    chunks: Callable[[], Iterable[Any]],
    *,
    normalisation: str = "centered",
    moments: StreamingMoments | None = None,
) -> tuple[PartitionIsotropy, StreamingMoments]:
    """I(V) over vectors streamed in chunks, in two passes (moments, then log Z).

    Parameters
    ----------
    chunks : callable
        Returns a fresh iterable of chunks (called once or twice).
    normalisation : {"raw", "centered", "unit"}
    moments : StreamingMoments, optional
        Already-accumulated moments of the (unit-scaled, for ``"unit"``) rows: skips pass one.

    Returns
    -------
    (PartitionIsotropy, StreamingMoments)
    """
    if normalisation not in NORMALISATIONS:
        raise InputError(
            f"Unknown normalisation {normalisation!r}; use one of {', '.join(NORMALISATIONS)}."
        )
    if moments is None:
        moments = stream_moments(chunks(), unit=normalisation == "unit")
    acc = partition_accumulator(moments, normalisation)
    for c in chunks():
        acc.update(c)
    return isotropy_from_log_z(acc.log_z, normalisation), moments
