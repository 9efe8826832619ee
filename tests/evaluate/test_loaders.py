"""Each loader on fixtures, including malformed lines reported with file and line number."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from isoscope.errors import InputError
from isoscope.evaluate import (
    load_analogies,
    load_pairs,
    load_sick,
    load_sts,
    load_stsb,
    load_task,
    load_word_similarity,
    task_kind,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def raises_at(path: Path, line: int):
    return pytest.raises(InputError, match=rf"{re.escape(str(path))} at line {line}:")


# ----------------------------------------------------------------------------------- STS-B
STSB = (
    "main-captions\tMSRvid\t2012test\t0001\t5.000\tA man plays.\tA man is playing.\n"
    "main-news\theadlines\t2013\t0002\t1.250\tShe said \"no\".\tIt rained\tsource-a\tsource-b\n"
    "\n"
    "main-forums\tdeft\t2014\t0003\t0.000\tOne.\tTwo.\n"
)


def test_stsb_fixture_extra_fields_and_quotes(tmp_path):
    t = load_stsb(write(tmp_path / "sts-test.csv", STSB))
    assert t.task == "stsb" and t.dataset == "sts-test" and t.split == "test"
    assert t.sentences1 == ["A man plays.", 'She said "no".', "One."]
    assert t.sentences2 == ["A man is playing.", "It rained", "Two."]
    np.testing.assert_array_equal(t.scores, [5.0, 1.25, 0.0])


def test_stsb_malformed_lines(tmp_path):
    p = write(tmp_path / "bad.csv", STSB + "genre\tfile\t2012\t0004\t3.0\tonly one sentence\n")
    with raises_at(p, 5):
        load_stsb(p)
    p = write(tmp_path / "bad2.csv", "g\tf\t2012\t1\tfive\ta\tb\n")
    with pytest.raises(InputError, match=r"at line 1: the score 'five' is not a number"):
        load_stsb(p)


def test_stsb_real_test_split(stsb_dir):
    t = load_stsb(stsb_dir / "sts-test.csv")
    assert len(t) == 1379 and len(t.sentences1) == len(t.sentences2) == 1379
    assert t.scores.min() >= 0 and t.scores.max() <= 5
    train = load_stsb(stsb_dir / "sts-train.csv")  # holds lines with extra fields
    assert len(train) == 5749


def test_missing_file_is_one_sentence(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_stsb(tmp_path / "nope.csv")


# ----------------------------------------------------------------------------------- SICK
SICK_FULL = (
    "pair_ID\tsentence_A\tsentence_B\tentailment_label\trelatedness_score\tentailment_AB\t"
    "entailment_BA\tsentence_A_original\tsentence_B_original\tsentence_A_dataset\t"
    "sentence_B_dataset\tSemEval_set\n"
    "1\tA dog runs\tA dog is running\tENTAILMENT\t4.5\tA_entails_B\tB_entails_A\tx\ty\tFLICKR\tFLICKR\tTRAIN\n"
    "2\tA cat sleeps\tA man sings\tNEUTRAL\t1.2\tA_neutral_B\tB_neutral_A\tx\ty\tFLICKR\tFLICKR\tTEST\n"
    "3\tKids play\tChildren play\tENTAILMENT\t4.9\tA_entails_B\tB_entails_A\tx\ty\tSEMEVAL\tSEMEVAL\tTEST\n"
    "4\tA car\tA bus\tNEUTRAL\t2.0\tA_neutral_B\tB_neutral_A\tx\ty\tFLICKR\tFLICKR\tTRIAL\n"
)


def test_sick_full_file_splits(tmp_path):
    p = write(tmp_path / "SICK.txt", SICK_FULL)
    test = load_sick(p)
    assert test.sentences1 == ["A cat sleeps", "Kids play"] and test.split == "test"
    np.testing.assert_array_equal(test.scores, [1.2, 4.9])
    assert load_sick(p, split="train").sentences2 == ["A dog is running"]
    assert len(load_sick(p, split=None)) == 4
    with pytest.raises(InputError, match="train, trial or test"):
        load_sick(p, split="dev")


SICK_SPLIT = "1\tA dog runs\tA dog is running\t4.5\tENTAILMENT\n2\tA cat\tA man\t1.0\tNEUTRAL\n"
SICK_HEADER = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"


@pytest.mark.parametrize("header", [True, False])
def test_sick_semeval_files_with_and_without_header(tmp_path, header):
    p = write(tmp_path / "SICK_test_annotated.txt", (SICK_HEADER if header else "") + SICK_SPLIT)
    t = load_sick(p)
    assert t.sentences1 == ["A dog runs", "A cat"] and t.split == "test"
    np.testing.assert_array_equal(t.scores, [4.5, 1.0])


def test_sick_malformed(tmp_path):
    p = write(tmp_path / "SICK_train.txt", SICK_HEADER + SICK_SPLIT + "3\tonly\n")
    with raises_at(p, 4):
        load_sick(p)
    p = write(tmp_path / "SICK_trial.txt", SICK_HEADER + "1\ta\tb\tvery\tNEUTRAL\n")
    with pytest.raises(InputError, match=r"at line 2: the relatedness score 'very'"):
        load_sick(p)
    p = write(tmp_path / "SICK2.txt", "pair_ID\tsentence_A\tscore\n1\ta\t3\n")
    with pytest.raises(InputError, match=r"at line 1: the header lacks"):
        load_sick(p)


# ----------------------------------------------------------------------------------- STS12-16
def sts_folder(tmp_path: Path) -> Path:
    d = tmp_path / "STS12-en-test"
    d.mkdir()
    write(d / "STS.input.MSRpar.txt", "a b\tc d\nsame\tsame\nx y\tz w\n")
    write(d / "STS.gs.MSRpar.txt", "4.0\n\n1.5\n")  # the empty gold line drops pair 2
    write(d / "STS.input.answer-answer.txt", "p q\tr s\tsrc1\tsrc2\nk\tl\tsrc1\tsrc2\n")
    write(d / "STS.gs.answer-answer.txt", "3\n0.5\n")
    return d


def test_sts_senteval_layout(tmp_path):
    d = sts_folder(tmp_path)
    t = load_sts(d)
    assert t.dataset == "STS12-en-test"
    assert t.subsets == ["MSRpar", "MSRpar", "answer-answer", "answer-answer"]  # files in name order
    assert t.sentences1 == ["a b", "x y", "p q", "k"]
    assert t.sentences2 == ["c d", "z w", "r s", "l"]
    np.testing.assert_array_equal(t.scores, [4.0, 1.5, 3.0, 0.5])
    one = load_sts(d / "STS.input.answer-answer.txt")
    assert len(one) == 2 and one.dataset == "answer-answer"
    assert load_task("sts13", d).task == "sts13"


def test_sts_malformed(tmp_path):
    d = sts_folder(tmp_path)
    write(d / "STS.gs.MSRpar.txt", "4.0\n\nnan?\n")
    with pytest.raises(InputError, match=r"STS.gs.MSRpar.txt at line 3"):
        load_sts(d)
    write(d / "STS.gs.MSRpar.txt", "4.0\n")
    with pytest.raises(InputError, match="has 3 lines but STS.gs.MSRpar.txt has 1"):
        load_sts(d)
    write(d / "STS.gs.MSRpar.txt", "1\n2\n3\n")
    write(d / "STS.input.MSRpar.txt", "a b\tc d\nno tab here\nx\ty\n")
    with raises_at(d / "STS.input.MSRpar.txt", 2):
        load_sts(d)
    (d / "STS.gs.answer-answer.txt").unlink()
    with pytest.raises(InputError, match="gold file"):
        load_sts(d)
    with pytest.raises(InputError, match="no STS.input"):
        load_sts(tmp_path)


# ----------------------------------------------------------------------------------- generic pairs
def test_pairs_csv_with_header_and_quotes(tmp_path):
    p = write(tmp_path / "mine.csv", 'id,sentence1,sentence2,score\n1,"Hello, world",Hi there,3.5\n2,a,b,1\n')
    t = load_pairs(p)
    assert t.task == "pairs" and t.dataset == "mine"
    assert t.sentences1 == ["Hello, world", "a"] and t.sentences2 == ["Hi there", "b"]
    np.testing.assert_array_equal(t.scores, [3.5, 1.0])


def test_pairs_tsv_without_header(tmp_path):
    p = write(tmp_path / "mine.tsv", "a cat\ta dog\t0.7\nx\ty\t0.1\n")
    t = load_pairs(p)
    assert t.sentences1 == ["a cat", "x"] and list(t.scores) == [0.7, 0.1]


def test_pairs_malformed(tmp_path):
    p = write(tmp_path / "m.csv", "sentence1,sentence2,score\na,b,1\nc,d\n")
    with raises_at(p, 3):
        load_pairs(p)
    p = write(tmp_path / "h.csv", "left,right,whatever\na,b,1\n")
    with raises_at(p, 1):
        load_pairs(p)
    p = write(tmp_path / "v.csv", "sentence1,sentence2,score\na,b,high\n")
    with raises_at(p, 2):
        load_pairs(p)


# ----------------------------------------------------------------------------------- word similarity
def test_wordsim_whitespace_and_gensim_tsv(tmp_path):
    p = write(tmp_path / "EN-TEST.txt", "tiger cat 7.35\nbook   paper  7.46\n\nking queen 8\n")
    t = load_word_similarity(p)
    assert t.word1 == ["tiger", "book", "king"] and t.word2 == ["cat", "paper", "queen"]
    np.testing.assert_array_equal(t.scores, [7.35, 7.46, 8.0])
    g = write(tmp_path / "ws.tsv", "# header comment\n# Word 1\tWord 2\tHuman (mean)\nlove\tsex\t6.77\n")
    t = load_word_similarity(g)
    assert t.n_comments == 2 and t.word1 == ["love"] and list(t.scores) == [6.77]


def test_wordsim_real_files(wordsim_dir):
    t = load_word_similarity(wordsim_dir / "EN-SIMLEX-999.txt")
    assert len(t) == 999
    assert len(load_word_similarity(wordsim_dir / "EN-MTurk-287.txt")) == 287  # no final newline


def test_wordsim_malformed(tmp_path):
    p = write(tmp_path / "w.txt", "a b 1\nc d\n")
    with raises_at(p, 2):
        load_word_similarity(p)
    p = write(tmp_path / "w2.txt", "a b 1\nc d x\n")
    with pytest.raises(InputError, match=r"at line 2: the score 'x' is not a number"):
        load_word_similarity(p)
    p = write(tmp_path / "w3.txt", "# only a comment\n")
    with pytest.raises(InputError, match="no word pairs"):
        load_word_similarity(p)


# ----------------------------------------------------------------------------------- analogy
def test_analogy_sections(tmp_path):
    p = write(tmp_path / "q.txt", ": capital\nAthens Greece Baghdad Iraq\n\n: family\nboy girl man woman\nhe she king queen\n")
    t = load_analogies(p)
    assert [s for s, _ in t.sections] == ["capital", "family"]
    assert t.sections[1][1][1] == ("he", "she", "king", "queen")
    assert len(t) == 3 and "Athens" in t.words


def test_analogy_malformed(tmp_path):
    p = write(tmp_path / "q.txt", ": s\na b c d\na b c\n")
    with raises_at(p, 3):
        load_analogies(p)
    p = write(tmp_path / "q2.txt", "a b c d\n")
    with pytest.raises(InputError, match=r"at line 1: a question comes before"):
        load_analogies(p)


def test_task_names():
    assert task_kind("STS-B") == "stsb" and task_kind("sts14") == "sts" and task_kind("simlex") == "wordsim"
    with pytest.raises(InputError, match="Unknown task 'mnli'"):
        task_kind("mnli")
