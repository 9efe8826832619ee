"""Exported sentence-transformers models give isoscope's own pooled, repaired vectors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import TRAIN_TEXT

SENTENCES = [
    "the cat sat on the mat .",
    "a dog chased the cat across the garden !",
    "isotropy means every direction is equally likely .",
    "rare words live far away .",
    "unbelievably , the transformers tokenised everything into subwords .",
]

# (pooling, layer, include_special, drop_position_zero)
POOLS = [
    ("mean", None, None, False),  # sentence-transformers' own Pooling module
    ("cls", None, None, False),  # sentence-transformers' own Pooling module
    ("mean", 1, False, False),
    ("mean", [1, 3], None, True),
    ("last", 2, None, False),
    ("first_last", None, None, False),
]


def _fit_sentences(n: int = 200, seed: int = 0) -> list[str]:
    """Distinct random word sequences over the fixture vocabulary (whitening needs n >> width)."""
    words = sorted({w for line in TRAIN_TEXT for w in line.split()})
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=int(rng.integers(3, 12)))) for _ in range(n)]


def _dimension(st) -> int:
    """Output width (renamed get_embedding_dimension in sentence-transformers 6)."""
    return (getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension)()


@pytest.fixture(scope="module")
def encoder(tiny_bert):
    from isoscope.models import load_encoder

    return load_encoder(str(tiny_bert))


@pytest.mark.parametrize(("pooling", "layer", "special", "drop"), POOLS)
def test_exported_encode_equals_isoscope_vectors(encoder, tmp_path, pooling, layer, special, drop):
    # all-but-the-top is a projection (it cannot amplify float32 rounding), so the exported
    # model must agree with isoscope to 1e-5; whitening the random tiny BERT's near-degenerate
    # spectrum would amplify 1e-7 differences past any fixed tolerance (MiniLM's test whitens).
    from sentence_transformers import SentenceTransformer

    from isoscope.evaluate import encode_sentences
    from isoscope.export import fit_sentence_repair, to_sentence_transformer

    kw = dict(pooling=pooling, layer=layer, include_special=special, drop_position_zero=drop)
    pooled = encode_sentences(encoder, SENTENCES, cache=False, **kw)
    plain = to_sentence_transformer(encoder, None, **kw)
    np.testing.assert_allclose(plain.encode(SENTENCES, batch_size=2), pooled, atol=1e-5, rtol=0)

    repair = fit_sentence_repair(encoder, "abtt:n_components=3", _fit_sentences(), cache=False, **kw)
    want = repair.transform(pooled)
    st = to_sentence_transformer(encoder, repair, **kw)
    got = st.encode(SENTENCES, convert_to_numpy=True, batch_size=2)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert np.abs(got - pooled).max() > 1e-3  # the repair module did change the vectors

    st.save(str(tmp_path / "exported"))
    saved = json.loads((tmp_path / "exported" / "modules.json").read_text())
    assert saved[-1]["type"].startswith("sentence_transformers.") and saved[-1]["type"].endswith(".Dense")
    assert not [p for p in (tmp_path / "exported").rglob("*") if p.suffix in {".pkl", ".bin", ".pt"}]
    # sentence-transformers 6 imports a module class outside its namespace only when trusted:
    # the repair is its own Dense, so only isoscope's pooling module needs the flag.
    own_pooling = saved[1]["type"].startswith("sentence_transformers.")
    assert own_pooling == (pooling in ("mean", "cls") and layer is None and not drop and special is None)
    again = SentenceTransformer(str(tmp_path / "exported"), device="cpu", trust_remote_code=not own_pooling)
    np.testing.assert_allclose(again.encode(SENTENCES, convert_to_numpy=True), want, atol=1e-5, rtol=0)


def test_saved_whitening_reloads_the_same_model(encoder, tmp_path):
    import torch
    from sentence_transformers import SentenceTransformer

    from isoscope.export import fit_sentence_repair, to_sentence_transformer

    repair = fit_sentence_repair(encoder, "whiten:n_components=8", _fit_sentences(), cache=False)
    st = to_sentence_transformer(encoder, repair)
    st.save(str(tmp_path / "w"))
    again = SentenceTransformer(str(tmp_path / "w"), device="cpu")
    dense = again[-1]
    assert type(dense).__name__ == "Dense" and isinstance(dense.activation_function, torch.nn.Identity)
    # weight and bias: the whitening kernel and -mean @ kernel, computed in float64, stored float32
    np.testing.assert_array_equal(dense.linear.weight.detach().numpy(), repair.kernel_.T.astype(np.float32))
    np.testing.assert_array_equal(dense.linear.bias.detach().numpy(),
                                  (-repair.mean_ @ repair.kernel_).astype(np.float32))
    assert _dimension(again) == 8
    np.testing.assert_allclose(again.encode(SENTENCES), st.encode(SENTENCES), atol=1e-6, rtol=0)


def test_plain_mean_export_uses_sentence_transformers_pooling(encoder):
    from sentence_transformers.sentence_transformer.modules import Pooling

    from isoscope.export import RepairModule, needs_trust_remote_code, to_sentence_transformer
    from isoscope.transforms import fit_repair

    rng = np.random.default_rng(0)
    st = to_sentence_transformer(encoder, fit_repair("abtt:n_components=2", rng.normal(size=(50, 32))))
    assert isinstance(st[1], Pooling) and type(st[2]).__name__ == "Dense"
    assert _dimension(st) == 32 and not needs_trust_remote_code(st)
    clustered = to_sentence_transformer(
        encoder, fit_repair("cluster:n_clusters=2,n_components=2", rng.normal(size=(50, 32))))
    assert isinstance(clustered[2], RepairModule) and needs_trust_remote_code(clustered)


def test_wrong_width_repair_is_refused(encoder):
    from isoscope.errors import InputError
    from isoscope.export import to_sentence_transformer
    from isoscope.transforms import fit_repair

    est = fit_repair("center", np.random.default_rng(0).normal(size=(20, 8)))
    with pytest.raises(InputError, match="8-d vectors"):
        to_sentence_transformer(encoder, est)


def test_cls_pooling_refused_without_leading_special_token(tiny_gpt2):
    from isoscope.errors import InputError
    from isoscope.export import to_sentence_transformer
    from isoscope.models import load_encoder

    with pytest.raises(InputError, match="special token first"):
        to_sentence_transformer(load_encoder(str(tiny_gpt2)), None, pooling="cls")


def test_export_command_writes_a_loadable_model(tiny_bert, tmp_path):
    from sentence_transformers import SentenceTransformer
    from typer.testing import CliRunner

    from isoscope.cli import app
    from isoscope.evaluate import encode_sentences
    from isoscope.export import fit_sentence_repair
    from isoscope.models import load_encoder

    corpus = tmp_path / "fit.txt"
    corpus.write_text("\n".join(_fit_sentences()) + "\n", encoding="utf-8")
    out = tmp_path / "model"
    res = CliRunner().invoke(app, ["export", "--model", str(tiny_bert), "--transform", "abtt:n_components=2",
                                   "--fit-corpus", f"text:{corpus}", "--out", str(out), "--layer", "2"])
    assert res.exit_code == 0, res.output
    record = json.loads((out / "isoscope_export.json").read_text())
    assert record["fit_n"] == 200 and record["transform"] == "abtt:n_components=2" and record["layer"] == 2
    enc = load_encoder(str(tiny_bert))
    repair = fit_sentence_repair(enc, "abtt:n_components=2", _fit_sentences(), layer=2, cache=False)
    want = repair.transform(encode_sentences(enc, SENTENCES, layer=2, cache=False))
    assert "trust_remote_code=True" in res.output  # layer 2 of 3: isoscope's pooling module
    st = SentenceTransformer(str(out), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(st.encode(SENTENCES), want, atol=1e-5, rtol=0)

    plain = CliRunner().invoke(app, ["export", "--model", str(tiny_bert), "--transform", "center",
                                     "--fit-corpus", f"text:{corpus}", "--out", str(tmp_path / "plain")])
    assert plain.exit_code == 0, plain.output
    assert "SentenceTransformer(" in plain.output and "trust_remote_code" not in plain.output
    SentenceTransformer(str(tmp_path / "plain"), device="cpu")  # last-layer mean + Dense: no flag

    again = CliRunner().invoke(app, ["export", "--model", str(tiny_bert), "--transform", "center",
                                     "--fit-corpus", f"text:{corpus}", "--out", str(out)])
    assert again.exit_code == 2 and "not empty" in again.output


def test_why_reloading_the_cluster_repair_needs_trust_remote_code(encoder, tmp_path):
    """The README's claim: sentence-transformers >= 6 refuses the isoscope module class unflagged.

    Only the cluster repair (not affine: it depends on each vector's cluster) is saved as
    isoscope's RepairModule; the trusted reload still gives isoscope's own repaired vectors.
    """
    import sentence_transformers
    from sentence_transformers import SentenceTransformer

    from isoscope.evaluate import encode_sentences
    from isoscope.export import fit_sentence_repair, to_sentence_transformer

    spec = "cluster:n_clusters=3,n_components=2"
    repair = fit_sentence_repair(encoder, spec, _fit_sentences(40), cache=False)
    to_sentence_transformer(encoder, repair).save(str(tmp_path / "c"))
    types = [m["type"] for m in json.loads((tmp_path / "c" / "modules.json").read_text())]
    assert types[-1] == "isoscope.export.RepairModule"
    assert all(t.startswith("sentence_transformers.") for t in types[:-1])  # mean pooling: its own
    if int(sentence_transformers.__version__.split(".")[0]) < 6:
        SentenceTransformer(str(tmp_path / "c"), device="cpu")  # 5.x trusts a local folder
    else:
        with pytest.raises(ValueError, match="(?s)isoscope.export.RepairModule.*trust_remote_code=True"):
            SentenceTransformer(str(tmp_path / "c"), device="cpu")
    want = repair.transform(encode_sentences(encoder, SENTENCES, cache=False))
    again = SentenceTransformer(str(tmp_path / "c"), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(again.encode(SENTENCES), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("spec", ["center", "abtt:n_components=3", "whiten:n_components=8", "standardize"])
def test_affine_export_loads_without_trust_remote_code_or_isoscope(encoder, tmp_path, spec):
    """An affine repair is sentence-transformers' own Dense: no flag, and isoscope is never imported."""
    from isoscope.evaluate import encode_sentences
    from isoscope.export import fit_sentence_repair, to_sentence_transformer

    repair = fit_sentence_repair(encoder, spec, _fit_sentences(), cache=False)
    folder = tmp_path / "m"
    to_sentence_transformer(encoder, repair).save(str(folder))
    types = [m["type"] for m in json.loads((folder / "modules.json").read_text())]
    assert len(types) == 3 and all(t.startswith("sentence_transformers.") for t in types), types
    assert not list(folder.rglob("isoscope_*.json")) and not (folder / "repair.safetensors").exists()
    # A fresh interpreter in which importing isoscope fails loads and encodes the folder unflagged.
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["isoscope"] = None  # any import of isoscope raises ImportError
        from sentence_transformers import SentenceTransformer
        st = SentenceTransformer({str(folder)!r}, device="cpu")
        print(json.dumps(st.encode({SENTENCES!r}).tolist()))
        assert not [m for m in sys.modules if m.startswith("isoscope.")]
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    got = np.asarray(json.loads(res.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(got, repair.transform(encode_sentences(encoder, SENTENCES, cache=False)),
                               atol=1e-5, rtol=0)

