"""Determinism: the same seed gives the same results file (apart from timings); another seed
changes only the measures that depend on a seeded sample or a seeded k-means start.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from isoscope.cli import app
from isoscope.extract import extract

runner = CliRunner()
FAST = ["--k-max", "4", "--silhouette-sample", "150", "--lid-k", "8", "--no-progress", "--threads", "1"]

# Per-layer measures that use the seed when every token is measured (--sample 0): k-means
# starts and the silhouette subsample (clusters and the cluster-centred S'_inter), and the
# occurrences per word type (s_intra_cap) and sentences (ethayarajh_sentences) drawn for the
# contextuality measures (see docs/results.md).
SEEDED = {
    "n_clusters", "best_k", "mms", "silhouette_best", "s_inter_centered", "s_intra_centered",
    "details.silhouette_curve", "details.cluster_sizes",
    "s_intra", "self_similarity", "self_similarity_adjusted", "mev", "mev_adjusted", "mev_baseline",
    "intra_sentence_similarity", "intra_sentence_similarity_adjusted",
}
# Measures of all rows with no random choice: they must not move with the seed.
EXACT = {"n_vectors", "n_zero_rows", "n_duplicates", "mean_norm", "s_inter", "pca_dims_80",
         "isotropy_partition", "isotropy_partition_log10", "isoscore", "isoscore_star", "lid_mle",
         "lid_twonn", "details.explained_variance_ratio", "rogue_dims"}


@pytest.fixture(scope="module")
def store(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = tmp_path_factory.mktemp("det") / "corpus.txt"
    lines = ["the cat sat on the mat .", "a dog chased the cat across the garden !",
             "language models map words to vectors in a narrow cone .",
             "frequent words and rare words live in different regions ."]
    corpus.write_text("\n".join(f"{line} {i % 7}" for i in range(40) for line in lines) + "\n")
    out = tmp_path_factory.mktemp("det") / "store"
    extract(str(tiny_bert), str(corpus), out, dtype="float32", progress=False)
    return out


def _analyze(store: Path, out: Path, *args: str) -> dict[str, Any]:
    r = runner.invoke(app, ["analyze", str(store), "--out", str(out), *FAST, *args])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert "timings" in data
    data.pop("timings")
    return data


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else k
            if key in SEEDED | EXACT or key.startswith("details.") and not isinstance(v, dict):
                out[key] = v
            else:
                out.update(_flatten(v, key) if isinstance(v, dict) else {key: v})
        return out
    return {prefix: obj}


def test_same_seed_gives_identical_results(store, tmp_path) -> None:
    args = ["--sample", "200", "--seed", "7", "-t", "cluster:n_clusters=2"]
    first = _analyze(store, tmp_path / "a.json", *args)
    second = _analyze(store, tmp_path / "b.json", *args)
    assert first == second
    assert first["settings"]["seed"] == 7 and first["settings"]["n_sampled"] == 200


def test_other_seed_changes_only_the_seeded_measures(store, tmp_path) -> None:
    a = _analyze(store, tmp_path / "a.json", "--sample", "0", "--seed", "0")
    b = _analyze(store, tmp_path / "b.json", "--sample", "0", "--seed", "1")
    assert a["settings"].pop("seed") == 0 and b["settings"].pop("seed") == 1
    # the seeds derived from each seed (SeedSequence streams) differ with it, by design
    assert a["settings"].pop("seeds") != b["settings"].pop("seeds")
    assert a["settings"] == b["settings"] and a["source"] == b["source"]
    changed: set[str] = set()
    for la, lb in zip(a["layers"], b["layers"], strict=True):
        fa, fb = _flatten(la), _flatten(lb)
        assert fa.keys() == fb.keys()
        for key in EXACT:
            assert fa[key] == fb[key], key
        changed |= {k for k in fa if fa[k] != fb[k]}
    assert changed <= SEEDED, changed - SEEDED
    assert changed, "no measure depends on the seed: the seed is not reaching k-means"


@pytest.mark.slow
def test_isoscope_run_twice_gives_identical_results(tiny_bert, tmp_path) -> None:
    """The whole pipeline (extract, measure, repair, report) run twice with one seed."""
    corpus = tmp_path / "corpus.txt"
    words = "the cat sat on a mat dog chased it across garden language models map words to vectors".split()
    rng = random.Random(0)
    corpus.write_text("\n".join(" ".join(rng.choices(words, k=rng.randint(4, 12))) for _ in range(80)))
    args = ["run", "--model", str(tiny_bert), "--corpus", str(corpus), "--out", str(tmp_path / "run"),
            "--seed", "3", "--sample", "150", "--transform", "abtt", "--no-progress"]
    results = []
    for _ in range(2):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        data = json.loads((tmp_path / "run" / "results.json").read_text())
        assert data.pop("timings")
        results.append(data)
    assert results[0] == results[1]
    assert results[0]["run"]["seed"] == 3 and results[0]["transforms"]
