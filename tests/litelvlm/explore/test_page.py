"""The explorer's page: one self-contained HTML file holding the explorer's own data, tested in a real browser
(headless Chromium, Debian's ``chromium``; skipped with the reason where it is absent): opened from disk at
two URL fragments, it shows the view each names, its screenshots differ where the kept tokens differ and
nowhere else in the similarity view, and the page logs nothing to the console.

``LITELVLM_UPDATE_SCREENSHOT=1`` makes the browser test write the README's screenshot (docs/explore.png)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from litelvlm.explore.data import load
from litelvlm.explore.notebook import sample_image
from litelvlm.explore.page import decode_codes, default_mask_budgets, write_page
from litelvlm.explore.widget import TOOL_LABEL

ROOT = Path(__file__).resolve().parents[3]
BUDGETS = [576, 192, 64, 32, 8]


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    """(the explorer's data, its page) for a toy scene, its sentence and a second text, on the tiny random
    GLaMM."""
    folder = tmp_path_factory.mktemp("page")
    image, texts = sample_image(folder / "data")
    data = load(image, [texts[0], "the thing in the corner"], methods=["litelvlm", "random"])
    page = write_page(data, folder / "explore.html", BUDGETS)
    return data, page


def _payload(page: Path) -> dict:
    text = page.read_text()
    found = re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)
    return json.loads(found.group(1).replace("<\\/", "</"))


def test_the_page_is_one_file_that_fetches_nothing(explored):
    data, page = explored
    text = page.read_text()
    assert sorted(p.name for p in page.parent.iterdir() if p.is_file()) == ["explore.html"]
    assert page.stat().st_size < 4e6, "a few MB at most"
    refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', text)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs), [r[:40] for r in refs]
    for bad in ("http://", "https://", "fetch(", "XMLHttpRequest", "<link", "import("):
        assert bad not in text, bad
    assert html.escape(TOOL_LABEL) in text and "RANDOM WEIGHTS (tiny-random:0)" in text


def test_the_page_holds_the_explorers_selections_masks_and_weights(explored):
    data, page = explored
    d = _payload(page)
    assert d["methods"] == ["litelvlm", "random"] and d["grid"] == [24, 24] and d["n"] == 576
    assert d["banner"] == data.banner and "tiny-random:0 (glamm, random weights)" in d["made_by"]
    for method in d["methods"]:
        entry = d["kept"][method]
        assert entry["budgets"] == BUDGETS
        for k in BUDGETS:
            codes = decode_codes(entry["codes"][str(k)], d["n"])
            kept = data.kept(method, k)
            assert sorted(np.flatnonzero(codes).tolist()) == sorted(kept.indices)
            assert [entry["parts"][codes[i] - 1] for i in kept.indices] == kept.parts
    assert set(d["kept"]["litelvlm"]["parts"]) == {"similarity", "context"}
    # the paper's 576, 192 and 32, and 64: the budget of the link the command prints and the README names
    assert d["mask_budgets"] == [k for k in default_mask_budgets(576) if k in BUDGETS] == [576, 192, 64, 32]
    assert d["tokens"] == data.tokens and np.allclose(d["attention"][0], data.attention[0], atol=1e-4)
    text = page.read_text()
    assert all(f'id="mask-{m}-{k}-{t}"' in text for m in (0, 1) for k in (576, 192, 64, 32) for t in (0, 1))
    assert 'id="referent-0"' in text and 'id="referent-1"' not in text


def test_the_command_writes_the_page_with_a_clip_and_says_where(tmp_path, capsys):
    """... into a folder it makes, as every command's --out (``runs/page.html`` without ``runs/``)."""
    from litelvlm.cli import main
    from litelvlm.toy import default_model_path

    image, texts = sample_image(tmp_path / "data")
    out = tmp_path / "runs" / "deeper" / "page.html"
    rc = main(["explore", "--image", image, "--text", texts[0], "--model", str(default_model_path()),
               "--methods", "litelvlm,litelvlm-context", "--budgets", "36,9,1", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and f"wrote {out}" in printed and "TOY WEIGHTS" in printed
    assert sorted(p.name for p in out.parent.iterdir()) == ["page.html"]  # nothing else beside it
    d = _payload(out)
    assert d["grid"] == [6, 6] and d["kept"]["litelvlm-context"]["budgets"] == [36, 9, 1]
    assert d["mask_budgets"] == [] and "predicts no mask" in d["mask_note"]


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _open(browser: str, page: Path, fragment: str, shot: Path, profile: Path) -> tuple[dict, list[str], str]:
    """Open ``page#fragment`` from disk in headless Chromium: (the page's view, its console lines, its
    DOM)."""
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--force-device-scale-factor=1", "--window-size=1200,720",
                           f"--user-data-dir={profile}",
                           "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", "--dump-dom",
                           f"{page.resolve().as_uri()}#{fragment}"], capture_output=True, text=True,
                          timeout=120)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    found = re.search(r'data-view="([^"]*)"', done.stdout)
    assert found, f"the page drew nothing at #{fragment}: {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1))), console, done.stdout


def _crop(path: Path, rect: list[int]) -> np.ndarray:
    from PIL import Image

    x, y, w, h = rect
    return np.asarray(Image.open(path).convert("RGB"))[y + 2:y + h - 2, x + 2:x + w - 2]


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (Debian: apt-get install "
                                                "chromium; docs/testing.md), so the page is not opened in a "
                                                "browser")
def test_the_page_in_a_real_browser_opens_at_the_fragments_view(explored, tmp_path):
    data, page = explored
    browser = _chromium()
    views, shots, doms = {}, {}, {}
    for fragment in ("method=litelvlm&budget=64", "method=litelvlm&budget=8",
                     "method=random&budget=192&text=1&token=2"):
        shots[fragment] = tmp_path / f"{len(shots)}.png"
        view, console, dom = _open(browser, page, fragment, shots[fragment], tmp_path / "profile")
        assert console == [], f"the page logged to the console at #{fragment}: {console}"
        assert "data-error" not in dom
        views[fragment], doms[fragment] = view, dom
    a, b, c = views.values()
    assert (a["method"], a["budget"], a["kept"], a["text"]) == ("litelvlm", 64, 64, 0)
    assert (b["method"], b["budget"], b["kept"]) == ("litelvlm", 8, 8)
    assert (c["method"], c["budget"], c["kept"], c["text"], c["mask"]) == ("random", 192, 192, 1, True)
    assert c["token"] == 2 and a["token"] is None  # a chosen token's attention row; by default the [EOS] row
    assert a["mask"] and not b["mask"]  # the README's link, K = 64, shows a mask; K = 8 has none stored
    # ... and says which
    assert "masks on this page: K = 576, 192, 64, 32" in doms["method=litelvlm&budget=8"]
    first, second = (shots[f] for f in list(shots)[:2])
    assert a["rects"] == b["rects"]
    kept_a, kept_b = _crop(first, a["rects"]["kept"]), _crop(second, b["rects"]["kept"])
    assert kept_a.shape[0] > 100 and (kept_a
                                      != kept_b).any(axis=-1).mean() > 0.01, "the kept tokens look the same"
    np.testing.assert_array_equal(_crop(first, a["rects"]["sim"]), _crop(second, b["rects"]["sim"]))
    mask_a, mask_b = _crop(first, a["rects"]["mask"]), _crop(second, b["rects"]["mask"])
    assert (mask_a != mask_b).any(axis=-1).mean() > 0.01, "the mask panel at K = 64 looks like the empty one"
    if os.environ.get("LITELVLM_UPDATE_SCREENSHOT"):
        from PIL import Image

        Image.open(first).convert("RGB").quantize(256).save(ROOT / "docs" / "explore.png", optimize=True)
