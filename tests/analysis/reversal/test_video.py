"""``litelvlm reversal --video`` / ``--video-dir``: the image study's statistics on video frames (the
synthetic moving-shapes set), each frame's referent the expression's ground-truth mask on it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.reversal.video import SYNTHETIC_SIZE, frame_records, stable_id
from litelvlm.cli import main

SMALL = ["--synthetic-videos", "1", "--synthetic-frames", "3", "--synthetic-seed", "5", "--n-boot", "20"]


def test_cli_video_reversal_on_the_synthetic_set(tmp_path):
    from litelvlm.clip import load_clip
    from litelvlm.data.geometry import patch_coverage
    from litelvlm.video.synthetic import write_synthetic_videos

    out = tmp_path / "rev"
    assert main(["reversal", "--video", *SMALL, "--out", str(out)]) == 0
    df = pd.read_parquet(out / "reversal.parquet")
    config = json.loads((out / "config.json").read_text())
    data = write_synthetic_videos(tmp_path / "data", videos=1, frames=3, size=SYNTHETIC_SIZE, seed=5)
    records = frame_records(data, "valid")
    layers = sorted(df.layer.unique())
    scored = config["counts"]["sentences_scored"]
    assert scored + sum(v for k, v in config["counts"].items() if k.startswith("excluded_")) == len(records)
    assert len(df) == scored * len(layers) and scored > 0
    assert {"video", "frame", "frame_index", "exp_id"} <= set(df.columns) and set(df.frame_index) <= {0, 1, 2}
    assert df[["auroc_reversed"]].apply(lambda c: c.between(0, 1)).all().all()
    # each row's referent is the expression's mask on that frame, on CLIP's patches
    clip = load_clip("tiny336-random", "hf")
    by_sent = {r.sent_id: r for r in records}
    for _, row in df[df.layer == layers[0]].iterrows():
        r = by_sent[row.sent_id]
        assert (r.video, r.frame, r.exp_id, r.sentence) == (row.video, row.frame, row.exp_id, row.sentence)
        assert row.image_id == stable_id(r.video, r.frame) and row.category == r.video
        inside = patch_coverage(r.mask(), clip.geometry, clip.grid, False).inside(0.5)
        assert row.n_in == int(np.sum(inside)) > 0
    summary = pd.read_csv(out / "summary.csv")
    overall = summary[summary.breakdown == "all"]
    assert sorted(overall.layer) == layers and (overall.n_sentences == scored).all()
    assert set(summary[summary.breakdown == "category"].group) == set(df.video)
    # the same frames read from a Ref-DAVIS folder give the same rows
    again = tmp_path / "rev2"
    assert main(["reversal", "--video-dir", str(data), "--n-boot", "20", "--out", str(again)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(again / "reversal.parquet"), df)
    # the reversal figure set draws a video run's folder unchanged (its "category" panel is per video)
    import matplotlib.pyplot as plt

    from analysis.reversal.figure_set import draw_reversal, read_reversal

    figures = draw_reversal(read_reversal(out))
    assert figures and all(hasattr(fig, "savefig") for fig in figures.values())
    plt.close("all")


@pytest.mark.parametrize("argv", [["--video", "--refer-dir", "."], ["--video-dir", "/nonexistent/folder"],
                                  ["--video", "--grid", "unipixel", "--pad-to-square"]])
def test_video_reversal_refusals_before_writing(tmp_path, argv, capsys):
    out = tmp_path / "rev"
    assert main(["reversal", *argv, "--out", str(out)]) == 2
    assert "video" in capsys.readouterr().err and not out.exists()
