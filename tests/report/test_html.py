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
        "trajectories",
        "repairs-0",
        "evaluation",
        "numbers",
        "settings",
    ):
        assert f'id="{sid}"' in html, sid
    assert "could not be drawn" not in html and "Not available" not in html
    assert html.count("How to read this.") >= 10
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
        )
    )
    assert html.count('<img src="data:image/png;base64,') == len(figures)


@pytest.mark.slow
def test_report_states_every_setting(evil_report):
    path, res = evil_report
    html = path.read_text(encoding="utf-8")
    for key in res["settings"]:
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
