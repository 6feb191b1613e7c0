"""The video figures say which model family made them: each family's title (its card's display name), the
budget reading its run recorded and its weights note, never another family's."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from analysis.video import plots  # noqa: E402
from analysis.video.figure_set import video_labels  # noqa: E402
from litelvlm.families import card, cards  # noqa: E402

VIDEO_FAMILIES = [c.name for c in cards() if c.video_eval]


def _summary() -> pd.DataFrame:
    rows = [("none", 576, 0.5), ("litelvlm", 196, 0.4), ("litelvlm", 81, 0.3), ("fastv", 196, 0.35)]
    return pd.DataFrame([{"method": m, "budget": b, "J&F": v, "J": v, "F": v} for m, b, v in rows])


@pytest.mark.parametrize("family", VIDEO_FAMILIES)
def test_labels_name_the_family_of_the_run(family):
    reading = f"a reading of {family}'s own" if card(family).input != "video" else None
    config = {"family": family, **({"budget_reading": reading} if reading else {})}
    fig, ax = plots.plot_jf_vs_budget(_summary(), "J&F", labels=video_labels(config))
    title, xlabel = ax.get_title(), ax.get_xlabel().replace("\n", " ")
    assert title.startswith(f"{card(family).display_name}") and "Ref-DAVIS" in title
    assert (reading in xlabel) if reading else xlabel.startswith("CLIP tokens kept per frame")
    for other in {card(f).display_name for f in VIDEO_FAMILIES} - {card(family).display_name}:
        assert other not in title.split(",")[0] and other not in xlabel
    # no context_tokens here
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "none: all tokens"


def test_a_folder_recording_no_family_is_the_default_video_models():
    from litelvlm.families import DEFAULT_VIDEO_MODEL, family_of

    labels = video_labels({})
    assert labels.name == card(family_of(DEFAULT_VIDEO_MODEL)).display_name and labels.note.endswith(".")


def test_no_labels_refused():
    with pytest.raises(ValueError, match="labels"):
        plots.plot_jf_vs_budget(_summary())
