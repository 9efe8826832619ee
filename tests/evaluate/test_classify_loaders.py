"""Classification loaders: SST-2, MRPC, labelled CSV/TSV; split discovery and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from isoscope.errors import InputError
from isoscope.evaluate import (
    Classification,
    carve_validation,
    load_labelled,
    load_labelled_pairs,
    load_mrpc,
    load_sst2,
    load_task,
    split_files,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def sst2_dir(root: Path, dev: bool = True) -> Path:
    write(root / "train.tsv", 'sentence\tlabel\na good film \t1\na "bad" film \t0\nfine , really \t1\nawful \t0\n')
    if dev:
        write(root / "dev.tsv", "sentence\tlabel\ngood \t1\nbad \t0\n")
    write(root / "test.tsv", "sentence\tlabel\nit 's good . \t1\nit 's bad . \t0\nmeh \t0\n")
    return root


MRPC_TRAIN = "".join(f"{i % 2}\t{100 + i}\t{200 + i}\tfirst sentence {i}.\tsecond sentence {i}.\n" for i in range(20))
MRPC_TEST = "1\t1\t2\tA man eats.\tA man is eating.\n0\t3\t4\tA cat sleeps.\tThe market fell.\n"


def test_sst2_folder(tmp_path):
    task = load_sst2(sst2_dir(tmp_path / "sst-2"))
    assert isinstance(task, Classification) and task.task == "sst2" and not task.is_pair
    assert (len(task.train), len(task.validation), len(task.test)) == (4, 2, 3)
    assert task.train.texts[1] == 'a "bad" film'  # quoting off, fields stripped
    assert task.train.labels == ["1", "0", "1", "0"] and task.classes == ["0", "1"]
    assert task.validation.source == "dev.tsv" and not task.f1


def test_sst2_comma_separated_files_and_no_dev(tmp_path):
    d = sst2_dir(tmp_path / "s", dev=False)
    task = load_task("sst-2", f"{d / 'train.tsv'},{d / 'test.tsv'}")
    assert task.validation is None and len(task.test) == 3


def test_sst2_unlabelled_glue_test_is_one_sentence(tmp_path):
    d = sst2_dir(tmp_path / "s")
    write(d / "test.tsv", "index\tsentence\n0\tit 's good .\n")
    with pytest.raises(InputError, match="no label column; GLUE's SST-2 test split is unlabelled"):
        load_sst2(d)


def test_split_discovery_errors(tmp_path):
    d = sst2_dir(tmp_path / "s")
    (d / "test.tsv").unlink()
    with pytest.raises(InputError, match="No test file for SST-2"):
        load_sst2(d)
    with pytest.raises(InputError, match="is one file"):
        load_sst2(d / "train.tsv")
    with pytest.raises(InputError, match="does not exist"):
        load_sst2(tmp_path / "nope")
    write(d / "test.tsv", "sentence\tlabel\nx\t1\n")
    write(d / "sst_test.tsv", "sentence\tlabel\nx\t1\n")
    with pytest.raises(InputError, match="look like the test split"):
        split_files(d, "SST-2")


def test_one_class_unknown_label_empty_split(tmp_path):
    d = sst2_dir(tmp_path / "one")
    write(d / "train.tsv", "sentence\tlabel\ngood\t1\nfine\t1\n")
    with pytest.raises(InputError, match=r"holds one class \('1'\); a classifier needs at least two"):
        load_sst2(d)
    d = sst2_dir(tmp_path / "unknown")
    write(d / "test.tsv", "sentence\tlabel\ngood\t1\nso-so\t2\n")
    with pytest.raises(InputError, match=r"test split of sst2 \(test.tsv\) has label\(s\) '2'"):
        load_sst2(d)
    d = sst2_dir(tmp_path / "empty")
    write(d / "dev.tsv", "sentence\tlabel\n")
    with pytest.raises(InputError, match=r"validation split of sst2 \(dev.tsv\) holds no examples"):
        load_sst2(d)


def test_sst2_malformed_line(tmp_path):
    d = sst2_dir(tmp_path / "s")
    write(d / "train.tsv", "sentence\tlabel\ngood\t1\nno label here\nbad\t0\n")
    with pytest.raises(InputError, match=r"train.tsv at line 3: expected at least 2 fields"):
        load_sst2(d)


def test_mrpc_carves_seeded_stratified_validation(tmp_path):
    d = tmp_path / "mrpc"
    write(d / "msr_paraphrase_train.txt", MRPC_TRAIN)
    write(d / "msr_paraphrase_test.txt", MRPC_TEST)
    a = load_mrpc(d, seed=3)
    b = load_mrpc(d, seed=3)
    c = load_mrpc(d, seed=4)
    assert a.is_pair and a.f1 and a.positive_label == "1" and a.task == "mrpc"
    assert (len(a.train), len(a.validation), len(a.test)) == (18, 2, 2)
    assert sorted(a.validation.labels) == ["0", "1"]  # stratified
    assert a.validation.texts == b.validation.texts and a.validation.texts != c.validation.texts
    assert set(a.validation.texts).isdisjoint(a.train.texts)
    assert a.test.texts2 == ["A man is eating.", "The market fell."]
    assert "seed 3" in a.validation.source


def test_mrpc_header_line_is_skipped_and_malformed_reported(tmp_path):
    d = tmp_path / "mrpc"
    write(d / "msr_paraphrase_train.txt", "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n" + MRPC_TRAIN)
    write(d / "msr_paraphrase_test.txt", MRPC_TEST)
    assert len(load_mrpc(d).test) == 2
    write(d / "msr_paraphrase_test.txt", MRPC_TEST + "1\t5\t6\tonly one sentence\n")
    with pytest.raises(InputError, match=r"msr_paraphrase_test.txt at line 3: expected 5 tab-separated fields"):
        load_mrpc(d)
    write(d / "msr_paraphrase_test.txt", "yes\t1\t2\ta\tb\n")
    with pytest.raises(InputError, match=r"at line 1: the label 'yes' is not 0 or 1"):
        load_mrpc(d)


def test_labelled_csv_named_columns(tmp_path):
    d = tmp_path / "reviews"
    write(d / "train.csv", 'id,review,stars\n1,"Great, really great",pos\n2,Bad,neg\n3,Fine,pos\n')
    write(d / "test.csv", "id,review,stars\n4,Awful,neg\n")
    with pytest.raises(InputError, match=r"Cannot find the label column .*--label-column"):
        load_labelled(d)
    task = load_labelled(d, label_column="Stars")
    assert task.train.texts[0] == "Great, really great" and task.classes == ["neg", "pos"]
    assert task.dataset == "reviews" and task.validation is None
    with pytest.raises(InputError, match="has no text column 'body'"):
        load_labelled(d, text_column="body", label_column="stars")


def test_labelled_pairs_tsv(tmp_path):
    d = tmp_path / "nli"
    write(d / "train.tsv", "premise\thypothesis\tlabel\nA b\tC d\tentailment\nE f\tG h\tneutral\n")
    write(d / "valid.tsv", "premise\thypothesis\tlabel\nA b\tC x\tneutral\n")
    write(d / "test.tsv", "premise\thypothesis\tlabel\nQ r\tS t\tentailment\n")
    task = load_task("classify-pairs", d)
    assert task.is_pair and task.f1 and task.positive_label == "entailment"
    assert task.train.texts2 == ["C d", "G h"] and len(task.validation) == 1
    explicit = load_labelled_pairs(d, text_columns=["hypothesis", "premise"], positive_label="neutral")
    assert explicit.train.texts == ["C d", "G h"] and explicit.positive_label == "neutral"
    with pytest.raises(InputError, match="positive label 'x' is not a label"):
        load_labelled_pairs(d, positive_label="x")


def test_carve_validation_too_small():
    from isoscope.evaluate import LabelledSplit

    with pytest.raises(InputError, match="between 0 and 1"):
        carve_validation(LabelledSplit(["a", "b"], ["0", "1"], source="t"), 1.5, 0)
