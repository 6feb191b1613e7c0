"""``litelvlm demo``: the README's main job, on the bundled toy CLIP, offline and fast in smoke mode."""

from __future__ import annotations

import json
import math

from litelvlm.cli import main


def test_demo_smoke_on_the_bundled_toy_clip(tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default --out is a new folder of the working directory
    assert main(["demo", "--smoke"]) == 0
    out = tmp_path / "litelvlm-demo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["litelvlm-demo"]
    printed = capsys.readouterr().out
    assert "AUROC of reversed similarity" in printed and "[EOS]->[SOS]" in printed
    assert "TOY WEIGHTS (the bundled toy CLIP" in printed  # the numbers say which weights made them
    assert "figures_dir" not in printed and printed.rstrip().splitlines()[-1].startswith("  figures:")
    summary = json.loads((out / "demo_summary.json").read_text())
    from litelvlm.toy import default_model_path

    vc = json.loads((default_model_path() / "config.json").read_text())["vision_config"]
    g = vc["image_size"] // vc["patch_size"]
    # the bundled model is named by its place in the package, not by this machine's path
    assert summary["model"] == "litelvlm/toy/weights" and summary["grid"] == [g, g]
    assert summary["scenes"] == 6 and summary["sentences"] > 6
    for name in ("selection_overlay.png", "similarity_maps.png", "reversal_auroc.png"):
        assert (out / name).stat().st_size > 1000, name
    assert not (out / ".lock").exists()  # a run that ended leaves no lock behind
    for r in summary["reversal"]:
        assert 0.0 <= r["auroc_reversed_mean"] <= 1.0 and r["n_sentences"] > 0
        assert r["auroc_reversed_ci_low"] <= r["auroc_reversed_mean"] <= r["auroc_reversed_ci_high"]
    sink = summary["sink"]
    assert 0.0 < sink["sos_mean"] < 1.0 and 0.0 < sink["content_mean"] < 1.0
    assert all(0.0 <= v <= 1.0 for v in sink["per_layer_sos"])
    # the sink ablation re-scores study 1 with other text representations, side by side
    assert summary["sink_ablation"] and {"original", "content_mean"} <= set(summary["sink_ablation"][0])
    shares = summary["selection_referent_kept_share"]
    assert {"litelvlm", "clip_topsim", "random", "vispruner", "visionzip"} <= set(shares)
    assert all(0.0 <= v <= 1.0 and not math.isnan(v) for v in shares.values())
    n, shown = summary["selection_scenes_scorable"], summary["selection_scenes_shown"]
    assert summary["weights"] == "toy" and 0 < n <= shown == 2
    assert f"n = {n} of {shown} shown scenes with a referent patch; n < 10: an illustration" in printed
    # every headline number with its n and its K (or N, all tokens ranked) beside it
    headlines = [line for line in printed.splitlines()
                 if line.startswith(("  token selection", "  reversal", "  sink"))]
    assert len(headlines) >= 4 and all("n = " in line for line in headlines)
    # image tokens
    assert all("K = " in line or "N = " in line for line in headlines if "[EOS]->[SOS]" not in line)
    # each warning once: the left-out sentences (both studies score the same set), the weights' banner
    left_out = [r.getMessage() for r in caplog.records if "sentences left out" in r.getMessage()]
    assert len(left_out) == 1, left_out
    assert printed.count("TOY WEIGHTS") == 1 and len(printed.splitlines()) < 25


def test_the_selection_headline_counts_only_scorable_scenes():
    import pandas as pd

    from analysis.demo.compute import selection_headline

    table = pd.DataFrame(
        {"image_id": [1, 1, 2, 2, 3, 3], "method": ["a", "b"] * 3, "n_inside": [4, 4, 2, 2, 0, 0],
                          "referent_kept_share": [0.5, 1.0, 1.0, 0.0, float("nan"), float("nan")]})
    h = selection_headline(table)
    assert h == {"referent_kept_share": {"a": 0.75, "b": 0.5}, "scenes_scorable": 2, "scenes_shown": 3}


def test_demo_with_another_model_and_a_bad_one(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--smoke", "--model", "tiny-random:1", "--out", str(out)]) == 0
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["grid"] == [4, 4] and summary["model"] == "tiny-random:1"
    bad = tmp_path / "bad"
    assert main(["demo", "--smoke", "--model", str(tmp_path / "no-such-model"), "--out", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "no-such-model" in err and "does not exist" in err
    assert not bad.exists()


def test_the_demo_figures_state_k_and_n():
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import pandas as pd

    from analysis.demo.plots import plot_demo_reversal_hist, plot_demo_selection_grid

    img, inside = np.zeros((8, 8, 3)), np.array([True, False, False, False])
    fig, axes = plot_demo_selection_grid([img], ["a cat"], [inside], {"litelvlm": [np.array([0, 1])]}, (2, 2),
                                         budget=2)
    assert axes[0, 1].get_title().startswith("litelvlm, K = 2 of 4\n")
    df = pd.DataFrame({"layer": [1, 1, 1, 2, 2, 2], "auroc_reversed": [0.4, 0.6, 0.7, 0.5, 0.5, 0.9]})
    _, ax = plot_demo_reversal_hist(df, model="toy")
    assert ax.get_title() == "Reversed-similarity AUROC per sentence (toy), n = 3 sentences"
