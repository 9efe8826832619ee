"""Synthetic results dicts and a tiny store for the report tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from isoscope.analysis import RESULTS_SCHEMA_VERSION
from isoscope.measures import REGISTRY

#: Every scalar measure of the registry, filled with plausible random values.
SCALAR_KEYS = tuple(m.key for m in REGISTRY if m.scalar and m.key != "isotropy_partition")


EVIL = "<script>window.__pwned=1</script>"
EVIL_IMG = '<img src=x onerror="window.__pwned=2">'


def make_results(
    n_layers: int = 7,
    seed: int = 0,
    model: str = "tiny-bert",
    transforms: bool = True,
    evaluation: bool = True,
    corpus: str = "ptb",
) -> dict[str, Any]:
    """A results dict with the layout of docs/results.md and plausible random values."""
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(n_layers):
        t = i / max(n_layers - 1, 1)
        lay: dict[str, Any] = {"layer": i, "n_vectors": 500, "n_duplicates": int(i == 0) * 7}
        for k in SCALAR_KEYS:
            lay[k] = float(rng.uniform(0.05, 0.9))
        lay["s_intra"] = None if i == 0 else lay["s_intra"]  # a null must not break anything
        lay["isotropy_partition_log10"] = float(-3 * t - rng.uniform(0, 1))
        lay["isotropy_partition"] = 10 ** lay["isotropy_partition_log10"]
        lay["lid_mle"] = float(10 + 5 * t)
        lay["pca_dims_80"] = int(20 + 10 * t)
        lay["n_clusters"] = int(2 + i % 3)
        lay["mean_norm"] = float(5 + 20 * t)
        lay["rogue_dims"] = [{"dim": 3, "share": 0.4}]
        lay["my_new_measure"] = float(t)  # a key unknown to the catalogue still gets a panel
        evr = np.sort(rng.dirichlet(np.ones(64) * 0.3))[::-1]
        ks = list(range(2, 9))
        lay["details"] = {
            "explained_variance_ratio": evr.tolist(),
            "silhouette_curve": {"k": ks, "score": rng.uniform(0.02, 0.3, len(ks)).tolist()},
            "lid_values": (rng.gamma(8, 1.5, 300) + 2 * i).tolist(),
            "cluster_sizes": sorted(rng.integers(5, 300, lay["n_clusters"]).tolist(), reverse=True),
        }
        layers.append(lay)
    res: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "isoscope_version": "0.1.0",
        "source": {
            "kind": "store",
            "path": f"runs/{model}/store",
            "model": model,
            "corpus": corpus,
            "model_type": "encoder",
            "n_layers": n_layers,
        },
        "settings": {
            "sample": 500,
            "seed": seed,
            "include_special": False,
            "drop_position_zero": False,
            "k_range": [2, 8],
            "silhouette_sample": 500,
            "lid_k": 20,
        },
        "layers": layers,
        "timings": {"total_s": 1.5},
    }
    if transforms:
        before = {k: layers[-1][k] for k in SCALAR_KEYS}
        res["transforms"] = [
            {
                "name": name,
                "params": params,
                "fit": fit,
                "layer": n_layers - 1,
                "fit_n": 400,
                "eval_n": 500,
                "before": before,
                "after": {
                    k: (None if v is None else float(v) * rng.uniform(0.5, 1.5))
                    for k, v in before.items()
                },
            }
            for name, params, fit in (
                ("abtt", {"n_components": 3}, "inductive"),
                ("whiten", {}, "transductive"),
            )
        ]
    if evaluation:
        rows = []
        for tr, fit in (("none", None), ("abtt", "inductive"), ("whiten", "transductive")):
            for task, ds in (("sts", "stsb-test"), ("wordsim", "EN-SIMLEX-999")):
                rows.append(
                    {
                        "task": task,
                        "dataset": ds,
                        "transform": tr,
                        "fit": fit,
                        "spearman": float(rng.uniform(0.3, 0.85)),
                        "pearson": float(rng.uniform(0.3, 0.85)),
                        "n": 1379,
                        "oov": 2,
                    }
                )
        res["evaluation"] = rows
    return res


@pytest.fixture(name="make_results")
def make_results_fixture():
    """The factory :func:`make_results` (test modules cannot import conftest in importlib mode)."""
    return make_results


def make_tokens(n_sentences: int = 40, words_per: int = 10, seed: int = 0, evil: bool = True):
    """A token table: [CLS] + ``words_per`` Zipf-distributed words per sentence (one token each)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    vocab = [
        "the",
        "of",
        "and",
        "market",
        "price",
        "company",
        "share",
        "year",
        "stock",
        "bank",
        "trade",
        "million",
        "report",
        "growth",
        "rate",
        "$5",
        "café",
    ]
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    rows = []
    for s in range(n_sentences):
        rows.append(
            {
                "sentence_id": s,
                "position": 0,
                "token": "[CLS]",
                "word_id": -1,
                "word": "",
                "is_special": True,
            }
        )
        for w in range(words_per):
            word = str(rng.choice(vocab, p=p))
            if evil and s == 3 and w == 2:
                word = EVIL
            rows.append(
                {
                    "sentence_id": s,
                    "position": w + 1,
                    "token": word,
                    "word_id": w,
                    "word": word,
                    "is_special": False,
                }
            )
    return pd.DataFrame(rows)


def build_store(path: Path, n_layers: int = 4, **manifest: Any):
    """A complete store of ``n_layers`` random 16-d layers over :func:`make_tokens`."""
    from isoscope.store import write_store

    tokens = make_tokens()
    rng = np.random.default_rng(0)
    n, d = len(tokens), 16
    base = rng.normal(size=(n, d))
    arrays = {
        lay: (base + lay * rng.normal(size=(n, d)) * 0.3 + lay).astype(np.float32)
        for lay in range(n_layers)
    }
    fields = {
        "model": "tiny-bert",
        "corpus": "synthetic corpus",
        "model_type": "encoder",
        "seed": 0,
    }
    return write_store(path, arrays, tokens, **{**fields, **manifest})


@pytest.fixture
def tiny_store(tmp_path: Path):
    return build_store(tmp_path / "store")


@pytest.fixture(name="build_store")
def build_store_fixture():
    return build_store


#: Repairs measured by the analysed test runs: one inductive, fitted on other rows than shown.
REPAIRS = ("abtt:n_components=2", "whiten")


def analyse(store: Any, **kw: Any):
    """A real (small, quick) analysis of a test store, with two repairs on its last layer."""
    from isoscope.metrics import analyze

    settings = {"sample": 200, "seed": 0, "k_range": [2, 4], "progress": False, "threads": 1}
    return analyze(store, transforms=list(REPAIRS), **{**settings, **kw})


@pytest.fixture(scope="session")
def analysed(tmp_path_factory):
    """``(store, AnalysisResult)`` of one analysis with fitted repairs (session-scoped: slow)."""
    root = tmp_path_factory.mktemp("analysed")
    store = build_store(root / "store")
    return store, analyse(store)


@pytest.fixture(name="analyse")
def analyse_fixture():
    return analyse


@pytest.fixture(scope="session")
def evil_report(tmp_path_factory):
    """One full report (artefacts included) whose model, corpus and tokens carry HTML/JS payloads.

    Session-scoped: analysing and drawing take seconds, and the HTML and browser tests share it.
    The report is drawn from results and saved artefacts after the store was deleted.
    """
    import shutil

    from isoscope.artefacts import compute_artefacts, load_artefacts
    from isoscope.report import write_report

    root = tmp_path_factory.mktemp("report")
    store = build_store(root / "store", corpus=f"news {EVIL} {EVIL_IMG}")
    result = analyse(store)
    result.source = {**result.source, "model": f"tiny{EVIL}", "corpus": f"news {EVIL_IMG}"}
    compute_artefacts(result, store, root / "run", words=["market", "price"])
    shutil.rmtree(root / "store")
    res = result.to_dict()
    res["evaluation"] = make_results(4)["evaluation"]
    res["evaluation"][0]["dataset"] = EVIL
    art = load_artefacts(root / "run", res)
    assert not art.notes, art.notes
    path = write_report(res, root / "out", art, dpi=60)
    return path, res
