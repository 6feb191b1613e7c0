"""Study 1, similarity reversal: metrics against hand computations, and `litelvlm reversal` end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.common.measures.clip_reversal import resolve_layers, reversal_metrics, similarity_rows
from analysis.common.runs.features_cache import VisionFeatureCache
from litelvlm.cli import main
from litelvlm.data.fixtures import write_tiny_refer
from litelvlm.errors import LiteLVLMError
from tests.fixtures.png_only import png_only


def test_metrics_against_hand_computation():
    s = np.array([0.9, 0.1, 0.5, 0.1, 0.3, 0.7, 0.2, 0.1])
    inside = np.array([0, 1, 0, 1, 1, 0, 0, 0], bool)
    m = reversal_metrics(s, inside, ks=(2, 3, 9))
    # AUROC of -s for inside: pairs (in, out) with -s_in > -s_out, ties one half
    pos, neg = -s[inside], -s[~inside]
    want = np.mean([1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg])
    assert m["auroc_reversed"][0] == pytest.approx(want)
    assert m["n_in"][0] == 3 and m["n_out"][0] == 5
    assert m["gap"][0] == pytest.approx((s[inside].mean() - s[~inside].mean()) / s.std())
    # lowest two: the tie at 0.1 (three patches, indices 1, 3, 7) is broken by index (stable)
    assert m["low_in_share_k2"][0] == pytest.approx(1.0)
    assert m["low_in_share_k3"][0] == pytest.approx(2 / 3)
    assert m["high_in_share_k3"][0] == 0.0  # 0.9, 0.7, 0.5 are all outside
    assert m["rand_in_share_k3"][0] == pytest.approx(3 / 8)
    assert np.isnan(m["low_in_share_k9"][0])  # k > N carries no ranking


def test_similarity_dot_and_cosine():
    import torch

    t = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    p = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(similarity_rows(t, p, "dot"), t.double().numpy() @ p.double().numpy().T)
    cos = similarity_rows(t, p, "cosine")
    np.testing.assert_allclose(cos[0, 0], 11 / (5 ** 0.5 * 5))
    # a patch's score does not depend on which other patches share its batch
    np.testing.assert_array_equal(similarity_rows(t, p)[:, 1:], similarity_rows(t, p[1:]))


def test_resolve_layers():
    assert resolve_layers(None, 3) == [2, 3]
    assert resolve_layers(["all"], 3) == [0, 1, 2, 3]
    assert resolve_layers(["3,0", "1"], 3) == [0, 1, 3]
    with pytest.raises(LiteLVLMError, match="0..3"):
        resolve_layers(["4"], 3)
    with pytest.raises(LiteLVLMError, match="'x'"):
        resolve_layers(["x"], 3)


COLUMNS = ["model", "image_id", "ref_id", "sent_id", "sentence", "layer", "auroc_reversed", "gap", "n_in",
           "n_out", *[f"{p}_in_share_k{k}" for k in (32, 64, 128, 192) for p in ("low", "high", "rand")]]


def _run(model, data, out, cache, *extra, backend=None):
    argv = ["reversal", "--model", str(model), "--refer-dir", str(data), "--split", "val", "--layers", "all",
            "--n-boot", "100", "--cache-dir", str(cache), "--out", str(out), *extra]
    if backend:
        argv += ["--backend", backend]
    return main(argv)


def test_reversal_cli_coco128_hf_cache_and_determinism(coco128, tiny_hf_clip_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    assert _run(tiny_hf_clip_dir, coco128, tmp_path / "a", cache, "--limit", "40") == 0
    df = pd.read_parquet(tmp_path / "a" / "reversal.parquet")
    assert all(c in df.columns for c in COLUMNS)
    assert sorted(df["layer"].unique()) == [0, 1, 2, 3]
    assert (df["n_in"] > 0).all() and (df["n_out"] > 0).all() and (df["n_in"] + df["n_out"] == 16).all()
    assert df["auroc_reversed"].between(0, 1).all()
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["clip"]["weights_hash"] and cfg["clip"]["geometry"]["mode"] == "shortest"
    assert {"torch", "transformers", "open_clip"} <= set(cfg["versions"])
    c = cfg["counts"]
    assert c["sentences_total"] == 40 and c["cache_hits"] == 0
    assert c["sentences_scored"] + sum(v for k, v in c.items() if k.startswith("excluded_")) == 40
    assert len(df) == 4 * c["sentences_scored"]
    summary = pd.read_csv(tmp_path / "a" / "summary.csv")
    assert {"all", "area_bin", "category", "length_bin", "split"} <= set(summary["breakdown"])
    for col in ("auroc_reversed_mean", "auroc_reversed_ci_low", "auroc_reversed_ci_high", "share_reversed",
                "wilcoxon_p", "gap_mean"):
        assert col in summary.columns
    overall = summary[summary["breakdown"] == "all"].set_index("layer")
    np.testing.assert_allclose(overall["auroc_reversed_mean"], df.groupby("layer")["auroc_reversed"].mean())

    # second run: every image from the cache, the vision tower never runs, identical bytes
    def no_vision(self, paths):
        raise AssertionError("vision forward ran on a warm cache")

    monkeypatch.setattr(VisionFeatureCache, "compute", no_vision)
    assert _run(tiny_hf_clip_dir, coco128, tmp_path / "b", cache, "--limit", "40") == 0
    assert json.loads((tmp_path / "b" / "config.json").read_text())["counts"]["cache_misses"] == 0
    assert (tmp_path / "a" / "reversal.parquet").read_bytes() == (tmp_path / "b"
                                                                  / "reversal.parquet").read_bytes()


def test_interrupted_run_resumes(coco128, tiny_hf_clip_dir, tmp_path, monkeypatch):
    assert _run(tiny_hf_clip_dir, coco128, tmp_path / "ref", tmp_path / "c1", "--limit", "20",
                "--no-cache") == 0
    orig = VisionFeatureCache.compute
    calls = []

    def interrupted(self, paths):
        calls.append(len(paths))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return orig(self, paths)

    monkeypatch.setattr(VisionFeatureCache, "compute", interrupted)
    # the CLI reports the interruption with status 130
    assert _run(tiny_hf_clip_dir, coco128, tmp_path / "x", tmp_path / "c2", "--limit", "20", "--batch-size",
                "1") == 130
    assert not (tmp_path / "x").exists()  # nothing partial
    monkeypatch.setattr(VisionFeatureCache, "compute", orig)
    assert _run(tiny_hf_clip_dir, coco128, tmp_path / "y", tmp_path / "c2", "--limit", "20") == 0
    c = json.loads((tmp_path / "y" / "config.json").read_text())["counts"]
    assert c["cache_hits"] == 2 and c["cache_misses"] >= 1  # the two finished images were kept
    assert (tmp_path / "ref" / "reversal.parquet").read_bytes() == (tmp_path / "y"
                                                                    / "reversal.parquet").read_bytes()


def test_open_clip_backend_and_glamm_template(coco128, tiny_open_clip_dir, tmp_path):
    out = tmp_path / "oc"
    assert _run(f"local-dir:{tiny_open_clip_dir}", coco128, out, tmp_path / "cache", "--limit", "20",
                "--text-template", "glamm", "--similarity", "cosine", backend="open_clip") == 0
    df = pd.read_parquet(out / "reversal.parquet")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["clip"]["backend"] == "open_clip" and cfg["clip"]["geometry"]["crop_rounding"] == "round"
    assert (df["text"] != df["sentence"]).all() and df["text"].str.contains("segment").any()
    assert df["auroc_reversed"].notna().all()


def test_unreadable_images_are_skipped_and_counted(tiny_hf_clip_dir, tmp_path, capsys):
    refer = write_tiny_refer(tmp_path / "r")
    imgs = sorted((refer / "images").iterdir())
    imgs[0].write_bytes(b"\xff\xd8\xff truncated")
    imgs[1].unlink()
    assert _run(tiny_hf_clip_dir, refer, tmp_path / "o", tmp_path / "cache") == 0
    c = json.loads((tmp_path / "o" / "config.json").read_text())["counts"]
    assert c["images_skipped_unreadable"] == 2 and c["excluded_image_unreadable"] == 4
    assert c["images_scored"] == 1
    df = pd.read_parquet(tmp_path / "o" / "reversal.parquet")
    assert set(df["image_id"]) == {3}
    assert "excluded" in capsys.readouterr().out


def test_coco_instances_input(tmp_path, tiny_hf_clip_dir):
    refer = write_tiny_refer(tmp_path / "r")
    out = tmp_path / "o"
    rc = main(
        ["reversal", "--model", str(tiny_hf_clip_dir), "--coco-instances", str(refer / "instances.json"),
               "--n-boot", "50", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    assert rc == 0
    df = pd.read_parquet(out / "reversal.parquet")
    assert set(df["sentence"]) <= {"box", "pair"} and len(df) > 0


@pytest.mark.parametrize("extra,match", [
    (["--layers", "9"], "--layers"),
    (["--limit", "0"], "--limit"),
    (["--split", "bogus"], "split 'bogus'"),
    (["--ks", "0"], "--ks"),
    (["--threshold", "1.5"], "--threshold"),
    (["--refer-dir", "/nonexistent"], "does not exist"),
    (["--coco-instances", "INSTANCES"], "exactly one"),
])
def test_bad_arguments_exit_2_and_write_nothing(extra, match, tmp_path, tiny_hf_clip_dir, capsys):
    refer = write_tiny_refer(tmp_path / "r")
    argv = ["reversal", "--model", str(tiny_hf_clip_dir), "--out", str(tmp_path / "out")]
    if "--refer-dir" not in extra:
        argv += ["--refer-dir", str(refer)]
    extra = [str(refer / "instances.json") if e == "INSTANCES" else e for e in extra]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_reversal_plots_return_fig_and_ax():
    import matplotlib.pyplot as plt
    from PIL import Image

    from analysis.reversal import plots
    from litelvlm.clip.traces import Geometry
    from litelvlm.data.geometry import transform_params

    rows = []
    for model in ("a", "b"):
        for layer in (0, 1, 2):
            for breakdown, group in (("all", "all"), ("area_bin", "[0,0.02)"), ("area_bin", "[0.02,0.05)"),
                                     ("category", "dog"), ("category", "person")):
                rows.append({"model": model, "breakdown": breakdown, "group": group, "layer": layer,
                             "n_sentences": 5, "auroc_reversed_mean": 0.6, "auroc_reversed_ci_low": 0.5,
                             "auroc_reversed_ci_high": 0.7})
    summary = pd.DataFrame(rows)
    fig, ax = plots.plot_auroc_by_layer(summary)
    assert len(ax.get_lines()) == 3  # two models and the chance line
    fig2, ax2 = plots.plot_reversal_breakdown(summary, "category")
    assert [t.get_text() for t in ax2.get_xticklabels()] == ["dog", "person"]
    # every n on a bar says what it counts (the table's unit: sentences here, images where it counts them)
    assert [t.get_text() for t in ax2.texts] == ["n=5", "n=5"]
    assert "n on each bar: sentences" in ax2.get_ylabel()
    img = Image.fromarray((np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8))
    mask = np.zeros((60, 80), bool)
    mask[10:40, 20:50] = True
    params = transform_params(Geometry("shortest", 56, (56, 56)), 60, 80)
    fig3, ax3 = plots.plot_similarity_map(img, mask, np.arange(16.0).reshape(4, 4), params, k=3)
    assert len(ax3.collections) >= 2 and ax3.get_legend() is not None
    view, mview = plots.model_input_view(img, mask, params)
    assert view.shape == (56, 56, 3) and mview.any() and not mview.all()
    for f in (fig, fig2, fig3):
        plt.close(f)


def test_figures_keep_two_runs_of_one_model_apart(coco128, tmp_path):
    """Two reversal runs of the same model with other options: one legend entry and one breakdown each."""
    import matplotlib.pyplot as plt

    from analysis.reversal.figure_set import draw_reversal, read_reversal
    from litelvlm.cli import main as cli_main

    tree = tmp_path / "tree" / "reversal"
    for name, sim in (("dot", "dot"), ("cosine", "cosine")):
        assert cli_main(
            ["reversal", "--model", "tiny336-random", "--refer-dir", str(coco128), "--limit-sentences", "8",
                         "--n-boot", "10", "--no-cache", "--similarity", sim, "--out", str(tree / name)]) == 0
    tables = read_reversal(tmp_path / "tree")
    assert sorted(tables["summary"]["model"].unique()) == ["tiny336-random (cosine)", "tiny336-random (dot)"]
    figs = draw_reversal(tables)
    assert {"by_area_tiny336-random-cosine", "by_area_tiny336-random-dot",
            "by_category_tiny336-random-cosine",
            "by_category_tiny336-random-dot"} <= set(figs)   # each run's breakdowns named after it, no "_2"
    labels = figs["auroc_by_layer"].axes[0].get_legend_handles_labels()[1]
    assert labels == ["tiny336-random (cosine)", "tiny336-random (dot)", "chance"]
    for fig in figs.values():
        plt.close(fig)


def test_each_figure_notes_the_weights_of_its_own_data(coco128, tmp_path, monkeypatch):
    """A tree of two models: each per-run figure names its own model, and saving adds no second note."""
    import matplotlib.pyplot as plt

    from analysis.common.presentation.figure_set import save_figures
    from analysis.reversal.figure_set import draw_reversal, read_reversal
    from litelvlm.cli import main as cli_main

    tree = tmp_path / "tree" / "reversal"
    for i, model in enumerate(("tiny336-random", "tiny336-random:1")):
        assert cli_main(["reversal", "--model", model, "--refer-dir", str(coco128), "--limit-sentences", "8",
                         "--n-boot", "10", "--no-cache", "--save-maps", "1" if i == 0 else "0",
                         "--out", str(tree / f"run{i}")]) == 0
    figs = draw_reversal(read_reversal(tmp_path / "tree"))

    def notes(fig) -> list[str]:
        return [t.get_text().replace("\n", " ") for t in fig.texts if t.get_gid() == "weights-footnote"]

    assert notes(figs["by_category_tiny336-random-1"]) == ["RANDOM WEIGHTS (tiny336-random:1): numbers "
                                                           "exercise the pipeline, they are not findings"]
    assert "tiny336-random:1" not in notes(figs["by_category_tiny336-random"])[
        0] and "tiny336-random" in notes(figs["map_0"])[0]
    png_only(monkeypatch)   # the figures' notes are checked, not their files
    save_figures(figs, tmp_path / "figs", "reversal", ["tiny336-random", "tiny336-random:1"])
    assert all(len(notes(f)) == 1 for f in figs.values())  # the tree's note only where none was written
    # both runs: the tree's note, naming both models
    assert notes(figs["auroc_by_layer"]) == ["RANDOM WEIGHTS (tiny336-random, tiny336-random:1): numbers "
                                             "exercise the pipeline, they are not findings"]
    for fig in figs.values():
        plt.close(fig)
