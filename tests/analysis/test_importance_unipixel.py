"""`litelvlm importance` on the second model family, UniPixel (tiny random weights, CPU, one COCO-128 image):
the signals the family gives, compared with the ranking scores of the LLM-side methods it runs; each image's
own N and token grid recorded; what the family cannot give refused before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from litelvlm.cli import main

MODEL = "unipixel-tiny-random:0"
IMAGE_ID = 9  # the first image of COCO-128's val split, which --limit-images 1 scores


@pytest.fixture(scope="module")
def unipixel_n(coco128):
    """(N, merged grid) of the scored image, asked of the pipeline directly: Qwen2.5-VL's patch grid (time,
    height, width) merged 2 x 2 (``spatial_merge_size``) into the LLM's tokens."""
    from litelvlm.data.refer import load_refer
    from litelvlm.registry.families import load_pipeline

    pipe = load_pipeline(MODEL)
    rec = next(r for r in load_refer(coco128, None, "refcoco", "unc", "val") if r.image_id == IMAGE_ID)
    prep = pipe.prepare_image(rec.image())
    merge = int(pipe.qwen.config.vision_config.spatial_merge_size)
    _, h, w = (int(v) for v in prep.grid_thw[0])
    return pipe.num_visual(prep), (h // merge, w // merge)


def _run(coco, out, *extra) -> int:
    return main(["importance", "--model", MODEL, "--refer-dir", str(coco), "--limit-images", "1",
                 "--max-sentences", "1", "--n-boot", "20", "--out", str(out), *map(str, extra)])


@pytest.fixture(scope="module")
def results(coco128, tmp_path_factory):
    out = tmp_path_factory.mktemp("importance") / "run"
    assert _run(coco128, out, "--signals", "attention,saliency,ablation", "--target", "seg_norm",
                "--method-signals", "fastv,dart,ivc-prune,hiprune", "--group", 8, "--save-scores", 1) == 0
    return out


def test_tables_record_each_image_n_and_compare_the_method_signals(results, unipixel_n):
    n, grid = unipixel_n
    visual = pd.read_csv(results / "visual_tokens.csv")
    assert visual.to_dict("records") == [{"image_id": IMAGE_ID, "num_visual": n, "grid_h": grid[0],
                                          "grid_w": grid[1]}]
    cfg = json.loads((results / "config.json").read_text())
    assert cfg["num_visual_tokens"] is None and cfg["paired_clip"]["model"] == "tiny336-random:0"
    assert cfg["clip_signals"] == ["clip_rev_sim", "clip_context", "clip_topsim"]
    rows = pd.read_parquet(results / "importance.parquet")
    # the CLIP signals are the paired CLIP's scores mapped onto the merged tokens (this project's adaptation)
    assert set(rows["clip_signal"]) == {"clip_rev_sim", "clip_context", "clip_topsim", "method:fastv",
                                        "method:dart",
                                      "method:ivc-prune", "method:hiprune"}
    assert set(rows["llm_signal"]) == {"attention", "saliency", "ablation"}
    assert set(rows.loc[rows["llm_signal"] == "attention", "layer"]) == set(range(cfg["llm_layers"]))
    scores = pd.read_parquet(results / "token_scores.parquet")
    assert (scores["grid_h"] == grid[0]).all() and (scores["grid_w"] == grid[1]).all()
    for v in scores["scores"]:
        assert v.shape == (n,) and np.isfinite(v).all()
    attn = rows[(rows["llm_signal"] == "attention") & (rows["head"] == -1)]
    assert np.isfinite(attn[["pearson", "spearman", "kendall"]].to_numpy()).all()
    ks = [int(c.split("_")[1]) for c in rows.columns if c.startswith("jaccard_")]
    assert np.isfinite(attn[[f"jaccard_{k}" for k in ks if k < n]].to_numpy()).all()
    from PIL import Image

    from litelvlm.data.refer import load_refer

    window = Image.open(results / "images" / f"{IMAGE_ID}.png")
    rec = next(r for r in load_refer(cfg["refer_dir"], None, "refcoco", "unc", "val") if r.image_id
               == IMAGE_ID)
    assert window.size == rec.image().size  # the whole image: UniPixel's tokens cover it uncropped


@pytest.mark.parametrize(("extra", "why"), [
    # every ranking method runs on UniPixel now (HiPrune through its Qwen2.5-VL variant): one that ranks by
    # none
    (("--signals", "attention", "--method-signals", "tome"), "rank by no per-token score"),
    (("--signals", "layer_integrated_gradients", "--method-signals", "fastv"), "no such projector"),
])
def test_what_the_family_cannot_give_is_refused_and_nothing_written(coco128, tmp_path, extra, why, capsys):
    out = tmp_path / "run"
    assert _run(coco128, out, *extra) == 2
    assert why in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
