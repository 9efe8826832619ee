"""Frozen-feature logistic-regression probe, in the style of SentEval's transfer tasks.

The probe trains scikit-learn's ``LogisticRegression`` (L2, lbfgs) on fixed sentence vectors and
reports test accuracy (and F1 for paraphrase tasks). The inverse regularisation strength ``C``
is chosen from SentEval's grid 2^-2 ... 2^4 by accuracy on a validation split, or, where a task
has none, by seeded stratified k-fold cross-validation on the training split (the classifier is
then refitted on the whole training split). Ties go to the smaller ``C`` (more regularisation).

Features are not rescaled (as in SentEval): an L2-penalised classifier is not invariant to a
linear repair, which is exactly what comparing repairs through a probe measures. Sentence-pair
tasks use the standard features ``[u, v, |u - v|, u * v]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isoscope._validation import check_vectors
from isoscope.errors import InputError

#: SentEval's grid of inverse regularisation strengths for its logistic-regression probe.
DEFAULT_CS: tuple[float, ...] = tuple(2.0**k for k in range(-2, 5))
#: Folds of the cross-validation used where a task has no validation split.
DEFAULT_CV_FOLDS = 5
_MAX_ITER = 1000


@dataclass
class ProbeScore:
    """Test scores of a logistic-regression probe, with how it was selected.

    Attributes
    ----------
    accuracy : float
        Test accuracy x 100.
    f1 : float or None
        Test F1 x 100 (binary: of ``positive_label``; more classes: macro-averaged), or None
        where not asked for.
    C : float
        The chosen inverse regularisation strength.
    selection : str
        ``"validation split"`` or ``"k-fold stratified cross-validation on train (seed s)"``.
    validation_accuracy : float
        Accuracy x 100 of the chosen ``C`` on the validation split (or mean over CV folds).
    n_train, n_validation, n_test : int
        Examples in each split (``n_validation`` is 0 under cross-validation).
    classes : list of str
        Labels known to the classifier, sorted.
    validation_by_C : dict
        Validation (or CV) accuracy x 100 for every ``C`` tried.
    converged : bool
        Whether the final fit converged within the iteration limit.
    """

    accuracy: float
    f1: float | None
    C: float
    selection: str
    validation_accuracy: float
    n_train: int
    n_validation: int
    n_test: int
    classes: list[str]
    validation_by_C: dict[float, float] = field(default_factory=dict)
    converged: bool = True


def pair_features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The standard sentence-pair features ``[u, v, |u - v|, u * v]`` (InferSent / SentEval).

    Parameters
    ----------
    u, v : numpy.ndarray
        (n, d) vectors of the first and second sentences.

    Returns
    -------
    numpy.ndarray
        (n, 4 d) features, in the dtype of ``u``.
    """
    u = np.asarray(u)
    v = np.asarray(v)
    if u.shape != v.shape:
        raise InputError(f"Pair features need two arrays of one shape, got {u.shape} and {v.shape}.")
    return np.hstack([u, v, np.abs(u - v), u * v])


def _labels(y: Any, name: str) -> np.ndarray:
    arr = np.asarray([str(v) for v in np.asarray(y, dtype=object).ravel()], dtype=object)
    if arr.size == 0:
        raise InputError(f"The {name} split holds no examples.")
    return arr


def _fit(X: np.ndarray, y: np.ndarray, C: float, seed: int) -> tuple[Any, bool]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, max_iter=_MAX_ITER, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(X, y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return clf, converged


def _best(scores: dict[float, float]) -> float:
    top = max(scores.values())
    return min(c for c, s in scores.items() if s == top)


def probe(
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    X_val: Any | None = None,
    y_val: Any | None = None,
    *,
    Cs: Sequence[float] = DEFAULT_CS,
    cv: int = DEFAULT_CV_FOLDS,
    f1: bool = False,
    positive_label: str | None = None,
    seed: int = 0,
) -> ProbeScore:
    """Train a logistic-regression probe on frozen features and score it on the test split.

    Parameters
    ----------
    X_train, X_test, X_val : array-like of shape (n, d)
        Features of each split; without ``X_val``, ``C`` is chosen by cross-validation.
    y_train, y_test, y_val : array-like of shape (n,)
        Labels (compared as strings).
    Cs : sequence of float
        Inverse regularisation strengths to try (default SentEval's 2^-2 ... 2^4).
    cv : int
        Folds of the stratified cross-validation used without a validation split.
    f1 : bool
        Also report F1 (binary: of ``positive_label``; more classes: macro-averaged).
    positive_label : str, optional
        Positive class for binary F1 (default: the last label in sorted order).
    seed : int
        Seed of the cross-validation folds and of the classifier.

    Returns
    -------
    ProbeScore
        Test accuracy (and F1) x 100, the chosen ``C`` and how it was chosen.
    """
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold

    ytr, yte = _labels(y_train, "training"), _labels(y_test, "test")
    Xtr = check_vectors(X_train, name="training features")
    Xte = check_vectors(X_test, name="test features")
    if len(ytr) != len(Xtr) or len(yte) != len(Xte):
        raise InputError("Each split needs exactly one label per feature row.")
    if Xte.shape[1] != Xtr.shape[1]:
        raise InputError(f"Training and test features differ in width ({Xtr.shape[1]} vs {Xte.shape[1]}).")
    classes = sorted(set(ytr))
    if len(classes) < 2:
        raise InputError(f"The training labels hold one class ({classes[0]!r}); a classifier needs at least two.")
    if not Cs or any(not np.isfinite(c) or c <= 0 for c in Cs):
        raise InputError("Every regularisation strength C must be a positive number.")
    Cs = sorted(float(c) for c in Cs)
    if X_val is not None and y_val is not None:
        Xva = check_vectors(X_val, name="validation features")
        yva = _labels(y_val, "validation")
        if len(yva) != len(Xva):
            raise InputError("Each split needs exactly one label per feature row.")
        if Xva.shape[1] != Xtr.shape[1]:
            raise InputError(f"Training and validation features differ in width ({Xtr.shape[1]} vs {Xva.shape[1]}).")
        for name, y in (("validation", yva), ("test", yte)):
            unknown = sorted(set(y) - set(classes))
            if unknown:
                raise InputError(f"The {name} labels include {unknown[0]!r}, which the training labels never show.")
        fits = {c: _fit(Xtr, ytr, c, seed) for c in Cs}
        by_c = {c: 100.0 * accuracy_score(yva, fits[c][0].predict(Xva)) for c in Cs}
        best = _best(by_c)
        clf, converged = fits[best]
        selection, n_val = "validation split", len(yva)
    else:
        unknown = sorted(set(yte) - set(classes))
        if unknown:
            raise InputError(f"The test labels include {unknown[0]!r}, which the training labels never show.")
        smallest = min(int((ytr == c).sum()) for c in classes)
        folds = min(cv, smallest)
        if folds < 2:
            raise InputError(
                "Cross-validation needs at least two training examples of every class; give a validation split."
            )
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        by_c = {}
        for c in Cs:
            accs = [accuracy_score(ytr[va], _fit(Xtr[tr], ytr[tr], c, seed)[0].predict(Xtr[va]))
                    for tr, va in splitter.split(Xtr, ytr)]
            by_c[c] = 100.0 * float(np.mean(accs))
        best = _best(by_c)
        clf, converged = _fit(Xtr, ytr, best, seed)
        selection = f"{folds}-fold stratified cross-validation on train (seed {seed})"
        n_val = 0
    pred = clf.predict(Xte)
    f1_value = None
    if f1:
        if len(classes) == 2:
            pos = positive_label if positive_label is not None else classes[-1]
            f1_value = 100.0 * f1_score(yte, pred, pos_label=pos, average="binary", labels=classes)
        else:
            f1_value = 100.0 * f1_score(yte, pred, average="macro", labels=classes)
    return ProbeScore(
        accuracy=100.0 * accuracy_score(yte, pred),
        f1=None if f1_value is None else float(f1_value),
        C=best,
        selection=selection,
        validation_accuracy=by_c[best],
        n_train=len(ytr),
        n_validation=n_val,
        n_test=len(yte),
        classes=classes,
        validation_by_C=by_c,
        converged=converged,
    )
