"""Shared checks of the robustness suite: one-sentence CLI errors and store snapshots.

Exposed as fixtures (``one_sentence``, ``store_files``, ``cli``) because tests are imported
with ``--import-mode=importlib`` and cannot import a helper module by name.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from click.testing import Result

# A subprocess that runs the real command line (with the installed package, no console script).
CLI = [sys.executable, "-c", "from isoscope.cli import app; app()"]


def assert_one_sentence(result: Result, match: str, code: int = 2) -> str:
    """The command failed with ``code`` and its last line is one ``error:`` sentence, no traceback."""
    output = result.output
    assert result.exit_code == code, output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output, output
    last = output.strip().splitlines()[-1]
    assert last.startswith("error: "), output
    assert re.search(match, last), (match, last)
    # One sentence: a single line that ends with a full stop (paths may hold dots, hence 'ends').
    assert last.endswith((".", ".)")), last
    return last


def store_files(path: Path) -> dict[str, bytes]:
    """Every file of a store (but the lock) by relative path, for byte-for-byte comparisons."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != ".lock")
    return {str(p.relative_to(path)): p.read_bytes() for p in files}


@pytest.fixture
def one_sentence():
    """:func:`assert_one_sentence`."""
    return assert_one_sentence


@pytest.fixture(name="store_files")
def _store_files_fixture():
    """:func:`store_files`."""
    return store_files


@pytest.fixture
def cli() -> list[str]:
    """Argv prefix that runs the isoscope command line in a fresh interpreter."""
    return list(CLI)
