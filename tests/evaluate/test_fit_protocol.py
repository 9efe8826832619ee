"""evaluate()'s fit protocol: every fit sentence (duplicates kept), the whole vocabulary,
and extra fit inputs read from the repair registry."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from isoscope.errors import InputError
from isoscope.evaluate import encode_sentences, evaluate, load_stsb
from isoscope.transforms import REGISTRY

WORDS = "cat dog car truck king queen man woman tiger road animal apple fruit red blue".split()


def _pairs(seed: int, n: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{' '.join(rng.choice(WORDS, size=3))}\t{' '.join(rng.choice(WORDS, size=3))}\t"
            f"{int(rng.integers(0, 6))}" for _ in range(n)]


def _stsb(path: Path, rows: list[str]) -> Path:
    lines = []
    for i, row in enumerate(rows):
        a, b, s = row.split("\t")
        lines.append(f"main-captions\tMSRvid\t2012\t{i:04d}\t{s}\t{a}\t{b}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def sts_with_duplicates(tmp_path):
    """STS-B train with its first 20 pairs repeated (80 pairs, 160 sentences); a test split."""
    d = tmp_path / "stsbenchmark"
    d.mkdir()
    rows = _pairs(1, 60)
    train = _stsb(d / "sts-train.csv", rows + rows[:20])
    test_rows = _pairs(2, 30)
    test = _stsb(d / "sts-test.csv", test_rows + test_rows[:10])
    return train, test


def _centred_spearman(encoder, fit_sentences: list[str], test: Path) -> float:
    mean = encode_sentences(encoder, fit_sentences, cache=False).astype(np.float64).mean(axis=0)
    t = load_stsb(test)
    A = encode_sentences(encoder, t.sentences1, cache=False) - mean
    B = encode_sentences(encoder, t.sentences2, cache=False) - mean
    cos = np.einsum("ij,ij->i", A, B) / np.linalg.norm(A, axis=1) / np.linalg.norm(B, axis=1)
    return 100 * stats.spearmanr(cos, t.scores).statistic


def test_sentence_repairs_fit_on_every_sentence_with_duplicates(fake_encoder, sts_with_duplicates):
    """Regression (issue 14): the fit sentences were de-duplicated; the papers keep them all."""
    train, test = sts_with_duplicates
    every = load_stsb(train).sentences
    distinct = list(dict.fromkeys(every))
    assert len(every) == 160 and len(distinct) < 160
    res = evaluate(fake_encoder, {"stsb": test}, transforms="center", cache=False)
    row = next(r for r in res.records if r["transform"] == "center")
    assert row["fit_n"] == 160
    assert row["spearman"] == pytest.approx(_centred_spearman(fake_encoder, every, test))
    assert res.settings["fit_sentences"] == "every fit sentence, duplicates kept"
    # isoscope's earlier variant, kept as an option.
    old = evaluate(fake_encoder, {"stsb": test}, transforms="center", cache=False, fit_dedupe=True)
    row = next(r for r in old.records if r["transform"] == "center")
    assert row["fit_n"] == len(distinct)
    assert row["spearman"] == pytest.approx(_centred_spearman(fake_encoder, distinct, test))


def test_fit_on_sentences_keep_duplicates(fake_encoder, sts_with_duplicates, tmp_path):
    _, test = sts_with_duplicates
    text = tmp_path / "fit.txt"
    text.write_text("cat dog car\ncat dog car\nking queen man\nred blue road\n", encoding="utf-8")
    res = evaluate(fake_encoder, {"stsb": test}, transforms="center", fit_on=text, cache=False)
    assert res.records[1]["fit_n"] == 4
    res = evaluate(fake_encoder, {"stsb": test}, transforms="center", fit_on=text, cache=False,
                   fit_dedupe=True)
    assert res.records[1]["fit_n"] == 3
    given = ["cat dog", "cat dog", "road"]
    res = evaluate(fake_encoder, {"stsb": test}, transforms="center", fit_on=given, cache=False)
    assert res.records[1]["fit_n"] == 3


def test_transductive_fits_on_every_evaluation_sentence(fake_encoder, sts_with_duplicates):
    _, test = sts_with_duplicates
    every = load_stsb(test).sentences
    res = evaluate(fake_encoder, {"stsb": test}, transforms="center", transductive=True, cache=False)
    row = res.records[1]
    assert row["fit_n"] == len(every) == 80
    assert row["spearman"] == pytest.approx(_centred_spearman(fake_encoder, every, test))
    old = evaluate(fake_encoder, {"stsb": test}, transforms="center", transductive=True,
                   cache=False, fit_dedupe=True)
    assert old.records[1]["fit_n"] == len(set(every)) < 80


def test_token_level_fits_keep_duplicate_sentences(fake_encoder, sts_with_duplicates):
    train, test = sts_with_duplicates
    every = load_stsb(train).sentences
    res = evaluate(fake_encoder, {"stsb": test}, transforms="center", level="token", cache=False)
    assert res.records[1]["fit_n"] == 3 * len(every)  # 3 words a sentence, specials dropped
    old = evaluate(fake_encoder, {"stsb": test}, transforms="center", level="token", cache=False,
                   fit_dedupe=True)
    assert old.records[1]["fit_n"] == 3 * len(set(every))
    tr = evaluate(fake_encoder, {"stsb": test}, transforms="center", level="token",
                  transductive=True, cache=False)
    assert tr.records[1]["fit_n"] == 3 * 80


def test_classification_fits_on_every_training_sentence(fake_encoder, tmp_path):
    root = tmp_path / "sst2"
    root.mkdir()
    rng = np.random.default_rng(0)

    def rows(n: int) -> list[str]:
        return [f"{' '.join(rng.choice(WORDS, size=4))} \t{int(rng.integers(0, 2))}\n" for _ in range(n)]

    train = rows(40)
    train += train[:10]
    for name, lines in (("train", train), ("dev", rows(12)), ("test", rows(12))):
        (root / f"{name}.tsv").write_text("sentence\tlabel\n" + "".join(lines), encoding="utf-8")
    n_distinct = len({line.split("\t")[0].strip() for line in train})
    res = evaluate(fake_encoder, {"sst2": root}, transforms="center", cache=False)
    assert res.records[1]["fit_n"] == 50
    old = evaluate(fake_encoder, {"sst2": root}, transforms="center", cache=False, fit_dedupe=True)
    assert old.records[1]["fit_n"] == n_distinct < 50


@dataclasses.dataclass
class _Table:
    words: list[str]
    vectors: np.ndarray
    name: str = "big"


def test_word_repairs_fit_on_the_whole_vocabulary_by_default(tiny_table, tmp_path):
    """Regression (issue 14): word-task repairs used the first 50,000 rows, not every row."""
    ws = tmp_path / "ws.txt"
    ws.write_text("cat dog 8\nking queen 9\nman woman 8.5\ncar truck 7\nroad animal 1\n", encoding="utf-8")
    words = [*tiny_table.words, *(f"w{i}" for i in range(50_010))]
    rng = np.random.default_rng(3)
    big = _Table(words, rng.normal(size=(len(words), 6)).astype(np.float32) + 2.0)
    res = evaluate(big, {"wordsim": ws}, transforms="center", cache=False)
    row = res.records[1]
    assert row["fit_n"] == len(words) and row["fit_on"] == f"all {len(words)} words of big"
    assert res.settings["fit_vocab"] == "every word of the vocabulary"
    # The mean of every row is removed, so the score matches the direct computation.
    V = big.vectors.astype(np.float64)
    Vc = V - V.mean(axis=0)
    idx = {w: i for i, w in enumerate(words)}
    gold = [8, 9, 8.5, 7, 1]
    pairs = [("cat", "dog"), ("king", "queen"), ("man", "woman"), ("car", "truck"), ("road", "animal")]
    cos = [Vc[idx[a]] @ Vc[idx[b]] / np.linalg.norm(Vc[idx[a]]) / np.linalg.norm(Vc[idx[b]]) for a, b in pairs]
    assert row["spearman"] == pytest.approx(100 * stats.spearmanr(gold, cos).statistic)
    capped = evaluate(big, {"wordsim": ws}, transforms="center", cache=False, fit_vocab=50_000)
    assert capped.records[1]["fit_n"] == 50_000 and capped.settings["fit_vocab"] == 50_000
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InputError, match="fit_vocab must be a positive integer or None"):
            evaluate(tiny_table, {"wordsim": ws}, transforms="center", cache=False, fit_vocab=bad)


def test_evaluate_reads_required_inputs_from_the_registry(tiny_table, tmp_path, monkeypatch):
    """Which repair needs word pairs comes from its entry, not from its spec name."""
    ws = tmp_path / "ws.txt"
    ws.write_text("cat dog 8\nking queen 9\nman woman 8.5\ncar truck 7\nroad animal 1\n", encoding="utf-8")
    entry = REGISTRY["abtt"]
    monkeypatch.setitem(REGISTRY, "abtt", dataclasses.replace(
        entry, fit_inputs=("pairs",), supply={"pairs": "word pairs"}))
    with pytest.raises(InputError, match="--learn-on"):
        evaluate(tiny_table, {"wordsim": ws}, transforms="abtt:n_components=1", cache=False)
    monkeypatch.setitem(REGISTRY, "abtt", dataclasses.replace(
        entry, fit_inputs=("lexicon",), supply={"lexicon": "a lexicon"}))
    with pytest.raises(InputError, match="cannot supply the fit input 'lexicon'") as info:
        evaluate(tiny_table, {"wordsim": ws}, transforms="abtt", cache=False)
    assert str(info.value).count(". ") == 0 and str(info.value).endswith(".")
