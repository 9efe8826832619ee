"""Scorers against independent implementations: scipy, and gensim's KeyedVectors evaluators."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from isoscope.errors import InputError
from isoscope.evaluate import (
    correlations,
    load_analogies,
    load_word_similarity,
    row_cosines,
    score_sentence_pairs,
    score_word_pairs,
    solve_analogies,
    vocabulary_index,
)

gensim_kv = pytest.importorskip("gensim.models.keyedvectors", reason="gensim (test dependency) not installed")


def keyed_vectors(words, vectors):
    kv = gensim_kv.KeyedVectors(vectors.shape[1])
    kv.add_vectors(words, vectors)
    return kv


def test_correlations_match_scipy():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=50), rng.normal(size=50)
    rho, r = correlations(x, y)
    assert rho == pytest.approx(100 * stats.spearmanr(x, y).statistic)
    assert r == pytest.approx(100 * stats.pearsonr(x, y).statistic)
    assert np.isnan(correlations([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])[0])


def test_row_cosines_and_zero_vectors():
    A = np.array([[1.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    B = np.array([[1.0, 1.0], [1.0, 0.0], [-3.0, -4.0]])
    np.testing.assert_allclose(row_cosines(A, B), [1 / np.sqrt(2), 0.0, -1.0])
    score = score_sentence_pairs(A, B, np.array([2.0, 0.0, 1.0]))
    assert score.n == 3
    with pytest.raises(InputError):
        score_sentence_pairs(A, B[:2], np.array([1.0, 2.0]))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("restrict", [None, 12])
@pytest.mark.parametrize("dummy", [False, True])
def test_word_pairs_match_gensim_including_oov(tmp_path, tiny_table, restrict, dummy):
    # 'Cat' (row 10) is a case variant of 'cat' (row 1): the first one wins in both.
    # 'unicorn' is out of vocabulary; 'apple'/'fruit' fall outside restrict_vocab=12 rows.
    p = write(
        tmp_path / "ws.tsv",
        "# comment\ncat\tdog\t8\nCAT\ttiger\t7\nking\tqueen\t8.5\nman\twoman\t8.3\n"
        "car\ttruck\t7.9\nunicorn\tdog\t2\napple\tfruit\t7\nroad\tanimal\t0.5\nthe\tdog\t1\n",
    )
    t = load_word_similarity(p)
    ours = score_word_pairs(tiny_table.words, tiny_table.vectors, t.word1, t.word2, t.scores,
                            restrict_vocab=restrict, dummy4unknown=dummy)
    kv = keyed_vectors(tiny_table.words, tiny_table.vectors)
    pearson, spearman, oov_ratio = kv.evaluate_word_pairs(str(p), restrict_vocab=restrict or 300000,
                                                          dummy4unknown=dummy)
    assert ours.spearman == pytest.approx(100 * spearman[0], abs=1e-6)
    assert ours.pearson == pytest.approx(100 * pearson[0], abs=1e-5)
    assert ours.oov_ratio == pytest.approx(oov_ratio)
    assert ours.oov == (3 if restrict else 1)


def test_all_oov_is_one_sentence(tiny_table):
    with pytest.raises(InputError, match="out of vocabulary"):
        score_word_pairs(tiny_table.words, tiny_table.vectors, ["zz"], ["yy"], np.array([1.0]))


def test_vocabulary_index_first_case_variant_wins(tiny_table):
    idx = vocabulary_index(tiny_table.words, restrict_vocab=None)
    assert idx["CAT"] == 1
    assert "APPLE" not in vocabulary_index(tiny_table.words, restrict_vocab=11)
    assert vocabulary_index(tiny_table.words, case_insensitive=False)["Cat"] == 10


def test_analogies_match_gensim(tmp_path):
    # Structured vectors: word = base + offset, so the 3CosAdd answer is usually right but not
    # always (noise), exercising both outcomes; plus OOV and case handling.
    rng = np.random.default_rng(3)
    d = 20
    countries = ["france", "italy", "spain", "germany", "japan", "china", "peru", "chile"]
    capitals = ["paris", "rome", "madrid", "berlin", "tokyo", "beijing", "lima", "santiago"]
    offset = rng.normal(size=d)
    words, vecs = [], []
    for c, cap in zip(countries, capitals, strict=True):
        base = rng.normal(size=d)
        words += [c, cap]
        vecs += [base, base + offset + 0.9 * rng.normal(size=d)]
    words += [f"noise{i}" for i in range(30)] + ["Paris"]
    vecs += list(rng.normal(size=(30, d))) + [rng.normal(size=d)]
    V = np.asarray(vecs, dtype=np.float32)
    lines = [": capital-world"]
    for i in range(len(countries)):
        for j in range(len(countries)):
            if i != j:
                lines.append(f"{countries[i]} {capitals[i]} {countries[j]} {capitals[j]}")
    lines += [": other", "France Paris Italy Rome", "france paris atlantis nowhere"]
    p = write(tmp_path / "q.txt", "\n".join(lines) + "\n")
    task = load_analogies(p)
    for restrict in (None, 30):
        ours = solve_analogies(words, V, task.sections, restrict_vocab=restrict)
        kv = keyed_vectors(words, V)
        score, sections = kv.evaluate_word_analogies(str(p), restrict_vocab=restrict or 300000)
        assert ours.accuracy == pytest.approx(score)
        for mine, theirs in zip(ours.sections, sections[:-1], strict=True):
            assert mine["section"] == theirs["section"]
            assert mine["correct"] == len(theirs["correct"])
            assert mine["n"] == len(theirs["correct"]) + len(theirs["incorrect"])
    assert 0 < ours.accuracy < 1 and ours.oov >= 1
