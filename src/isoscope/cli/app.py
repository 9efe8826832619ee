"""The typer application object and the wrapper that turns user errors into one sentence.

Command modules (``isoscope.cli._*``) register their commands on :data:`app`.
Heavy libraries (torch, transformers, faiss) are imported inside command bodies
so that ``isoscope --help`` stays instant.
"""

from __future__ import annotations

import errno
import functools
import inspect
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

#: The end of every ``--seed`` help text (the range :func:`check_seed` accepts).
SEED_HELP = "an integer in [0, 2**32-1]."


# -- options shared by several commands (one definition each; the help names what they affect) --


def seed_option(what: str) -> Any:
    """``--seed`` (default 0): the seed of ``what``."""
    return typer.Option(0, "--seed", help=f"Seed of {what}; " + SEED_HELP)


def progress_option() -> Any:
    """``--progress/--no-progress`` (default None: on a terminal, see :func:`progress_enabled`)."""
    return typer.Option(
        None, "--progress/--no-progress", help="Progress bars (default: on a terminal)."
    )


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

    Before the command runs, a ``seed`` argument is checked with
    :func:`isoscope._validation.check_seed` (every command that takes ``--seed`` gets the same
    check). Exit codes: 2 for bad input (including OS errors such as "Is a directory"), 3 for a
    full disk or out of memory, 130 for Ctrl-C.
    """
    takes_seed = "seed" in inspect.signature(func).parameters

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
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
        return None

    return wrapper  # type: ignore[return-value]


def echo(message: str = "") -> None:
    """Print to stdout (kept as one function so tests can capture it)."""
    typer.echo(message)


def progress_enabled() -> bool:
    """Show progress bars only on an interactive terminal unless forced."""
    return sys.stderr.isatty()
