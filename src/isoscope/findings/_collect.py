"""Run isoscope over every model and corpus of a :class:`FindingsPlan` and keep the outputs.

Each step writes one JSON file under ``work/<model>/`` stamped with the settings it depends
on, so an interrupted run resumes where it stopped and a finished one is reused as is. The
steps that ``isoscope run`` also does (extraction, the per-layer analysis, repairs measured
before and after, task evaluation) go through the public steps of :mod:`isoscope.pipeline`
with a :class:`~isoscope.pipeline.RunSettings` each, so findings runs exactly that code.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from isoscope._jsonio import clean_json, read_json, write_json
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
STEPS_VERSION = 5

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


def _cached(path: Path, stamp: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = read_json(path, "findings step")
    except InputError:  # unreadable or damaged: the step runs again
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
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, clean_json(data), indent=1)
        self.log(f"  {name}: {data['seconds']:.0f} s")
        return read_json(path, "findings step")

    def settings(self, corpus: str = "wikitext", **changes: Any) -> Any:
        """The :class:`~isoscope.pipeline.RunSettings` of this model's steps on ``corpus``."""
        from isoscope.pipeline import RunSettings

        base = RunSettings(
            model=self.model,
            corpus=self.plan.corpora()[corpus],
            max_tokens=self.plan.max_tokens,
            # Causal models carry massive activations (Gemma-3 exceeds float16's 65,504).
            dtype="float32" if self.causal else "float16",
            sample=self.plan.sample,
            seed=self.plan.seed,
            layer="last",
            drop_position_zero=self.causal,
            analysis={"frequency_source": "zipf"},
        )
        return dataclasses.replace(base, **changes)

    def store(self, corpus: str) -> Any:
        """Extract (or reuse) the store of one corpus (:func:`isoscope.pipeline.extract_store`)."""
        from isoscope.pipeline import extract_store

        if corpus not in self._stores:
            settings = self.settings(corpus)
            size = self.plan.max_tokens or "all"
            self._stores[corpus] = extract_store(
                settings, self.dir / corpus / f"store-{size}-{settings.dtype}",
                progress=self.progress)
        return self._stores[corpus]

    # -- steps ---------------------------------------------------------------------------

    def analysis(self, corpus: str) -> dict[str, Any]:
        """Every measure on every layer of one corpus (:func:`isoscope.pipeline.measure`)."""
        from isoscope.pipeline import measure

        def compute() -> dict[str, Any]:
            store = self.store(corpus)
            res = measure(store, self.settings(corpus), progress=self.progress)
            return {"corpus": corpus, "corpus_spec": self.plan.corpora()[corpus],
                    "width": int(store.hidden_size), "n_tokens": int(store.n_tokens),
                    **res.to_dict()}

        return self.step(f"analysis-{corpus}", compute)

    def repairs(self) -> dict[str, Any]:
        """I(V) and the other measures before and after each repair, both fits, last layer.

        Runs :func:`isoscope.analysis.evaluate_transforms` (the repairs half of
        :func:`isoscope.pipeline.measure`, with the same settings) once inductively and once
        transductively; the last layer's own measures are the analysis step's, not computed
        again. Learned removal's word pairs come from :func:`isoscope.pipeline.learning_inputs`.
        """
        from isoscope.analysis import evaluate_transforms
        from isoscope.pipeline import learning_inputs, resolve_layer

        def compute() -> dict[str, Any]:
            store = self.store("wikitext")
            layer = resolve_layer("last", store.layers)
            inputs = learning_inputs(
                self.model, layer, [self.plan.data(rel) for rel in LEARN_ON],
                [self.plan.data(rel) for _, rel in WORD_TASKS],
                drop_position_zero=self.causal)
            s = self.settings("wikitext", transforms=list(REPAIRS))
            entries = []
            for transductive in (False, True):
                entries += evaluate_transforms(
                    store, s.transforms, layers=[layer], transductive=transductive,
                    sample=s.sample, seed=s.seed, fit_inputs=inputs,
                    drop_position_zero=s.drop_position_zero, **s.analysis)
            how = ("rows of the static table" if self.static
                   else f"each word encoded alone, mean-pooled at hidden state {layer}")
            source = {"files": [Path(p).name for p in LEARN_ON],
                      "n_pairs": len(inputs["pairs"][2]), "vectors": how}
            return {"layer": layer, "corpus": "wikitext", "learned_pairs": source,
                    "transforms": entries}

        return self.step("repairs", compute)

    def position_zero(self) -> dict[str, Any]:
        """Causal models with the first position kept: clusters, massive activations, sinks.

        Clusters (four layers spread over depth) are k-means on a seeded sample of the
        layer's distinct vectors, drawn as :func:`isoscope.analysis.analyze` draws it, with
        each cluster's share of position-0 tokens. Every layer gets the registry's
        ``massive_activations`` and ``sink_share`` groups with position 0 and special
        tokens kept (a BOS token is the first position): whole-layer moments of every
        token, the seeded sample for the median and the shares.
        """
        from isoscope.analysis import AnalysisSettings, Source
        from isoscope.analysis._source import layer_pass, sample_rows
        from isoscope.metrics import kmeans_silhouette

        def compute() -> dict[str, Any]:
            store = self.store("wikitext")
            src = Source(store)
            tok = store.tokens(columns=["position", "token"])
            positions = tok["position"].to_numpy()
            # k-means as the analysis clusters (the same k range, restarts and iterations).
            a = AnalysisSettings(sample=self.plan.sample, seed=self.plan.seed)
            candidates = src.candidates(include_special=False, drop_position_zero=False)
            rows_out = []
            for layer in _spread(store.layers):
                found = layer_pass(src, layer, candidates, chunk_rows=a.chunk_rows,
                                   moments=False, distinct=True).distinct_candidates
                assert found is not None
                rows = sample_rows(found, self.plan.sample, self.plan.seed)
                res = kmeans_silhouette(src.rows(layer, rows), (a.k_range[0], a.k_range[1]),
                                        silhouette_sample=a.silhouette_sample,
                                        seed=self.plan.seed, n_init=a.kmeans_n_init,
                                        min_mms=a.no_cluster_mms, backend=a.kmeans_backend,
                                        max_iter=a.kmeans_max_iter)
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
            return {"corpus": "wikitext", "include_special": False, "distinct": True,
                    "layers": rows_out,
                    "massive": _massive_layers(src, positions, tok["token"], a)}

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

    def fit_sentences(self) -> list[str] | None:
        """The STS-B training sentences repairs are fitted on inductively (None: all of them).

        Every sentence of both columns counts, duplicates kept (as the papers and
        ``isoscope evaluate`` fit); ``fit_sentences`` of them are drawn, seeded, in file order.
        """
        from isoscope.evaluate import load_stsb

        if self.plan.fit_sentences is None:
            return None
        train = load_stsb(self.plan.data(STS_TRAIN))
        sentences = [*train.sentences1, *train.sentences2]
        rng = np.random.default_rng(self.plan.seed)
        take = rng.choice(len(sentences), min(self.plan.fit_sentences, len(sentences)),
                          replace=False)
        return [sentences[i] for i in np.sort(take)]

    def evaluation(self) -> dict[str, Any]:
        """STS-B and word similarity before and after each repair, inductive and transductive
        (:func:`isoscope.pipeline.evaluate_tasks`)."""
        from isoscope.pipeline import evaluate_tasks

        def compute() -> dict[str, Any]:
            tasks = [("stsb", str(self.plan.data(STS_TEST)))]
            tasks += [(kind, str(self.plan.data(rel))) for kind, rel in WORD_TASKS]
            learn_on = [str(self.plan.data(rel)) for rel in LEARN_ON]
            fit = self.fit_sentences()
            store = self.store("wikitext")
            out: dict[str, Any] = {}
            for mode in ("inductive", "transductive"):
                transductive = mode == "transductive"
                settings = self.settings("wikitext", tasks=tasks, transforms=list(REPAIRS),
                                         transductive=transductive)
                out[mode] = evaluate_tasks(
                    settings, store,
                    fit_on=None if transductive else fit,
                    learn_on=learn_on,
                    fit_vocab=self.plan.fit_words,
                    progress=self.progress,
                    log=lambda m: self.log(f"    {m}"),
                )
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


#: Keys of the registry's massive-activation and sink groups kept per layer.
_MASSIVE_GROUPS = ("massive_activations", "sink_share")


def _massive_layers(src: Any, positions: np.ndarray, tokens: Any, a: Any) -> dict[str, Any]:
    """The registry's massive-activation and sink measures of every layer, position 0 kept.

    Special tokens are kept too (a BOS token is position 0); moments stream every such
    token, the seeded sample gives the median |a| and the shares.
    """
    from isoscope.analysis._source import layer_pass, sample_rows
    from isoscope.analysis._suite import layer_data
    from isoscope.measures import REGISTRY, measure_layer

    token = tokens.astype(str).to_numpy()

    def row_info(rows: np.ndarray) -> dict[str, np.ndarray]:
        r = np.asarray(rows, dtype=np.int64)
        return {"token": token[r], "position": positions[r]}

    candidates = src.candidates(include_special=True, drop_position_zero=False)
    rows = sample_rows(candidates, a.sample, a.seed)
    groups = [REGISTRY.group(g) for g in _MASSIVE_GROUPS]
    out = []
    for layer in src.layers:
        lp = layer_pass(src, layer, candidates, chunk_rows=a.chunk_rows, moments=True,
                        distinct=False)
        data = layer_data(src.rows(layer, rows), a, moments=lp.moments,
                          positions=positions[rows], row_info=row_info, rows=rows)
        values = measure_layer(data, groups)
        values.pop("details", None)
        out.append({"layer": int(layer), **values})
    return {"include_special": True, "drop_position_zero": False,
            "n_sample": int(rows.size), "n_tokens": int(candidates.size), "layers": out}


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
