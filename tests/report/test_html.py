"""The HTML report: content, settings, escaping, offline-ness.

Writing a full report draws seven matplotlib figures (several seconds on a busy 2-core
machine), so the tests that need one share a session fixture and are marked slow.
"""

from __future__ import annotations

import re

import pytest

from isoscope.report import write_report

EVIL = "<script>window.__pwned=1</script>"
EVIL_IMG = '<img src=x onerror="window.__pwned=2">'


def page_without_plotly_js(html: str) -> str:
    """The page minus the inlined plotly.js library (whose source mentions URLs as strings)."""
    start = html.index("<script>/**")
    end = html.index("</script>", start)
    return html[:start] + html[end:]


@pytest.mark.slow
def test_report_has_every_section_and_writes_figure_files(evil_report):
    path, _ = evil_report
    html = path.read_text(encoding="utf-8")
    for sid in (
        "summary",
        "curves",
        "spectrum",
        "clouds",
        "clusters",
        "lid",
        "layer-similarity",
        "massive",
        "gride",
        "outliers",
        "trajectories",
        "repairs-0",
        "evaluation",
        "numbers",
        "settings",
    ):
        assert f'id="{sid}"' in html, sid
    assert "could not be drawn" not in html and "Not available" not in html
    assert html.count("How to read this.") >= 14
    figures = sorted(p.name for p in (path.parent / "figures").iterdir())
    assert figures == sorted(
        f"{n}.png"
        for n in (
            "layer_curves",
            "pca_spectrum",
            "pca_cloud_2d",
            "clusters",
            "lid_distribution",
            "word_trajectories",
            "repairs",
            "repairs_clouds",
            "layer_similarity",
            "massive_activations",
            "gride_curve",
        )
    )
    assert html.count('<img src="data:image/png;base64,') == len(figures)


@pytest.mark.slow
def test_report_states_every_setting(evil_report):
    path, res = evil_report
    html = path.read_text(encoding="utf-8")
    for key, value in res["settings"].items():
        if isinstance(value, dict):  # small mappings (the derived seeds) are one row per entry
            assert all(f"settings.{key}.{k}</td>" in html for k in value), key
        else:
            assert f"settings.{key}</td>" in html
    for needle in (
        "store.n_tokens",
        "store.hidden_size",
        "store.dtype",
        "source.path",
        "version.numpy",
        "version.scikit-learn",
        "version.plotly",
        "timings.total_s",
        "seed 0",
        "Words followed: market, price",
    ):
        assert needle in html, needle


@pytest.mark.slow
def test_corpus_and_file_text_is_escaped(evil_report):
    path, _ = evil_report
    html = path.read_text(encoding="utf-8")
    rest = page_without_plotly_js(html)
    assert EVIL not in rest and EVIL_IMG not in rest
    assert "window.__pwned" in rest  # the payloads are there, but only as text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in rest
    assert "&lt;img src=x onerror=&#34;window.__pwned=2&#34;&gt;" in rest
    # Inside plotly's JSON the token is doubly safe: HTML-escaped for plotly, \\u-escaped for JSON.
    assert "\\u0026lt;script\\u0026gt;window.__pwned=1" in rest


@pytest.mark.slow
def test_report_is_offline(evil_report):
    path, _ = evil_report
    html = path.read_text(encoding="utf-8")
    assert html.count("<script>/**") == 1  # plotly.js inlined once
    assert html.count("Plotly.newPlot(") == 1
    rest = page_without_plotly_js(html)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", rest)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", rest)


@pytest.mark.slow
def test_report_without_store_and_comparison(tmp_path, make_results):
    a = make_results(3, 0, "small", evaluation=False)
    b = make_results(5, 1, "deep", transforms=False)
    path = write_report([a, b], tmp_path, dpi=40, formats=("png", "svg"), title="small vs deep")
    html = path.read_text(encoding="utf-8")
    assert "<title>isoscope — small vs deep</title>" in html
    assert 'id="clouds"' not in html and "Plotly.newPlot" not in html
    assert "<script>/**" not in html  # no plotly.js when nothing is interactive
    assert (tmp_path / "figures" / "layer_curves.svg").exists()
    assert 'id="repairs-0"' in html and 'id="repairs-1"' not in html
    assert html.count("<h3>small</h3>") >= 2 and "<h3>deep</h3>" in html


def test_missing_details_become_a_note_not_a_crash(tmp_path, make_results):
    res = make_results(2, transforms=False, evaluation=False)
    for lay in res["layers"]:
        lay.pop("details")
    html = write_report(res, tmp_path, dpi=40).read_text(encoding="utf-8")
    assert "Not available: The results contain no explained-variance ratios" in html
    assert 'id="evaluation"' not in html


def test_store_count_must_match(tmp_path, make_results, tiny_store):
    from isoscope.errors import InputError

    with pytest.raises(InputError, match="2 stores for 1 results"):
        write_report(make_results(2), tmp_path, store=[tiny_store, tiny_store])


def _leftovers(folder):
    """Temporary or empty files a failed write could leave behind."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and (".tmp" in p.name or p.stat().st_size == 0)
    )


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_inside_a_figure_stops_the_report(tmp_path, make_results, monkeypatch, exc):
    from isoscope.report import _figures

    def interrupted(*args, **kwargs):
        raise exc()

    monkeypatch.setattr(_figures, "plot_pca_spectrum", interrupted)
    with pytest.raises(exc):
        write_report(make_results(2, transforms=False, evaluation=False), tmp_path, dpi=30)
    assert not (tmp_path / "report.html").exists()
    assert _leftovers(tmp_path) == []


def test_a_full_disk_while_drawing_leaves_no_partial_files(tmp_path, make_results, monkeypatch):
    import errno
    import os

    from matplotlib.figure import Figure

    from isoscope.report import _figures

    res = make_results(2, transforms=False, evaluation=False)
    original = Figure.savefig

    def full_disk(self, fname, *args, **kwargs):
        if kwargs.get("format") == "svg":
            with open(fname, "wb") as fh:
                fh.write(b"<svg")  # a partial file, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fname))
        return original(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", full_disk)
    with pytest.raises(OSError) as info:
        write_report(res, tmp_path, dpi=30, formats=("png", "svg"))
    assert info.value.errno == errno.ENOSPC
    assert not (tmp_path / "report.html").exists()
    assert _leftovers(tmp_path) == []
    assert not list((tmp_path / "figures").glob("*.svg"))
    monkeypatch.undo()

    # A figure function that hits the full disk itself stops the report the same way; a report
    # written before stays whole.
    good = write_report(res, tmp_path, dpi=30)
    before = good.read_bytes()

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_figures, "plot_silhouette", no_space)
    with pytest.raises(OSError):
        write_report(res, tmp_path, dpi=30)
    assert good.read_bytes() == before and _leftovers(tmp_path) == []


def test_a_full_disk_writing_the_page_removes_the_temporary_file(
    tmp_path, make_results, monkeypatch
):
    import errno
    import os
    from pathlib import Path

    original = Path.write_text

    def full_disk(self, text, *args, **kwargs):
        if self.name.startswith(".report.html.") and self.name.endswith(".tmp"):
            original(self, text[:100], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError):
        write_report(make_results(2, transforms=False, evaluation=False), tmp_path, dpi=30)
    assert not (tmp_path / "report.html").exists() and _leftovers(tmp_path) == []


def test_report_command_turns_a_full_disk_into_one_sentence(tmp_path, make_results, monkeypatch):
    import errno
    import json
    import os

    from typer.testing import CliRunner

    from isoscope.cli import app
    from isoscope.report import _figures

    (tmp_path / "results.json").write_text(json.dumps(make_results(2, evaluation=False)))

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_figures, "plot_layer_curves", no_space)
    res = CliRunner().invoke(app, ["report", str(tmp_path / "results.json")])
    assert res.exit_code == 3 and "No space left on device" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "report.html").exists()
