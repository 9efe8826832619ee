"""Shared machinery of the isotropy repairs: input checks, eigen-decompositions, fit records."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

# check_positive_int lives in isoscope._validation (the CLI uses it too); re-exported here.
from isoscope._validation import check_positive_int as check_positive_int
from isoscope.errors import InputError

#: Default relative floor on eigenvalues (whitening) and variances (standardisation): values
#: below ``floor * largest`` count as null directions. Real LayerNorm null directions sit near
#: 1e-16 of the largest eigenvalue, genuine low-variance ones above 1e-5 (MiniLM).
DEFAULT_FLOOR = 1e-8


class IsotropyTransform(TransformerMixin, BaseEstimator):
    """Base class of the isoscope repairs (not used directly).

    Subclasses compute in float64 and return float32 for float32 input, float64 otherwise.
    After ``fit`` every repair has ``n_features_in_`` and ``fit_info_``, a JSON-able dict
    recording what it was fitted on; callers add their own keys (store, layer, seed, fit
    mode) with :meth:`set_fit_info`, and :func:`~isoscope.transforms.save_transform` keeps it.
    """

    #: Short registry name (``from_spec`` / ``spec_of``).
    spec_name: ClassVar[str] = ""
    #: Fitted ndarray attributes that ``save_transform`` stores as safetensors.
    _array_attrs: ClassVar[tuple[str, ...]] = ()
    #: Fitted JSON-able attributes that ``save_transform`` stores in the JSON header.
    _json_attrs: ClassVar[tuple[str, ...]] = ()

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def extra_fit_inputs(self) -> tuple[str, ...]:
        """Keyword arguments of ``fit`` beyond ``X`` that the repair uses, from its registry entry.

        ``("pairs",)`` for the learned removal, ``("sample_weight",)`` for Zipfian whitening;
        :func:`~isoscope.transforms.repair_for` says which are required.
        """
        from isoscope.transforms._registry import REGISTRY

        entry = REGISTRY.get(type(self).spec_name)
        return entry.inputs if entry is not None and entry.estimator is type(self) else ()

    # -- fit / transform: validation and the fit record here, the repair in _fit / _transform --

    def fit(self, X: Any, y: Any = None) -> Self:
        """Learn the repair from the vectors ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The fit vectors.
        y : ignored

        Returns
        -------
        self
        """
        return self._fit_checked(X)

    def transform(self, X: Any) -> np.ndarray:
        """Apply the fitted repair to the vectors ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features_out)
            float32 for float32 input, float64 otherwise.
        """
        X, dtype = self._check_input(X, reset=False)
        return self._transform(X).astype(dtype, copy=False)

    def _fit(self, X: np.ndarray, **inputs: Any) -> dict[str, Any] | None:
        """Set the fitted attributes from validated float64 ``X``; return extra fit_info keys."""
        raise NotImplementedError

    def _transform(self, X: np.ndarray) -> np.ndarray:
        """The repaired vectors of validated float64 ``X`` (float64)."""
        raise NotImplementedError

    # -- helpers for subclasses -------------------------------------------------------------

    def _fit_checked(self, X: Any, **inputs: Any) -> Self:
        """Validate ``X``, run :meth:`_fit` with the extra fit ``inputs`` and record the fit."""
        X, _ = self._check_input(X, reset=True)
        extra = self._fit(X, **inputs) or {}
        self._record_fit(X.shape[0], **extra)
        return self

    def _check_input(self, X: Any, *, reset: bool) -> tuple[np.ndarray, np.dtype]:
        """Validate ``X``; return it as float64 and the dtype the output should have."""
        if not reset:
            check_is_fitted(self)
        try:
            arr = validate_data(
                self, X, reset=reset, dtype=[np.float64, np.float32], ensure_min_samples=1
            )
        except ValueError as exc:
            # sklearn's messages are single sentences, e.g. "X has 5 features, but
            # AllButTheTop is expecting 4 features as input."; re-raise as the user error type.
            raise InputError(str(exc).strip()) from None
        out_dtype = np.dtype(np.float32) if arr.dtype == np.float32 else np.dtype(np.float64)
        return np.asarray(arr, dtype=np.float64), out_dtype

    def _record_fit(self, n_samples: int, **extra: Any) -> None:
        from isoscope import __version__

        self.fit_info_: dict[str, Any] = {
            "transform": spec_of(self),
            "class": type(self).__name__,
            "n_samples": int(n_samples),
            "n_features": int(self.n_features_in_),
            "isoscope_version": __version__,
            **extra,
        }

    # -- public -----------------------------------------------------------------------------

    def affine_(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The fitted repair as an affine map ``y = x @ A + b``, or None if it is not one.

        Computed in float64 from the fitted attributes (not by probing ``transform``). Repairs
        whose output depends on more than a fixed matrix and offset (the per-cluster repair,
        which depends on each vector's cluster) return None.

        Returns
        -------
        (A, b) or None
            ``A`` of shape (n_features_in_, n_features_out), ``b`` of shape (n_features_out,).
        """
        check_is_fitted(self)
        return None

    def set_fit_info(self, **info: Any) -> IsotropyTransform:
        """Record what the repair was fitted on (e.g. ``store=..., layer=3, seed=0, mode=...``).

        Values must be JSON-serialisable so that they survive ``save_transform``.

        Returns
        -------
        self
        """
        check_is_fitted(self)
        self.fit_info_.update(info)
        return self


def spec_of(est: BaseEstimator) -> str:
    """Return the ``from_spec`` string of an isoscope repair, listing non-default parameters.

    Parameters
    ----------
    est : IsotropyTransform
        A fitted or unfitted repair.

    Returns
    -------
    str
        For example ``"abtt:n_components=3"`` or ``"center"``.
    """
    name = getattr(est, "spec_name", "") or type(est).__name__
    defaults = type(est)().get_params()
    parts = []
    for key, value in sorted(est.get_params().items()):
        if value != defaults.get(key):
            parts.append(f"{key}={value}")
    return name + (":" + ",".join(parts) if parts else "")


def sorted_eigh(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decompose a symmetric matrix, largest eigenvalue first, with fixed signs.

    Each eigenvector is flipped so that its largest-magnitude entry is positive, so that
    refits on the same data give identical (not sign-flipped) axes.

    Returns
    -------
    eigenvalues : ndarray of shape (d,)
        Descending; may contain tiny negative values for singular matrices.
    eigenvectors : ndarray of shape (d, d)
        Columns are the unit eigenvectors.
    """
    cov = (cov + cov.T) / 2.0
    evals, evecs = np.linalg.eigh(cov)
    evals, evecs = evals[::-1].copy(), evecs[:, ::-1].copy()
    if evecs.size:
        rows = np.argmax(np.abs(evecs), axis=0)
        signs = np.sign(evecs[rows, np.arange(evecs.shape[1])])
        signs[signs == 0] = 1.0
        evecs *= signs
    return evals, evecs


def floor_eigenvalues(evals: np.ndarray, relative_floor: float) -> tuple[np.ndarray, int]:
    """Raise eigenvalues below ``relative_floor * max(evals)`` to that floor.

    LayerNorm outputs have null directions, so sample covariances are singular and ``eigh``
    returns zeros or tiny negative values; dividing by their square roots gives Inf or NaN.
    A floor of 0 still replaces non-positive values (by the smallest positive double).

    Returns
    -------
    floored : ndarray
        The floored eigenvalues (all strictly positive).
    n_floored : int
        How many were raised.
    """
    top = float(evals.max()) if evals.size else 0.0
    floor = max(relative_floor * top, np.finfo(np.float64).tiny) if top > 0 else 1.0
    low = evals < floor
    return np.where(low, floor, evals), int(low.sum())


def weighted_mean_cov(
    X: np.ndarray, weights: np.ndarray | None = None, *, ddof: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of rows of ``X`` (float64), optionally weighted.

    With weights, they are normalised to sum to one and ``ddof`` is ignored.
    """
    if weights is None:
        mean = X.mean(axis=0)
        Xc = X - mean
        denom = max(X.shape[0] - ddof, 1)
        return mean, (Xc.T @ Xc) / denom
    p = weights / weights.sum()
    mean = p @ X
    Xc = X - mean
    return mean, (Xc * p[:, None]).T @ Xc


def top_directions(X_centered: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` principal directions (rows) of already-centred data, and their variances.

    For few directions of a wide covariance, Lanczos (ARPACK, converged to machine
    precision from a fixed start vector) replaces the full ``eigh``, which is several
    times slower at width 768 and above; both return the same directions.
    """
    n, d = X_centered.shape
    cov = (X_centered.T @ X_centered) / max(n - 1, 1)
    if k == 0:
        return np.zeros((0, d)), np.zeros(0)
    # A zero covariance (one point, or identical points, e.g. a k-means cluster of duplicates)
    # has no Krylov space for Lanczos: ARPACK stops with "starting vector is zero".
    if d >= 64 and k <= d // 4 and np.any(cov):
        from scipy.sparse.linalg import ArpackError, eigsh

        try:
            evals, evecs = eigsh(cov, k=k, which="LA", v0=np.full(d, d**-0.5), tol=0)
        except ArpackError:  # includes ArpackNoConvergence: the full eigh below is exact
            pass
        else:
            order = np.argsort(evals)[::-1]
            evals, evecs = evals[order], evecs[:, order]
            rows = np.argmax(np.abs(evecs), axis=0)
            signs = np.sign(evecs[rows, np.arange(k)])
            signs[signs == 0] = 1.0
            return (evecs * signs).T.copy(), np.maximum(evals, 0.0)
    evals, evecs = sorted_eigh(cov)
    return evecs[:, :k].T.copy(), np.maximum(evals[:k], 0.0)


def default_abtt_components(n_features: int) -> int:
    """Mu & Viswanath's rule D ~ d/100 (at least 1): 3 at width 300, 8 at 768, 41 at 4096."""
    return max(1, int(round(n_features / 100)))


def removal_affine(
    mean: np.ndarray, components: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` of ``v' = (v - mu) - sum_i w_i (u_i . (v - mu)) u_i``, in float64.

    ``A = I - U^T diag(w) U`` (``U``: the directions as rows) and ``b = -mu A``; shared by
    all-but-the-top (every ``w_i = 1``) and the learned removal.
    """
    U = np.asarray(components, dtype=np.float64)
    A = np.eye(U.shape[1]) - U.T @ (np.asarray(weights, dtype=np.float64)[:, None] * U)
    return A, -np.asarray(mean, dtype=np.float64) @ A
