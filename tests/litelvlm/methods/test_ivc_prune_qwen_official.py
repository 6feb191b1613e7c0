"""IVC-Prune on Qwen2.5-VL (UniPixel) keeps the tokens, and runs the layers, that the official Qwen2.5-VL code
does.

Transcribes FireRedTeam/IVC-Prune @ 03afd9cee41f60bb30b51a4105839f2b5d467814,
``transformers/src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py``:

* L585-600 (``Qwen2_5_VLRotaryEmbedding.forward``): the per-axis cos/sin tables (3, B, S, head_dim) whose
  means pick the IVC tokens, with ``modeling_rope_utils.py`` L119-131 (the default ``inv_freq``;
  ``configuration_qwen2_5_vl.py`` L252-255 turns ``mrope`` into ``default``), and L685-689
  (``apply_multimodal_rotary_pos_emb``'s ``mrope_section`` pick, the tables the decoder layers rotate with);
* L697-706 (``repeat_kv``), L866-873, L887-889, L895-918 and L948-949 (``Qwen2_5_VLFlashAttention2``: the
  value states layer ``K-1`` hands out) with L1103-1104 (the decoder layer's ``input_layernorm``);
* L1355-1390 (``calculate_avg_similarity_for_subset_einsum``);
* L1393-1612 (``IVCP_forward_flashattention``), the prefill: L1436-1460 (positions and RoPE), L1476-1610 (the
  loop: value states of layer ``K-1`` L1577-1590, the selection L1487-1551 and the cut L1554-1561 before layer
  ``K``);
* L2108-2122 (``get_image_token_length_single_pair``: where the image is);

with ``VLMEvalKit/vlmeval/config.py`` L1089-1134 (``ivcp_k`` 22 for the 36-layer 3B, 16 for the 28-layer 7B).
The official model runs flash attention (causal over the kept rows after the cut, L1564); the transcription
runs the decoder layers with transformers' eager attention and an additive causal mask over the rows it holds,
without a KV cache (L1569 cuts the cache of layers 0..K-1, which only generated tokens read). The tiny
UniPixel's decoder layers are transformers 5's, which take the ``mrope_section``-picked tables (L685-689 done
before the call).

Budgets: the official code keeps ``target_image_token_count = round(n * 0.5)``; the transcription takes the
target as a parameter (the module's K). Below the priority's size the module's deviation 1 (the shrunk
priority), written here in plain Python from docs/methods/ivc_prune_qwen.md.
"""

from __future__ import annotations

import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.llm.context import LLMContext
from litelvlm.methods import ivc_prune_qwen as ivq
from tests.fixtures.kept import visual_part
from tests.pinned_scripts.official_qwen_rules import (  # L697-706, L1355-1390, L1487-1551
    calculate_avg_similarity_for_subset_einsum,
    official_fill,
    official_lists,
    official_value_states,
)

IVC_COMMIT = "03afd9cee41f60bb30b51a4105839f2b5d467814"
MODEL = "unipixel-tiny-random:0"


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def official_inv_freq(rope_theta, hidden_size, num_attention_heads, device=None):
    """``_compute_default_rope_parameters`` L121-131 (``config.rope_theta`` etc. passed in: transformers 5
    moved them into ``rope_parameters``)."""
    base = rope_theta
    partial_rotary_factor = 1.0
    head_dim = hidden_size // num_attention_heads
    dim = int(head_dim * partial_rotary_factor)
    attention_factor = 1.0  # Unused in this type of RoPE
    inv_freq = 1.0 / (base
                      ** (torch.arange(0, dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float)
                          / dim))
    return inv_freq, attention_factor


def official_rotary(inv_freq, attention_scaling, x, position_ids):
    """``Qwen2_5_VLRotaryEmbedding.forward`` L587-600 (default rope type: no dynamic update)."""
    inv_freq_expanded = inv_freq[None, None, :, None].float().expand(3, position_ids.shape[1], -1, 1)
    position_ids_expanded = position_ids[:, :, None, :].float()  # shape (3, bs, 1, positions)
    freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(2, 3)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = emb.cos() * attention_scaling
    sin = emb.sin() * attention_scaling
    return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def official_mrope_pick(cos, sin, mrope_section):
    """``apply_multimodal_rotary_pos_emb`` L685-689 without the head ``unsqueeze`` (the layer's own)."""
    mrope_section = mrope_section * 2
    cos = torch.cat([m[i % 3] for i, m in enumerate(cos.split(mrope_section, dim=-1))], dim=-1)
    sin = torch.cat([m[i % 3] for i, m in enumerate(sin.split(mrope_section, dim=-1))], dim=-1)
    return cos, sin


def get_image_token_length_single_pair(input_ids, start_token=151652, end_token=151653):
    """L2108-2122 (``self`` dropped)."""
    batch_size, seq_len = input_ids.shape
    positions = torch.arange(seq_len, device=input_ids.device).unsqueeze(0).expand(batch_size, -1)
    start_pos = torch.where(input_ids == start_token, positions, torch.full_like(positions, seq_len))
    end_pos = torch.where(input_ids == end_token, positions, torch.full_like(positions, seq_len))
    min_start, _ = start_pos.min(dim=1)
    min_end, _ = end_pos.min(dim=1)
    lengths = torch.clamp(min_end - min_start - 1, min=0)
    first_start_indices = torch.where(min_start < seq_len, min_start + 1,
                                      torch.tensor(-1, device=input_ids.device))
    first_start_indices = [None if idx.item() == -1 else int(idx.item()) for idx in first_start_indices]
    return lengths.tolist(), first_start_indices


def official_keep_indexs(critical_value_states, position_embeddings, start, length, seq_length_with_past,
                         head_dim, device, target=None):
    """The selection L1487-1551: :func:`official_lists`, then :func:`official_fill`."""
    lists = official_lists(critical_value_states, position_embeddings, start, length, seq_length_with_past,
                           head_dim, device)
    return official_fill(lists, start, length, seq_length_with_past, device, target)


def official_ivcp_forward(lm, inputs_embeds, position_ids, IVCP_k, start, length, target=None):
    """``IVCP_forward_flashattention`` L1436-1612 on the tiny UniPixel's decoder stack (prefill, batch 1,
    eager attention, no cache). Returns (keep_indexs, final normed hidden states, (critical value states,
    per-axis position embeddings)); ``keep_indexs`` is every row when the loop never reaches layer
    ``IVCP_k``."""
    rotary = lm.rotary_emb
    cfg = lm.config
    inv_freq, attention_scaling = official_inv_freq(cfg.rope_parameters["rope_theta"], cfg.hidden_size,
                                                    cfg.num_attention_heads)
    mrope_section = cfg.rope_parameters["mrope_section"]
    seq = inputs_embeds.shape[1]
    device = inputs_embeds.device
    cache_position = torch.arange(0, seq, device=device)
    causal_mask = torch.full((seq, seq), torch.finfo(inputs_embeds.dtype).min,
                             device=device).triu(1)[None, None]
    hidden_states = inputs_embeds
    position_embeddings = official_rotary(inv_freq.to(device), attention_scaling, hidden_states, position_ids)
    assert torch.equal(inv_freq.to(rotary.inv_freq.device), rotary.inv_freq)
    seq_length_with_past = 0 + seq
    critical_value_states = None
    keep_indexs = cache_position
    current_attention_mask, current_position_embeddings = causal_mask, position_embeddings
    for layer_idx, decoder_layer in enumerate(lm.layers):
        if layer_idx == IVCP_k:
            keep_indexs = official_keep_indexs(critical_value_states, position_embeddings, start, length,
                                               seq_length_with_past,
                                               cfg.hidden_size // cfg.num_attention_heads, device, target)
            hidden_states = hidden_states[:, keep_indexs, :]
            position_ids = position_ids[:, :, keep_indexs]
            cos, sin = position_embeddings
            current_position_embeddings = cos[:, :, keep_indexs, :], sin[:, :, keep_indexs, :]
            # flash: causal on the rows
            current_attention_mask = causal_mask[:, :, keep_indexs][:, :, :, keep_indexs]
        if layer_idx == IVCP_k - 1:
            critical_value_states = official_value_states(decoder_layer, hidden_states)
        out = decoder_layer(hidden_states, attention_mask=current_attention_mask, position_ids=position_ids,
                            position_embeddings=official_mrope_pick(*current_position_embeddings,
                                                                    mrope_section))
        hidden_states = out[0] if isinstance(out, tuple) else out
    return keep_indexs, lm.norm(hidden_states), (critical_value_states, position_embeddings)


def run_official(ctx, k, target=None):
    """The official loop over ``ctx``'s sequence (eager attention)."""
    lm = ctx.lm
    old = lm.config._attn_implementation
    lm.config._attn_implementation = "eager"
    try:
        with torch.no_grad():
            return official_ivcp_forward(lm, ctx.embeds, ctx.position_ids.to(ctx.embeds.device), k,
                                         ctx.image_start, ctx.num_visual, target)
    finally:
        lm.config._attn_implementation = old


# ----------------------------------------------------------------------------------------------
# Fixtures: the tiny UniPixel in float32 and bfloat16 (the official dtype), odd image sizes
# ----------------------------------------------------------------------------------------------

def _image(h, w, seed=7):
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(h, w, 3, generator=g) * 255).to(torch.uint8).numpy())


@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def typed(request):
    """The tiny UniPixel in each dtype, its value projections scaled by 8 so that the value similarities
    spread (the ranking is the scores', not only ``topk``'s tie-breaking), and a prompt on a 123 x 57
    image."""
    from litelvlm.registry.families import load_pipeline

    p = load_pipeline(MODEL, dtype=getattr(torch, request.param))
    with torch.no_grad():
        for layer in p.language_model.layers:
            layer.self_attn.v_proj.weight.mul_(8)
    return p, p.prepare(_image(123, 57), ["the dog on the left"])


def _sweep(ctx, layer, budgets, every=1):
    """Our selection at every budget against the transcribed selection (L1487-1551) over the value states of
    the hidden states entering layer ``K-1`` as the pipeline computes them (transformers' attention kernel for
    the layers before; the official loop's own at the default layer 1, see the tests above) and the official
    tables; at the official count, against the unmodified official selection too. The lists are computed once
    on both sides and filled per budget; ``select`` itself runs at every ``every``-th budget and at both
    ends."""
    lm, pos, dev = ctx.lm, ctx.position_ids.to(ctx.embeds.device), ctx.embeds.device
    with torch.no_grad():
        values = official_value_states(lm.layers[layer - 1], ctx.hidden_before(layer - 1))
        pe = official_rotary(lm.rotary_emb.inv_freq, lm.rotary_emb.attention_scaling, ctx.embeds, pos)
        ours = ivq.ivc_scores(ctx, layer)
    assert values.dtype == pe[0].dtype == ours["score"].dtype == ctx.embeds.dtype
    s, n, seq = ctx.image_start, ctx.num_visual, ctx.seq_len
    lists = official_lists(values, pe, s, n, seq, lm.layers[0].self_attn.head_dim, dev)
    assert torch.equal(ours["score"], lists[1]) and torch.equal(ours["seeds"] + s, lists[0])
    official = visual_part(official_fill(lists, s, n, seq, dev), ctx)
    assert len(official) == ivq.official_budget(ctx, layer)
    budgets = sorted({*budgets, len(official)})
    for budget in budgets:
        ref = visual_part(official_fill(lists, s, n, seq, dev, target=budget), ctx)
        kept = ivq.keep_for_budget({**ours, "foreground": ours["ranking"]}, budget)
        assert kept["kept"].tolist() == ref and len(ref) == budget, f"K={budget}"
        if budget == len(official):
            assert ref == official
        if budget % every and budget not in (budgets[0], budgets[-1], len(official)):
            continue
        with torch.no_grad():
            sel = ivq.ivc_prune_qwen_select(ctx, budget, layer=layer)
        assert sel.indices.tolist() == ref
        parts = sel.parts
        assert set(parts["ivc"].tolist()) | set(parts["seeds"].tolist()) | set(parts["foreground"].tolist()) \
            == set(ref)


# ----------------------------------------------------------------------------------------------
# The pieces, then the pipeline against the official loop
# ----------------------------------------------------------------------------------------------

def test_tables_values_and_image_span_are_the_official(typed):
    pipe, prep = typed
    ctx = pipe.context(prep)
    lm = ctx.lm
    _, _, (values, pe) = run_official(ctx, 1)
    ours = ivq.axis_tables(ctx)
    assert ours[0].shape == (3, 1, ctx.seq_len, 2 * lm.rotary_emb.inv_freq.numel())
    assert torch.equal(ours[0], pe[0]) and torch.equal(ours[1], pe[1])
    # the section pick of the official tables is what the decoder layers rotate with (the kept rows' 3-D ids)
    picked = official_mrope_pick(*pe, lm.config.rope_parameters["mrope_section"])
    layer_pe = lm.rotary_emb(ctx.embeds, position_ids=ctx.position_ids)
    assert torch.equal(picked[0], layer_pe[0]) and torch.equal(picked[1], layer_pe[1])
    with torch.no_grad():
        assert torch.equal(ivq.value_states(ctx, 0), values)
        rows = torch.arange(ctx.image_start + ctx.num_visual + 2, ctx.seq_len)
        head_dim = lm.layers[0].self_attn.head_dim
        assert torch.equal(ivq.subset_similarity(ivq.value_states(ctx, 0), rows, head_dim, ctx.image_start,
                                                 ctx.num_visual),
                           calculate_avg_similarity_for_subset_einsum(values, rows, head_dim, ctx.image_start,
                                                                      ctx.num_visual))
        lists = ivq.ivc_scores(ctx, 1)
    assert lists["score"].dtype == pipe.dtype and lists["score"].unique().numel() > 20
    cfg = pipe.qwen.config
    lengths, starts = get_image_token_length_single_pair(prep.input_ids[None], cfg.vision_start_token_id,
                                                         cfg.vision_end_token_id)
    assert (lengths, starts) == ([ctx.num_visual], [ctx.image_start])


@pytest.mark.parametrize("size", [(123, 57), (75, 101), pytest.param((201, 153), marks=pytest.mark.slow),
                                  pytest.param((9, 13), marks=pytest.mark.slow)])
def test_pipeline_equals_the_official_loop(typed, size):
    """Odd image sizes (N 136, 140, 130, 140), the default layer (1 of 2), the official count: kept tokens,
    the pruned sequence and its final normed states at the [SEG]-predicting rows."""
    pipe, _ = typed
    prep = pipe.prepare(_image(*size, seed=size[0]), ["a red cup on the table"])
    ctx = pipe.context(prep)
    budget = ivq.official_budget(ctx)
    with torch.no_grad():
        out = pipe.ground(prep, "ivc-prune", budget)
        sel = ivq.ivc_prune_qwen_select(ctx, budget)
        ours, pred = ivq.IVC_PRUNE_QWEN.forward(ctx, sel)
    keep, final, _ = run_official(ctx, 1)
    assert out.kept_indices.tolist() == sel.indices.tolist() == visual_part(keep, ctx)
    assert budget == len(sel.indices) == round(ctx.num_visual * 0.5) and out.prune_layer == 1
    assert out.seq_len == ours.shape[1] == final.shape[1] == ctx.seq_len - ctx.num_visual + budget
    tol = 1e-5 if pipe.dtype == torch.float32 else 2e-2
    torch.testing.assert_close(ours[0, pred], final[0, pred], rtol=tol, atol=tol)


@pytest.mark.parametrize("budget", [5, 30, pytest.param(100, marks=pytest.mark.slow)])
def test_pruned_forward_at_other_budgets(typed, budget):
    pipe, prep = typed
    ctx = pipe.context(prep)
    with torch.no_grad():
        sel = ivq.ivc_prune_qwen_select(ctx, budget)
        ours, pred = ivq.IVC_PRUNE_QWEN.forward(ctx, sel)
    keep, final, _ = run_official(ctx, 1, target=budget)
    assert sel.indices.tolist() == visual_part(keep, ctx) and ours.shape == final.shape
    tol = 1e-5 if pipe.dtype == torch.float32 else 2e-2
    torch.testing.assert_close(ours[0, pred], final[0, pred], rtol=tol, atol=tol)


@pytest.mark.parametrize("layer", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_every_budget_equals_the_transcription(typed, layer):
    """Every budget 1..N (N = 136 on the 123 x 57 image), at the default layer 1 (2, the last: slow)."""
    pipe, prep = typed
    ctx = pipe.context(prep)
    _sweep(ctx, layer, range(1, ctx.num_visual + 1), every=1 if layer == 2 else 9)


@pytest.mark.parametrize("n", [1, 7, 20, pytest.param(45, marks=pytest.mark.slow)])
def test_every_budget_on_other_token_counts(typed, n):
    """The image's first N visual tokens (a sequence whose positions the family renumbers), every budget 1..N:
    the small counts where ``round`` rounds the shares to 0 or 1."""
    pipe, prep = typed
    ctx = LLMContext(pipe, prep, pipe.visual_tokens(prep)[:n])
    _sweep(ctx, 1, range(1, n + 1))


# ----------------------------------------------------------------------------------------------
# Counts, layers, schedule, registration, refusals
# ----------------------------------------------------------------------------------------------

def test_counts_layers_and_schedule():
    assert ivq.part_counts(1296) == (13, 130, 648)  # L1502, L1522-1523, L1529
    # Python's round: half to even
    assert ivq.part_counts(25) == (1, 2, 12) and ivq.part_counts(150) == (2, 15, 75)
    assert ivq.part_counts(1) == (1, 0, 0)
    assert [ivq.default_layer(n) for n in (28, 36, 2, 1, 56)] == [16, 22, 1, 1, 32]
    assert ivq.ivc_qwen_schedule(64, 1296, 28) == ((0, 1296), (16, 64))
    assert ivq.ivc_qwen_schedule(64, 1296, 36) == ((0, 1296), (22, 64))
    assert ivq.ivc_qwen_schedule(8, 140, 2, layer=2) == ((0, 140), (2, 8))
    from analysis.common.measures.flops import schedule_plan
    from litelvlm.methods import get_method

    m = get_method("ivc-prune", "qwen2.5-vl")
    assert m.backbone == "qwen2.5-vl" and m.select is ivq.ivc_prune_qwen_select
    assert m.stage.name == "llm-layer"
    assert (m.ranks and m.positions == "keep" and not m.one_axis_positions
            and m.schedule is ivq.ivc_qwen_schedule)
    assert schedule_plan("ivc-prune", 64, 1296, 28, 50, spec=m).stages == ((0, 1296), (16, 64))
    assert get_method("ivc-prune").one_axis_positions  # the LLaVA-1.5 rule stays the method's own


@pytest.mark.slow
def test_efficiency_plans_on_the_unipixel_archs():
    """``efficiency``'s token plans follow the variant: the official ``ivcp_k`` on UniPixel-3B (36 layers) and
    -7B (28), GLaMM's rule (16 of 32) on GLaMM."""
    from analysis.efficiency.arch import get_arch
    from analysis.efficiency.flops import token_plan

    plans = {name: token_plan(get_arch(name), "ivc-prune", 64).stages
             for name in ("unipixel-3b", "unipixel-7b")}
    assert plans == {"unipixel-3b": ((0, 391), (22, 64)), "unipixel-7b": ((0, 391), (16, 64))}
    assert token_plan(get_arch("glamm-7b"), "ivc-prune", 64).stages == ((0, 576), (16, 64))


def test_unipixel_offers_it_and_keeps_the_3d_positions(typed):
    from litelvlm.unipixel.pipeline import UniPixelPipeline

    assert UniPixelPipeline.method_error(UniPixelPipeline, "ivc-prune") is None
    pipe, prep = typed
    assert pipe.spec("ivc-prune").select is ivq.ivc_prune_qwen_select
    assert pipe.official_rule("ivc-prune") == "keep"
    ctx = pipe.context(prep)
    with torch.no_grad():
        sel = ivq.ivc_prune_qwen_select(ctx, 9)
    s, n = ctx.image_start, ctx.num_visual
    keep = torch.cat([torch.arange(s), s + sel.indices, torch.arange(s + n, ctx.seq_len)])
    kept_pos = ctx.pruned_positions(keep, "keep")
    assert kept_pos.shape == (3, 1, ctx.seq_len - n + 9)
    assert torch.equal(kept_pos, ctx.position_ids[:, :, keep.to(ctx.position_ids.device)])
    assert len({tuple(kept_pos[:, 0, s + i].tolist()) for i in range(9)}) == 9  # distinct (t, h, w) ids


def test_refusals(typed):
    from types import SimpleNamespace

    pipe, prep = typed
    ctx = pipe.context(prep)
    with pytest.raises(LiteLVLMError, match=r"layer K must be in 1\.\.2"):
        ivq.ivc_prune_qwen_select(ctx, 8, layer=3)
    with pytest.raises(LiteLVLMError, match="budget"):  # the budget: counted once, where ground takes it
        pipe.ground(prep, "ivc-prune", 0)
    with pytest.raises(LiteLVLMError, match="question rows"):
        ivq.ivc_scores(SimpleNamespace(image_start=3, num_visual=5, seq_len=10), 1)
