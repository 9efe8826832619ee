"""Whitening (Su et al. 2021) and Zipfian whitening (Yokoi et al. 2024)."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from isoscope.errors import InputError
from isoscope.transforms._base import (
    DEFAULT_FLOOR,
    IsotropyTransform,
    check_positive_int,
    floor_eigenvalues,
    sorted_eigh,
    weighted_mean_cov,
)


class _WhiteningBase(ClassNamePrefixFeaturesOutMixin, IsotropyTransform):
    _array_attrs = ("mean_", "components_", "eigenvalues_", "kernel_")
    _json_attrs = ("n_components_", "n_floored_")

    def _fit_whitening(self, X: np.ndarray, weights: np.ndarray | None, ddof: int) -> None:
        n, d = X.shape
        k = check_positive_int(self.n_components, "n_components")
        self.n_components_ = d if k is None else min(k, d)
        self.mean_, cov = weighted_mean_cov(X, weights, ddof=ddof)
        evals, evecs = sorted_eigh(cov)
        floored, self.n_floored_ = floor_eigenvalues(evals, float(self.eigenvalue_floor))
        k = self.n_components_
        self.components_ = evecs[:, :k].T.copy()
        self.eigenvalues_ = evals[:k].copy()
        kernel = evecs[:, :k] / np.sqrt(floored[:k])
        # Directions at the floor hold (numerically) no variance in the fit data and their
        # basis is arbitrary; map them to 0 instead of amplifying unseen components.
        kernel[:, evals[:k] < floored[:k]] = 0.0
        self.kernel_ = kernel

    @property
    def _n_features_out(self) -> int:
        return self.n_components_

    def _transform(self, X: np.ndarray) -> np.ndarray:
        """Centre and map onto the whitened principal axes (``n_components_`` columns)."""
        return (X - self.mean_) @ self.kernel_

    def affine_(self) -> tuple[np.ndarray, np.ndarray]:
        """``A = U Lambda^{-1/2}`` (the kernel), ``b = -mu A`` (see :meth:`IsotropyTransform.affine_`)."""
        check_is_fitted(self)
        A = np.asarray(self.kernel_, dtype=np.float64)
        return A.copy(), -np.asarray(self.mean_, dtype=np.float64) @ A


class Whitening(_WhiteningBase):
    """PCA whitening of Su et al. (2021), "Whitening sentence representations".

    ``v' = (v - mu) U Lambda^{-1/2}`` with ``U, Lambda`` the eigenvectors and eigenvalues of
    the fit-data covariance (``ddof=1``, as ``numpy.cov`` in the authors' code), so the fit
    data come out with identity covariance. Keeping only the first ``n_components`` columns
    of the kernel gives their reduced variant ("whitening-k").

    Eigenvalues below ``eigenvalue_floor`` times the largest are floored, so singular
    covariances (LayerNorm null directions, n < d) never produce NaN or Inf: such
    directions hold no variance in the fit data, their basis is arbitrary, and they are
    mapped to 0 rather than amplified (their output columns are 0, not unit variance).

    Parameters
    ----------
    n_components : int or None, default None
        Output width k; None keeps all dimensions.
    eigenvalue_floor : float, default 1e-8
        Relative eigenvalue floor.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    components_ : ndarray of shape (n_components_, n_features)
        Principal axes (rows), largest variance first; signs fixed (largest entry positive).
    eigenvalues_ : ndarray of shape (n_components_,)
        Covariance eigenvalues before flooring.
    kernel_ : ndarray of shape (n_features, n_components_)
        ``U Lambda^{-1/2}``, with zero columns for floored directions.
    n_components_ : int
    n_floored_ : int
        How many eigenvalues (of all ``n_features``) were below the floor.
    fit_info_ : dict
    """

    spec_name = "whiten"

    def __init__(
        self, n_components: int | None = None, eigenvalue_floor: float = DEFAULT_FLOOR
    ) -> None:
        self.n_components = n_components
        self.eigenvalue_floor = eigenvalue_floor

    def _fit(self, X: np.ndarray, **inputs: Any) -> None:
        """Learn the mean and whitening kernel of ``X``."""
        self._fit_whitening(X, None, ddof=1)


class ZipfianWhitening(_WhiteningBase):
    """Zipfian whitening of Yokoi et al. (NeurIPS 2024).

    Like :class:`Whitening`, but the mean and covariance are expectations under the word
    frequency distribution ``p`` (``sample_weight`` normalised to sum to one):
    ``mu = sum_w p_w v_w`` and ``Sigma = sum_w p_w (v_w - mu)(v_w - mu)^T``, so the fit data
    come out with identity *frequency-weighted* covariance. Pass one row per word type
    with its corpus frequency (e.g. the store's ``word_count``). Rows sampled per token are
    already drawn in proportion to frequency: for them uniform weights (the default) are the
    Zipfian expectation. Without weights the kernel equals :class:`Whitening`'s up to the
    ``n / (n - 1)`` covariance normalisation.

    Parameters
    ----------
    n_components : int or None, default None
        Output width; None keeps all dimensions.
    eigenvalue_floor : float, default 1e-8
        Relative eigenvalue floor.

    Attributes
    ----------
    mean_, components_, eigenvalues_, kernel_, n_components_, n_floored_, fit_info_
        As in :class:`Whitening`, under the weighted distribution.
    """

    spec_name = "zipf"

    def __init__(
        self, n_components: int | None = None, eigenvalue_floor: float = DEFAULT_FLOOR
    ) -> None:
        self.n_components = n_components
        self.eigenvalue_floor = eigenvalue_floor

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Self:
        """Learn the frequency-weighted mean and whitening kernel of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative word frequencies (counts or probabilities); None means uniform.

        Returns
        -------
        self
        """
        return self._fit_checked(X, sample_weight=sample_weight)

    def _fit(self, X: np.ndarray, **inputs: Any) -> dict[str, Any]:
        """Learn the frequency-weighted mean and whitening kernel of ``X``."""
        sample_weight = inputs.get("sample_weight")
        weighted = sample_weight is not None
        if weighted:
            try:
                w = _check_sample_weight(
                    sample_weight, X, dtype=np.float64, ensure_non_negative=True
                )
            except ValueError as exc:
                raise InputError(str(exc).strip()) from None
            if not np.all(np.isfinite(w)) or w.sum() <= 0:
                raise InputError(
                    "The word frequencies (sample_weight) must be finite and not all zero."
                )
        else:
            w = None
        self._fit_whitening(X, w, ddof=0)
        return {"weighted": weighted}
