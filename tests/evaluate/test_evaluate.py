"""evaluate(): before/after repairs, fit labels, STS aggregates, learned removal, JSON layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from isoscope.errors import InputError
from isoscope.evaluate import encode_sentences, evaluate, parse_transforms

WORDS = "cat dog car truck king queen man woman tiger road animal apple fruit red blue".split()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def pair_lines(seed: int, n: int) -> list[tuple[str, str, float]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = " ".join(rng.choice(WORDS, size=3))
        b = " ".join(rng.choice(WORDS, size=3))
        out.append((a, b, float(rng.integers(0, 6))))
    return out


def stsb_file(path: Path, seed: int, n: int = 30) -> Path:
    lines = [f"main-captions\tMSRvid\t2012\t{i:04d}\t{s}\t{a}\t{b}" for i, (a, b, s) in enumerate(pair_lines(seed, n))]
    return write(path, "\n".join(lines) + "\n")


@pytest.fixture
def stsb(tmp_path):
    d = tmp_path / "stsbenchmark"
    d.mkdir()
    stsb_file(d / "sts-train.csv", 1, 60)
    return stsb_file(d / "sts-test.csv", 2, 30)


def test_parse_transforms():
    assert parse_transforms("abtt,cluster:n_clusters=3,n_components=1,whiten") == [
        "none", "abtt", "cluster:n_clusters=3,n_components=1", "whiten"]
    assert parse_transforms(["whiten", "none", "center"]) == ["none", "whiten", "center"]
    assert parse_transforms(None) == ["none"]


def test_tasks_given_as_strings_use_the_one_name_path_parser(fake_encoder, stsb):
    # Before: " stsb = PATH" kept its spaces (" PATH" does not exist) and "stsb=" went on to
    # load the path "" instead of failing on the form.
    res = evaluate(fake_encoder, [f" stsb = {stsb}"], cache=False)
    assert [r["task"] for r in res.records] == ["stsb"]
    for bad in ("stsb", "stsb=", "=x.csv"):
        with pytest.raises(InputError, match=r"^A task is given as NAME=PATH \(e\.g\. stsb="):
            evaluate(fake_encoder, [bad], cache=False)


def test_baseline_matches_direct_computation(fake_encoder, stsb):
    res = evaluate(fake_encoder, {"stsb": stsb}, cache=False)
    (row,) = res.records
    from isoscope.evaluate import load_stsb

    t = load_stsb(stsb)
    E1 = encode_sentences(fake_encoder, t.sentences1, cache=False)
    E2 = encode_sentences(fake_encoder, t.sentences2, cache=False)
    cos = (E1 * E2).sum(1) / np.linalg.norm(E1, axis=1) / np.linalg.norm(E2, axis=1)
    assert row["spearman"] == pytest.approx(100 * stats.spearmanr(t.scores, cos).statistic)
    assert row["transform"] == "none" and row["fit"] is None and row["n"] == 30 and row["oov"] == 0
    assert row["pooling"] == "mean" and row["layers"] == [2] and row["special_tokens"] == "included"


def test_inductive_default_is_stsb_train_and_transductive_is_labelled(fake_encoder, stsb):
    ind = evaluate(fake_encoder, {"stsb": stsb}, transforms="center,whiten", cache=False)
    rows = {r["transform"]: r for r in ind.records}
    assert rows["center"]["fit"] == "inductive"
    assert "sts-train.csv" in rows["center"]["fit_on"]
    assert rows["center"]["fit_n"] > 30
    tra = evaluate(fake_encoder, {"stsb": stsb}, transforms="center", transductive=True, cache=False)
    row = [r for r in tra.records if r["transform"] == "center"][0]
    assert row["fit"] == "transductive" and "evaluation sentences" in row["fit_on"]
    # centring fitted on other data differs from centring on the test sentences themselves
    assert row["spearman"] != pytest.approx(rows["center"]["spearman"])


def test_sentence_level_repair_equals_manual_transform(fake_encoder, stsb, tmp_path):
    from isoscope.evaluate import load_stsb
    from isoscope.transforms import from_spec

    fit = write(tmp_path / "fit.txt", "cat dog\nred blue apple\nking queen man\nroad truck car\ntiger animal\n")
    res = evaluate(fake_encoder, {"stsb": stsb}, transforms="abtt:n_components=1", fit_on=fit, cache=False)
    row = res.records[1]
    t = load_stsb(stsb)
    X = encode_sentences(fake_encoder, fit.read_text().split("\n")[:-1], cache=False)
    est = from_spec("abtt:n_components=1").fit(X)
    E1 = est.transform(encode_sentences(fake_encoder, t.sentences1, cache=False))
    E2 = est.transform(encode_sentences(fake_encoder, t.sentences2, cache=False))
    cos = (E1 * E2).sum(1) / np.linalg.norm(E1, axis=1) / np.linalg.norm(E2, axis=1)
    assert row["spearman"] == pytest.approx(100 * stats.spearmanr(t.scores, cos).statistic, abs=1e-6)
    assert row["fit_on"] == "text:fit.txt" and row["fit_n"] == 5


def test_token_level_drops_specials(fake_encoder, stsb):
    res = evaluate(fake_encoder, {"stsb": stsb}, transforms="center", level="token", cache=False)
    assert {r["level"] for r in res.records} == {"token"}
    assert {r["special_tokens"] for r in res.records} == {"excluded"}
    base = evaluate(fake_encoder, {"stsb": stsb}, level="token", include_special=False, cache=False)
    assert res.records[0]["spearman"] == pytest.approx(base.records[0]["spearman"])
    with pytest.raises(InputError, match="cls"):
        evaluate(fake_encoder, {"stsb": stsb}, pooling="cls", level="token", cache=False)


def test_sts_subsets_and_pooled_all(fake_encoder, tmp_path):
    d = tmp_path / "STS12"
    d.mkdir()
    for name, seed in (("MSRpar", 3), ("OnWN", 4)):
        lines = pair_lines(seed, 12)
        write(d / f"STS.input.{name}.txt", "".join(f"{a}\t{b}\n" for a, b, _ in lines))
        write(d / f"STS.gs.{name}.txt", "".join(f"{s}\n" for _, _, s in lines))
    res = evaluate(fake_encoder, [("sts12", d)], cache=False)
    by = {(r["subset"], r["aggregate"]): r for r in res.records}
    assert set(by) == {("MSRpar", None), ("OnWN", None), (None, "all (pooled pairs)"), (None, "mean of sub-sets")}
    assert by[(None, "all (pooled pairs)")]["n"] == 24
    mean = by[(None, "mean of sub-sets")]["spearman"]
    assert mean == pytest.approx((by[("MSRpar", None)]["spearman"] + by[("OnWN", None)]["spearman"]) / 2)
    assert list(res.table().columns) == ["sts12:STS12 (all)"]
    with pytest.raises(InputError, match="needs --fit-on"):
        evaluate(fake_encoder, [("sts12", d)], transforms="center", cache=False)


def test_word_tasks_static_table_with_repairs(tiny_table, tmp_path):
    ws = write(tmp_path / "ws.txt", "cat dog 8\nking queen 9\nman woman 8.5\ncar truck 7\nroad animal 1\nunicorn cat 3\n")
    res = evaluate(tiny_table, {"wordsim": ws}, transforms="center,standardize", fit_vocab=12, cache=False)
    rows = {r["transform"]: r for r in res.records}
    assert rows["none"]["oov"] == 1 and rows["none"]["n"] == 5
    assert rows["center"]["fit_on"] == "first 12 words of tiny" and rows["center"]["fit_n"] == 12
    V = tiny_table.vectors
    Vc = V - V[:12].mean(axis=0)
    idx = {w: i for i, w in enumerate(tiny_table.words)}
    pairs = [("cat", "dog", 8), ("king", "queen", 9), ("man", "woman", 8.5), ("car", "truck", 7), ("road", "animal", 1)]
    cos = [Vc[idx[a]] @ Vc[idx[b]] / np.linalg.norm(Vc[idx[a]]) / np.linalg.norm(Vc[idx[b]]) for a, b, _ in pairs]
    assert rows["center"]["spearman"] == pytest.approx(100 * stats.spearmanr([g for *_, g in pairs], cos).statistic)


def test_zipf_uses_word_frequencies_for_word_tasks(tiny_table, tmp_path):
    ws = write(tmp_path / "ws.txt", "cat dog 8\nking queen 9\nman woman 8.5\ncar truck 7\nroad animal 1\n")
    res = evaluate(tiny_table, {"wordsim": ws}, transforms="whiten,zipf", fit_vocab=15, cache=False)
    rows = {r["transform"]: r["pearson"] for r in res.records}  # 5 pairs: ranks may tie
    assert rows["zipf"] != pytest.approx(rows["whiten"])


def test_learned_removal_needs_disjoint_training_pairs(tiny_table, tmp_path):
    ws = write(tmp_path / "ws.txt", "cat dog 8\nking queen 9\nman woman 8.5\ncar truck 7\nroad animal 1\n")
    train = write(tmp_path / "train.txt", "cat dog 9\ntiger cat 7\napple fruit 8\nroad car 5\nred blue 4\nthe animal 1\n")
    with pytest.raises(InputError, match="--learn-on"):
        evaluate(tiny_table, {"wordsim": ws}, transforms="learned", cache=False)
    with pytest.raises(InputError, match="cannot also train"):
        evaluate(tiny_table, {"wordsim": ws}, transforms="learned", learn_on=[ws], cache=False)
    res = evaluate(tiny_table, {"wordsim": ws}, transforms="learned:n_components=2", learn_on=[train],
                   fit_vocab=15, cache=False)
    assert res.settings["learn_on"] == [str(train)]
    assert res.records[1]["transform"] == "learned:n_components=2" and res.records[1]["fit"] == "inductive"


def test_analogy_static_and_contextual(tiny_table, fake_encoder, tmp_path):
    q = write(tmp_path / "q.txt", ": family\nman woman king queen\ncat dog car truck\n: x\nman woman unicorn horse\n")
    res = evaluate(tiny_table, {"analogy": q}, cache=False)
    (row,) = res.records
    assert row["n"] == 2 and row["oov"] == 1 and 0 <= row["accuracy"] <= 100 and row["spearman"] is None
    ctx = evaluate(fake_encoder, {"analogy": q}, cache=False)
    assert ctx.records[0]["candidates"] == "the task's words"


def test_contextual_word_sources(fake_encoder, tmp_path):
    ws = write(tmp_path / "ws.txt", "cat dog 8\nking queen 9\nman woman 8.5\ncar truck 7\nroad animal 1\n")
    res = evaluate(fake_encoder, {"wordsim": ws}, transforms="center", cache=False, fit_vocab=200)
    rows = {r["transform"]: r for r in res.records}
    assert "encoded alone" in rows["none"]["word_vectors"]
    assert "wordfreq" in rows["center"]["fit_on"]
    with pytest.raises(InputError, match="Input-embedding"):
        evaluate(fake_encoder, {"wordsim": ws}, word_vectors="input", cache=False)


def test_json_layout_and_table(fake_encoder, stsb, tiny_table, tmp_path):
    res = evaluate(fake_encoder, {"stsb": stsb}, transforms="center", cache=False)
    out = res.to_json(tmp_path / "eval.json")
    data = json.loads(out.read_text())
    for r in data["results"]:
        assert {"task", "dataset", "transform", "fit", "spearman", "pearson", "n", "oov"} <= set(r)
    assert data["settings"]["level"] == "sentence" and data["settings"]["fit"] == "inductive"
    text = res.format_table()
    assert "Spearman x 100" in text and "center" in text and "stsb:sts-test" in text


def test_bad_inputs_are_one_sentence(fake_encoder, stsb):
    with pytest.raises(InputError, match="level"):
        evaluate(fake_encoder, {"stsb": stsb}, level="word")
    with pytest.raises(InputError, match="Unknown transform"):
        evaluate(fake_encoder, {"stsb": stsb}, transforms="nope")
    with pytest.raises(InputError, match="at least one task"):
        evaluate(fake_encoder, {})
    with pytest.raises(InputError, match="NAME=PATH"):
        evaluate(fake_encoder, ["stsb"])


def test_store_word_vectors_average_occurrences(fake_encoder, tmp_path):
    from isoscope.evaluate import store_words
    from isoscope.store import write_store

    words = ["Cat", "sat", "cat", "dog", "dog", "king"]
    tokens = {"sentence_id": [0, 0, 1, 1, 2, 2], "word_id": [0, 1, 0, 1, 0, 1], "word": words,
              "position": [1, 2, 1, 2, 1, 2]}
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 4)).astype(np.float32)
    store = write_store(tmp_path / "store", {2: X}, tokens)
    table = store_words(store, ["cat", "dog", "queen"], layer=2)
    assert table.words == ["cat", "dog"]  # 'queen' never occurs: out of vocabulary
    np.testing.assert_allclose(table.vectors[0], (X[0] + X[2]) / 2, rtol=1e-6)
    np.testing.assert_allclose(table.vectors[1], (X[3] + X[4]) / 2, rtol=1e-6)
    ws = write(tmp_path / "ws.txt", "cat dog 8\ncat king 3\ndog king 2\ncat queen 1\n")
    res = evaluate(fake_encoder, {"wordsim": ws}, word_vectors=tmp_path / "store", cache=False)
    assert res.records[0]["oov"] == 1 and res.records[0]["n"] == 3


def test_fit_on_full_sick_file_uses_train_rows(fake_encoder, tmp_path):
    header = "pair_ID\tsentence_A\tsentence_B\tentailment_label\trelatedness_score\tSemEval_set\n"
    rows = []
    for i, (a, b, s) in enumerate(pair_lines(5, 24)):
        rows.append(f"{i}\t{a}\t{b}\tNEUTRAL\t{1 + s * 0.8:.2f}\t{'TRAIN' if i < 16 else 'TEST'}\n")
    sick = write(tmp_path / "SICK.txt", header + "".join(rows))
    res = evaluate(fake_encoder, {"sick": sick}, transforms="center", cache=False)
    row = res.records[1]
    assert res.records[0]["n"] == 8 and row["fit"] == "inductive"
    assert row["fit_on"] == "sick:SICK.txt TRAIN rows"
    res2 = evaluate(fake_encoder, {"sick": sick}, transforms="center", fit_on=sick, cache=False)
    assert res2.records[1]["fit_on"] == "sick:SICK.txt (train split)"
    assert res2.records[1]["spearman"] == pytest.approx(row["spearman"])
