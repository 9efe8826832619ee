"""The typer application object and the wrapper that turns user errors into one sentence.

Command modules (``isoscope.cli._*``) register their commands on :data:`app`.
Heavy libraries (torch, transformers, faiss) are imported inside command bodies
so that ``isoscope --help`` stays instant.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

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


def fail(message: str, code: int = 2) -> None:
    """Print one sentence to stderr and exit with ``code``."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def user_errors(func: F) -> F:
    """Decorate a command so user-caused errors end in one sentence, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except IsoscopeError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            typer.secho("interrupted", err=True)
            raise typer.Exit(130) from None
        except MemoryError:
            fail("Out of memory; try a smaller --batch-size, --sample or --max-tokens.", 3)
        except OSError as exc:
            # Disk full, permission denied, missing file: the OS message is one clear sentence.
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            fail(f"{exc.strerror or exc}{where}.", 3)
        return None

    return wrapper  # type: ignore[return-value]


def echo(message: str = "") -> None:
    """Print to stdout (kept as one function so tests can capture it)."""
    typer.echo(message)


def progress_enabled() -> bool:
    """Show progress bars only on an interactive terminal unless forced."""
    return sys.stderr.isatty()
