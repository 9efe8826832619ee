"""Repairs in analyze dispatch on the registry's declared fit inputs (issue 14, bug 2)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from isoscope.analysis import analyze
from isoscope.cli import app
from isoscope.errors import InputError
from isoscope.transforms import LearnedRemoval

FAST = {"k_range": [2, 4], "silhouette_sample": 200, "lid_k": 6}


def _pairs(rng: np.random.Generator, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    A = rng.standard_normal((60, d))
    B = A + 0.3 * rng.standard_normal((60, d))
    return A, B, rng.uniform(0, 10, 60)


def test_learned_with_parameters_really_fits_learned_weights() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 8)) + np.linspace(0, 3, 8)
    pairs = _pairs(rng, 8)
    res = analyze(X, sample=300, seed=0, transforms=["learned:n_components=2"],
                  fit_inputs={"pairs": pairs}, progress=False, **FAST)
    (est,) = res.fitted_repairs
    assert isinstance(est, LearnedRemoval) and est.n_components == 2
    assert res.transforms[0]["name"] == "learned" and res.transforms[0]["fit_inputs"] == ["pairs"]
    direct = LearnedRemoval(n_components=2).fit(X[res.fit_rows], pairs=pairs)
    np.testing.assert_allclose(est.weights_, direct.weights_, rtol=1e-10)
    assert not np.allclose(est.weights_, 1.0)  # not plain all-but-the-top


@pytest.mark.parametrize("spec", ["learned", "learned:n_components=2"])
def test_learned_without_pairs_fails_before_any_work(spec: str) -> None:
    X = np.random.default_rng(1).standard_normal((300, 6))
    with pytest.raises(InputError, match="needs the fit input 'pairs'"):
        analyze(X, transforms=[spec], progress=False, **FAST)


def test_cli_analyze_learned_without_pairs_is_one_sentence(tmp_path) -> None:
    np.save(tmp_path / "x.npy", np.random.default_rng(2).standard_normal((200, 5)))
    r = CliRunner().invoke(app, ["analyze", str(tmp_path / "x.npy"), "-t", "learned"])
    assert r.exit_code == 2 and "needs the fit input 'pairs'" in r.output
    assert "Traceback" not in r.output
