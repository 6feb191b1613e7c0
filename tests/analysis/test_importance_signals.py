"""Model-agnostic pieces of the importance study: correlations, attention rows, captum, ablation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from analysis.importance.aggregate import area_bins, bootstrap_ci, summarize
from analysis.importance.correlation import compare, correlations, top_k, topk_jaccard
from analysis.importance.sensitivity import ablation_importance, mask_iou, spatial_groups
from litelvlm.llm.attention_rows import capture_attention_rows, find_attention_modules
from litelvlm.llm.attribution import batched, mask_logit_target, seg_norm_target, token_attributions


def tiny_llama(layers: int = 3, heads: int = 4, kv: int = 2, width: int = 32,
               seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=64, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=256)
    return LlamaForCausalLM(cfg).eval()


# ---------------------------------------------------------------- correlation

def test_correlations_match_scipy_on_hand_made_vectors():
    a = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    b = np.array([2.0, 7.0, 1.0, 8.0, 2.0, 8.0, 1.0, 8.0])
    c = correlations(a, torch.tensor(b))
    assert c["pearson"] == pytest.approx(stats.pearsonr(a, b).statistic, abs=1e-12)
    assert c["spearman"] == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert c["kendall"] == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)
    # hand-computed: perfectly monotone but non-linear
    m = correlations([1, 2, 3, 4], [1, 4, 9, 16])
    assert m["spearman"] == pytest.approx(1.0) and m["kendall"] == pytest.approx(1.0)
    assert m["pearson"] == pytest.approx(np.corrcoef([1, 2, 3, 4], [1, 4, 9, 16])[0, 1])
    r = correlations([1, 2, 3], [3, 2, 1])
    assert r == pytest.approx({"pearson": -1.0, "spearman": -1.0, "kendall": -1.0})


def test_constant_vector_gives_nan_not_error():
    c = correlations([1, 1, 1], [1, 2, 3])
    assert all(np.isnan(v) for v in c.values())
    with pytest.raises(ValueError, match="differ in length"):
        correlations([1, 2], [1, 2, 3])


def test_topk_and_jaccard_by_hand():
    a = [0.9, 0.1, 0.8, 0.7, 0.0, 0.2]   # top-3: {0, 2, 3}
    b = [0.0, 0.9, 0.8, 0.7, 0.1, 0.2]   # top-3: {1, 2, 3}
    assert sorted(top_k(a, 3).tolist()) == [0, 2, 3]
    assert topk_jaccard(a, b, 3) == pytest.approx(2 / 4)
    assert topk_jaccard(a, a, 2) == 1.0
    assert np.isnan(topk_jaccard(a, b, 6))            # k >= N is uninformative
    assert top_k([1, 1, 1], 2).tolist() == [0, 1]     # deterministic ties
    out = compare(a, b, ks=(2, 3))
    assert set(out) == {"pearson", "spearman", "kendall", "jaccard_2", "jaccard_3"}


def test_planted_rank_is_recovered_with_correlation_one():
    rng = np.random.default_rng(0)
    planted = rng.normal(size=576)
    signal = np.exp(planted)             # any monotone transform of the planted importance
    c = compare(planted, signal)
    assert c["spearman"] == pytest.approx(1.0) and c["kendall"] == pytest.approx(1.0)
    assert all(c[f"jaccard_{k}"] == 1.0 for k in (32, 64, 128, 192))


# ---------------------------------------------------------------- attention rows

@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_hook_rows_match_eager_output_attentions(impl):
    model = tiny_llama()
    model.config._attn_implementation = impl
    x = torch.randn(2, 20, 32)
    mask = torch.ones(2, 20, dtype=torch.long)
    mask[1, :3] = 0                                    # left padding in the second row
    sets = {"seg": [15], "last": [19], "text": [12, 13, 14, 15, 16]}
    vis = list(range(3, 12))
    with capture_attention_rows(model, sets, vis, layers=[0, -1]) as rows:
        model(inputs_embeds=x, attention_mask=mask)
    assert rows.layers == [0, 2]
    model.config._attn_implementation = "eager"
    ref = model(inputs_embeds=x, attention_mask=mask, output_attentions=True).attentions
    for layer in rows.layers:
        r = ref[layer][:, :, :, vis]
        torch.testing.assert_close(rows.per_head(layer, "seg"), r[:, :, 15], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(rows.per_head(layer, "last"), r[:, :, 19], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(rows.per_head(layer, "text"), r[:, :, 12:17].mean(2), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(rows.head_mean(layer, "seg"), r[:, :, 15].mean(1), atol=1e-6, rtol=1e-5)
        assert rows.per_head(layer, "seg").shape == (2, 4, len(vis))


def test_hooks_are_removed_even_on_error():
    model = tiny_llama()
    mods = find_attention_modules(model)
    with pytest.raises(ValueError, match="sequence length"):
        with capture_attention_rows(model, {"q": [40]}, [0, 1]):
            model(inputs_embeds=torch.randn(1, 10, 32))
    assert all(len(m._forward_pre_hooks) == 0 for m in mods)
    with capture_attention_rows(model, {"q": [5]}, [0, 1]):
        pass
    assert all(len(m._forward_pre_hooks) == 0 for m in mods)


def test_rows_do_not_keep_graph_and_forward_is_unchanged():
    model = tiny_llama()
    x = torch.randn(1, 12, 32, requires_grad=True)
    plain = model(inputs_embeds=x).logits
    with capture_attention_rows(model, {"q": [11]}, range(2, 8)) as rows:
        hooked = model(inputs_embeds=x).logits
    assert torch.equal(plain, hooked)
    assert not rows.per_head(0, "q").requires_grad
    assert rows.stacked("q").shape == (3, 1, 4, 6)


# ---------------------------------------------------------------- captum

class ToyGrounder(nn.Module):
    """A differentiable stand-in for GLaMM: projector -> tiny Llama -> [SEG] hidden -> mask logits."""

    def __init__(self, clip_width: int = 12, width: int = 32, n_text: int = 4, hw: int = 6, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.projector = nn.Linear(clip_width, width)
        self.llm = tiny_llama(layers=2, width=width, seed=seed)
        self.text = nn.Parameter(torch.randn(n_text, width) * 0.5)
        self.pixels = nn.Parameter(torch.randn(hw * hw, width))
        self.hw = hw

    def seg(self, visual: torch.Tensor) -> torch.Tensor:
        seq = torch.cat([visual, self.text[None].expand(visual.shape[0], -1, -1)], 1)
        return self.llm.model(inputs_embeds=seq).last_hidden_state[:, -1]

    def logits(self, visual: torch.Tensor) -> torch.Tensor:
        return (self.seg(visual) @ self.pixels.T).reshape(-1, self.hw, self.hw)


def test_integrated_gradients_completeness_on_a_toy_grounder():
    torch.manual_seed(1)
    g = ToyGrounder().double()
    x = torch.randn(9, 32, dtype=torch.float64) * 0.3
    ref = g.logits(x[None])[0].detach() > 0
    target = mask_logit_target(g.logits, ref)
    res = token_attributions(target, x, "integrated_gradients", n_steps=16, internal_batch_size=4)
    base = x.mean(0, keepdim=True).expand_as(x)
    diff = (target(x[None]) - target(base[None])).item()
    assert res.scores.shape == (9,) and torch.isfinite(res.scores).all()
    assert res.raw.sum().item() == pytest.approx(diff, rel=2e-3, abs=1e-5)
    assert res.delta < 2e-3 * abs(diff) + 1e-5


@pytest.mark.slow
def test_integrated_gradients_completeness_zero_baseline_needs_many_steps():
    torch.manual_seed(1)
    g = ToyGrounder().double()
    x = torch.randn(9, 32, dtype=torch.float64) * 0.3
    target = mask_logit_target(g.logits, g.logits(x[None])[0].detach() > 0)
    res = token_attributions(target, x, "integrated_gradients", n_steps=256, internal_batch_size=32,
                             baseline="zero")
    diff = (target(x[None]) - target(torch.zeros_like(x)[None])).item()
    assert res.raw.sum().item() == pytest.approx(diff, rel=5e-3, abs=1e-4)


def test_layer_integrated_gradients_on_the_projector_completeness():
    torch.manual_seed(2)
    g = ToyGrounder().double()
    clip_feats = torch.randn(9, 12, dtype=torch.float64)
    ref = g.logits(g.projector(clip_feats)[None])[0].detach() > 0
    inner = mask_logit_target(g.logits, ref)
    res = token_attributions(lambda f: inner(g.projector(f)), clip_feats, "layer_integrated_gradients",
                             n_steps=16, internal_batch_size=4, layer=g.projector)
    # attributions live at the projector output; completeness w.r.t. the projector outputs of x and baseline
    base = clip_feats.mean(0, keepdim=True).expand_as(clip_feats)
    diff = (inner(g.projector(clip_feats)[None]) - inner(g.projector(base)[None])).item()
    assert res.raw.shape == (9, 32)
    assert res.raw.sum().item() == pytest.approx(diff, rel=1e-3, abs=1e-4)


@pytest.mark.parametrize("method", ["saliency", "input_x_gradient", "integrated_gradients"])
def test_planted_linear_target_is_recovered(method):
    torch.manual_seed(3)
    n, h = 16, 8
    w = torch.rand(n, dtype=torch.float64) + 0.1            # planted importance, positive
    u = torch.randn(h, dtype=torch.float64)
    x = u[None].repeat(n, 1) / u.dot(u)                      # x_i . u = 1 for every token
    res = token_attributions(batched(lambda e: (w * (e @ u)).sum()), x, method, n_steps=16, baseline="zero")
    c = correlations(res.scores, w)
    assert c["spearman"] == pytest.approx(1.0) and c["kendall"] == pytest.approx(1.0)
    if method != "saliency":
        torch.testing.assert_close(res.scores.double(), w, rtol=1e-4, atol=1e-6)


def test_seg_norm_target_and_unknown_method():
    g = ToyGrounder()
    x = torch.randn(9, 32)
    res = token_attributions(seg_norm_target(g.seg), x, "saliency")
    assert res.scores.shape == (9,) and torch.isfinite(res.scores).all() and (res.scores >= 0).all()
    with pytest.raises(ValueError, match="unknown attribution method"):
        token_attributions(seg_norm_target(g.seg), x, "gradcam")
    with pytest.raises(ValueError, match="projector"):
        token_attributions(seg_norm_target(g.seg), x, "layer_integrated_gradients")


# ---------------------------------------------------------------- ablation

def test_spatial_groups_and_iou():
    g = spatial_groups((4, 4), 2)
    assert g.reshape(4, 4).tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    assert spatial_groups((3, 3), 2).reshape(3, 3).tolist() == [[0, 0, 1], [0, 0, 1], [2, 2, 3]]
    assert mask_iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    assert mask_iou(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])) == pytest.approx(1 / 3)


def test_planted_ablation_is_recovered():
    rng = np.random.default_rng(0)
    planted = torch.tensor(rng.uniform(0, 1 / 16, size=16))

    def iou(keep: torch.Tensor) -> float:       # removing a token costs exactly its planted weight
        return 1.0 - float(planted[~keep].sum())

    per_token = ablation_importance(iou, (4, 4), group=1)
    torch.testing.assert_close(per_token.double(), planted, rtol=1e-5, atol=1e-6)
    per_group = ablation_importance(iou, (4, 4), group=2)
    groups = spatial_groups((4, 4), 2)
    expect = torch.stack([planted[groups == gi].sum() for gi in range(4)])[groups]
    torch.testing.assert_close(per_group.double(), expect, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- aggregates

def test_bootstrap_ci_over_images():
    vals = np.array([0.1, 0.2, 0.3, 0.5, 0.6, np.nan])
    imgs = np.array([1, 1, 2, 3, 3, 3])
    mean, lo, hi = bootstrap_ci(vals, imgs, n_boot=500, seed=0)
    assert mean == pytest.approx(np.nanmean(vals))
    assert lo <= mean <= hi
    assert bootstrap_ci(vals, imgs, n_boot=500, seed=0) == (mean, lo, hi)   # deterministic
    m1, lo1, hi1 = bootstrap_ci([0.4, 0.4], [7, 7])
    assert m1 == pytest.approx(0.4) and np.isnan(lo1)
    assert all(np.isnan(bootstrap_ci([np.nan], [1])))


def test_area_bins_and_summary():
    bins = area_bins(np.array([0.0, 0.01, 0.05, 0.5, 1.0]))
    codes = bins.codes.tolist()
    assert codes[0] == codes[1] and codes == sorted(codes) and codes[-1] == codes[-2] and -1 not in codes
    import pandas as pd

    df = pd.DataFrame({"image_id": [1, 1, 2, 3], "layer": [0, 0, 0, 1], "pearson": [0.1, 0.3, 0.2, 0.4]})
    s = summarize(df, by=["layer"], metrics=["pearson"], n_boot=200)
    assert s["n_sentences"].tolist() == [3, 1] and s["n_images"].tolist() == [2, 1]
    assert s.loc[0, "pearson_mean"] == pytest.approx(0.2)
    # two images: no interval (under MIN_UNITS); three: one holding the mean
    assert np.isnan(s.loc[0, "pearson_lo"]) and np.isnan(s.loc[0, "pearson_hi"])
    three = summarize(df.assign(image_id=[1, 2, 3, 3]), by=["layer"], metrics=["pearson"], n_boot=200)
    assert three.loc[0, "pearson_lo"] <= 0.2 <= three.loc[0, "pearson_hi"]
