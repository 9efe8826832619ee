"""Write docs/example.ipynb, the example notebook (outputs cleared).

Run ``python docs/example_notebook.py`` after editing the cells below;
tests/interop/test_notebook.py executes the notebook and checks it is what this script writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat import v4

PATH = Path(__file__).resolve().parent / "example.ipynb"

CELLS: list[tuple[str, str]] = [
    ("markdown", """\
# isoscope in a notebook

Extract the token vectors of the bundled MiniLM over the start of the bundled Penn Treebank,
measure every layer, and draw the report's figures one at a time. Small settings keep it under
a minute on a laptop CPU; raise `max_tokens` and `sample` for real measurements."""),
    ("code", """\
%matplotlib inline
import isoscope
from isoscope import plot

store = isoscope.extract("minilm", "ptb", "example-store", max_tokens=3000, progress=False)
print(store.n_tokens, "tokens,", len(store.layers), "hidden states of size", store.hidden_size)"""),
    ("markdown", """\
Every registered measure on every stored layer: moments from all tokens, the rest from a seeded
sample of 500 tokens (the same rows in every layer); k-means tries 2 to 5 clusters."""),
    ("code", """\
result = isoscope.analyze(store, sample=500, seed=0, k_range=[2, 5], similarity_sample=300,
                          progress=False)
result  # the per-layer table as HTML"""),
    ("markdown", "The same numbers as a pandas DataFrame, one row per layer:"),
    ("code", """\
frame = result.to_frame()
frame[["layer", "s_inter", "isoscore", "effective_rank", "lid_mle", "n_outlier_dimensions"]]"""),
    ("markdown", "The report's figures, one call each (matplotlib figures):"),
    ("code", "plot.layer_curves(result, measures=[\"s_inter\", \"isoscore\", \"effective_rank\"])"),
    ("code", "plot.spectrum(result, n_components=50)"),
    ("code", "plot.token_cloud(store, store.layers[-1], n=500, seed=0)"),
    ("markdown", """\
Vectors you already hold work too: one n x d array (numpy or torch) is one layer, and a list of
them (item i is hidden state i, all with the same n) is measured layer by layer."""),
    ("code", """\
layers = [store.sample(layer, 500, seed=0)[0] for layer in store.layers]
isoscope.analyze(layers, sample=None, k_range=[2, 5], similarity_sample=0,
                 progress=False).to_frame()[
    ["layer", "s_inter", "isoscore", "effective_rank"]]"""),
]


def build() -> nbformat.NotebookNode:
    """The notebook, outputs cleared, kernel python3."""
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    make = {"markdown": v4.new_markdown_cell, "code": v4.new_code_cell}
    nb.cells = [make[kind](text) for kind, text in CELLS]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"  # stable ids: rewriting the notebook gives the same file
    return nb


def main() -> int:
    nb = build()
    nbformat.validate(nb)
    nbformat.write(nb, PATH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
