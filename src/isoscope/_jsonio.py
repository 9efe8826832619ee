"""The one atomic file writer and the one JSON writer, cleaner and reader of isoscope.

* :func:`write_atomic` writes any file atomically: a uniquely named temporary file in the
  target's folder, ``fsync``, then :func:`os.replace`; the temporary file is removed on any
  failure, so a reader sees either the old file or the whole new one, never a partial file.
  :func:`write_text_atomic` and :func:`write_json` write text and JSON through it.
* :func:`clean_json` turns numpy scalars and arrays, ``Path`` objects and NaN/Inf into what
  standard JSON can hold.
* :func:`read_json` and :func:`parse_json` turn unreadable, invalid, oversized or too deeply
  nested JSON into one sentence (an :class:`~isoscope.errors.InputError` by default).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from isoscope.errors import InputError, IsoscopeError

#: Deepest nesting of arrays and objects a reader accepts (isoscope's own files nest < 10).
MAX_DEPTH = 100
#: Largest JSON file :func:`read_json` reads by default.
MAX_BYTES = 256 * 2**20


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which is not thread-safe later.
_UMASK = _current_umask()


def clean_json(obj: Any) -> Any:
    """Return a copy of ``obj`` that :func:`json.dumps` can write as standard JSON.

    Parameters
    ----------
    obj : object
        Nested dicts, lists and tuples of numbers, strings, numpy scalars or arrays, paths.

    Returns
    -------
    object
        The same structure with numpy scalars and arrays turned into Python numbers and lists,
        NaN and Inf into None, :class:`pathlib.Path` into str and dict keys into str.
    """
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [clean_json(v) for v in obj.tolist()]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(
    path: str | os.PathLike[str],
    data: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = False,
    ensure_ascii: bool = False,
) -> Path:
    """Write ``data`` as JSON to ``path`` atomically and return the path.

    The text is produced before any file is touched, written to a temporary file in the same
    folder, flushed to disk and moved over ``path`` with :func:`os.replace`. On any failure the
    temporary file is removed and ``path`` keeps its previous content.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder must exist.
    data : object
        JSON-ready data (see :func:`clean_json`); NaN and Inf are refused, not written as the
        non-standard ``NaN`` / ``Infinity`` tokens.
    indent : int or None, default 2
        Indentation of the JSON text (None: one line).
    sort_keys : bool, default False
        Sort the keys of every object.
    ensure_ascii : bool, default False
        Escape every non-ASCII character.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        ``data`` holds NaN or Inf (clean it with :func:`clean_json` first).
    TypeError
        ``data`` holds an object JSON cannot represent.
    OSError
        The folder is missing or the disk refused the write.
    """
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii,
                      allow_nan=False) + "\n"
    return write_text_atomic(path, text)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically with :func:`write_atomic`; return ``path``."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it onto ``path``.

    The temporary file is uniquely named in ``path``'s folder, flushed to disk after ``write``
    returns, given the mode an ordinary write would give it and moved over ``path`` with
    :func:`os.replace`. On any failure (a full disk, an interrupt, an error in ``write``) it is
    removed and ``path`` keeps its previous content, or stays absent.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder must exist.
    write : callable
        Writes the whole content to the path it is given (it may replace the empty file there),
        e.g. ``lambda p: fig.savefig(p, format="png")``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        The folder is missing or the disk refused the write; whatever ``write`` raises.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp_name))
        fd = os.open(tmp_name, os.O_RDONLY)
        try:
            os.fsync(fd)
            # mkstemp makes the file private (0600); give it the mode an ordinary write would.
            os.fchmod(fd, 0o666 & ~_UMASK)
        finally:
            os.close(fd)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _depth_exceeds(obj: Any, limit: int) -> bool:
    """True when arrays/objects in ``obj`` nest deeper than ``limit`` (iterative, no recursion)."""
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def decode_json(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text or raise ValueError with the reason as a sentence fragment.

    The fragment completes "``<file> is ...``", e.g. ``not valid JSON (Expecting value at line 1,
    column 1)`` or ``nested more than 100 levels deep``; callers that word their own messages
    (the store's) build on it.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError:
        raise ValueError("not valid JSON (its bytes are not UTF-8 text)") from None
    except RecursionError:
        raise ValueError(f"nested more than {max_depth} levels deep") from None
    if _depth_exceeds(data, max_depth):
        raise ValueError(f"nested more than {max_depth} levels deep")
    return data


def parse_json(
    text: str | bytes,
    where: str,
    *,
    error: type[IsoscopeError] = InputError,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Parse one JSON document (e.g. one JSONL line); failures become one sentence.

    Parameters
    ----------
    text : str or bytes
        The JSON text.
    where : str
        Where the text came from, the start of the message (e.g. ``"corpus.jsonl:12"``).
    error : type of IsoscopeError, default InputError
        The exception raised.
    max_depth : int, default MAX_DEPTH
        Deepest nesting accepted.

    Returns
    -------
    object
        The parsed value.

    Raises
    ------
    IsoscopeError
        ``"{where}: not valid JSON (...)."`` or ``"{where}: nested more than N levels deep."``
    """
    try:
        return decode_json(text, max_depth)
    except ValueError as exc:
        raise error(f"{where}: {exc}.") from None


def read_json(
    path: str | os.PathLike[str],
    what: str,
    *,
    error: type[IsoscopeError] = InputError,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Read a JSON file; a missing, unreadable, oversized, invalid or too deep file is one sentence.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str
        What the file is, for the message (e.g. ``"results file"``).
    error : type of IsoscopeError, default InputError
        The exception raised (e.g. :class:`~isoscope.errors.StoreError` for a store's files).
    max_bytes : int, default MAX_BYTES
        Largest file accepted.
    max_depth : int, default MAX_DEPTH
        Deepest nesting of arrays and objects accepted.

    Returns
    -------
    object
        The parsed value (the caller checks its type and fields).

    Raises
    ------
    IsoscopeError
        One sentence naming ``what`` and ``path``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise error(f"The {what} {path} does not exist.") from None
    except IsADirectoryError:
        raise error(f"The {what} {path} is a folder, not a file.") from None
    except OSError as exc:
        raise error(f"Cannot read the {what} {path}: {exc.strerror or exc}.") from None
    if len(raw) > max_bytes:
        raise error(f"The {what} {path} is larger than {max_bytes:,} bytes, too large to be one.")
    try:
        return decode_json(raw, max_depth)
    except ValueError as exc:
        raise error(f"The {what} {path} is {exc}.") from None
