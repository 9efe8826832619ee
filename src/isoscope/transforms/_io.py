"""Save and load fitted repairs as one safetensors file with a JSON header (no pickle)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from isoscope._jsonio import parse_json, write_atomic
from isoscope.errors import InputError
from isoscope.transforms._base import IsotropyTransform

_FORMAT = "isoscope-transform"
#: Format version written in every saved repair; :func:`load_transform` reads only these.
_FORMAT_VERSION = 1
_READABLE_VERSIONS = (1,)
_META_KEY = "isoscope_transform"


def _classes() -> dict[str, type[IsotropyTransform]]:
    from isoscope.transforms._registry import REGISTRY

    return {entry.estimator.__name__: entry.estimator for entry in REGISTRY.values()}


def _jsonable(value: Any) -> Any:
    # Not isoscope._jsonio.clean_json: parameters such as ``n_components=(2, 3)`` must load back
    # as the tuples they were (sklearn's get_params/clone compare them), so tuples are tagged
    # here and _from_json restores them, where clean_json would turn them into lists.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [_jsonable(v) for v in value]}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(v) for v in value["__tuple__"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _isoscope_version() -> str:
    from isoscope import __version__

    return __version__


def _check_version(path: Path, header: dict[str, Any]) -> None:
    """Refuse, in one sentence, a repair file of a format version this isoscope cannot read."""
    version = header.get("format_version")
    if version is None:
        raise InputError(f"{path} records no format_version, so it is not a transform file isoscope wrote.")
    if isinstance(version, int) and not isinstance(version, bool) and version in _READABLE_VERSIONS:
        return
    writer = header.get("isoscope_version")
    by = f"; it was written by isoscope {writer}" if isinstance(writer, str) and writer else ""
    readable = ", ".join(str(v) for v in _READABLE_VERSIONS)
    raise InputError(
        f"{path} is a transform file of format version {version!r}, which isoscope {_isoscope_version()} "
        f"cannot read (it reads {readable}){by}."
    )


def save_transform(est: IsotropyTransform, path: str | Path) -> Path:
    """Save a fitted repair to ``path`` (a ``.safetensors`` file).

    The fitted arrays are stored as float64/int64 tensors; the class name, parameters,
    scalar fitted attributes and ``fit_info_`` (what it was fitted on) go into the file's
    JSON metadata header, readable with any safetensors tool.

    Parameters
    ----------
    est : IsotropyTransform
        A fitted isoscope repair.
    path : str or Path
        Output file; parent folders are created.

    Returns
    -------
    Path
        The written file.
    """
    from safetensors.numpy import save_file
    from sklearn.utils.validation import check_is_fitted

    if type(est).__name__ not in _classes():
        raise InputError(f"Only isoscope repairs can be saved, got {type(est).__name__}.")
    check_is_fitted(est)
    tensors = {name: np.ascontiguousarray(getattr(est, name)) for name in est._array_attrs}
    header = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "isoscope_version": _isoscope_version(),
        "class": type(est).__name__,
        "params": _jsonable(est.get_params()),
        "attributes": _jsonable({name: getattr(est, name) for name in est._json_attrs}),
        "n_features_in": int(est.n_features_in_),
        "feature_names_in": (
            [str(f) for f in est.feature_names_in_] if hasattr(est, "feature_names_in_") else None
        ),
        "fit_info": _jsonable(getattr(est, "fit_info_", {})),
    }
    try:
        meta = json.dumps(header)
    except TypeError as exc:
        raise InputError(
            f"The parameters or fit information of the transform are not JSON-serialisable ({exc})."
        ) from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata={_META_KEY: meta}))


def load_transform(path: str | Path) -> IsotropyTransform:
    """Load a repair written by :func:`save_transform`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    IsotropyTransform
        The fitted estimator; ``fit_info_`` says what it was fitted on.

    Raises
    ------
    InputError
        One sentence when the file is missing, not a transform, of another format version
        (naming the isoscope that wrote it) or damaged.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(f"No saved transform at {path}.")
    try:
        with safe_open(str(path), framework="numpy") as fh:
            meta = (fh.metadata() or {}).get(_META_KEY)
            arrays = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises several private error types
        raise InputError(f"{path} is not a readable safetensors transform file ({exc}).") from None
    header = parse_json(meta, f"The header of the transform file {path}") if meta else None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise InputError(f"{path} is a safetensors file but not an isoscope transform.")
    _check_version(path, header)
    try:
        return _build(path, header, arrays)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"The header of the transform file {path} is damaged ({type(exc).__name__}: {exc}).") from None


def _build(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> IsotropyTransform:
    cls = _classes().get(header["class"])
    if cls is None:
        raise InputError(f"{path} holds an unknown transform class {header['class']!r}.")
    est = cls(**_from_json(header["params"]))
    for name in cls._array_attrs:
        if name not in arrays:
            raise InputError(f"{path} lacks the fitted array {name!r}.")
        setattr(est, name, arrays[name])
    for name, value in _from_json(header["attributes"]).items():
        setattr(est, name, value)
    est.n_features_in_ = int(header["n_features_in"])
    if header.get("feature_names_in") is not None:
        est.feature_names_in_ = np.asarray(header["feature_names_in"], dtype=object)
    est.fit_info_ = _from_json(header.get("fit_info") or {})
    return est
