"""The importance study on the tiny random GLaMM: every signal, IG completeness, planted cases, the
command end to end, and the ``saliency`` oracle as an eval-grounding method."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from analysis.importance.compute import METRICS, compare_signals
from analysis.importance.options import CLIP_SIGNALS
from analysis.importance.signals import (
    GRADIENT_SIGNALS,
    QUERY_SETS,
    SignalKey,
    SignalOptions,
    clip_signals,
    llm_signals,
)
from litelvlm.cli import main
from litelvlm.llm.attribution import token_attributions


@pytest.fixture(scope="module")
def pipe(tiny_glamm):
    return tiny_glamm


@pytest.fixture(scope="module")
def prepared(pipe, tmp_path_factory):
    from litelvlm.data.fixtures import write_tiny_refer
    from litelvlm.data.refer import load_refer

    d = write_tiny_refer(tmp_path_factory.mktemp("refer"), sizes=((120, 160),))
    rec = load_refer(d, None, "refcoco", "unc", "val")[0]
    return pipe.prepare(rec.image(), [rec.sentence])


def test_every_signal_has_the_expected_shape_and_is_finite(pipe, prepared):
    n = pipe.num_visual_tokens
    arch = pipe.model.arch
    clip = clip_signals(prepared)
    assert set(k.name for k in clip) == set(CLIP_SIGNALS)
    torch.testing.assert_close(clip[SignalKey("clip_rev_sim")], -clip[SignalKey("clip_topsim")])
    llm, deltas = llm_signals(pipe, prepared, ["attention", *GRADIENT_SIGNALS, "ablation"],
                              SignalOptions(ig_steps=2, internal_batch_size=2, group=12))
    attn = [k for k in llm if k.name == "attention"]
    assert len(attn) == arch.llm_layers * len(QUERY_SETS) * (arch.llm_heads + 1)
    assert {k.layer for k in attn} == set(range(arch.llm_layers))
    assert {k.name for k in llm} == {"attention", *GRADIENT_SIGNALS, "ablation"}
    for k, v in {**clip, **llm}.items():
        assert v.shape == (n,), k
        assert torch.isfinite(v).all(), k
    for k in attn:            # attention probabilities over the visual keys: within [0, 1], not all zero
        assert (llm[k] >= 0).all() and llm[k].sum() <= 1 + 1e-5 and llm[k].sum() > 0
    assert (llm[SignalKey("saliency")] >= 0).all() and llm[SignalKey("saliency")].sum() > 0
    abl = llm[SignalKey("ablation")].reshape(24, 24)
    assert torch.equal(abl[:12, :12], abl[0, 0].expand(12, 12))      # constant within a 12x12 group
    assert set(deltas) == {"integrated_gradients", "layer_integrated_gradients"}


def test_integrated_gradients_completeness_on_the_glamm_target(pipe, prepared):
    from litelvlm.methods.saliency import GroundingTarget

    gt = GroundingTarget(pipe, prepared)
    vis = pipe.visual_tokens(prepared).detach()
    with torch.enable_grad():
        res = token_attributions(gt, vis, "integrated_gradients", n_steps=12, internal_batch_size=12)
    base = vis.mean(0, keepdim=True).expand_as(vis)
    with torch.no_grad():
        diff = float(gt(vis[None]) - gt(base[None]))
    assert abs(diff) > 1e-3
    assert res.raw.sum().item() == pytest.approx(diff, rel=2e-2, abs=1e-3)
    assert res.delta <= 2e-2 * abs(diff) + 1e-3


def test_compare_signals_matches_scipy_and_planted_signal_gives_one():
    rng = np.random.default_rng(0)
    planted = rng.normal(size=576)
    noisy = planted + rng.normal(size=576)
    clip = {SignalKey("clip_rev_sim"): planted}
    llm = {SignalKey("attention", "seg", 2, -1): np.exp(planted),   # monotone in the planted score
           SignalKey("saliency"): noisy}
    rows = {(r["llm_signal"], r["layer"]): r for r in compare_signals(clip, llm)}
    planted_row = rows[("attention", 2)]
    assert planted_row["spearman"] == pytest.approx(1.0) and planted_row["kendall"] == pytest.approx(1.0)
    assert all(planted_row[f"jaccard_{k}"] == 1.0 for k in (32, 64, 128, 192))
    r = rows[("saliency", -1)]
    assert r["pearson"] == pytest.approx(stats.pearsonr(planted, noisy).statistic, abs=1e-12)
    assert r["spearman"] == pytest.approx(stats.spearmanr(planted, noisy).statistic, abs=1e-12)
    assert r["kendall"] == pytest.approx(stats.kendalltau(planted, noisy).statistic, abs=1e-12)


def test_planted_target_is_recovered_by_the_saliency_oracle_scores():
    torch.manual_seed(0)
    n, h = 576, 16
    w = torch.rand(n) + 0.1                    # planted importance
    u = torch.randn(h)
    x = torch.randn(n, h)
    scores = token_attributions(lambda v: (w * (v @ u)).sum(-1), x, "saliency").scores
    # the gradient of token i is w_i * u, so its norm is w_i * |u|: the planted ranking exactly
    torch.testing.assert_close(scores, w * u.norm(), rtol=1e-5, atol=1e-6)
    assert stats.spearmanr(scores.numpy(), w.numpy()).statistic == pytest.approx(1.0)


def test_saliency_oracle_keeps_its_top_tokens(pipe, prepared):
    from litelvlm.methods.saliency import GroundingTarget

    with torch.no_grad():
        out = pipe.ground(prepared, "saliency", 32)
    assert out.masks.shape[0] == 1 and len(out.kept_indices) == 32
    assert torch.equal(out.kept_indices, torch.sort(out.kept_indices).values)       # raster order
    gt = GroundingTarget(pipe, prepared)
    scores = token_attributions(gt, pipe.visual_tokens(prepared).detach(), "saliency").scores
    assert set(out.kept_indices.tolist()) == set(torch.topk(scores, 32).indices.tolist())
    with pytest.raises(Exception, match="unknown saliency target"):
        pipe.ground(prepared, "saliency", 32, target="nope")
    with pytest.raises(Exception, match="unknown attribution 'layer_integrated_gradients'"):
        pipe.ground(prepared, "saliency", 32, attribution="layer_integrated_gradients")


def test_merging_method_refuses_given_visual_embeds(pipe, prepared):
    vis = pipe.visual_tokens(prepared).detach()
    with torch.no_grad():
        with pytest.raises(Exception, match="merges CLIP features"):
            pipe.ground(prepared, "visionzip", 32, visual_embeds=vis)
        assert len(pipe.ground(prepared, "visionzip", 32).kept_indices) == 32      # not given: projected
        assert torch.equal(pipe.ground(prepared, "litelvlm", 32, visual_embeds=vis).masks,
                           pipe.ground(prepared, "litelvlm", 32).masks)


def test_importance_command_end_to_end_and_resume(coco128, tmp_path, capsys):
    out = tmp_path / "imp"
    argv = ["importance", "--refer-dir", str(coco128), "--image-dir", str(coco128 / "images"), "--split",
            "val",
            "--limit", "1", "--max-sentences", "1", "--signals", "attention,input_x_gradient", "--group",
            "12", "--n-boot", "50", "--out", str(out)]
    assert main(argv) == 0
    rows = pd.read_parquet(out / "importance.parquet")
    for c in ["clip_signal", "llm_signal", "query", "layer", "head", "area_bin", *METRICS]:
        assert c in rows.columns
    assert rows["sent_id"].nunique() == 1 and set(rows["clip_signal"]) == set(CLIP_SIGNALS)
    assert set(rows["llm_signal"]) == {"attention", "input_x_gradient"}
    assert len(rows) == 3 * (4 * 3 * (4 + 1) + 1)       # clip signals x (attention rows + input_x_gradient)
    assert rows["spearman"].between(-1, 1).all() and rows["jaccard_64"].between(0, 1).all()
    summary = pd.read_csv(out / "summary.csv")
    assert {"all"} < set(summary["area_bin"]) and "spearman_mean" in summary.columns
    scores = pd.read_parquet(out / "token_scores.parquet")
    assert all(len(s) == 576 for s in scores["scores"])
    assert json.loads((out / "config.json").read_text())["signals"] == ["attention", "input_x_gradient"]
    assert len(list((out / "images").glob("*.png"))) == 1
    capsys.readouterr()
    assert main(argv) == 0                              # resumes: nothing left to do, same table
    pd.testing.assert_frame_equal(pd.read_parquet(out / "importance.parquet"), rows)
    assert main(argv[:-1] + [str(out), "--ig-steps", "3"]) == 2   # another configuration: refused
    assert "different configuration" in capsys.readouterr().err
    assert main(
        ["importance", "--refer-dir", str(coco128), "--signals", "gradcam", "--out",
         str(tmp_path / "x")]) == 2
    assert "gradcam" in capsys.readouterr().err


def test_saliency_in_eval_grounding(coco128, tmp_path):
    out = tmp_path / "eg"
    assert main(["eval-grounding", "--refer-dir", str(coco128), "--split", "val", "--limit", "1",
                 "--protocol", "official", "--max-sentences", "2",
                 "--methods", "litelvlm,llm-attention,saliency", "--budgets", "64", "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["method"]) == {"litelvlm", "llm-attention", "saliency"}
    s = summary.set_index("method")
    assert s.loc["saliency", "n"] == s.loc["litelvlm", "n"] == 2
    assert 0.0 <= s.loc["saliency", "ciou"] <= 1.0


def test_hook_attention_rows_equal_the_llm_attention_oracle_scores(pipe, prepared):
    from analysis.importance.signals import attention_signals

    rows = attention_signals(pipe, prepared, per_head=False)
    ctx = pipe.context(prepared)
    for q in QUERY_SETS:
        for layer in (0, pipe.model.arch.llm_layers - 1):
            torch.testing.assert_close(rows[SignalKey("attention", q, layer)],
                                       ctx.visual_attention(layer, q).float(), atol=1e-7, rtol=1e-5)
