"""``isoscope models``: list the bundled offline models."""

from __future__ import annotations

from isoscope.cli.app import app, echo, user_errors


@app.command("models")
@user_errors
def models_command() -> None:
    """List every bundled short name, what it is, and whether it is installed."""
    from isoscope.models import list_models

    rows = list_models()
    width = max(len(str(r["name"])) for r in rows)
    for r in rows:
        mark = "installed" if r["installed"] else "missing  "
        echo(f"{str(r['name']).ljust(width)}  {mark}  {r['description']}")
        if not r["installed"]:
            echo(f"{' ' * width}             install: {r['install']}")
    echo("\nAny Hugging Face model name (with network access or a warm cache) or local folder works too.")
