"""Shared input checks for arrays of vectors."""

from __future__ import annotations

import numpy as np

from isoscope.errors import InputError


def check_vectors(
    X: object,
    *,
    name: str = "vectors",
    min_rows: int = 1,
    allow_zero_rows: bool = True,
    dtype: type = np.float64,
) -> np.ndarray:
    """Return ``X`` as a finite 2-D floating array or raise :class:`InputError`.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Vectors, one per row.
    name : str
        Name used in the error message.
    min_rows : int
        Minimum number of rows required.
    allow_zero_rows : bool
        If False, all-zero rows (which have no direction) are rejected.
    dtype : numpy dtype
        Floating dtype of the returned array.

    Returns
    -------
    numpy.ndarray
        The checked array (a copy only when a conversion was needed).
    """
    try:
        arr = np.asarray(X, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InputError(f"The {name} could not be read as a numeric array ({exc}).") from None
    if arr.ndim != 2:
        raise InputError(f"The {name} must be a 2-D array (n vectors x d dims), got shape {arr.shape}.")
    if arr.shape[1] == 0:
        raise InputError(f"The {name} have zero dimensions.")
    if arr.shape[0] < min_rows:
        raise InputError(f"At least {min_rows} {name} are needed, got {arr.shape[0]}.")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int((~finite.all(axis=1)).sum())
        raise InputError(f"The {name} contain NaN or Inf values in {bad} of {arr.shape[0]} rows.")
    if not allow_zero_rows:
        zero = int((~arr.any(axis=1)).sum())
        if zero:
            raise InputError(
                f"The {name} contain {zero} all-zero rows, which have no direction; drop them first."
            )
    return arr
