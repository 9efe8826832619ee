"""Identity, mean centring, all-but-the-top and per-dimension standardisation."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import OneToOneFeatureMixin
from sklearn.utils.validation import check_is_fitted

from isoscope.errors import InputError
from isoscope.transforms._base import (
    DEFAULT_FLOOR,
    IsotropyTransform,
    check_positive_int,
    default_abtt_components,
    floor_eigenvalues,
    removal_affine,
    top_directions,
)


class Identity(OneToOneFeatureMixin, IsotropyTransform):
    """No repair: returns the vectors unchanged (the ``none`` baseline in comparisons)."""

    spec_name = "none"

    def _fit(self, X: np.ndarray, **inputs: Any) -> None:
        """Nothing to learn beyond the input width."""

    def _transform(self, X: np.ndarray) -> np.ndarray:
        """Return ``X`` (validated, as float32/float64)."""
        return X

    def affine_(self) -> tuple[np.ndarray, np.ndarray]:
        """``A = I``, ``b = 0`` (see :meth:`IsotropyTransform.affine_`)."""
        check_is_fitted(self)
        d = int(self.n_features_in_)
        return np.eye(d), np.zeros(d)


class MeanCenter(OneToOneFeatureMixin, IsotropyTransform):
    """Subtract the mean vector of the fit data: ``v' = v - mu``.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    fit_info_ : dict
    """

    spec_name = "center"
    _array_attrs = ("mean_",)

    def _fit(self, X: np.ndarray, **inputs: Any) -> None:
        """Learn the mean of ``X``."""
        self.mean_ = X.mean(axis=0)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        """Subtract the fitted mean."""
        return X - self.mean_

    def affine_(self) -> tuple[np.ndarray, np.ndarray]:
        """``A = I``, ``b = -mu`` (see :meth:`IsotropyTransform.affine_`)."""
        check_is_fitted(self)
        return np.eye(self.mean_.shape[0]), -np.asarray(self.mean_, dtype=np.float64)


class AllButTheTop(OneToOneFeatureMixin, IsotropyTransform):
    """All-but-the-top (Mu & Viswanath, ICLR 2018).

    ``v' = (v - mu) - sum_{i<=D} (u_i . (v - mu)) u_i`` where ``mu`` is the fit-data mean and
    ``u_i`` its top-D principal directions.

    Parameters
    ----------
    n_components : int or None, default None
        D, the number of dominant directions removed. None uses the paper's rule D ~ d/100
        (at least 1, at most ``d - 1``; 8 at width 768). It must be below the width ``d``
        (removing all ``d`` directions maps every vector to zero) and is capped at
        ``n_samples - 1``, the most directions of non-zero variance the fit data have.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    components_ : ndarray of shape (n_components_, n_features)
        The removed unit directions, most variance first.
    explained_variance_ : ndarray of shape (n_components_,)
    n_components_ : int
        The D actually used.
    fit_info_ : dict
    """

    spec_name = "abtt"
    _array_attrs = ("mean_", "components_", "explained_variance_")
    _json_attrs = ("n_components_",)

    def __init__(self, n_components: int | None = None) -> None:
        self.n_components = n_components

    def _resolve_components(self, n_samples: int, n_features: int) -> int:
        wanted = check_positive_int(self.n_components, "n_components")
        if wanted is None:
            wanted = min(default_abtt_components(n_features), n_features - 1)
        elif wanted >= n_features:
            raise InputError(
                f"n_components={wanted} must be below the width of the vectors "
                f"(n_features={n_features}), because removing every direction maps every "
                "vector to zero."
            )
        return max(0, min(wanted, n_samples - 1))

    def _fit(self, X: np.ndarray, **inputs: Any) -> None:
        """Learn the mean and the top principal directions of ``X``."""
        self.mean_ = X.mean(axis=0)
        self.n_components_ = self._resolve_components(*X.shape)
        self.components_, self.explained_variance_ = top_directions(
            X - self.mean_, self.n_components_
        )

    def _transform(self, X: np.ndarray) -> np.ndarray:
        """Centre and remove the projections on the fitted directions."""
        Xc = X - self.mean_
        U = self.components_
        return Xc - (Xc @ U.T) @ U

    def affine_(self) -> tuple[np.ndarray, np.ndarray]:
        """``A = I - U^T U``, ``b = -mu A`` (see :meth:`IsotropyTransform.affine_`)."""
        check_is_fitted(self)
        return removal_affine(self.mean_, self.components_, np.ones(self.components_.shape[0]))


class Standardize(OneToOneFeatureMixin, IsotropyTransform):
    """Per-dimension z-scoring against rogue dimensions (Timkey & van Schijndel, EMNLP 2021).

    ``v'_j = (v_j - mu_j) / sigma_j`` with the fit-data mean and standard deviation of each
    dimension (``ddof=0``). Variances below ``variance_floor`` times the largest are raised
    to it, so constant dimensions never divide by zero.

    Parameters
    ----------
    with_mean : bool, default True
        Subtract the per-dimension mean before scaling.
    variance_floor : float, default 1e-8
        Relative floor on the per-dimension variances.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Zeros when ``with_mean=False``.
    scale_ : ndarray of shape (n_features,)
        The (floored) standard deviations.
    n_floored_ : int
        How many dimensions had their variance raised to the floor.
    fit_info_ : dict
    """

    spec_name = "standardize"
    _array_attrs = ("mean_", "scale_")
    _json_attrs = ("n_floored_",)

    def __init__(self, with_mean: bool = True, variance_floor: float = DEFAULT_FLOOR) -> None:
        self.with_mean = with_mean
        self.variance_floor = variance_floor

    def _fit(self, X: np.ndarray, **inputs: Any) -> None:
        """Learn the per-dimension mean and standard deviation of ``X``."""
        mean = X.mean(axis=0)
        var = X.var(axis=0)
        var, self.n_floored_ = floor_eigenvalues(var, float(self.variance_floor))
        self.mean_ = mean if self.with_mean else np.zeros_like(mean)
        self.scale_ = np.sqrt(var)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        """Z-score each dimension with the fitted statistics."""
        return (X - self.mean_) / self.scale_

    def affine_(self) -> tuple[np.ndarray, np.ndarray]:
        """``A = diag(1 / sigma)``, ``b = -mu / sigma`` (see :meth:`IsotropyTransform.affine_`)."""
        check_is_fitted(self)
        inv = 1.0 / np.asarray(self.scale_, dtype=np.float64)
        return np.diag(inv), -np.asarray(self.mean_, dtype=np.float64) * inv
