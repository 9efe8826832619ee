"""Ray stays optional: importing isoscope never imports it, and its absence is one sentence."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from isoscope.errors import InputError


def test_import_does_not_import_ray() -> None:
    code = ("import sys, isoscope, isoscope.analysis, isoscope.distributed; "
            "assert 'ray' not in sys.modules, 'ray was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_ray_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    from isoscope.analysis import analyze

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r"needs Ray; install it with pip install 'isoscope\[ray\]'"):
        analyze(np.random.default_rng(0).standard_normal((50, 4)), engine="ray", lid_k=3,
                k_range=[2, 3])
