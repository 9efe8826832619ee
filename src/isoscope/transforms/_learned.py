"""Learned removal of dominant directions (Liang et al., ICANN 2021, "Learning to Remove")."""

from __future__ import annotations

import hashlib
import warnings
from typing import Any, Self

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import spearmanr
from sklearn.base import OneToOneFeatureMixin
from sklearn.utils.validation import check_is_fitted

from isoscope.errors import InputError
from isoscope.transforms._base import (
    IsotropyTransform,
    check_positive_int,
    default_abtt_components,
    removal_affine,
    top_directions,
)

_OBJECTIVES = ("pearson", "soft_spearman")


def _pair_hashes(A: np.ndarray, B: np.ndarray) -> list[str]:
    """Order-insensitive fingerprints of vector pairs (float32 bytes), for overlap checks."""
    out = []
    for a, b in zip(A.astype(np.float32), B.astype(np.float32), strict=True):
        ha = hashlib.sha1(a.tobytes()).hexdigest()
        hb = hashlib.sha1(b.tobytes()).hexdigest()
        out.append(hashlib.sha1("".join(sorted((ha, hb))).encode()).hexdigest()[:16])
    return out


def _check_pairs(pairs: Any, n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from isoscope._validation import check_vectors

    if not isinstance(pairs, tuple | list) or len(pairs) != 3:
        raise InputError("pairs must be a tuple (A_vectors, B_vectors, scores).")
    A = check_vectors(pairs[0], name="first vectors of the training pairs")
    B = check_vectors(pairs[1], name="second vectors of the training pairs")
    try:
        s = np.asarray(pairs[2], dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InputError("The training pair scores could not be read as numbers.") from None
    if A.shape != B.shape or len(s) != len(A):
        raise InputError(
            f"The training pairs need A and B of equal shape and one score per pair, got "
            f"A {A.shape}, B {B.shape} and {len(s)} scores."
        )
    if A.shape[1] != n_features:
        raise InputError(
            f"The training pair vectors have {A.shape[1]} dimensions but X has {n_features}."
        )
    if len(s) < 3 or not np.all(np.isfinite(s)) or np.ptp(s) == 0:
        raise InputError("At least 3 training pairs with finite, not all equal scores are needed.")
    return A, B, s


def _projection_stats(
    A: np.ndarray, B: np.ndarray, mean: np.ndarray, U: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Quantities from which cos(a', b') follows for any weights (U has orthonormal rows).

    With a~ = a - mu, p = U a~ and a' = a~ - U^T (w * p):
    a'.b' = a~.b~ - sum_i (2 w_i - w_i^2) p_i q_i and |a'|^2 = |a~|^2 - sum_i (2 w_i - w_i^2) p_i^2.
    """
    Ac, Bc = A - mean, B - mean
    P, Q = Ac @ U.T, Bc @ U.T
    return (
        np.einsum("ij,ij->i", Ac, Bc),
        np.einsum("ij,ij->i", Ac, Ac),
        np.einsum("ij,ij->i", Bc, Bc),
        P * Q,
        P * P,
        Q * Q,
    )


def _cosines(w: np.ndarray, stats: tuple[np.ndarray, ...]) -> np.ndarray:
    ab, aa, bb, pq, pp, qq = stats
    g = 2 * w - w * w
    num = ab - pq @ g
    den = np.sqrt(np.maximum(aa - pp @ g, 0.0) * np.maximum(bb - qq @ g, 0.0))
    return num / np.maximum(den, 1e-12)


class LearnedRemoval(OneToOneFeatureMixin, IsotropyTransform):
    """Learned removal of dominant directions (Liang et al., ICANN 2021).

    ``v' = (v - mu) - sum_{i<=D} w_i (u_i . (v - mu)) u_i`` over the top-D principal
    directions ``u_i`` of the fit data. With every ``w_i = 1`` this is exactly
    :class:`AllButTheTop`; ``w_i = 0`` keeps direction ``i``.

    The weights are learned on word-similarity *training* pairs passed to ``fit`` as
    ``pairs=(A, B, scores)`` (row ``j`` of ``A`` and ``B``: vectors of the two words of
    pair ``j``, in the same space as ``X``). The objective is a differentiable surrogate
    of the Spearman correlation between ``cos(a'_j, b'_j)`` and the human scores:
    ``objective="pearson"`` maximises their Pearson correlation; ``"soft_spearman"`` the
    Pearson correlation of soft ranks (``r_j = 1/2 + sum_k sigmoid((c_j - c_k) / tau)``,
    ``tau = temperature * std(c)`` with ``c`` the ABTT cosines, then held fixed) with the
    ranks of the scores.

    The cosines depend on ``w_i`` only through the retained variance fraction
    ``t_i = (1 - w_i)^2`` (``w`` and ``2 - w`` give the same cosines, and ``w < 0`` would
    amplify the dominant directions), so the weights are kept in [0, 1] and L-BFGS-B
    optimises ``t`` in [0, 1] from ABTT (``t = 0``), with an exact gradient (closed form of
    the cosines and of the correlation, checked against finite differences in the tests)
    and an optional L2 penalty ``alpha * ||t||^2``
    towards ABTT. Optimising ``w`` directly would stall: ``w = 1`` is a stationary point.

    Evaluate on pairs that were not used for training: :func:`split_pairs` splits a
    word-similarity set without shared pairs (or words), and :meth:`check_disjoint`
    raises if an evaluation pair was among the training pairs. Without ``pairs``, ``fit`` leaves all
    weights at 1 (ABTT), warns, and records ``trained_ = False``.

    Parameters
    ----------
    n_components : int or None, default None
        D; None uses ABTT's rule D ~ d/100 (at least 1).
    objective : {"pearson", "soft_spearman"}, default "pearson"
    alpha : float, default 0.0
        L2 penalty on the retained fractions ``t`` (towards ABTT).
    temperature : float, default 0.1
        Soft-rank temperature, relative to the standard deviation of the cosines.
    lbfgs_max_iter : int, default 200
        Maximum L-BFGS-B iterations.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    components_ : ndarray of shape (n_components_, n_features)
    explained_variance_ : ndarray of shape (n_components_,)
    weights_ : ndarray of shape (n_components_,)
        In [0, 1]; 1 removes the direction (ABTT), 0 keeps it.
    n_components_ : int
    trained_ : bool
        Whether weights were learned (False: no pairs were given, this is ABTT).
    n_train_pairs_ : int
    n_lbfgs_iter_ : int
        L-BFGS-B iterations run (0 without pairs).
    train_spearman_abtt_, train_spearman_ : float or None
        Spearman correlation on the training pairs with unit weights and learned weights.
    train_pair_hashes_ : list of str
        Fingerprints of the training pairs, used by :meth:`check_disjoint`.
    fit_info_ : dict
    """

    spec_name = "learned"
    _array_attrs = ("mean_", "components_", "explained_variance_", "weights_")
    _json_attrs = (
        "n_components_",
        "trained_",
        "n_train_pairs_",
        "n_lbfgs_iter_",
        "train_spearman_abtt_",
        "train_spearman_",
        "train_pair_hashes_",
    )

    def __init__(
        self,
        n_components: int | None = None,
        objective: str = "pearson",
        alpha: float = 0.0,
        temperature: float = 0.1,
        lbfgs_max_iter: int = 200,
    ) -> None:
        self.n_components = n_components
        self.objective = objective
        self.alpha = alpha
        self.temperature = temperature
        self.lbfgs_max_iter = lbfgs_max_iter

    def fit(self, X: Any, y: Any = None, *, pairs: Any = None) -> Self:
        """Learn the mean and directions on ``X`` and the weights on the training ``pairs``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Vectors whose principal directions are removed.
        y : ignored
        pairs : tuple (A, B, scores), optional
            Training word pairs: ``A``, ``B`` of shape (n_pairs, n_features), ``scores`` of
            shape (n_pairs,). Keep evaluation pairs out of this set.

        Returns
        -------
        self
        """
        return self._fit_checked(X, pairs=pairs)

    def _fit(self, X: np.ndarray, **inputs: Any) -> dict[str, Any]:
        """Learn the mean and directions on ``X`` and the weights on the ``pairs`` input."""
        pairs = inputs.get("pairs")
        n, d = X.shape
        if self.objective not in _OBJECTIVES:
            raise InputError(
                f"objective must be one of {', '.join(_OBJECTIVES)}, got {self.objective!r}."
            )
        D = check_positive_int(self.n_components, "n_components")
        D = max(0, min(default_abtt_components(d) if D is None else D, d, n - 1))
        self.mean_ = X.mean(axis=0)
        self.components_, self.explained_variance_ = top_directions(X - self.mean_, D)
        self.n_components_ = D
        self.weights_ = np.ones(D)
        self.train_spearman_abtt_: float | None = None
        self.train_spearman_: float | None = None
        self.train_pair_hashes_: list[str] = []
        self.n_train_pairs_ = 0
        self.n_lbfgs_iter_ = 0
        self.trained_ = False
        if pairs is None:
            warnings.warn(
                "LearnedRemoval was fitted without training pairs, so all weights are 1 and it "
                "equals all-but-the-top.",
                UserWarning,
                stacklevel=4,  # the caller of fit (fit -> _fit_checked -> _fit)
            )
        else:
            A, B, s = _check_pairs(pairs, d)
            self._learn_weights(A, B, s)
        return {"trained": self.trained_, "n_train_pairs": self.n_train_pairs_}

    def _learn_weights(self, A: np.ndarray, B: np.ndarray, s: np.ndarray) -> None:
        stats_np = _projection_stats(A, B, self.mean_, self.components_)
        target = s if self.objective == "pearson" else _ranks(s)
        D = self.n_components_
        tau = None
        if self.objective == "soft_spearman":  # fixed scale: std of the ABTT cosines
            tau = max(float(self.temperature) * float(_cosines(np.ones(D), stats_np).std()), 1e-12)
        alpha = float(self.alpha)

        def loss_and_grad(t_np: np.ndarray) -> tuple[float, np.ndarray]:
            return _objective(t_np, stats_np, target, alpha, tau)

        self.n_lbfgs_iter_ = 0
        if D > 0:
            start = np.zeros(D)
            res = minimize(
                loss_and_grad,
                start,
                jac=True,
                method="L-BFGS-B",
                bounds=[(0.0, 1.0)] * D,
                options={"maxiter": int(self.lbfgs_max_iter)},
            )
            self.n_lbfgs_iter_ = int(res.nit)
            # Never return weights that are worse on the training objective than ABTT.
            if res.fun <= loss_and_grad(start)[0]:
                self.weights_ = 1.0 - np.sqrt(np.clip(res.x, 0.0, 1.0))
        self.trained_ = True
        self.n_train_pairs_ = len(s)
        self.train_spearman_abtt_ = _spearman(_cosines(np.ones(D), stats_np), s)
        self.train_spearman_ = _spearman(_cosines(self.weights_, stats_np), s)
        self.train_pair_hashes_ = sorted(set(_pair_hashes(A, B)))

    def _transform(self, X: np.ndarray) -> np.ndarray:
        """Centre and remove the weighted projections on the fitted directions."""
        Xc = X - self.mean_
        U = self.components_
        return Xc - ((Xc @ U.T) * self.weights_) @ U

    def affine_(self) -> tuple[np.ndarray, np.ndarray]:
        """``A = I - U^T diag(w) U``, ``b = -mu A`` (see :meth:`IsotropyTransform.affine_`)."""
        check_is_fitted(self)
        return removal_affine(self.mean_, self.components_, self.weights_)

    def check_disjoint(self, A: Any, B: Any) -> None:
        """Raise :class:`~isoscope.errors.InputError` if any pair (A[j], B[j]) was a training pair.

        Parameters
        ----------
        A, B : array-like of shape (n_pairs, n_features)
            Vectors of the evaluation pairs, as they were given to ``fit``.
        """
        from isoscope._validation import check_vectors

        seen = set(getattr(self, "train_pair_hashes_", []))
        if not seen:
            return
        A = check_vectors(A, name="first vectors of the evaluation pairs")
        B = check_vectors(B, name="second vectors of the evaluation pairs")
        overlap = sum(h in seen for h in _pair_hashes(A, B))
        if overlap:
            raise InputError(
                f"{overlap} of {len(A)} evaluation pairs were used to train the removal weights; "
                "evaluate on held-out pairs."
            )


def split_pairs(
    words_a: Any,
    words_b: Any,
    *,
    eval_fraction: float = 0.5,
    seed: int = 0,
    disjoint_words: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Split word pairs into training and evaluation sets that share no pair.

    Repeated pairs (in either order) always fall on the same side. With
    ``disjoint_words=True`` the *vocabulary* is split instead: a pair is kept for
    evaluation when both its words are evaluation words, for training when both are
    training words, and dropped otherwise (then about ``eval_fraction ** 2`` of the pairs
    are evaluation pairs and ``(1 - eval_fraction) ** 2`` training pairs).

    Parameters
    ----------
    words_a, words_b : sequence of str
        The two words of each pair.
    eval_fraction : float, default 0.5
        Fraction of distinct pairs (or of the vocabulary) held out for evaluation.
    seed : int, default 0
    disjoint_words : bool, default False

    Returns
    -------
    train_idx, eval_idx : ndarray of int
        Sorted row indices into the pair list; disjoint.
    """
    a = [str(w) for w in words_a]
    b = [str(w) for w in words_b]
    if len(a) != len(b) or not a:
        raise InputError(
            f"Need the same non-zero number of first and second words, got {len(a)} and {len(b)}."
        )
    if not 0 < eval_fraction < 1:
        raise InputError(f"eval_fraction must be between 0 and 1, got {eval_fraction}.")
    rng = np.random.default_rng(seed)
    if disjoint_words:
        vocab = np.array(sorted(set(a) | set(b)), dtype=object)
        held = set(vocab[rng.permutation(len(vocab))[: int(round(eval_fraction * len(vocab)))]])
        side = [(x in held) + (y in held) for x, y in zip(a, b, strict=True)]
        train = [i for i, k in enumerate(side) if k == 0]
        ev = [i for i, k in enumerate(side) if k == 2]
        return np.asarray(train, dtype=np.int64), np.asarray(ev, dtype=np.int64)
    keys = [tuple(sorted(p)) for p in zip(a, b, strict=True)]
    distinct = sorted(set(keys))
    order = rng.permutation(len(distinct))
    held_keys = {distinct[i] for i in order[: int(round(eval_fraction * len(distinct)))]}
    is_eval = np.array([k in held_keys for k in keys])
    return np.flatnonzero(~is_eval), np.flatnonzero(is_eval)


def _ranks(s: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(s).astype(np.float64)


def _pearson_and_grad(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Pearson correlation of x and y, and its gradient with respect to x."""
    xc, yc = x - x.mean(), y - y.mean()
    nx, ny = max(float(np.linalg.norm(xc)), 1e-12), max(float(np.linalg.norm(yc)), 1e-12)
    r = float(xc @ yc) / (nx * ny)
    return r, (yc / ny - r * xc / nx) / nx


def _objective(
    t: np.ndarray,
    stats: tuple[np.ndarray, ...],
    target: np.ndarray,
    alpha: float,
    tau: float | None,
) -> tuple[float, np.ndarray]:
    """Loss ``-corr(cos(t), target) + alpha ||t||^2`` and its exact gradient in ``t``.

    ``t_i`` is the retained variance fraction of direction i (``g = 1 - t = 2w - w^2``).
    With ``tau``, the cosines are replaced by soft ranks
    ``r_j = 1/2 + sum_k sigmoid((c_j - c_k) / tau)``.
    """
    ab, aa, bb, pq, pp, qq = stats
    g = 1.0 - t
    num = ab - pq @ g
    na = np.maximum(aa - pp @ g, 1e-24)
    nb = np.maximum(bb - qq @ g, 1e-24)
    den = np.sqrt(na * nb)
    cos = num / den
    # d/dt of num, na, nb are +pq, +pp, +qq (g = 1 - t).
    dcos = pq / den[:, None] - 0.5 * cos[:, None] * (pp / na[:, None] + qq / nb[:, None])
    if tau is None:
        r, dr_dx = _pearson_and_grad(cos, target)
        dr_dcos = dr_dx
    else:
        sig = expit((cos[:, None] - cos[None, :]) / tau)
        ranks = 0.5 + sig.sum(axis=1)
        r, dr_dx = _pearson_and_grad(ranks, target)
        dsig = sig * (1.0 - sig) / tau  # d sig_jk / d c_j = dsig_jk, d / d c_k = -dsig_jk
        dr_dcos = dr_dx * dsig.sum(axis=1) - dsig.T @ dr_dx
    loss = -r + alpha * float(t @ t)
    grad = -(dcos.T @ dr_dcos) + 2.0 * alpha * t
    return loss, grad


def _spearman(c: np.ndarray, s: np.ndarray) -> float | None:
    if np.ptp(c) == 0:
        return None
    return float(spearmanr(c, s).statistic)
