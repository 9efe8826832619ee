"""The pipeline helpers findings relies on: learned removal's inputs, static-table evaluation."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from isoscope.errors import InputError
from isoscope.pipeline import RunSettings, evaluate_tasks, learning_inputs

WORDS = [f"w{i}" for i in range(12)]


def _table(root: Path) -> Path:
    rng = np.random.default_rng(0)
    path = root / "table.txt"
    path.write_text("\n".join(f"{w} " + " ".join(f"{v:.4f}" for v in rng.normal(size=5))
                              for w in WORDS) + "\n")
    return path


def _pairs(root: Path, name: str, pairs: list[tuple[str, str, float]]) -> Path:
    path = root / name
    path.write_text("\n".join(f"{a}\t{b}\t{g}" for a, b, g in pairs) + "\n")
    return path


def test_learning_inputs_of_a_static_table(tmp_path: Path) -> None:
    table = _table(tmp_path)
    rows = {w: np.asarray(line.split()[1:], dtype=float)
            for w, line in zip(WORDS, table.read_text().splitlines(), strict=True)}
    train = _pairs(tmp_path, "train.txt", [("w0", "w1", 0.0), ("W2", "w3", 5.0),
                                          ("w4", "w5", 10.0), ("w6", "w7", 2.5),
                                          ("w0", "unknown", 1.0)])
    evaluated = _pairs(tmp_path, "eval.txt", [("w7", "w6", 3.0), ("w8", "w9", 1.0)])
    inputs = learning_inputs(str(table), 0, [train], [evaluated])
    A, B, y = inputs["pairs"]
    # (w6, w7) is evaluated (in the other order) and dropped; (w0, unknown) has no vector;
    # W2 is found case-insensitively; scores are rescaled to [0, 1] per file
    np.testing.assert_allclose(A, np.stack([rows["w0"], rows["w2"], rows["w4"]]), atol=1e-6)
    np.testing.assert_allclose(B, np.stack([rows["w1"], rows["w3"], rows["w5"]]), atol=1e-6)
    np.testing.assert_allclose(y, [0.0, 0.5, 1.0])
    with pytest.raises(InputError, match="cannot also train"):
        learning_inputs(str(table), 0, [train], [train])


def test_evaluate_tasks_on_a_static_table_passes_no_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A static table's store has one layer; evaluate refuses any layer for a static table,
    # so the pipeline must not pass the store's layer (isoscope run -m glove-50d -t ... failed).
    monkeypatch.setenv("ISOSCOPE_CACHE", str(tmp_path / "cache"))
    table = _table(tmp_path)
    task = _pairs(tmp_path, "ws.txt", [(WORDS[i], WORDS[i + 1], float(i)) for i in range(11)])
    store = SimpleNamespace(model_type="static", layers=[0], manifest={})
    settings = RunSettings(model=str(table), tasks=[("wordsim", str(task))], transforms=["abtt"])
    out = evaluate_tasks(settings, store)
    scored = {r["transform"] for r in out["results"] if r.get("spearman") is not None}
    assert scored == {"none", "abtt"}
