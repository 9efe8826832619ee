"""Registry of the repairs by short name and the ``name:key=value,...`` spec parser."""

from __future__ import annotations

from typing import Any

from isoscope.errors import InputError
from isoscope.transforms._base import IsotropyTransform
from isoscope.transforms._cluster import ClusterIsotropy
from isoscope.transforms._learned import LearnedRemoval
from isoscope.transforms._linear import AllButTheTop, Identity, MeanCenter, Standardize
from isoscope.transforms._whitening import Whitening, ZipfianWhitening

#: name -> (class, one-line description)
REGISTRY: dict[str, tuple[type[IsotropyTransform], str]] = {
    "none": (Identity, "no repair (baseline)"),
    "center": (MeanCenter, "subtract the mean vector"),
    "abtt": (
        AllButTheTop,
        "all-but-the-top: centre, remove top D principal directions (Mu & Viswanath 2018)",
    ),
    "cluster": (
        ClusterIsotropy,
        "k-means clusters, per-cluster centring and top-D removal (Rajaee & Pilehvar 2021)",
    ),
    "learned": (
        LearnedRemoval,
        "weighted removal of top-D directions, weights learned on word pairs (Liang et al. 2021)",
    ),
    "whiten": (Whitening, "PCA whitening to identity covariance, optional k dims (Su et al. 2021)"),
    "zipf": (ZipfianWhitening, "whitening under word-frequency weights (Yokoi et al. 2024)"),
    "standardize": (
        Standardize,
        "per-dimension z-scoring against rogue dimensions (Timkey & van Schijndel 2021)",
    ),
}


def available_transforms() -> dict[str, str]:
    """Names accepted by :func:`from_spec`, with one-line descriptions.

    Returns
    -------
    dict of str to str
    """
    return {name: desc for name, (_, desc) in REGISTRY.items()}


def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text.strip()


def from_spec(spec: str) -> IsotropyTransform:
    """Build an unfitted repair from a spec such as ``"abtt:n_components=3"``.

    The spec is a registry name (see :func:`available_transforms`), optionally followed by
    ``:`` and comma-separated ``key=value`` parameters; values are read as int, float,
    ``none``, ``true``/``false`` or text.

    Parameters
    ----------
    spec : str
        For example ``"center"``, ``"cluster:n_clusters=27,n_components=12"``,
        ``"whiten:n_components=256"``.

    Returns
    -------
    IsotropyTransform
        An unfitted scikit-learn estimator.

    Raises
    ------
    InputError
        For an unknown name, an unknown parameter or a malformed spec.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(
            f"A transform spec must be a non-empty string such as 'abtt', got {spec!r}."
        )
    name, _, arg_text = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in REGISTRY:
        raise InputError(f"Unknown transform {name!r}; choose one of: {', '.join(REGISTRY)}.")
    cls = REGISTRY[name][0]
    allowed = sorted(cls().get_params())
    params: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in arg_text.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key or not value.strip():
            raise InputError(
                f"Transform parameter {item!r} in {spec!r} is not of the form key=value."
            )
        if key not in allowed:
            raise InputError(
                f"Unknown parameter {key!r} for transform {name!r}; it takes: "
                f"{', '.join(allowed) or 'no parameters'}."
            )
        params[key] = _parse_value(value)
    return cls(**params)
