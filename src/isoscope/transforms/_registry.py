"""The registry of repairs: one :class:`Repair` entry per repair, the spec parser and the dispatch.

Every consumer (analyze, evaluate, findings, the CLI) builds repairs with :func:`from_spec`
and fits them with :func:`fit_repair`, which passes the extra fit inputs an entry declares
(``pairs`` for the learned removal, ``sample_weight`` for Zipfian whitening) and refuses to
fit a repair whose required input is missing. Adding a repair is one estimator class and one
entry in :data:`REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from isoscope.errors import InputError, IsoscopeError
from isoscope.transforms._base import IsotropyTransform
from isoscope.transforms._cluster import ClusterIsotropy
from isoscope.transforms._learned import LearnedRemoval
from isoscope.transforms._linear import AllButTheTop, Identity, MeanCenter, Standardize
from isoscope.transforms._whitening import Whitening, ZipfianWhitening

#: Citation text of a repair that no paper defines as isoscope implements it.
ISOSCOPE_VARIANT = "isoscope variant"


@dataclass(frozen=True)
class Repair:
    """One registered repair.

    Attributes
    ----------
    name : str
        The spec name (``from_spec("abtt:n_components=3")`` has name ``"abtt"``).
    estimator : type of IsotropyTransform
        The scikit-learn estimator class.
    description : str
        One line saying what the repair does.
    citation : str
        The paper that defines it, or ``"isoscope variant"``.
    fit_inputs : tuple of str
        Keyword arguments of ``fit`` beyond ``X`` that the repair cannot be fitted without
        (``("pairs",)`` for the learned removal).
    optional_fit_inputs : tuple of str
        Keyword arguments of ``fit`` it uses when given (``("sample_weight",)`` for Zipfian
        whitening) and does without otherwise.
    supply : mapping of str to str
        For each input, a clause saying how a user supplies it (used in error messages).
    """

    name: str
    estimator: type[IsotropyTransform]
    description: str
    citation: str
    fit_inputs: tuple[str, ...] = ()
    optional_fit_inputs: tuple[str, ...] = ()
    supply: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        missing = [k for k in (*self.fit_inputs, *self.optional_fit_inputs) if k not in self.supply]
        if missing:  # a programming error in an entry, caught by the registry tests
            raise TypeError(f"Repair {self.name!r} does not say how to supply {missing}.")

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every extra fit input, required ones first."""
        return (*self.fit_inputs, *self.optional_fit_inputs)

    def defaults(self) -> dict[str, Any]:
        """The estimator's default parameters.

        Returns
        -------
        dict
        """
        return self.estimator().get_params()


_PAIRS_HOW = (
    "training word pairs (A vectors, B vectors, human scores) in the space of X, as "
    "word-similarity files that are not evaluated (--learn-on PATH) or as "
    "inputs={'pairs': (A, B, scores)} in Python"
)
_WEIGHT_HOW = (
    "one non-negative word frequency per row of X (such as a store's word_count) as "
    "inputs={'sample_weight': weights}; without it every row counts once, the Zipfian "
    "expectation for rows sampled per token"
)

#: name -> entry, in the order the CLI lists them.
REGISTRY: dict[str, Repair] = {
    entry.name: entry
    for entry in (
        Repair("none", Identity, "no repair (baseline)", ISOSCOPE_VARIANT),
        Repair(
            "center",
            MeanCenter,
            "subtract the mean vector",
            "Mu & Viswanath, ICLR 2018 (the centring step of all-but-the-top)",
        ),
        Repair(
            "abtt",
            AllButTheTop,
            "all-but-the-top: centre, remove top D principal directions (Mu & Viswanath 2018)",
            "Mu & Viswanath, ICLR 2018",
        ),
        Repair(
            "cluster",
            ClusterIsotropy,
            "k-means clusters, per-cluster centring and top-D removal (Rajaee & Pilehvar 2021)",
            "Rajaee & Pilehvar, ACL 2021",
        ),
        Repair(
            "learned",
            LearnedRemoval,
            "weighted removal of top-D directions, weights learned on word pairs (Liang et al. 2021)",
            "Liang et al., ICANN 2021",
            fit_inputs=("pairs",),
            supply={"pairs": _PAIRS_HOW},
        ),
        Repair(
            "whiten",
            Whitening,
            "PCA whitening to identity covariance, optional k dims (Su et al. 2021)",
            "Su et al., 2021 (arXiv:2103.15316)",
        ),
        Repair(
            "zipf",
            ZipfianWhitening,
            "whitening under word-frequency weights (Yokoi et al. 2024)",
            "Yokoi et al., NeurIPS 2024",
            optional_fit_inputs=("sample_weight",),
            supply={"sample_weight": _WEIGHT_HOW},
        ),
        Repair(
            "standardize",
            Standardize,
            "per-dimension z-scoring against rogue dimensions (Timkey & van Schijndel 2021)",
            "Timkey & van Schijndel, EMNLP 2021",
        ),
    )
}


def available_transforms() -> dict[str, str]:
    """Names accepted by :func:`from_spec`, with one-line descriptions.

    Returns
    -------
    dict of str to str
    """
    return {name: entry.description for name, entry in REGISTRY.items()}


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


def _spec_text(spec: Any) -> str:
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(
            f"A transform spec must be a non-empty string such as 'abtt', got {spec!r}."
        )
    return spec.strip()


def repair_for(spec: str | IsotropyTransform) -> Repair:
    """The registry entry of a spec (looked up by its name, never by the whole spec).

    Parameters
    ----------
    spec : str or IsotropyTransform
        A spec such as ``"learned:n_components=2"`` (entry ``learned``), a bare name, or an
        isoscope repair (its ``spec_name``).

    Returns
    -------
    Repair

    Raises
    ------
    InputError
        For an unknown name or something that is not an isoscope repair.
    """
    if isinstance(spec, IsotropyTransform):
        name = type(spec).spec_name
    else:
        name = _spec_text(spec).partition(":")[0].strip().lower()
    entry = REGISTRY.get(name)
    if entry is None:
        raise InputError(f"Unknown transform {name!r}; choose one of: {', '.join(REGISTRY)}.")
    return entry


def required_inputs(spec: str | IsotropyTransform) -> tuple[str, ...]:
    """The extra fit inputs a spec cannot be fitted without (``("pairs",)`` for ``learned``).

    Parameters
    ----------
    spec : str or IsotropyTransform

    Returns
    -------
    tuple of str
    """
    return repair_for(spec).fit_inputs


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
    text = _spec_text(spec)
    entry = repair_for(text)
    arg_text = text.partition(":")[2]
    allowed = sorted(entry.defaults())
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
                f"Unknown parameter {key!r} for transform {entry.name!r}; it takes: "
                f"{', '.join(allowed) or 'no parameters'}."
            )
        params[key] = _parse_value(value)
    return entry.estimator(**params)


def _one_sentence(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.rstrip(".").replace(". ", "; ")


def fit_repair(
    spec: str | IsotropyTransform,
    X: Any,
    inputs: Mapping[str, Any] | None = None,
    *,
    random_state: int | None = None,
) -> IsotropyTransform:
    """Fit a repair on ``X`` with the extra fit inputs its registry entry declares.

    This is the one way isoscope fits a repair. The entry is found by the spec's name, so
    ``"learned:n_components=2"`` gets its word pairs exactly as ``"learned"`` does.

    Parameters
    ----------
    spec : str or IsotropyTransform
        A spec for :func:`from_spec`, or an unfitted isoscope repair (fitted in place).
    X : array-like of shape (n_samples, n_features)
        The fit vectors.
    inputs : mapping of str to object, optional
        Extra fit inputs by name, e.g. ``{"pairs": (A, B, scores)}`` or
        ``{"sample_weight": counts}``. Inputs the repair does not declare are ignored, so one
        mapping can serve every repair; a value of None counts as not given.
    random_state : int, optional
        Seed for repairs that take one (``cluster``) built from a spec string; a
        ``random_state`` set in the spec wins, and a given estimator keeps its own.

    Returns
    -------
    IsotropyTransform
        The fitted estimator.

    Raises
    ------
    InputError
        When a required input is missing (naming it and how to supply it), or when the
        estimator rejects ``X``, an input or a parameter; always one sentence.
    """
    entry = repair_for(spec)
    if isinstance(spec, IsotropyTransform):
        est, label, seeded = spec, entry.name, True  # a given estimator keeps its own seed
    else:
        est, label = from_spec(spec), _spec_text(spec)
        seeded = "random_state" in label.partition(":")[2]
    if random_state is not None and not seeded and "random_state" in est.get_params():
        est.set_params(random_state=random_state)
    given = {k: v for k, v in (inputs or {}).items() if v is not None}
    for name in entry.fit_inputs:
        if name not in given:
            raise InputError(
                f"The repair {label!r} needs the fit input {name!r}, which was not given: "
                f"supply {entry.supply[name]}."
            )
    kwargs = {name: given[name] for name in entry.inputs if name in given}
    try:
        est.fit(X, **kwargs)
    except IsoscopeError:
        raise
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"The repair {label!r} could not be fitted: {_one_sentence(exc)}."
        ) from None
    return est
