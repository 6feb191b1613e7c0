"""Numbers that say which weights made them: ``litelvlm.registry.provenance`` decides, and every printed
summary, summary.csv, figure and notebook of random or toy weights says so (real weights: no mark)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from litelvlm.registry.provenance import mark_weights, run_weights_kind, weights_banner, weights_kind


@pytest.mark.parametrize("model, kind", [
    ("tiny-random", "random"), ("tiny-random:3", "random"), ("tiny336-random:1", "random"),
    ("vit-l-14-336-random", "random"), ("glamm-7b-random:0", "random"),
    ("random-vit-l-14-336-2layers", "random"),
    ("openai/clip-vit-large-patch14-336", "real"), ("ViT-L-14-336:openai", "real"), (None, "real"),
])
def test_model_strings(model, kind):
    assert weights_kind(model) == kind
    banner = weights_banner(model)
    if kind == "real":
        assert banner is None
    else:
        assert banner.startswith("RANDOM WEIGHTS (") and str(model) in banner and "not findings" in banner


def test_every_random_name_of_the_library_is_random():
    from litelvlm.models.model_spec import RANDOM_CLIPS
    from litelvlm.registry.families import card

    for name in [*RANDOM_CLIPS, *card("glamm").presets]:
        assert weights_kind(name) == weights_kind(f"{name}:7") == "random", name


def test_folders(tmp_path, monkeypatch):
    from litelvlm.toy import default_model_path

    toy = default_model_path()
    assert weights_kind(str(toy)) == weights_kind(f"local-dir:{toy}") == "toy"
    assert "bundled toy CLIP" in weights_banner(str(toy)) and weights_banner(str(toy)).startswith(
        "TOY WEIGHTS")
    trained = tmp_path / "trained"  # a toy-train output
    trained.mkdir()
    (trained / "training_metrics.json").write_text("{}")
    assert weights_kind(str(trained)) == "toy"
    real = tmp_path / "real"
    real.mkdir()
    (real / "config.json").write_text(json.dumps({"model_type": "clip"}))
    assert weights_kind(str(real)) == "real" and weights_banner(str(real)) is None
    glamm = tmp_path / "glamm"  # written by save_random_glamm
    glamm.mkdir()
    (glamm / "config.json").write_text(json.dumps({"litelvlm_random": {"arch": "tiny", "seed": 0}}))
    assert weights_kind(str(glamm)) == "random"
    small = tmp_path / "small"  # a converted GLaMM of a small architecture: no trained weights exist
    small.mkdir()
    (small / "config.json").write_text(json.dumps({"litelvlm_arch": {"name": "tiny"}}))
    assert weights_kind(str(small)) == "random"
    big = tmp_path / "big"
    big.mkdir()
    (big / "config.json").write_text(json.dumps({"litelvlm_arch": {"name": "glamm-7b"}}))
    assert weights_kind(str(big)) == "real"
    oc = tmp_path / "oc"
    oc.mkdir()
    (oc / "open_clip_config.json").write_text(json.dumps({"model_cfg": {}, "litelvlm_arch": {}}))
    assert weights_kind(f"local-dir:{oc}") == "random"
    monkeypatch.setenv("LITELVLM_CACHE", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "random-models" / "tiny-hf-seed0"
    cached.mkdir(parents=True)
    assert weights_kind(str(cached)) == "random"


def test_a_run_of_several_models_and_the_weights_column():
    assert run_weights_kind(["/no/such/real", "tiny-random:0"]) == "random"
    assert run_weights_kind([None, None]) == "real"
    assert weights_banner(None, "tiny336-random:2").startswith("RANDOM WEIGHTS (tiny336-random:2)")
    table = pd.DataFrame({"method": ["a", "b"], "ciou": [0.1, 0.2]})
    marked = mark_weights(table, "tiny-random:0")
    assert list(marked.columns) == ["method", "ciou", "weights"] and set(marked["weights"]) == {"random"}
    real = mark_weights(table, "openai/clip-vit-large-patch14-336")
    assert set(real["weights"]) == {"real"} and real.drop(columns="weights").equals(table)


def test_the_banner_names_every_model_that_is_not_real():
    """A figure of several runs (two random seeds) names each of them, once; a real model is not named;
    past BANNER_MODELS the first few are named and the rest counted."""
    from litelvlm.registry.provenance import BANNER_MODELS

    two = weights_banner("tiny336-random", "openai/clip-vit-large-patch14-336", "tiny336-random:1",
                         "tiny336-random")
    assert (two == "RANDOM WEIGHTS (tiny336-random, tiny336-random:1): numbers exercise the pipeline, they "
            "are not findings")
    from litelvlm.toy import default_model_path

    toy = str(default_model_path())
    mixed = weights_banner("tiny-random:0", toy)
    assert mixed.startswith("RANDOM WEIGHTS (tiny-random:0, the bundled toy CLIP") and "[toy]" in mixed
    many = [f"tiny-random:{i}" for i in range(BANNER_MODELS + 3)]
    text = weights_banner(*many)
    assert all(m in text for m in many[:BANNER_MODELS - 1]) and many[-1] not in text
    assert f"and {len(many) - BANNER_MODELS + 1} more" in text
    exactly = weights_banner(*many[:BANNER_MODELS])
    assert all(m in exactly for m in many[:BANNER_MODELS]) and "more" not in exactly


def test_a_study_on_random_weights_prints_the_banner_and_marks_summary_csv(coco128, tmp_path, capsys):
    from litelvlm.cli import main

    out = tmp_path / "rev"
    assert main(["reversal", "--model", "tiny336-random:0", "--refer-dir", str(coco128), "--split", "val",
                 "--limit", "8", "--n-boot", "50", "--cache-dir", str(tmp_path / "cache"), "--out",
                 str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == weights_banner("tiny336-random:0")
    assert set(pd.read_csv(out / "summary.csv")["weights"]) == {"random"}
    from analysis.common.presentation.figure_set import results_models

    assert results_models(out) == ["tiny336-random:0"]


def _summary() -> pd.DataFrame:
    return pd.DataFrame({"method": ["none", "litelvlm", "litelvlm"], "budget": [576, 144, 36],
                         "ciou": [0.3, 0.28, 0.2], "giou": [0.3, 0.27, 0.2], "n": [4, 4, 4],
                         "protocol": ["official"] * 3})


def test_a_figure_of_random_weights_carries_the_footnote(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    from analysis.common.presentation.figure_set import save_figures
    from analysis.grounding import plots

    fig, _ = plots.plot_iou_vs_budget(_summary(), "ciou", protocol="official")
    paths = save_figures({"ciou": fig}, tmp_path, "grounding", ["tiny-random:0", None])
    texts = [t.get_text().replace("\n", " ") for t in fig.findobj(Text)]
    assert weights_banner("tiny-random:0") in texts
    assert {p.suffix for p in paths} == {".pdf", ".png"} and all(p.stat().st_size > 1000 for p in paths)
    real, _ = plots.plot_iou_vs_budget(_summary(), "ciou", protocol="official")
    save_figures({"ciou": real}, tmp_path / "real", "grounding", ["openai/clip-vit-large-patch14-336"])
    assert not any("WEIGHTS" in t.get_text() for t in real.findobj(Text))
    # a figure whose legend lies under the axes (anchored to the bottom edge): the note goes on top
    below, ax = plots.plot_iou_vs_budget(_summary(), "ciou", protocol="official", legend=False)
    below.legend(*ax.get_legend_handles_labels(), loc="outside lower center")
    save_figures({"ciou": below}, tmp_path / "below", "grounding", ["tiny-random:0"])
    note = next(t for t in below.findobj(Text) if t.get_gid() == "weights-footnote")
    FigureCanvasAgg(below)  # closed by save_figures: measure on a fresh canvas
    below.draw_without_rendering()
    renderer = below.canvas.get_renderer()
    assert note.get_window_extent(renderer).y0 >= below.axes[0].get_tightbbox(renderer).y1


def test_the_notebook_banner_cell():
    from analysis.common.presentation.figure_set import MODELS_KEY
    from analysis.figures.notebook_gen import BANNER_CELL, make_notebook
    from analysis.figures.registry import FIGURE_SETS

    for fam in FIGURE_SETS.values():
        sources = [c["source"] for c in make_notebook(fam).cells]
        i = sources.index(BANNER_CELL)
        # the runs read before it; the figures after it are saved with the weights' footnote of their models
        assert "load_runs(" in sources[i - 1] and "save_runs(figure_set, drawn, OUT)" in sources[i + 1]

    def shown(models):
        out = []
        namespace = {"runs": [{MODELS_KEY: models}], "MODELS_KEY": MODELS_KEY, "display": out.append}
        exec(BANNER_CELL, namespace)
        return [m.data for m in out]

    assert shown(["tiny-random:0"]) == [f"> **⚠ {weights_banner('tiny-random:0')}**"]
    assert shown(["openai/clip-vit-large-patch14-336"]) == [] and shown([]) == []


def test_a_random_hf_clip_written_outside_the_cache_is_random(tmp_path):
    from litelvlm.clip.random_init import save_random_hf_clip

    path = save_random_hf_clip(tmp_path / "clip", "tiny", seed=2)
    assert weights_kind(str(path)) == "random"
