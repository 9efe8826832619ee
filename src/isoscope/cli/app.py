"""The typer application object and the wrapper that turns user errors into one sentence.

Command modules (``isoscope.cli._*``) register their commands on :data:`app`.
Heavy libraries (torch, transformers, faiss) are imported inside command bodies
so that ``isoscope --help`` stays instant.

Output: results go to stdout (:func:`echo`); progress bars, info lines (:data:`log`, and
every ``isoscope.*`` library logger) and errors go to stderr. :func:`user_errors` gives every
command ``--quiet`` (results, warnings and errors only: no bars, no info lines) and ``--verbose``
(DEBUG records of the ``isoscope`` logger), defined once in :func:`output_parameters`.
"""

from __future__ import annotations

import errno
import functools
import inspect
import logging
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer

from isoscope.errors import IsoscopeError

app = typer.Typer(
    name="isoscope",
    help="Measure and repair the geometry of language-model embedding spaces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

#: Info lines of the commands (the ``isoscope`` logger's handler prints them on stderr).
log = logging.getLogger("isoscope.cli")

#: Whether the running command was given ``--quiet`` (read by :func:`show_progress`).
_QUIET = {"on": False}

#: The end of every ``--seed`` help text (the range :func:`check_seed` accepts).
SEED_HELP = "an integer in [0, 2**32-1]."


# -- options shared by several commands (one definition each; the help names what they affect) --


def seed_option(what: str) -> Any:
    """``--seed`` (default 0): the seed of ``what``."""
    return typer.Option(0, "--seed", help=f"Seed of {what}; " + SEED_HELP)


def progress_option() -> Any:
    """``--progress/--no-progress`` (default None: on a terminal, see :func:`show_progress`)."""
    return typer.Option(
        None, "--progress/--no-progress",
        help="Progress bars on stderr (default: on a terminal; never with --quiet).",
    )


def split_option() -> Any:
    """``--split``: the split of an ``hf:`` corpus, or of ``ptb`` (see :func:`corpus_split`)."""
    return typer.Option(
        None, "--split",
        help="Corpus split: of an hf: dataset (default train) or of ptb (train, valid, test; "
             "default test).",
    )


def corpus_split(corpus: str, split: str | None) -> tuple[str, str | None]:
    """The corpus spec and the split :func:`isoscope.corpora.load_corpus` takes.

    ``--split`` of ``ptb`` becomes its spec (``ptb:valid``); any other split is passed on, and
    ``load_corpus`` refuses it for specs other than ``hf:``.
    """
    if split is not None and corpus == "ptb":
        return f"ptb:{split}", None
    return corpus, split


class _StderrHandler(logging.Handler):
    """Writes each record to the stderr of the moment (click's, so test runners capture it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            typer.echo(self.format(record), err=True)
        except Exception:  # noqa: BLE001 - logging must never take the command down
            self.handleError(record)


class _Formatter(logging.Formatter):
    """Info lines as they are; debug lines with their logger; warnings and errors labelled."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno == logging.INFO:
            return message
        if record.levelno < logging.INFO:
            return f"debug {record.name}: {message}"
        return f"{record.levelname.lower()}: {message}"


def configure_output(quiet: bool = False, verbose: bool = False) -> None:
    """Route the ``isoscope`` logger to stderr at the level ``--quiet``/``--verbose`` ask for.

    Parameters
    ----------
    quiet : bool
        Only warnings and errors (and no progress bars, see :func:`show_progress`).
    verbose : bool
        DEBUG records too.
    """
    if quiet and verbose:
        from isoscope.errors import InputError

        raise InputError("--quiet and --verbose contradict each other; give one of them.")
    logger = logging.getLogger("isoscope")
    for old in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(old)
    handler = _StderrHandler()
    handler.setFormatter(_Formatter())
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    _QUIET["on"] = quiet


def reset_output() -> None:
    """Undo :func:`configure_output` (a command run in-process leaves no handler behind)."""
    logger = logging.getLogger("isoscope")
    for old in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(old)
    logger.setLevel(logging.NOTSET)
    _QUIET["on"] = False


def output_parameters() -> list[inspect.Parameter]:
    """``--quiet/-q`` and ``--verbose/-v``: the one definition every command gets."""
    quiet = typer.Option(False, "--quiet", "-q",
                         help="Only results, warnings and errors: no progress bars, no info lines.")
    verbose = typer.Option(False, "--verbose", "-v", help="Debug lines of the isoscope logger too.")
    kind = inspect.Parameter.KEYWORD_ONLY
    return [inspect.Parameter("quiet", kind, default=quiet, annotation=bool),
            inspect.Parameter("verbose", kind, default=verbose, annotation=bool)]


def drop_position_zero_option(where: str) -> Any:
    """``--drop-position-zero``: leave the first token out of ``where``."""
    return typer.Option(
        False,
        "--drop-position-zero",
        help=f"Leave the first token out of {where} (its massive activations in causal models "
        "without BOS).",
    )


def transductive_option(what: str, note: str = "") -> Any:
    """``--transductive``: fit repairs on ``what`` itself (``note``: in parentheses after it)."""
    after = f" ({note})" if note else ""
    return typer.Option(False, "--transductive", help=f"Fit repairs on {what} itself{after}.")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one sentence to stderr and exit with ``code``."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


#: OS errors that mean the disk (or a quota, or a file-size limit) has no room: exit 3.
#: EFBIG is the same condition as ENOSPC for a file that hit its size limit (and the store's
#: own write errors, :class:`isoscope.store.StoreWriteError`, treat it so too).
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def os_error_message(exc: OSError) -> tuple[str, int]:
    """One sentence and the exit code for an OS error that reached the command line.

    Only a full disk or quota gives exit 3 (the disk-full / out-of-memory code); every other
    OS error (a folder where a file was expected, a file where a folder was, a missing or
    existing file, permission denied) is the user's input: exit 2, naming the path.
    """
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, getattr(exc, "filename2", None)) if p is not None]
    where = " -> ".join(paths)
    if exc.errno in NO_SPACE_ERRNOS:
        at = f" while writing {where}" if where else ""
        return f"{reason}{at}; free some space and run the same command again.", 3
    if where:
        return f"Cannot use {where}: {reason}.", 2
    return f"The operating system refused an operation: {reason}.", 2


def user_errors(func: F) -> F:
    """Decorate a command so user-caused errors end in one sentence, not a traceback.

    The command also gets ``--quiet`` and ``--verbose`` (:func:`output_parameters`), applied by
    :func:`configure_output` before it runs and not passed to it. Before the command runs, a
    ``seed`` argument is checked with :func:`isoscope._validation.check_seed` (every command
    that takes ``--seed`` gets the same check). Exit codes: 2 for bad input (including OS
    errors such as "Is a directory"), 3 for a full disk or out of memory, 130 for Ctrl-C.
    """
    signature = inspect.signature(func)
    takes_seed = "seed" in signature.parameters

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        quiet, verbose = bool(kwargs.pop("quiet", False)), bool(kwargs.pop("verbose", False))
        try:
            configure_output(quiet=quiet, verbose=verbose)
            log.debug("command %s with %s", func.__name__.removesuffix("_command"), dict(kwargs))
            if takes_seed and kwargs.get("seed") is not None:
                from isoscope._validation import check_seed  # numpy: not at import (--help)

                kwargs["seed"] = check_seed(kwargs["seed"])
            return func(*args, **kwargs)
        except IsoscopeError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            typer.secho("interrupted", err=True)
            raise typer.Exit(130) from None
        except MemoryError:
            fail("Out of memory; try a smaller --batch-size, --sample or --max-tokens.", 3)
        except OSError as exc:
            message, code = os_error_message(exc)
            fail(message, code)
        finally:
            reset_output()
        return None

    # typer reads the options from this signature: the command's own plus --quiet/--verbose
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), *output_parameters()])
    wrapper.__annotations__ = {**func.__annotations__, "quiet": "bool", "verbose": "bool"}
    return wrapper  # type: ignore[return-value]


def echo(message: str = "") -> None:
    """Print to stdout (kept as one function so tests can capture it)."""
    typer.echo(message)


def _terminal() -> bool:
    return sys.stderr.isatty()


def show_progress(progress: bool | None = None) -> bool:
    """Whether to draw progress bars: never with ``--quiet``; else ``--progress/--no-progress``,
    and by default only on an interactive terminal."""
    if _QUIET["on"]:
        return False
    return _terminal() if progress is None else bool(progress)
