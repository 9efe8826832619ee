"""Command-line interface: ``isoscope COMMAND``. See ``isoscope --help``."""

from __future__ import annotations

import importlib

from isoscope.cli.app import app

# Each module registers its commands on ``app``; a module that does not exist yet is skipped.
_COMMAND_MODULES = ("_models", "_extract", "_analyze", "_evaluate", "_run", "_findings", "_report",
                    "_export")
for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"isoscope.cli.{_name}")
    except ModuleNotFoundError as _exc:  # pragma: no cover - only while a module is missing
        if _exc.name != f"isoscope.cli.{_name}":
            raise


def main() -> None:
    """Entry point of the ``isoscope`` console script."""
    app()


__all__ = ["app", "main"]
