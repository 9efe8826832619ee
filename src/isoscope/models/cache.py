"""Where isoscope caches derived files (dequantised models, sentence embeddings)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the isoscope cache.

    The cache is ``$ISOSCOPE_CACHE`` if set, else ``$XDG_CACHE_HOME/isoscope``, else
    ``~/.cache/isoscope``.
    """
    root = os.environ.get("ISOSCOPE_CACHE")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) / "isoscope" if xdg else Path.home() / ".cache" / "isoscope"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
