"""Safe loading: no pickle anywhere, no model code run unless asked, safetensors preferred, and
nothing a store's manifest names can reach outside the store folder.

Hostile files here carry a payload that writes a marker file when unpickled or imported; every
test checks that the marker never appears.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import isoscope
from isoscope.cli import app
from isoscope.errors import InputError, ModelNotAvailableError, StoreError
from isoscope.store import MANIFEST, open_store, write_store

runner = CliRunner()
SRC = Path(isoscope.__file__).parent
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
FORBIDDEN_CALLS = {"torch.load", "pd.read_pickle", "pandas.read_pickle"}


def _sources() -> list[Path]:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20, f"isoscope sources not found under {SRC}"
    return files


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def test_source_never_unpickles() -> None:
    problems: list[str] = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(SRC.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                problems += [f"{where}:{node.lineno} imports {a.name}" for a in node.names
                             if a.name.split(".")[0] in FORBIDDEN_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
                problems.append(f"{where}:{node.lineno} imports from {node.module}")
            elif isinstance(node, ast.Call):
                name = _dotted(node.func)
                keywords = {k.arg: k.value for k in node.keywords}
                if name in FORBIDDEN_CALLS or name.endswith(".read_pickle"):
                    problems.append(f"{where}:{node.lineno} calls {name}")
                if name in {"np.load", "numpy.load", "np.save", "numpy.save"}:
                    flag = keywords.get("allow_pickle")
                    if not (isinstance(flag, ast.Constant) and flag.value is False):
                        problems.append(f"{where}:{node.lineno} calls {name} without allow_pickle=False")
                for key in ("trust_remote_code", "weights_only", "use_safetensors"):
                    value = keywords.get(key)
                    bad = {"trust_remote_code": True, "weights_only": False, "use_safetensors": False}[key]
                    if isinstance(value, ast.Constant) and value.value is bad:
                        problems.append(f"{where}:{node.lineno} passes {key}={bad}")
    assert not problems, "\n".join(problems)


def test_cli_defaults_run_no_remote_code() -> None:
    """Every command that loads a model defaults --trust-remote-code to off."""
    import typer.main

    command = typer.main.get_command(app)
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        for param in sub.params:
            if param.name == "trust_remote_code":
                assert param.default is False, name


# ------------------------------------------------------------------------------ payloads
class _Payload:
    """Unpickling this writes ``marker``: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('unpickled')",))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    path = tmp_path / "PAYLOAD-RAN"
    yield path
    assert not path.exists(), "a hostile file's code ran"


def _remote_code_model(source: Path, folder: Path, marker: Path, model_type: str) -> Path:
    shutil.copytree(source, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {"AutoConfig": "payload.Config", "AutoModel": "payload.Model"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "payload.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\n"
        "from transformers import BertConfig, BertModel\n"
        f"class Config(BertConfig):\n    model_type = {model_type!r}\n"
        "class Model(BertModel):\n    config_class = Config\n"
    )
    return folder


def test_model_code_is_not_run_without_the_flag(tiny_bert, corpus_file, tmp_path, marker,
                                                one_sentence) -> None:
    from isoscope.models import load_encoder

    custom = _remote_code_model(tiny_bert, tmp_path / "custom", marker, "payload-model")
    with pytest.raises(ModelNotAvailableError, match="runs only with --trust-remote-code"):
        load_encoder(str(custom))
    r = runner.invoke(app, ["extract", "--model", str(custom), "--corpus", str(corpus_file),
                            "--out", str(tmp_path / "s"), "--no-progress"])
    one_sentence(r, r"ships its own code, which isoscope runs only with --trust-remote-code")
    assert not (tmp_path / "s" / MANIFEST).exists()
    # A known architecture that also names its own code loads with the built-in code.
    known = _remote_code_model(tiny_bert, tmp_path / "known", marker, "bert")
    assert type(load_encoder(str(known)).model).__name__ == "BertModel"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_safetensors_preferred_and_pickle_checkpoints_not_unpickled(tiny_bert, tmp_path, marker) -> None:
    from isoscope.models import load_encoder

    folder = tmp_path / "model"
    shutil.copytree(tiny_bert, folder)
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"weight": _Payload(marker)}))
    encoder = load_encoder(str(folder))  # reads model.safetensors, never the pickle
    assert encoder.hidden_size == 32
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelNotAvailableError, match="never unpickles code"):
        load_encoder(str(folder))


def test_object_arrays_are_refused_without_unpickling(tmp_path, marker, one_sentence) -> None:
    from isoscope.models import load_static

    hostile = tmp_path / "vectors.npy"
    np.save(hostile, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    (tmp_path / "vocab.txt").write_text("word\n")
    with pytest.raises(InputError, match="as a .npy array"):
        load_static(hostile, vocab=tmp_path / "vocab.txt")
    one_sentence(runner.invoke(app, ["analyze", str(hostile), "--no-progress"]), r"\.npy")


def test_saved_transform_that_is_a_pickle_is_refused(tmp_path, marker) -> None:
    from isoscope.transforms import load_transform

    hostile = tmp_path / "repair.safetensors"
    hostile.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(InputError, match="not a readable safetensors transform"):
        load_transform(hostile)


# ------------------------------------------------------------------------------ store confinement
@pytest.fixture
def store(tmp_path: Path):
    X = np.arange(24, dtype=np.float32).reshape(6, 4)
    return write_store(tmp_path / "store", {0: X, 1: X + 1}, {"word": list("abcdef")})


def test_manifest_names_cannot_point_outside_the_store(store, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "layer_001.bin").write_bytes(b"\x00" * 96)
    (outside / "secret.bin").write_bytes(b"\x00" * 96)
    original = json.loads((store.path / MANIFEST).read_text())
    for layers in (["../outside/layer_001"], ["1/../../outside"], [-1], [1.0], [True], [10**9]):
        (store.path / MANIFEST).write_text(json.dumps({**original, "layers": layers}))
        with pytest.raises(StoreError, match=r"is damaged \(layers\[0\] must be (an integer|at least 0|below 100000)"):
            open_store(store.path)
    (store.path / MANIFEST).write_text(json.dumps(original))

    # Links inside the folder that lead out of it are refused too.
    layer = store.path / "layers" / "layer_001.bin"
    layer.unlink()
    layer.symlink_to(outside / "secret.bin")
    with pytest.raises(StoreError, match="points outside the store"):
        open_store(store.path).layer(1)
    shutil.rmtree(store.path / "layers")
    (store.path / "layers").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StoreError, match="points outside the store"):
        open_store(store.path).layer(1)
    # A token table linked out of an otherwise whole store (every open checks the layer files first).
    whole = write_store(tmp_path / "whole", {0: np.zeros((6, 4), np.float32)}, {"word": list("abcdef")})
    tokens = whole.path / "tokens.parquet"
    shutil.copy(tokens, outside / "tokens.parquet")
    tokens.unlink()
    tokens.symlink_to(outside / "tokens.parquet")
    with pytest.raises(StoreError, match="token table .* points outside the store"):
        open_store(whole.path).tokens()


def test_layer_names_come_only_from_integers(store) -> None:
    """Stored files are exactly layers/layer_NNN.bin for the manifest's integer layers."""
    reopened = open_store(store.path)
    assert reopened.layers == [0, 1]
    names = sorted(p.name for p in (store.path / "layers").iterdir())
    assert names == ["layer_000.bin", "layer_001.bin"]
    assert all(os.path.realpath(reopened.layer(i).filename).startswith(os.path.realpath(store.path))
               for i in reopened.layers)
