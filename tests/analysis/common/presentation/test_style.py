"""The figure style: seaborn paper context, colour-blind palette, TrueType PDFs, reproducible bytes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import matplotlib
import pytest
import seaborn as sns

from analysis.common.presentation import style

SCRIPT = """
import sys
from analysis.common.presentation.style import figure, save_figure
fig, ax = figure(1)
ax.plot([0, 1, 2], [2, 0, 1], label="litelvlm")
ax.set_title("K=64 \\u2192 cIoU")
ax.legend()
save_figure(fig, sys.argv[1], "probe")
print(sorted(m for m in ("torch", "transformers", "open_clip") if m in sys.modules))
"""


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_apply_style_sets_paper_context_palette_and_truetype():
    matplotlib.rcParams["pdf.fonttype"] = 3
    style.apply_style()
    assert matplotlib.rcParams["pdf.fonttype"] == 42
    assert matplotlib.rcParams["ps.fonttype"] == 42
    paper = sns.plotting_context("paper")
    assert matplotlib.rcParams["font.size"] == pytest.approx(paper["font.size"])
    cycle = [tuple(c) for c in matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]]
    assert matplotlib.colors.to_rgb(cycle[0]) == pytest.approx(matplotlib.colors.to_rgb(style.PALETTE[0]))


def test_sizes_fit_paper_columns():
    assert style.figsize(1) == (style.ONE_COLUMN, pytest.approx(style.ONE_COLUMN * 0.75))
    assert style.figsize(2, height=2.0) == (style.TWO_COLUMN, 2.0)
    with pytest.raises(ValueError, match="columns"):
        style.figsize(3)
    fig, ax = style.figure(2)
    assert tuple(fig.get_size_inches()) == pytest.approx(style.figsize(2))
    matplotlib.pyplot.close(fig)


def test_method_colors_are_stable_and_distinct():
    cols = style.method_colors(["litelvlm", "random", "vispruner", "litelvlm"])
    assert list(cols) == ["litelvlm", "random", "vispruner"]
    assert len(set(cols.values())) == 3
    assert style.method_colors(["litelvlm"])["litelvlm"] == cols["litelvlm"]


def test_save_figure_writes_pdf_and_png_without_dates_or_type3(tmp_path):
    fig, ax = style.figure(1)
    ax.plot([0, 1], [1, 0])
    paths = style.save_figure(fig, tmp_path, "f")
    assert [p.name for p in paths] == ["f.pdf", "f.png"]
    pdf = paths[0].read_bytes()
    assert pdf.startswith(b"%PDF") and b"/CreationDate" not in pdf and b"/Type3" not in pdf
    assert b"/FontFile2" in pdf  # embedded TrueType
    png = paths[1].read_bytes()
    assert png.startswith(b"\x89PNG") and b"Matplotlib version" not in png
    assert not list(tmp_path.glob(".*tmp"))  # nothing partial left behind
    with pytest.raises(ValueError, match="unsupported figure format"):
        style.save_figure(fig, tmp_path, "g", formats=["gif"])


def test_same_figure_gives_same_bytes_across_processes_and_dates(tmp_path):
    """The same figure's bytes in two processes at two dates; drawing it loads no model library (torch,
    transformers, open_clip: a figure script or notebook kernel pays for the plotting libraries only)."""
    digests = []
    for i, epoch in enumerate(("0", "1700000000")):
        env = dict(os.environ, SOURCE_DATE_EPOCH=epoch)
        done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / str(i))], check=True, env=env,
                              capture_output=True, text=True)
        assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
        digests.append([_digest(tmp_path / str(i) / f"probe.{ext}") for ext in ("pdf", "png")])
    assert digests[0] == digests[1]
