"""Findings runs its steps through the public pipeline (no second copy of the main job)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import isoscope.analysis as analysis_module
import isoscope.pipeline as pipeline
from isoscope.findings import REPAIRS, FindingsPlan
from isoscope.findings._collect import ModelRun
from isoscope.pipeline import RunSettings

#: STS-B training rows whose sentences repeat (as in the real file).
_TRAIN = [("a cat sat .", "a dog sat ."), ("a cat sat .", "the sun rose ."),
          ("the sun rose .", "a dog sat ."), ("rain fell .", "rain fell .")]


def _data(root: Path) -> Path:
    data = root / "data"
    (data / "stsbenchmark").mkdir(parents=True)
    lines = [f"main-captions\tMSRvid\t2012\t{i:04d}\t{2.5:.3f}\t{a}\t{b}"
             for i, (a, b) in enumerate(_TRAIN)]
    (data / "stsbenchmark" / "sts-train.csv").write_text("\n".join(lines) + "\n")
    return data


def _plan(data: Path, **changes: Any) -> FindingsPlan:
    return FindingsPlan(models=("m",), data_dir=str(data), max_tokens=400, sample=50,
                        families=(("m", "GPT family"),), **changes)


def test_fit_sentences_keep_duplicates(tmp_path: Path) -> None:
    data = _data(tmp_path)
    every = [a for a, _ in _TRAIN] + [b for _, b in _TRAIN]
    # all sentences drawn: every one of the 8, repeats included (the papers fit on them all)
    run = ModelRun(_plan(data, fit_sentences=100), "m", tmp_path / "w", print, False)
    assert run.fit_sentences() == every
    assert len(set(every)) == 4
    # a sample is drawn from all 8 rows, seeded, in file order
    got = ModelRun(_plan(data, fit_sentences=5), "m", tmp_path / "w", print, False).fit_sentences()
    rng = np.random.default_rng(0)
    assert got == [every[i] for i in np.sort(rng.choice(8, 5, replace=False))]
    assert ModelRun(_plan(data), "m", tmp_path / "w", print, False).fit_sentences() is None


class _Store:
    layers = [0, 1, 2]
    hidden_size = 4
    n_tokens = 40
    model_type = "decoder"


def test_steps_go_through_the_public_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _data(tmp_path)
    calls: dict[str, list[Any]] = {"extract": [], "measure": [], "learn": [], "evaluate": [],
                                   "repairs": []}
    pairs = (np.ones((3, 4)), np.zeros((3, 4)), np.arange(3.0))

    def extract_store(settings: RunSettings, folder: Path, *, progress: bool = False) -> _Store:
        calls["extract"].append((settings, Path(folder)))
        return _Store()

    def measure(store: Any, settings: RunSettings, **kw: Any) -> Any:
        calls["measure"].append((settings, kw))
        fit = "transductive" if settings.transductive else "inductive"
        return SimpleNamespace(to_dict=lambda: {"layers": [{"layer": 2}]},
                               transforms=[{"name": t, "fit": fit} for t in settings.transforms])

    def evaluate_transforms(store: Any, specs: list[str], **kw: Any) -> list[dict]:
        calls["repairs"].append((list(specs), kw))
        fit = "transductive" if kw["transductive"] else "inductive"
        return [{"name": t, "fit": fit} for t in specs]

    def learning_inputs(model: str, layer: int, learn_on: Any, exclude: Any, **kw: Any) -> dict:
        calls["learn"].append((model, layer, [Path(p).name for p in learn_on],
                               [Path(p).name for p in exclude], kw))
        return {"pairs": pairs}

    def evaluate_tasks(settings: RunSettings, store: Any, **kw: Any) -> dict:
        calls["evaluate"].append((settings, kw))
        return {"results": [], "settings": {}}

    for name, fn in [("extract_store", extract_store), ("measure", measure),
                     ("learning_inputs", learning_inputs), ("evaluate_tasks", evaluate_tasks)]:
        monkeypatch.setattr(pipeline, name, fn)
    monkeypatch.setattr(analysis_module, "evaluate_transforms", evaluate_transforms)
    plan = _plan(data, fit_sentences=3, fit_words=7)
    run = ModelRun(plan, "m", tmp_path / "work", lambda _m: None, False)

    analysis = run.analysis("wikitext")
    repairs = run.repairs()
    run.evaluation()

    # one store per corpus, float32 for a causal model, made by the pipeline's extract step
    ((settings, folder),) = calls["extract"]
    assert (settings.model, settings.dtype, settings.max_tokens) == ("m", "float32", 400)
    assert settings.corpus == plan.corpora()["wikitext"]
    assert folder == tmp_path / "work" / "m" / "wikitext" / "store-400-float32"
    # the analysis is the pipeline's measure step with findings' settings
    ((s, kw),) = calls["measure"]  # the repairs do not analyse the last layer again
    assert (s.sample, s.seed, s.drop_position_zero, s.transforms) == (50, 0, True, [])
    assert s.analysis == {"frequency_source": "zipf"} and kw.get("layers") is None
    assert analysis["layers"] == [{"layer": 2}] and analysis["corpus"] == "wikitext"
    # repairs: the pipeline's repair evaluation on the last layer, inductive then transductive,
    # with the analysis' sample, seed, position-0 rule and settings
    assert [(specs, k["transductive"], k["layers"], k["fit_inputs"]["pairs"] is pairs,
             k["sample"], k["seed"], k["drop_position_zero"], k["frequency_source"])
            for specs, k in calls["repairs"]] == [
        (list(REPAIRS), False, [2], True, 50, 0, True, "zipf"),
        (list(REPAIRS), True, [2], True, 50, 0, True, "zipf")]
    ((model, layer, learn_on, exclude, kw),) = calls["learn"]
    assert (model, layer, kw) == ("m", 2, {"drop_position_zero": True})
    assert "EN-WS-353-ALL.txt" in exclude and "EN-RG-65.txt" in learn_on
    assert not set(learn_on) & set(exclude)
    assert [(e["name"], e["fit"]) for e in repairs["transforms"]] == (
        [(r, "inductive") for r in REPAIRS] + [(r, "transductive") for r in REPAIRS])
    assert repairs["learned_pairs"]["n_pairs"] == 3
    # evaluation: the pipeline's evaluate step, inductive on the drawn sentences, then transductive
    (ind, kw_ind), (trans, kw_trans) = calls["evaluate"]
    assert (ind.transductive, trans.transductive) == (False, True)
    assert ind.transforms == list(REPAIRS) and [n for n, _ in ind.tasks] == ["stsb", "wordsim",
                                                                            "wordsim"]
    assert kw_ind["fit_on"] == run.fit_sentences() and len(kw_ind["fit_on"]) == 3
    assert kw_trans["fit_on"] is None
    assert kw_ind["fit_vocab"] == 7 and len(kw_ind["learn_on"]) == 5

    # a second pass reuses every step file and calls nothing
    for v in calls.values():
        v.clear()
    again = ModelRun(plan, "m", tmp_path / "work", lambda _m: None, False)
    assert again.analysis("wikitext") == analysis and again.repairs() == repairs
    again.evaluation()
    assert not any(calls.values())
