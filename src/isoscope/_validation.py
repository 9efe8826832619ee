"""Shared input checks: arrays of vectors, seeds, layer lists, ``NAME=PATH`` tasks, output paths,
bounded reads and positive counts."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from isoscope.errors import InputError


def check_vectors(
    X: object,
    *,
    name: str = "vectors",
    min_rows: int = 1,
    allow_zero_rows: bool = True,
    dtype: type = np.float64,
) -> np.ndarray:
    """Return ``X`` as a finite 2-D floating array or raise :class:`InputError`.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Vectors, one per row.
    name : str
        Name used in the error message.
    min_rows : int
        Minimum number of rows required.
    allow_zero_rows : bool
        If False, all-zero rows (which have no direction) are rejected.
    dtype : numpy dtype
        Floating dtype of the returned array.

    Returns
    -------
    numpy.ndarray
        The checked array (a copy only when a conversion was needed).
    """
    try:
        arr: np.ndarray = np.asarray(X, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InputError(f"The {name} could not be read as a numeric array ({exc}).") from None
    if arr.ndim != 2:
        raise InputError(f"The {name} must be a 2-D array (n vectors x d dims), got shape {arr.shape}.")
    if arr.shape[1] == 0:
        raise InputError(f"The {name} have zero dimensions.")
    if arr.shape[0] < min_rows:
        raise InputError(f"At least {min_rows} {name} are needed, got {arr.shape[0]}.")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int((~finite.all(axis=1)).sum())
        raise InputError(f"The {name} contain NaN or Inf values in {bad} of {arr.shape[0]} rows.")
    if not allow_zero_rows:
        zero = int((~arr.any(axis=1)).sum())
        if zero:
            raise InputError(
                f"The {name} contain {zero} all-zero rows, which have no direction; drop them first."
            )
    return arr


#: Largest seed: numpy's generators take any non-negative integer, scikit-learn's
#: ``random_state`` (a legacy ``RandomState``) only those below 2**32.
MAX_SEED = 2**32 - 1
#: Longest layer range accepted (no model has this many hidden states).
MAX_LAYER_RANGE = 100_000

_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")


def check_seed(seed: object, *, option: str = "--seed") -> int:
    """Return ``seed`` as an int if every random generator of isoscope accepts it.

    Parameters
    ----------
    seed : int
        The seed given by the user.
    option : str
        Name used in the error message.

    Returns
    -------
    int
        The seed.

    Raises
    ------
    InputError
        The seed is not an integer in [0, 2**32 - 1].
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InputError(f"{option} must be an integer in [0, {MAX_SEED}], got {seed!r}.")
    if not 0 <= int(seed) <= MAX_SEED:
        raise InputError(
            f"{option} must be an integer in [0, {MAX_SEED}] (what numpy and scikit-learn accept), "
            f"got {seed}."
        )
    return int(seed)


def parse_layers(
    text: str | None, *, option: str = "--layers", allow_all: bool = True
) -> list[int] | None:
    """Parse a layer list typed by a user into hidden-state indices.

    Accepts ``all`` (every stored layer), ``last``, ``first``, integers (negative ones count
    from the end, ``-1`` is the last hidden state), ascending ranges such as ``0-6`` (both ends
    included) and comma-separated mixtures of these (``0,3,8-10,last``). Indices are checked
    against the model or store later, where its number of layers is known.

    Parameters
    ----------
    text : str or None
        The option's value; None or ``""`` mean ``all``.
    option : str
        Name used in error messages.
    allow_all : bool
        Whether ``all`` is meaningful for this option.

    Returns
    -------
    list of int or None
        The indices in the order given, duplicates dropped; None for ``all``.

    Raises
    ------
    InputError
        Unreadable text, a reversed range (``5-2``), a range longer than
        :data:`MAX_LAYER_RANGE`, or ``all`` where it is not allowed.
    """
    usage = "use all, last, a list like 0,3,6 or a range like 0-6"
    if text is None or text.strip().lower() in ("", "all"):
        if not allow_all:
            raise InputError(f"{option} takes layer indices here, not 'all'.")
        return None
    out: list[int] = []
    for raw in text.split(","):
        part = raw.strip().lower()
        if part == "last":
            out.append(-1)
            continue
        if part == "first":
            out.append(0)
            continue
        if part == "all":
            raise InputError(f"{option} {text!r} mixes 'all' with other layers; {usage}.")
        found = _RANGE.match(part)
        if found:
            lo, hi = int(found.group(1)), int(found.group(2))
            if hi < lo:
                raise InputError(
                    f"{option} range {part!r} is reversed; write it low to high ({hi}-{lo})."
                )
            if hi - lo >= MAX_LAYER_RANGE:
                raise InputError(
                    f"{option} range {part!r} spans more than {MAX_LAYER_RANGE:,} layers, "
                    "more than any model has."
                )
            out.extend(range(lo, hi + 1))
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise InputError(f"Cannot read layers {text!r} given to {option}; {usage}.") from None
    return list(dict.fromkeys(out))


def resolve_layers(
    layers: str | Sequence[int] | None, n_layers: int, *, option: str = "--layers"
) -> list[int]:
    """Hidden-state indices of a model with ``n_layers`` hidden states, sorted and unique.

    Parameters
    ----------
    layers : str, sequence of int or None
        Text as :func:`parse_layers` reads it, indices (negative ones count from the end), or
        None for every hidden state.
    n_layers : int
        Hidden states of the model (embeddings included).
    option : str
        Name used in error messages.

    Returns
    -------
    list of int
        Indices in ``0 .. n_layers - 1``, ascending.

    Raises
    ------
    InputError
        An index outside the model, or an empty selection.
    """
    chosen = parse_layers(layers, option=option) if isinstance(layers, str) or layers is None else layers
    if chosen is None:
        return list(range(n_layers))
    out = sorted({int(i) + n_layers if int(i) < 0 else int(i) for i in chosen})
    if not out or not all(0 <= i < n_layers for i in out):
        raise InputError(
            f"{option} must lie in 0..{n_layers - 1} (this model has {n_layers} hidden states), "
            f"got {list(chosen)}."
        )
    return out


def parse_name_path(
    item: str, *, what: str = "--task takes", example: str = "stsb=sts-test.csv"
) -> tuple[str, str]:
    """Split one ``NAME=PATH`` item (an evaluation task) into its stripped name and path.

    Parameters
    ----------
    item : str
        For example ``"stsb=data/sts-test.csv"``; the path may itself hold ``=``.
    what : str
        The start of the error message (the option, or ``"A task is given as"``).
    example : str
        An example of the form, for the error message.

    Returns
    -------
    tuple of str
        ``(name, path)``.

    Raises
    ------
    InputError
        The item has no ``=``, or nothing on one side of it.
    """
    name, eq, path = item.partition("=")
    if not eq or not name.strip() or not path.strip():
        raise InputError(f"{what} NAME=PATH (e.g. {example}), got {item!r}.")
    return name.strip(), path.strip()


def parse_tasks(items: Iterable[str], *, option: str = "--task") -> list[tuple[str, str]]:
    """Split repeated ``NAME=PATH`` option values (``--task``) with :func:`parse_name_path`.

    Parameters
    ----------
    items : iterable of str
        The option's values.
    option : str
        Name used in error messages.

    Returns
    -------
    list of tuple of str
        ``(name, path)`` per item, in order.
    """
    return [parse_name_path(item, what=f"{option} takes") for item in items]


def check_output_file(path: str | os.PathLike[str], *, option: str = "--out") -> Path:
    """Check, before any work, that a results file can be written at ``path``.

    The path must not be a folder, the nearest existing ancestor must be a writable folder
    (missing folders are created at write time), and an existing file must be writable.

    Parameters
    ----------
    path : str or os.PathLike
        The output file.
    option : str
        Name used in error messages.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        One sentence naming the path and what is wrong with it.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(
            f"{option} {path} is a folder; give a file name such as {path / 'results.json'}."
        )
    if path.exists():
        if not path.is_file():
            raise InputError(f"{option} {path} exists and is not a regular file.")
        if not os.access(path, os.W_OK):
            raise InputError(f"{option} {path} exists and is not writable.")
        return path
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{option} {path} cannot be created: {ancestor} is a file, not a folder.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path} cannot be created: {ancestor} is not writable.")
    return path


def read_bounded(path: str | os.PathLike[str], what: str, *, default: int, env: str,
                 limit: int | None = None) -> bytes:
    """Read a user's file whole, refusing one larger than a limit in one sentence.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str
        What the file is, for the message (e.g. ``"corpus"``).
    default : int
        The limit in bytes when neither ``limit`` nor ``$env`` is given.
    env : str
        Environment variable that overrides ``default`` (a whole number of bytes).
    limit : int, optional
        The limit in bytes; overrides ``$env`` and ``default``.

    Returns
    -------
    bytes
        The file's bytes.

    Raises
    ------
    InputError
        If the file cannot be read, is larger than the limit, or ``$env`` is not a positive integer.
    """
    if limit is None:
        given = os.environ.get(env, "").strip()
        try:
            limit = int(given) if given else default
        except ValueError:
            raise InputError(f"${env} must be a whole number of bytes, not {given!r}.") from None
    if limit < 1:
        raise InputError(f"The size limit for a {what} file must be at least 1 byte, not {limit}.")
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            raw = fh.read(limit + 1) if size <= limit else b""
    except OSError as exc:
        raise InputError(f"Cannot read the {what} file {path}: {exc.strerror or exc}.") from None
    if size > limit or len(raw) > limit:
        raise InputError(
            f"The {what} file {path} is larger than {limit:,} bytes; set ${env} to a larger number "
            "of bytes to read it."
        )
    return raw


@overload
def check_positive_int(value: Any, name: str, *, allow_none: Literal[False]) -> int: ...
@overload
def check_positive_int(value: Any, name: str, *, allow_none: bool = True) -> int | None: ...
def check_positive_int(value: Any, name: str, *, allow_none: bool = True) -> int | None:
    """Return ``value`` as an int if it is a positive integer (or None, where allowed).

    Parameters
    ----------
    value : int or None
        A hyper-parameter or a command-line count (``--chunks-per-shard``).
    name : str
        Name used in the error message.
    allow_none : bool
        Whether None (the default of an optional setting) passes.

    Returns
    -------
    int or None

    Raises
    ------
    InputError
        ``value`` is not an integer of at least 1.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)
