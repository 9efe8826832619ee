"""The report in a real headless Chromium: loads, plots render, no console errors, screenshot.

Chromium is driven over the DevTools protocol through ``--remote-debugging-pipe`` (see
``_cdp.py``; standard library only). Set ``ISOSCOPE_SCREENSHOT_DIR`` to keep the screenshots.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import time
from pathlib import Path

import pytest

EVIL = "<script>window.__pwned=1</script>"

_spec = importlib.util.spec_from_file_location(
    "_isoscope_report_cdp", Path(__file__).with_name("_cdp.py")
)
cdp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cdp)

pytestmark = pytest.mark.slow


@pytest.fixture
def browser(tmp_path):
    exe = cdp.find_chromium()
    if exe is None:
        pytest.skip("Chromium not found (Debian: apt-get install chromium); browser test skipped.")
    b = cdp.Browser(exe, tmp_path / "profile", width=1280, height=900)
    try:
        yield b
    finally:
        b.close()


def wait_for(browser, expression, timeout=45.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if browser.evaluate(expression):
            return True
        time.sleep(0.25)
    return False


PLOT_STATE = """(() => {
  const r = e => { const b = e.getBoundingClientRect(); return [Math.round(b.width), Math.round(b.height)]; };
  return {
    images: Array.from(document.querySelectorAll('img[data-figure]')).map(i => ({
      name: i.dataset.figure, complete: i.complete, natural: i.naturalWidth, size: r(i)})),
    plots: Array.from(document.querySelectorAll('.plotly-figure')).map(p => ({
      size: r(p), svg: p.querySelectorAll('svg.main-svg').length,
      canvas: Array.from(p.querySelectorAll('canvas')).map(r),
      text: p.innerText})),
    pwned: typeof window.__pwned,
    bodyText: document.body.innerText,
    scripts: document.scripts.length,
  };
})()"""


def test_report_renders_in_headless_chromium(browser, evil_report, tmp_path):
    from PIL import Image

    path, _ = evil_report
    browser.open_page(path.resolve().as_uri())
    assert wait_for(browser, "document.querySelectorAll('.plotly-figure .main-svg').length > 0"), (
        "plotly never drew its figure"
    )
    time.sleep(1.0)  # let WebGL draw the 3-D scene
    state = browser.evaluate(PLOT_STATE)

    assert len(state["images"]) == 11  # 8 + layer similarity, massive activations, GRIDE
    for img in state["images"]:
        assert img["complete"] and img["natural"] > 200, img
        assert img["size"][0] > 200 and img["size"][1] > 100, img
    (plot,) = state["plots"]
    assert plot["size"][0] > 500 and plot["size"][1] > 400
    assert (
        plot["svg"] >= 1 and plot["canvas"] and all(w > 100 and h > 100 for w, h in plot["canvas"])
    )
    assert "WebGL" not in plot["text"]  # plotly's "WebGL is not supported" notice

    # Corpus text that looks like HTML stays text: it is visible, and it never ran.
    assert state["pwned"] == "undefined"
    assert EVIL in state["bodyText"]
    for title in ("Layers against layers", "Massive activations", "Outlier dimensions",
                  "Intrinsic dimension across scales"):
        assert title in state["bodyText"], title
    assert state["scripts"] == 2  # plotly.js + the one figure

    assert browser.console_errors() == []
    foreign = [
        u
        for u in browser.requested_urls()
        if not u.startswith(("file:", "data:", "about:", "blob:"))
    ]
    assert foreign == []

    shots = tmp_path / "shots"
    shots.mkdir()
    top = browser.screenshot(shots / "top.png")
    rect = browser.evaluate(
        "(() => { const e = document.querySelector('.plotly-figure');"
        " e.scrollIntoView(); const b = e.getBoundingClientRect();"
        " return {x: b.x + scrollX, y: b.y + scrollY, width: b.width, height: b.height}; })()"
    )
    cloud = browser.screenshot(shots / "cloud3d.png", clip=rect)
    full = browser.screenshot(shots / "full.png", full_page=True)
    with Image.open(top) as im:
        assert im.size == (1280, 900)
    with Image.open(cloud) as im:
        # A drawn 3-D scatter has many colours; a blank or failed canvas has a handful.
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 200
    with Image.open(full) as im:
        assert im.size[1] > 3000
    keep = os.environ.get("ISOSCOPE_SCREENSHOT_DIR")
    if keep:
        shutil.copytree(shots, Path(keep), dirs_exist_ok=True)
    assert io.BytesIO(top.read_bytes()).getbuffer().nbytes > 10_000
