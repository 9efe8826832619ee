"""evaluate() on classification tasks: probe before/after repairs fitted on the training split only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from isoscope.cli import app
from isoscope.evaluate import encode_sentences, evaluate, load_mrpc, load_sst2, pair_features, probe

FILLER = "cat dog car truck king queen man woman tiger road animal apple fruit red blue".split()
POS = ["good", "great", "fine", "nice"]
NEG = ["bad", "awful", "poor", "dull"]


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Tiny problems: BLAS threads only add contention on a shared machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def sentences(seed: int, n: int) -> list[tuple[str, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        cue = rng.choice(POS if label else NEG)
        words = [*rng.choice(FILLER, size=3), cue]
        rng.shuffle(words)
        noisy = label if rng.random() > 0.1 else 1 - label
        out.append((" ".join(words), noisy))
    return out


def write_sst2(root: Path, n_train: int = 60, dev: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    parts = {"train": sentences(0, n_train), "test": sentences(2, 30)}
    if dev:
        parts["dev"] = sentences(1, 24)
    for name, rows in parts.items():
        text = "sentence\tlabel\n" + "".join(f"{s} \t{y}\n" for s, y in rows)
        (root / f"{name}.tsv").write_text(text, encoding="utf-8")
    return root


def write_mrpc(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, seed, n in (("train", 3, 60), ("test", 4, 24)):
        rng = np.random.default_rng(seed)
        lines = []
        for i in range(n):
            a = " ".join(rng.choice(FILLER, size=4))
            label = int(rng.integers(0, 2))
            b = a if label else " ".join(rng.choice(FILLER, size=4))
            lines.append(f"{label}\t{i}\t{i + 1000}\t{a}\t{b}\n")
        (root / f"msr_paraphrase_{name}.txt").write_text("".join(lines), encoding="utf-8")
    return root


@pytest.fixture
def encoder(fake_encoder_cls):
    return fake_encoder_cls(hidden_size=32)


def test_baseline_equals_a_direct_probe(encoder, tmp_path):
    d = write_sst2(tmp_path / "sst-2")
    res = evaluate(encoder, {"sst2": d}, cache=False)
    (row,) = res.records
    t = load_sst2(d)

    def enc(split):
        return encode_sentences(encoder, split.texts, cache=False)

    ref = probe(enc(t.train), t.train.labels, enc(t.test), t.test.labels, enc(t.validation), t.validation.labels)
    assert row["accuracy"] == pytest.approx(ref.accuracy) and row["C"] == ref.C
    assert row["accuracy"] > 65  # well above chance: the cue word makes the task learnable
    assert row["metric"] == "accuracy" and row["spearman"] is None and row["f1"] is None
    assert (row["n_train"], row["n_validation"], row["n_test"], row["n"]) == (60, 24, 30, 30)
    assert row["selection"] == "validation split" and row["validation_source"] == "dev.tsv"
    assert row["features"] == "u" and row["fit"] is None and row["classes"] == ["0", "1"]
    assert res.settings["probe"]["C_grid"][0] == 0.25


def test_repair_is_fitted_on_the_training_split_only(encoder, tmp_path):
    d = write_sst2(tmp_path / "sst-2")
    res = evaluate(encoder, {"sst2": d}, transforms="center", transductive=True, cache=False)
    row = next(r for r in res.records if r["transform"] == "center")
    t = load_sst2(d)
    train_unique = list(dict.fromkeys(t.train.texts))
    mean = encode_sentences(encoder, train_unique, cache=False).astype(np.float64).mean(0)

    def enc(split):
        return encode_sentences(encoder, split.texts, cache=False) - mean

    ref = probe(enc(t.train), t.train.labels, enc(t.test), t.test.labels, enc(t.validation), t.validation.labels)
    assert row["accuracy"] == pytest.approx(ref.accuracy) and row["C"] == ref.C
    assert row["validation_accuracy"] == pytest.approx(ref.validation_accuracy)
    assert row["fit"] == "inductive" and "training split" in row["fit_on"]
    assert row["fit_n"] == len(train_unique)


def test_mrpc_pairs_f1_table_and_json(encoder, tmp_path):
    d = write_mrpc(tmp_path / "mrpc")
    res = evaluate(encoder, {"mrpc": d}, transforms="none,center", seed=5, cache=False)
    rows = {r["transform"]: r for r in res.records}
    t = load_mrpc(d, seed=5)
    E = {name: pair_features(encode_sentences(encoder, sp.texts, cache=False),
                             encode_sentences(encoder, sp.texts2, cache=False))
         for name, sp in t.splits.items()}
    ref = probe(E["train"], t.train.labels, E["test"], t.test.labels, E["validation"], t.validation.labels,
                f1=True, positive_label="1")
    base = rows["none"]
    assert base["accuracy"] == pytest.approx(ref.accuracy) and base["f1"] == pytest.approx(ref.f1)
    assert base["features"] == "[u, v, |u - v|, u * v]" and base["f1_of"] == "label '1'"
    assert (base["n_train"], base["n_validation"], base["n_test"]) == (54, 6, 24)
    assert "seed 5" in base["validation_source"]
    tab = res.table()
    assert list(tab.columns) == ["mrpc:MRPC", "mrpc:MRPC F1"]
    assert tab.loc["center", "mrpc:MRPC F1"] == pytest.approx(rows["center"]["f1"])
    assert "probe test accuracy" in res.format_table()
    data = json.loads(json.dumps(res.to_dict()))
    assert {r["metric"] for r in data["results"]} == {"accuracy"}


def test_cross_validation_without_dev_and_seeded_train_sample(encoder, tmp_path):
    d = write_sst2(tmp_path / "sst-2", n_train=80, dev=False)
    a = evaluate(encoder, {"sst2": d}, max_train=40, cv_folds=3, seed=1, cache=False).records[0]
    b = evaluate(encoder, {"sst2": d}, max_train=40, cv_folds=3, seed=1, cache=False).records[0]
    assert a["selection"] == "3-fold stratified cross-validation on train (seed 1)"
    assert a["n_validation"] == 0 and a["validation_source"] is None
    assert a["n_train"] == 40 and a["train_sample"] == "40 of 80 training examples (seed 1)"
    assert a["accuracy"] == b["accuracy"] and a["C"] == b["C"]


def test_token_level_repair_fits_on_training_tokens(encoder, tmp_path):
    d = write_sst2(tmp_path / "sst-2")
    res = evaluate(encoder, {"sst2": d}, transforms="center", level="token", cache=False)
    row = next(r for r in res.records if r["transform"] == "center")
    t = load_sst2(d)
    n_tokens = sum(len(s.split()) for s in dict.fromkeys(t.train.texts))
    assert row["fit_n"] == n_tokens and row["level"] == "token" and row["special_tokens"] == "excluded"
    assert 0 <= row["accuracy"] <= 100


def test_mixed_with_similarity_tasks_keeps_metrics_apart(encoder, tmp_path):
    d = write_sst2(tmp_path / "sst-2")
    pairs = tmp_path / "mine.tsv"
    pairs.write_text("sentence1\tsentence2\tscore\ncat dog\tdog cat\t5\nred car\tblue fruit\t1\nking\tqueen\t3\n",
                     encoding="utf-8")
    res = evaluate(encoder, [("pairs", pairs), ("sst2", d)], cache=False)
    metrics = {r["column"]: r["metric"] for r in res.records}
    assert metrics == {"pairs:mine": "spearman", "sst2:SST-2": "accuracy"}


# ----------------------------------------------------------------------------------------- CLI
runner = CliRunner()


@pytest.fixture
def glove_txt(tmp_path, tiny_table) -> Path:
    words = [*tiny_table.words, *POS, *NEG, "red", "blue"]
    rng = np.random.default_rng(1)
    rows = [f"{w} " + " ".join(f"{v:.5f}" for v in rng.normal(size=6)) for w in words]
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_cli_sst2_and_mrpc(tmp_path, glove_txt):
    sst, mrpc, out = write_sst2(tmp_path / "sst-2"), write_mrpc(tmp_path / "mrpc"), tmp_path / "eval.json"
    result = runner.invoke(app, ["evaluate", "--model", str(glove_txt), "--task", f"sst2={sst}",
                                 "--task", f"mrpc={mrpc}", "--transform", "none,center", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "sst2:SST-2" in result.stdout and "mrpc:MRPC F1" in result.stdout
    rows = json.loads(out.read_text())["results"]
    assert len(rows) == 4
    for r in rows:
        assert r["metric"] == "accuracy" and 0 <= r["accuracy"] <= 100
        assert {"n_train", "n_validation", "n_test", "C", "selection"} <= set(r)
    assert {r["f1"] is None for r in rows if r["task"] == "sst2"} == {True}


def test_cli_labelled_csv_columns_and_bad_labels(tmp_path, glove_txt):
    d = tmp_path / "reviews"
    d.mkdir()
    body = "".join(f'"{s}",{"pos" if y else "neg"}\n' for s, y in sentences(0, 30))
    (d / "train.csv").write_text("body,verdict\n" + body, encoding="utf-8")
    (d / "test.csv").write_text("body,verdict\n" + body[:200].rsplit("\n", 1)[0] + "\n", encoding="utf-8")
    ok = runner.invoke(app, ["evaluate", "--model", str(glove_txt), "--task", f"classify={d}",
                             "--text-column", "body", "--label-column", "verdict"])
    assert ok.exit_code == 0, ok.output
    assert "classify:reviews" in ok.stdout
    missing = runner.invoke(app, ["evaluate", "--model", str(glove_txt), "--task", f"classify={d}"])
    assert missing.exit_code == 2 and "--text-column" in missing.output and "Traceback" not in missing.output
    (d / "test.csv").write_text('body,verdict\n"cat dog",maybe\n', encoding="utf-8")
    bad = runner.invoke(app, ["evaluate", "--model", str(glove_txt), "--task", f"classify={d}",
                              "--text-column", "body", "--label-column", "verdict"])
    assert bad.exit_code == 2 and "'maybe' that the training split never shows" in bad.output


def test_fit_on_a_classification_task_uses_its_training_split(encoder, tmp_path):
    d = write_sst2(tmp_path / "sst-2")
    pairs = tmp_path / "mine.tsv"
    pairs.write_text("sentence1\tsentence2\tscore\ncat dog\tdog cat\t5\nred car\tblue fruit\t1\nking\tqueen\t3\n",
                     encoding="utf-8")
    res = evaluate(encoder, {"pairs": pairs}, transforms="center", fit_on=f"sst2={d}", cache=False)
    row = next(r for r in res.records if r["transform"] == "center")
    assert row["fit_on"] == "sst2:sst-2 (training split)"
    assert row["fit_n"] == len(set(load_sst2(d).train.texts))
