"""The video figures say which model family made them: VideoGLaMM's or UniPixel's axis and title, never the other's."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from analysis.video import plots  # noqa: E402


def _summary() -> pd.DataFrame:
    rows = [("none", 576, 0.5), ("litelvlm", 196, 0.4), ("litelvlm", 81, 0.3), ("fastv", 196, 0.35)]
    return pd.DataFrame([{"method": m, "budget": b, "J&F": v, "J": v, "F": v} for m, b, v in rows])


@pytest.mark.parametrize("family, title, axis", [
    ("videoglamm", "VideoGLaMM, Ref-DAVIS", "CLIP tokens kept per frame"),
    ("unipixel", "UniPixel (video path), Ref-DAVIS", "the same fraction of the video's merged tokens"),
])
def test_labels_name_the_family(family, title, axis):
    fig, ax = plots.plot_jf_vs_budget(_summary(), "J&F", family=family)
    assert ax.get_title().startswith(title)
    assert axis in ax.get_xlabel().replace("\n", " ")
    other = "UniPixel" if family == "videoglamm" else "VideoGLaMM"
    assert other not in ax.get_title() and other not in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "all 576 tokens"


def test_unknown_family_refused():
    with pytest.raises(ValueError, match="family must be one of"):
        plots.plot_jf_vs_budget(_summary(), family="glamm")
