"""The suite's frequency correlations with corpus counts (logged) and Zipf values (already log)."""

from __future__ import annotations

import numpy as np
import pytest

from isoscope.metrics import frequency_correlations, measure_vectors


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    zipf = rng.uniform(1.0, 7.0, size=400)
    X = rng.normal(size=(400, 16))
    X[:, 0] += 3.0 * zipf  # the first principal direction follows frequency
    return X, zipf


def test_zipf_source_is_not_logged_again() -> None:
    X, zipf = _data()
    entry = measure_vectors(X, {"frequency_source": "zipf", "k_range": [2, 3], "lid_k": 5},
                            frequency=zipf)
    direct = frequency_correlations(X, zipf, log=False)
    assert entry["freq_pc1_pearson"] == pytest.approx(direct["freq_pc1_pearson"], abs=1e-12)
    assert abs(entry["freq_pc1_pearson"]) > 0.9


def test_corpus_counts_are_logged() -> None:
    X, zipf = _data(1)
    counts = 10.0**zipf
    entry = measure_vectors(X, {"frequency_source": "word_count", "k_range": [2, 3], "lid_k": 5},
                            frequency=counts)
    direct = frequency_correlations(X, counts, log=True)
    assert entry["freq_pc1_pearson"] == pytest.approx(direct["freq_pc1_pearson"], abs=1e-12)
    # log(count) is a linear function of Zipf, so Pearson matches the Zipf-based value.
    assert entry["freq_pc1_pearson"] == pytest.approx(
        frequency_correlations(X, zipf, log=False)["freq_pc1_pearson"], abs=1e-9)
