"""Run isoscope over every model and corpus of a :class:`FindingsPlan` and keep the outputs.

Each step writes one JSON file under ``work/<model>/`` stamped with the settings it depends
on, so an interrupted run resumes where it stopped and a finished one is reused as is.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from isoscope._jsonio import clean_json as _clean
from isoscope.errors import InputError
from isoscope.findings._plan import (
    LEARN_ON,
    REPAIRS,
    STS_TEST,
    STS_TRAIN,
    WORD_TASKS,
    FindingsPlan,
)

Log = Callable[[str], None]


#: Raised whenever what a step computes changes, so older step files are recomputed.
STEPS_VERSION = 3

#: Settings each step depends on (a change re-runs only the steps that use it).
_STEP_KEYS: dict[str, tuple[str, ...]] = {
    "analysis": ("max_tokens", "sample", "seed", "wikitext", "ptb_split"),
    "repairs": ("max_tokens", "sample", "seed", "wikitext", "data_dir"),
    "position_zero": ("max_tokens", "sample", "seed", "wikitext"),
    "clouds": ("max_tokens", "cloud_points", "seed", "wikitext", "ptb_split"),
    "evaluation": ("fit_sentences", "fit_words", "seed", "data_dir"),
}


def model_dir_name(model: str) -> str:
    """Folder name of a model (``org/name`` -> ``org-name``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-.") or "model"


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_clean(data), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _cached(path: Path, stamp: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("stamp") == stamp else None


class ModelRun:
    """The steps of one model: analysis per corpus, repairs, position 0, 3-D views, tasks."""

    def __init__(self, plan: FindingsPlan, model: str, work: Path, log: Log, progress: bool,
                 reuse_only: bool = False):
        self.plan = plan
        self.reuse_only = reuse_only
        self.model = model
        self.family = plan.family(model)
        self.dir = work / model_dir_name(model)
        self.log = log
        self.progress = progress
        self._stores: dict[str, Any] = {}

    @property
    def causal(self) -> bool:
        return self.family == "GPT family"

    @property
    def static(self) -> bool:
        return self.family == "static"

    def step(self, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``compute`` unless its output with the same settings is already on disk."""
        stamp = f"{self.plan.fingerprint(*_STEP_KEYS[name.split('-')[0]])}-v{STEPS_VERSION}"
        path = self.dir / f"{name}.json"
        found = _cached(path, stamp)
        if found is not None:
            self.log(f"  {name}: reused {path}")
            return found
        if self.reuse_only:
            raise InputError(f"{path} is missing or has other settings; run without --render-only.")
        t0 = time.perf_counter()
        data = compute()
        data["stamp"] = stamp
        data["seconds"] = round(time.perf_counter() - t0, 1)
        _write(path, data)
        self.log(f"  {name}: {data['seconds']:.0f} s")
        return json.loads(path.read_text(encoding="utf-8"))

    def store(self, corpus: str) -> Any:
        """Extract (or reuse) the store of one corpus."""
        from isoscope.extract import extract

        if corpus not in self._stores:
            spec = self.plan.corpora()[corpus]
            # Causal models carry massive activations (Gemma-3 exceeds float16's 65,504).
            dtype = "float32" if self.causal else "float16"
            size = self.plan.max_tokens or "all"
            self._stores[corpus] = extract(
                self.model,
                spec,
                self.dir / corpus / f"store-{size}-{dtype}",
                max_tokens=self.plan.max_tokens,
                dtype=dtype,
                seed=self.plan.seed,
                progress=self.progress,
            )
        return self._stores[corpus]

    # -- steps ---------------------------------------------------------------------------

    def analysis(self, corpus: str) -> dict[str, Any]:
        from isoscope.metrics import analyze

        def compute() -> dict[str, Any]:
            store = self.store(corpus)
            res = analyze(
                store,
                sample=self.plan.sample,
                seed=self.plan.seed,
                drop_position_zero=self.causal,
                frequency_source="zipf",
                progress=self.progress,
            )
            return {"corpus": corpus, "corpus_spec": self.plan.corpora()[corpus],
                    "width": int(store.hidden_size), "n_tokens": int(store.n_tokens),
                    **res.to_dict()}

        return self.step(f"analysis-{corpus}", compute)

    def repairs(self) -> dict[str, Any]:
        """I(V) and the other measures before and after each repair, both fits, last layer."""
        from isoscope.metrics import evaluate_transforms

        def compute() -> dict[str, Any]:
            store = self.store("wikitext")
            layer = store.layers[-1]
            pairs, source = self._learning_pairs(layer)
            entries = []
            for transductive in (False, True):
                entries += evaluate_transforms(
                    store,
                    list(REPAIRS),
                    layers=[layer],
                    transductive=transductive,
                    sample=self.plan.sample,
                    seed=self.plan.seed,
                    drop_position_zero=self.causal,
                    frequency_source="zipf",
                    fit_inputs={"pairs": pairs},
                    progress=False,
                )
            return {"layer": layer, "corpus": "wikitext", "learned_pairs": source,
                    "transforms": entries}

        return self.step("repairs", compute)

    def _learning_pairs(self, layer: int) -> tuple[tuple[np.ndarray, ...], dict[str, Any]]:
        """Training word pairs (disjoint from the evaluated sets) as vectors at ``layer``."""
        from isoscope.evaluate import Pooling, encoded_words, load_word_similarity, static_table
        from isoscope.evaluate._run import _learning_pairs

        evaluated = [load_word_similarity(self.plan.data(rel)) for _, rel in WORD_TASKS]
        learn = _learning_pairs([self.plan.data(rel) for rel in LEARN_ON], evaluated)
        w1 = [w.lower() for w in learn["word1"]]
        w2 = [w.lower() for w in learn["word2"]]
        scores = list(learn["scores"])
        if self.static:
            from isoscope.models import load_static

            table = static_table(load_static(self.model))
            how = "rows of the static table"
        else:
            from isoscope.models import load_encoder

            encoder = load_encoder(self.model)
            pool = Pooling("mean", (int(layer),), False, self.causal)
            table = encoded_words(encoder, sorted(set(w1) | set(w2)), pool)
            how = f"each word encoded alone, mean-pooled at hidden state {layer}"
        index = {w.lower(): i for i, w in reversed(list(enumerate(table.words)))}
        keep = [i for i, (a, b) in enumerate(zip(w1, w2, strict=True)) if a in index and b in index]
        if len(keep) < 3:
            raise InputError(f"Fewer than 3 learned-removal training pairs have vectors in {self.model}.")
        A = np.asarray(table.vectors[[index[w1[i]] for i in keep]], dtype=np.float64)
        B = np.asarray(table.vectors[[index[w2[i]] for i in keep]], dtype=np.float64)
        y = np.asarray([scores[i] for i in keep])
        files = [Path(p).name for p in LEARN_ON]
        return (A, B, y), {"files": files, "n_pairs": len(keep), "vectors": how}

    def position_zero(self) -> dict[str, Any]:
        """Causal models: clusters with the first position kept, and who fills them."""
        from isoscope.metrics.clusters import kmeans_silhouette

        def compute() -> dict[str, Any]:
            store = self.store("wikitext")
            positions = store.tokens(columns=["position"])["position"].to_numpy()
            layers = _spread(store.layers)
            rows_out = []
            for layer in layers:
                X, rows = store.sample(layer, self.plan.sample, seed=self.plan.seed)
                res = kmeans_silhouette(X, (2, 15), silhouette_sample=3000, seed=self.plan.seed,
                                        n_init=1, backend="sklearn", max_iter=50)
                is0 = positions[rows] == 0
                clusters = []
                for c in range(res.n_clusters):
                    members = res.labels == c
                    clusters.append({"size": int(members.sum()),
                                     "share_position_zero": float(is0[members].mean())
                                     if members.any() else None})
                rows_out.append({"layer": int(layer), "n_vectors": int(len(rows)),
                                 "n_position_zero": int(is0.sum()), "n_clusters": res.n_clusters,
                                 "mms": res.mms, "best_k": res.best_k,
                                 "silhouette_curve": {"k": res.ks, "score": res.scores},
                                 "clusters": clusters})
            return {"corpus": "wikitext", "include_special": False, "layers": rows_out}

        return self.step("position_zero", compute)

    def clouds(self) -> dict[str, Any]:
        """3-D PCA coordinates of sampled tokens at a few depths, with Zipf frequency."""
        from isoscope.report import token_cloud

        def compute() -> dict[str, Any]:
            out: dict[str, Any] = {}
            for corpus in ("wikitext", "ptb"):
                store = self.store(corpus)
                views = []
                for layer in _spread(store.layers):
                    cloud = token_cloud(store, layer, n=self.plan.cloud_points, seed=self.plan.seed,
                                        n_components=3, drop_position_zero=self.causal,
                                        frequency="zipf")
                    views.append({"layer": int(layer),
                                  "coords": np.round(cloud.coords, 4),
                                  "zipf": np.round(cloud.log_freq, 3),
                                  "explained_variance_ratio": cloud.explained_variance_ratio,
                                  "n_total": cloud.n_total})
                out[corpus] = views
            return {"views": out, "frequency": "Zipf frequency (wordfreq)"}

        return self.step("clouds", compute)

    def evaluation(self) -> dict[str, Any]:
        """STS-B and word similarity before and after each repair, inductive and transductive."""
        from isoscope.evaluate import evaluate, load_stsb

        def compute() -> dict[str, Any]:
            tasks = [("stsb", str(self.plan.data(STS_TEST)))]
            tasks += [(kind, str(self.plan.data(rel))) for kind, rel in WORD_TASKS]
            learn_on = [str(self.plan.data(rel)) for rel in LEARN_ON]
            fit = None
            if self.plan.fit_sentences is not None:
                train = load_stsb(self.plan.data(STS_TRAIN))
                sentences = list(dict.fromkeys([*train.sentences1, *train.sentences2]))
                rng = np.random.default_rng(self.plan.seed)
                take = rng.choice(len(sentences), min(self.plan.fit_sentences, len(sentences)),
                                  replace=False)
                fit = [sentences[i] for i in np.sort(take)]
            out: dict[str, Any] = {}
            for mode in ("inductive", "transductive"):
                res = evaluate(
                    self.model,
                    tasks,
                    transforms=["none", *REPAIRS],
                    layer=None,
                    drop_position_zero=self.causal,
                    fit_on=fit if mode == "inductive" else None,
                    transductive=mode == "transductive",
                    learn_on=learn_on,
                    fit_vocab=self.plan.fit_words,
                    seed=self.plan.seed,
                    progress=self.progress,
                    log=lambda m: self.log(f"    {m}"),
                ).to_dict()
                out[mode] = res
            return out

        return self.step("evaluation", compute)

    def run(self) -> dict[str, Any]:
        """Every step; returns what :func:`isoscope.findings.render` reads for this model."""
        data: dict[str, Any] = {"model": self.model, "family": self.family}
        data["analysis"] = {c: self.analysis(c) for c in self.plan.corpora()}
        data["repairs"] = self.repairs()
        if self.causal:
            data["position_zero"] = self.position_zero()
        if not self.static:
            data["clouds"] = self.clouds()
        data["evaluation"] = self.evaluation()
        return data


def _spread(layers: list[int]) -> list[int]:
    """Four layers spread over depth: the first transformer layer, 1/2, 3/4 and the last."""
    if len(layers) <= 4:
        return list(layers)
    n = len(layers) - 1
    picks = [layers[1], layers[n // 2], layers[(3 * n) // 4], layers[-1]]
    return list(dict.fromkeys(picks))


def collect(
    plan: FindingsPlan,
    work: str | os.PathLike[str],
    *,
    log: Log | None = None,
    progress: bool = False,
    reuse_only: bool = False,
) -> dict[str, Any]:
    """Run (or reuse) every step for every model of ``plan``.

    Parameters
    ----------
    plan : FindingsPlan
    work : path
        Folder for stores and per-step JSON files (resumable).
    log : callable, optional
        Receives one line per step.
    progress : bool
        Progress bars for extraction, analysis and encoding.
    reuse_only : bool
        Only read finished steps; a missing one is an error (for redrawing the page).

    Returns
    -------
    dict
        ``{"plan": ..., "models": {name: {...}}, "skipped": {name: reason}}``.
    """
    from isoscope.errors import ModelNotAvailableError

    say = log or (lambda _m: None)
    work = Path(work)
    missing = [p for p in (plan.wikitext_path, plan.data(STS_TEST)) if not Path(p).exists()]
    if missing:
        raise InputError(f"Findings need {missing[0]}; give --data-dir or --wikitext.")
    out: dict[str, Any] = {"plan": plan.to_dict(), "models": {}, "skipped": {}}
    for i, model in enumerate(plan.models):
        say(f"[{i + 1}/{len(plan.models)}] {model} ({plan.family(model)})")
        try:
            out["models"][model] = ModelRun(plan, model, work, say, progress, reuse_only).run()
        except ModelNotAvailableError as exc:
            say(f"  skipped: {exc}")
            out["skipped"][model] = str(exc)
    return out
