"""The logistic-regression probe against scikit-learn's own grid search, pair features, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, PredefinedSplit, StratifiedKFold

from isoscope.errors import InputError
from isoscope.evaluate import DEFAULT_CS, pair_features, probe


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Tiny problems: BLAS threads only add contention on a shared machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def blobs(seed: int, n: int, d: int = 8, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    centres = np.random.default_rng(99).normal(size=(classes, d))
    return centres[y] * 0.6 + rng.normal(size=(n, d)), y


def test_validation_selection_matches_grid_search_on_a_predefined_split():
    Xtr, ytr = blobs(0, 150)
    Xva, yva = blobs(1, 60)
    Xte, yte = blobs(2, 80)
    res = probe(Xtr, ytr, Xte, yte, Xva, yva, seed=0)
    fold = PredefinedSplit(np.r_[np.full(len(ytr), -1), np.zeros(len(yva))])
    grid = GridSearchCV(LogisticRegression(max_iter=1000), {"C": list(DEFAULT_CS)}, cv=fold, refit=False)
    grid.fit(np.vstack([Xtr, Xva]), np.r_[ytr, yva].astype(str))
    assert res.C == grid.best_params_["C"]
    assert res.validation_accuracy == pytest.approx(100 * grid.best_score_)
    ref = LogisticRegression(C=res.C, max_iter=1000).fit(Xtr, ytr.astype(str))
    assert res.accuracy == pytest.approx(100 * ref.score(Xte, yte.astype(str)))
    assert (res.n_train, res.n_validation, res.n_test) == (150, 60, 80)
    assert res.selection == "validation split" and res.classes == ["0", "1"] and res.f1 is None
    assert set(res.validation_by_C) == set(DEFAULT_CS) and res.converged


def test_cross_validation_matches_grid_search_and_refits_on_all_train():
    Xtr, ytr = blobs(3, 120, classes=3)
    Xte, yte = blobs(4, 60, classes=3)
    res = probe(Xtr, ytr, Xte, yte, cv=4, f1=True, seed=7)
    folds = StratifiedKFold(4, shuffle=True, random_state=7)
    grid = GridSearchCV(LogisticRegression(max_iter=1000), {"C": list(DEFAULT_CS)}, cv=folds).fit(Xtr, ytr.astype(str))
    assert res.C == grid.best_params_["C"]
    assert res.validation_accuracy == pytest.approx(100 * grid.best_score_)
    pred = grid.best_estimator_.predict(Xte)
    assert res.accuracy == pytest.approx(100 * np.mean(pred == yte.astype(str)))
    assert res.f1 == pytest.approx(100 * f1_score(yte.astype(str), pred, average="macro"))
    assert res.n_validation == 0 and res.selection == "4-fold stratified cross-validation on train (seed 7)"
    assert probe(Xtr, ytr, Xte, yte, cv=4, seed=7).accuracy == res.accuracy  # seeded


def test_binary_f1_of_the_positive_label():
    Xtr, ytr = blobs(5, 100)
    Xte, yte = blobs(6, 50)
    labels = np.array(["neg", "pos"])
    res = probe(Xtr, labels[ytr], Xte, labels[yte], Xtr[:30], labels[ytr[:30]], f1=True, positive_label="neg")
    pred = LogisticRegression(C=res.C, max_iter=1000).fit(Xtr, labels[ytr]).predict(Xte)
    assert res.f1 == pytest.approx(100 * f1_score(labels[yte], pred, pos_label="neg"))


def test_pair_features():
    u = np.array([[1.0, -2.0]])
    v = np.array([[3.0, 1.0]])
    np.testing.assert_array_equal(pair_features(u, v), [[1, -2, 3, 1, 2, 3, 3, -2]])
    with pytest.raises(InputError, match="one shape"):
        pair_features(u, v.T)


def test_bad_input_is_one_sentence():
    X, y = blobs(0, 20)
    with pytest.raises(InputError, match="one class"):
        probe(X, np.zeros(20), X, y)
    with pytest.raises(InputError, match="test labels include '5'"):
        probe(X, y, X[:2], [5, 0], X, y)
    with pytest.raises(InputError, match="test labels include '5'"):
        probe(X, y, X[:2], [5, 0])
    with pytest.raises(InputError, match="validation labels include '9'"):
        probe(X, y, X, y, X[:1], [9])
    with pytest.raises(InputError, match="holds no examples"):
        probe(X, y, X[:0], [])
    with pytest.raises(InputError, match="at least two training examples of every class"):
        probe(X[:3], [0, 0, 1], X, y)
    with pytest.raises(InputError, match="positive number"):
        probe(X, y, X, y, Cs=[0.0])
