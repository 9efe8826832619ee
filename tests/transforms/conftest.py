"""Shared synthetic data for the transform tests."""

from __future__ import annotations

import numpy as np
import pytest


def make_cone(n: int, d: int = 16, *, seed: int = 0) -> np.ndarray:
    """A strongly anisotropic cloud: a large common offset plus 3 dominant 'rogue' axes.

    Contextual embeddings show both traits (a shared mean direction, and a few dimensions
    with outsized variance), which is what the repairs target.
    """
    rng = np.random.default_rng(seed)
    offset_dir = np.random.default_rng(123).normal(size=d)
    offset = 20.0 * offset_dir / np.linalg.norm(offset_dir)
    scales = np.ones(d)
    scales[:3] = [10.0, 8.0, 6.0]
    return offset + rng.normal(size=(n, d)) * scales


@pytest.fixture
def cone() -> np.ndarray:
    return make_cone(400, seed=0)


@pytest.fixture
def cone_eval() -> np.ndarray:
    return make_cone(400, seed=1)


@pytest.fixture
def full_rank() -> np.ndarray:
    rng = np.random.default_rng(7)
    A = rng.normal(size=(8, 8))
    return rng.normal(size=(300, 8)) @ A + 3.0
