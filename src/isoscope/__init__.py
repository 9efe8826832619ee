"""isoscope: measure and repair the geometry of language-model embedding spaces.

The public API is organised as in scanpy / scikit-learn:

- :mod:`isoscope.models` -- encoders that yield every hidden state, and static tables;
- :mod:`isoscope.corpora` -- text corpora (PTB, WikiText, plain text, JSONL);
- :mod:`isoscope.store` -- the on-disk :class:`~isoscope.store.EmbeddingStore`;
- :mod:`isoscope.metrics` -- pure geometry measures;
- :mod:`isoscope.measures` -- the registry of every reported measure;
- :mod:`isoscope.analysis` -- :func:`analyze` and its typed results;
- :mod:`isoscope.transforms` -- isotropy repairs as scikit-learn estimators;
- :mod:`isoscope.evaluate` -- STS, word similarity, analogy and probes.

Submodules are imported lazily so that ``import isoscope`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "EmbeddingStore": ("isoscope.store", "EmbeddingStore"),
    "open_store": ("isoscope.store", "open_store"),
    "load_encoder": ("isoscope.models", "load_encoder"),
    "load_corpus": ("isoscope.corpora", "load_corpus"),
    "extract": ("isoscope.extract", "extract"),
    "analyze": ("isoscope.analysis", "analyze"),
}
_SUBMODULES = {"models", "corpora", "store", "metrics", "measures", "analysis", "transforms", "evaluate",
               "extract", "report"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f"isoscope.{name}")
    raise AttributeError(f"module 'isoscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, *_SUBMODULES])


__all__ = ["__version__", *_LAZY]
