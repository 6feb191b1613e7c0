"""The video figures say which model family made them: each family's title (its card's display name), the
budget reading its run recorded and its weights note, never another family's."""

import json

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from analysis.video import plots  # noqa: E402
from analysis.video.figure_set import video_labels  # noqa: E402
from litelvlm.registry.families import card, cards  # noqa: E402

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
    from litelvlm.registry.families import DEFAULT_VIDEO_MODEL, family_of

    labels = video_labels({})
    assert labels.name == card(family_of(DEFAULT_VIDEO_MODEL)).display_name and labels.note.endswith(".")


def test_no_labels_refused():
    with pytest.raises(ValueError, match="labels"):
        plots.plot_jf_vs_budget(_summary())


@pytest.mark.parametrize(("recorded", "protocol", "other"),
                         [({}, "Ref-DAVIS-17 protocol", "MeViS"),
                          ({"dataset": "mevis", "split": "valid_u"}, "MeViS protocol on valid_u",
                           "Ref-DAVIS"),
                          ({"dataset": "ref-youtube-vos", "split": "valid"},
                           "Refer-YouTube-VOS protocol on valid", "Ref-DAVIS")])
def test_the_title_names_the_protocol_the_run_used(recorded, protocol, other):
    """A run records ``dataset`` (from ``--dataset``) unless it is Ref-DAVIS-17, the default and the only one
    before the others; the title names the protocol the run used, never another."""
    labels = video_labels({"family": "videoglamm", **recorded})
    fig, ax = plots.plot_jf_vs_budget(_summary(), "J", labels=labels)
    title = ax.get_title()
    assert f", {protocol}: J vs per-frame budget" in title and other not in title, title


def _run(folder, **recorded):
    folder.mkdir()
    config = {"model": "videoglamm-tiny-random:0", "family": "videoglamm", **recorded}
    (folder / "config.json").write_text(json.dumps(config))
    _summary().to_csv(folder / "summary.csv", index=False)
    return folder


def test_a_runs_figure_files_carry_its_dataset_unless_ref_davis(tmp_path):
    """The figures of a MeViS run are named after its dataset (``jf_mevis``, ...), a Ref-DAVIS-17 run's keep
    their names (``jf``, ``j``, ``f``)."""
    from analysis.video.figure_set import draw_video, read_video

    davis = draw_video(read_video(_run(tmp_path / "davis", split="valid")))
    mevis = draw_video(read_video(_run(tmp_path / "mevis", dataset="mevis", split="valid_u")))
    assert set(davis) == {"jf", "j", "f"} and set(mevis) == {"jf_mevis", "j_mevis", "f_mevis"}
    assert "MeViS protocol" in mevis["jf_mevis"].axes[0].get_title()
