"""Cluster-based isotropy enhancement (Rajaee & Pilehvar, ACL 2021)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import OneToOneFeatureMixin

from isoscope.errors import InputError
from isoscope.transforms._base import IsotropyTransform, check_positive_int, top_directions

#: Paper defaults (BERT-base, width 768): C = 27 clusters, D = 12 directions per cluster.
PAPER_N_CLUSTERS = 27
PAPER_N_COMPONENTS = 12
PAPER_WIDTH = 768
#: k-means restarts: scikit-learn's default when the paper was written (``n_init=10``).
PAPER_N_INIT = 10
#: ``n_components`` value selecting the width-scaled rule :func:`default_cluster_components`.
SCALED = "scaled"


def default_cluster_components(n_features: int) -> int:
    """D scaled with the width from the paper's 12 at 768: ``round(12 * d / 768)``, at least 1.

    This keeps the removed fraction of dimensions fixed (1/64): 6 at width 384, 12 at 768,
    16 at 1024, 64 at 4096.
    """
    return max(1, int(round(PAPER_N_COMPONENTS * n_features / PAPER_WIDTH)))


def _nearest(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (Euclidean) for each row; ties go to the lowest index."""
    d2 = (
        np.einsum("ij,ij->i", X, X)[:, None]
        - 2.0 * (X @ centers.T)
        + np.einsum("ij,ij->i", centers, centers)[None, :]
    )
    return np.argmin(d2, axis=1)


class ClusterIsotropy(OneToOneFeatureMixin, IsotropyTransform):
    """Cluster-based isotropy enhancement (Rajaee & Pilehvar, ACL 2021).

    The fit data are clustered with seeded k-means; in each cluster ``c`` a vector becomes
    ``v' = (v - m_c) - sum_{i<=D_c} (u_{c,i} . (v - m_c)) u_{c,i}``, where ``m_c`` is the
    cluster's mean and ``u_{c,i}`` its top principal directions. New vectors are assigned
    to the nearest k-means centroid and repaired with that cluster's mean and directions.
    With one cluster this is exactly :class:`AllButTheTop`.

    Defaults follow the paper: C = 27 clusters, D = 12 directions at every width, and
    scikit-learn's ``KMeans`` with the 10 k-means++ initialisations that were its default
    then. ``n_components="scaled"`` selects isoscope's variant that scales D with the width,
    ``D = round(12 * d / 768)`` (at least 1), keeping the removed fraction at the paper's
    1/64 (6 at width 384, 64 at 4096). D is capped at the width. C must not exceed the number
    of fit vectors. A cluster of ``n_c`` vectors has at most ``n_c - 1`` directions of
    non-zero variance, so it removes ``D_c = min(D, n_c - 1)``; a singleton cluster is only
    centred (its member maps to zero).

    Parameters
    ----------
    n_clusters : int, default 27
        C, the number of k-means clusters; at most the number of fit vectors.
    n_components : int or "scaled", default 12
        D, directions removed per cluster; ``"scaled"`` uses the width rule above.
    n_init : int, default 10
        k-means restarts (k-means++ initialisation); the best inertia wins.
    max_iter : int, default 300
        k-means iterations.
    random_state : int, RandomState or None, default 0
        Seed of k-means.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)
        k-means centroids (used to assign new vectors).
    cluster_means_ : ndarray of shape (n_clusters_, n_features)
        Mean of the fit vectors assigned to each centroid (the centroid if none are).
    components_ : ndarray of shape (n_clusters_, n_components_, n_features)
        Removed unit directions per cluster; rows beyond ``cluster_n_components_[c]`` are 0.
    cluster_n_components_ : ndarray of shape (n_clusters_,)
        D_c actually removed in each cluster.
    cluster_sizes_ : ndarray of shape (n_clusters_,)
        Fit vectors per cluster.
    n_clusters_ : int
    n_components_ : int
    n_iter_ : int
        k-means iterations run (1 for a single cluster).
    fit_info_ : dict
    """

    spec_name = "cluster"
    _array_attrs = (
        "cluster_centers_",
        "cluster_means_",
        "components_",
        "cluster_n_components_",
        "cluster_sizes_",
    )
    _json_attrs = ("n_clusters_", "n_components_", "n_iter_")

    def __init__(
        self,
        n_clusters: int = PAPER_N_CLUSTERS,
        n_components: int | str = PAPER_N_COMPONENTS,
        n_init: int = PAPER_N_INIT,
        max_iter: int = 300,
        random_state: Any = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_components = n_components
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state

    def _fit(self, X: np.ndarray, **inputs: Any) -> None:
        """Cluster ``X`` and learn each cluster's mean and dominant directions."""
        from sklearn.cluster import KMeans

        n, d = X.shape
        C = check_positive_int(self.n_clusters, "n_clusters", allow_none=False)
        if C > n:
            raise InputError(
                f"n_clusters={C} is more than the {n} fit vectors (n_samples={n}); lower "
                "n_clusters or fit on more vectors."
            )
        comp = self.n_components
        if isinstance(comp, str) and comp == SCALED:
            D = default_cluster_components(d)
        elif isinstance(comp, bool) or not isinstance(comp, int | np.integer) or comp < 1:
            raise InputError(
                f"n_components must be a positive integer or 'scaled' (the width rule), "
                f"got {comp!r}."
            )
        else:
            D = int(comp)
        D = min(D, d)
        n_init = check_positive_int(self.n_init, "n_init", allow_none=False)
        max_iter = check_positive_int(self.max_iter, "max_iter", allow_none=False)
        if C == 1:
            centers = X.mean(axis=0, keepdims=True)
            self.n_iter_ = 1
        else:
            km = KMeans(
                n_clusters=C, n_init=n_init, max_iter=max_iter, random_state=self.random_state
            ).fit(X)
            centers = np.asarray(km.cluster_centers_, dtype=np.float64)
            self.n_iter_ = int(km.n_iter_)
        # Labels by the same nearest-centroid rule used in transform, so that
        # fit_transform(X) == fit(X).transform(X) exactly.
        labels = _nearest(X, centers)
        means = centers.copy()
        comps = np.zeros((C, D, d))
        n_comp = np.zeros(C, dtype=np.int64)
        sizes = np.bincount(labels, minlength=C).astype(np.int64)
        for c in range(C):
            members = X[labels == c]
            if len(members) == 0:
                continue
            means[c] = members.mean(axis=0)
            k = min(D, len(members) - 1)
            if k > 0:
                comps[c, :k], _ = top_directions(members - means[c], k)
            n_comp[c] = k
        self.cluster_centers_ = centers
        self.cluster_means_ = means
        self.components_ = comps
        self.cluster_n_components_ = n_comp
        self.cluster_sizes_ = sizes
        self.n_clusters_ = C
        self.n_components_ = D

    def predict(self, X: Any) -> np.ndarray:
        """Cluster index (nearest centroid) of each vector.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X, _ = self._check_input(X, reset=False)
        return _nearest(X, self.cluster_centers_)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        """Centre each vector on its cluster's mean and remove that cluster's directions."""
        labels = _nearest(X, self.cluster_centers_)
        out = np.empty_like(X)
        for c in np.unique(labels):
            rows = labels == c
            Xc = X[rows] - self.cluster_means_[c]
            U = self.components_[c]
            out[rows] = Xc - (Xc @ U.T) @ U
        return out
