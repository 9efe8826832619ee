"""``analyze --exact-partition`` on a sketch store: I(V) of every token by running the model again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from isoscope.analysis._second_pass import SECOND_PASS_EVIDENCE, nonzero_moments
from isoscope.errors import InputError
from isoscope.metrics.streaming import StreamingMoments
from tests.conftest import TRAIN_TEXT

TEXT = TRAIN_TEXT[:30]  # the six fixture sentences, five times: a few hundred tokens
SETTINGS = {"sample": 60, "seed": 1, "k_range": (2, 3), "lid_k": 5, "s_intra_min_occurrences": 2,
            "ethayarajh_sentences": 4, "similarity_sample": 0, "threads": 1}
KEYS = [f"isotropy_partition{s}{t}" for s in ("", "_centered", "_unit") for t in ("", "_log10")]


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def _stores(model: Path, root: Path, dtype: str) -> tuple[object, object, Path]:
    from isoscope.extract import extract

    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(TEXT) + "\n", encoding="utf-8")
    kw = {"dtype": dtype, "progress": False, "batch_size": 8, "chunk_tokens": 97}
    full = extract(str(model), f"text:{corpus}", root / "full", **kw)
    sketch = extract(str(model), f"text:{corpus}", root / "sketch", keep="sample:100", seed=3, **kw)
    return full, sketch, corpus


@pytest.fixture(scope="module")
def bert(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object, Path]:
    return _stores(tiny_bert, tmp_path_factory.mktemp("exact_bert"), "float32")


@pytest.fixture(scope="module")
def gpt2(tiny_gpt2: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object, Path]:
    return _stores(tiny_gpt2, tmp_path_factory.mktemp("exact_gpt2"), "float16")


@pytest.mark.parametrize(("which", "select"), [("bert", (False, False)), ("bert", (True, True)),
                                               ("gpt2", (False, False))])
def test_sketch_second_pass_equals_full_store(which: str, select: tuple[bool, bool],
                                              request: pytest.FixtureRequest) -> None:
    from isoscope.analysis import analyze
    from isoscope.metrics.isotropy import partition_isotropy

    full, sketch, _ = request.getfixturevalue(which)
    kw = {**SETTINGS, "include_special": select[0], "drop_position_zero": select[1]}
    a = analyze(full, layers=[1, 3], exact_partition=True, **kw)
    b = analyze(sketch, layers=[1, 3], exact_partition=True, **kw)
    rows = np.flatnonzero(full.row_mask(*select))
    for ea, eb in zip(a.layers, b.layers, strict=True):
        X = np.asarray(full.layer(ea["layer"])[rows], dtype=np.float64)
        X = X[np.linalg.norm(X, axis=1) > 0]
        for key in KEYS:
            assert _rel(ea[key], eb[key]) < 1e-9, (which, ea["layer"], key, ea[key], eb[key])
        for norm, suffix in (("raw", ""), ("centered", "_centered"), ("unit", "_unit")):
            want = partition_isotropy(X, normalisation=norm)  # every vector in memory
            assert _rel(eb[f"isotropy_partition{suffix}_log10"], want.log10) < 1e-9
    da, db = a.to_dict(), b.to_dict()
    assert da["measures"]["isotropy_partition_unit"]["evidence"] == "all tokens"
    for key in KEYS:
        assert db["measures"][key]["evidence"] == SECOND_PASS_EVIDENCE
    assert db["source"]["exact_partition"]["extractions"] == 2
    assert db["source"]["exact_partition"]["n_tokens"] == full.n_tokens
    assert "exact_partition_s" in db["timings"]
    assert SECOND_PASS_EVIDENCE in b.format_table()


def test_sketch_without_exact_partition_measures_the_sample(bert: tuple) -> None:
    from isoscope.analysis import analyze

    _, sketch, _ = bert
    d = analyze(sketch, layers=[3], **SETTINGS).to_dict()
    assert d["measures"]["isotropy_partition"]["evidence"] == "sample"
    assert "exact_partition" not in d["source"]


def test_changed_or_missing_corpus_is_refused(tiny_bert: Path, tmp_path: Path) -> None:
    from isoscope.analysis import analyze

    _, sketch, corpus = _stores(tiny_bert, tmp_path, "float32")
    # The same tokens in another order: the count agrees, the text does not.
    corpus.write_text("\n".join(TEXT).replace("the cat sat", "the sat cat") + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="changed since the store was extracted") as e:
        analyze(sketch, layers=[3], exact_partition=True, **SETTINGS)
    assert "\n" not in str(e.value) and "SHA-256" in str(e.value)
    corpus.write_text("\n".join(TEXT[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="changed since the store was extracted.*tokens"):
        analyze(sketch, layers=[3], exact_partition=True, **SETTINGS)
    corpus.unlink()
    with pytest.raises(InputError, match="cannot be re-opened"):
        analyze(sketch, layers=[3], exact_partition=True, **SETTINGS)


def test_unloadable_model_or_unnamed_corpus_is_refused(tiny_bert: Path, tmp_path: Path) -> None:
    import shutil

    from isoscope.analysis import analyze
    from isoscope.corpora import Corpus
    from isoscope.extract import extract

    model = tmp_path / "model"
    shutil.copytree(tiny_bert, model)
    kw = {"dtype": "float32", "progress": False, "keep": "sample:50"}
    named = extract(str(model), Corpus("train", TEXT, {}), tmp_path / "named", **kw)
    with pytest.raises(InputError, match="corpus 'train' cannot be re-opened") as e:
        analyze(named, layers=[3], exact_partition=True, **SETTINGS)
    assert "\n" not in str(e.value)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(TEXT) + "\n", encoding="utf-8")
    store = extract(str(model), f"text:{corpus}", tmp_path / "s", **kw)
    shutil.rmtree(model)
    with pytest.raises(InputError, match=r"model '.*model' cannot be re-opened") as e:
        analyze(store, layers=[3], exact_partition=True, **SETTINGS)
    assert "\n" not in str(e.value)


def test_nonzero_moments_match_the_moments_of_the_nonzero_rows() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)) + 3.0
    X[[3, 17, 30]] = 0.0
    got = nonzero_moments(StreamingMoments().update(X))
    nz = X[np.linalg.norm(X, axis=1) > 0]
    assert got.n == 37
    np.testing.assert_allclose(got.mean_, nz.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(got.m2_, (nz - nz.mean(axis=0)).T @ (nz - nz.mean(axis=0)), rtol=1e-10)
    plain = StreamingMoments().update(nz)
    assert nonzero_moments(plain) is plain


def test_cli_analyze_sketch_exact_partition(bert: tuple, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from isoscope.cli import app

    full, sketch, _ = bert
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["analyze", str(sketch.path), "--layers", "3", "--sample", "60",
                                   "--k-min", "2", "--k-max", "3", "--lid-k", "5",
                                   "--exact-partition", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["measures"]["isotropy_partition_centered"]["evidence"] == SECOND_PASS_EVIDENCE
    assert data["settings"]["exact_partition"] is True
    assert data["source"]["exact_partition"]["corpus"].startswith("text:")


def test_load_model_runs_the_recorded_linear_kernel(tiny_bert: Path) -> None:
    from isoscope.extract import load_model
    from isoscope.models._onednn import _eligible

    plain = load_model(str(tiny_bert), linear_kernel="torch")
    assert plain.linear_kernel == "torch" and plain.linear_kernel_check is None  # not timed
    packed = load_model(str(tiny_bert), linear_kernel="onednn-packed")
    assert packed.linear_kernel_check is None
    assert packed.linear_kernel == ("onednn-packed" if _eligible(plain.model) else "torch")
