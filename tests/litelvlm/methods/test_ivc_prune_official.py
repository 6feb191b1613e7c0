"""IVC-Prune in the GLaMM LLM keeps the tokens, and runs the layers, that the official IVC-Prune code does.

Transcribes FireRedTeam/IVC-Prune @ 03afd9cee41f60bb30b51a4105839f2b5d467814,
``transformers/src/transformers/models/llama/modeling_llama.py`` (the LLaVA-1.5 variant):

* L115-126 (``LlamaRotaryEmbedding.forward``): the cos/sin tables whose head-dimension means pick the IVC
tokens;
* L734-797 (``LlamaModel.compute_attention_weights``): the value similarity of layer ``K-1``;
* L799-1011 (``IVCP_forward_flashattention``), the prefill: L849-863 (positions, mask, RoPE), L888-994 (the
  loop: the similarity before layer ``K-1`` runs, the selection L896-945 and the cut L950-962 before layer
  ``K``);

with the LLaVA-1.5 config of ``VLMEvalKit/vlmeval/config.py`` L511-519 (``ivcp_k`` 16 on 32 layers;
``image_token_start_index`` and ``image_token_length`` are GLaMM's place and count of the visual tokens here).
The official model runs flash attention in float16 (``vlm/ivcp/llava_ivcp.py`` L31-37); the transcription runs
the decoder layers with transformers' eager attention and the additive causal mask ``_update_causal_mask``
gives it, without a KV cache (L964 and L1013-1048 cut the cache of layers 1..K-1, which only generated tokens
read).

The official code keeps an image-dependent count (the union of its four lists). Other budgets follow the
module's documented rule: the target-count fill of the repository's Qwen2.5-VL variant
(``qwen2_5_vl/modeling_qwen2_5_vl.py`` L1526-1542) over the LLaVA-1.5 lists, with deviation 1 (the foreground
ranking after the official top 20%, written here in plain Python from docs/methods/ivc_prune.md; the shrunk
priority below its size). At the official count the two transcriptions agree, which the tests check.
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from litelvlm.errors import LiteLVLMError
from litelvlm.llm.context import LLMContext
from litelvlm.methods import ivc_prune as ivc
from tests.fixtures.kept import visual_part
from tests.fixtures.once import computed_once

IVC_COMMIT = "03afd9cee41f60bb30b51a4105839f2b5d467814"


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def official_rotary(rotary_emb, x, position_ids):
    """``LlamaRotaryEmbedding.forward`` L115-126 (the default rope type: no dynamic update)."""
    inv_freq_expanded = rotary_emb.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1,
                                                                          1).to(x.device)
    position_ids_expanded = position_ids[:, None, :].float()
    freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = emb.cos() * rotary_emb.attention_scaling
    sin = emb.sin() * rotary_emb.attention_scaling
    return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def official_compute_attention_weights(layers, hidden_states, attention_mask, layer_idx, position_embeddings,
                                       training=False):
    """``compute_attention_weights`` L734-797; the read-only cache concatenation L772-779 finds nothing in the
    prefill (layer ``K-1`` has not written its cache yet) and is left out."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

    decoder_layer = layers[layer_idx]
    self_attn = decoder_layer.self_attn
    bsz, q_len, _ = hidden_states.size()
    query_states = self_attn.q_proj(hidden_states)
    key_states = self_attn.k_proj(hidden_states)
    value_states = self_attn.v_proj(hidden_states)
    num_heads = self_attn.q_proj.out_features // self_attn.head_dim
    num_key_value_heads = self_attn.k_proj.out_features // self_attn.head_dim
    query_states = query_states.view(bsz, q_len, num_heads, self_attn.head_dim).transpose(1, 2)
    key_states = key_states.view(bsz, q_len, num_key_value_heads, self_attn.head_dim).transpose(1, 2)
    value_states = value_states.view(bsz, q_len, num_key_value_heads, self_attn.head_dim).transpose(1, 2)
    value_weights = torch.matmul(value_states, value_states.transpose(2, 3)) / math.sqrt(self_attn.head_dim)
    value_weights = nn.functional.softmax(value_weights, dim=-1, dtype=torch.float32).to(query_states.dtype)
    cos, sin = position_embeddings
    query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)
    key_states = repeat_kv(key_states, self_attn.num_key_value_groups)
    value_states = repeat_kv(value_states, self_attn.num_key_value_groups)
    attn_weights = torch.matmul(query_states, key_states.transpose(2, 3)) / math.sqrt(self_attn.head_dim)
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query_states.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=self_attn.attention_dropout, training=training)
    attn_output = torch.matmul(attn_weights, value_states)
    attn_output = attn_output.transpose(1, 2).contiguous()
    attn_output = attn_output.reshape(bsz, q_len, -1)
    attn_output = self_attn.o_proj(attn_output)
    return attn_output, attn_weights, value_weights, position_embeddings


def official_keep_indexs(critical_value_weights, critical_position_embedding, ivcp_config,
                         seq_length_with_past, device):
    """The selection, L896-945 (``IVCP_image_token_*`` from ``ivcp_config``, L815-816)."""
    IVCP_image_token_start_index = ivcp_config['image_token_start_index']
    IVCP_image_token_length = ivcp_config['image_token_length']
    value_sim_avg = torch.mean(critical_value_weights, dim=1)[0]
    value_attn_question = torch.mean(
        value_sim_avg[IVCP_image_token_start_index + IVCP_image_token_length + 2:], dim=0)
    value_attn_img = value_attn_question[
        IVCP_image_token_start_index:IVCP_image_token_start_index + IVCP_image_token_length]
    top_seed_index = value_attn_img.topk(
        max(1, round(IVCP_image_token_length * 0.01))).indices + IVCP_image_token_start_index
    anchor_dim = torch.cat((
        top_seed_index,
        torch
        .arange(IVCP_image_token_start_index + IVCP_image_token_length + 2, seq_length_with_past,
                device=device)))
    value_related_attn = torch.mean(value_sim_avg[anchor_dim], dim=0)
    value_related_img = value_related_attn[
        IVCP_image_token_start_index:IVCP_image_token_start_index + IVCP_image_token_length]
    top_value_index = (value_related_img.topk(round(IVCP_image_token_length * 0.2)).indices
                       + IVCP_image_token_start_index)
    cos_pe, sin_pe = critical_position_embedding
    cos_mean = cos_pe[0,
                      IVCP_image_token_start_index:IVCP_image_token_start_index
                      + IVCP_image_token_length].mean(dim=1)
    sin_mean = sin_pe[0,
                      IVCP_image_token_start_index:IVCP_image_token_start_index
                      + IVCP_image_token_length].mean(dim=1)
    pe_index = torch.cat((
        cos_mean.topk(round(IVCP_image_token_length * 0.05)).indices + IVCP_image_token_start_index,
        sin_mean.topk(round(IVCP_image_token_length * 0.05)).indices + IVCP_image_token_start_index))
    keep_indexs = torch.unique(torch.cat((
        torch.arange(IVCP_image_token_start_index, device=device),
        top_value_index,
        top_seed_index,
        pe_index,
        torch
        .arange(IVCP_image_token_start_index + IVCP_image_token_length, seq_length_with_past, device=device),
    )), sorted=True)
    return keep_indexs


def budget_lists(critical_value_weights, critical_position_embedding, ivcp_config, seq_length_with_past,
                 device):
    """L896-936 (the four lists and the foreground score, verbatim but for the names)."""
    start, length = ivcp_config['image_token_start_index'], ivcp_config['image_token_length']
    value_sim_avg = torch.mean(critical_value_weights, dim=1)[0]
    value_attn_question = torch.mean(value_sim_avg[start + length + 2:], dim=0)
    value_attn_img = value_attn_question[start:start + length]
    top_seed_index = value_attn_img.topk(max(1, round(length * 0.01))).indices + start
    anchor_dim = torch.cat(
        (top_seed_index, torch.arange(start + length + 2, seq_length_with_past, device=device)))
    value_related_img = torch.mean(value_sim_avg[anchor_dim], dim=0)[start:start + length]
    top_value_index = value_related_img.topk(round(length * 0.2)).indices + start
    cos_pe, sin_pe = critical_position_embedding
    cos_top = cos_pe[0, start:start + length].mean(dim=1).topk(round(length * 0.05)).indices + start
    sin_top = sin_pe[0, start:start + length].mean(dim=1).topk(round(length * 0.05)).indices + start
    return top_seed_index, top_value_index, cos_top, sin_top, value_related_img


def budget_fill(lists, ivcp_config, seq_length_with_past, device, target):
    """The Qwen2.5-VL variant's fill to ``target`` image tokens (L1526-1542) over the LLaVA-1.5 lists, with
    the module's deviation 1: the ranking is the official top-20% list, then the other tokens by their score
    (descending, ties by index); a priority above ``target`` shrinks its counts to ``floor(c * target / T)``,
    the first of each official list."""
    start, length = ivcp_config['image_token_start_index'], ivcp_config['image_token_length']
    top_seed_index, top_value_index, cos_top, sin_top, value_related_img = lists
    priority_indices = torch.cat((cos_top, sin_top, top_seed_index))
    priority_indices_unique = torch.unique(priority_indices)
    if target < len(priority_indices_unique):  # deviation 1
        total = len(cos_top) + len(sin_top) + len(top_seed_index)
        c, k = len(cos_top) * target // total, len(top_seed_index) * target // total
        priority_indices_unique = torch.unique(torch.cat((cos_top[:c], sin_top[:c], top_seed_index[:k])))
    remaining_count = target - len(priority_indices_unique)
    if remaining_count > 0:
        first = top_value_index.tolist()
        scores, taken = value_related_img.tolist(), set(first)
        rest = sorted((j for j in range(start, start + length) if j not in taken),
                      key=lambda j: (-scores[j - start], j))
        all_value_scores_indices = torch.tensor(first + rest, dtype=torch.long, device=device)
        mask = ~torch.isin(all_value_scores_indices, priority_indices_unique)
        additional_indices = all_value_scores_indices[mask][:remaining_count]
        selected_image_indices = torch.cat((priority_indices_unique, additional_indices))
    else:
        selected_image_indices = priority_indices_unique
    keep_indexs = torch.cat((torch.arange(start, device=device), selected_image_indices,
                             torch.arange(start + length, seq_length_with_past, device=device)))
    return torch.unique(keep_indexs, sorted=True)


def budget_keep_indexs(critical_value_weights, critical_position_embedding, ivcp_config, seq_length_with_past,
                       device, target):
    """The budget rule in the official loop's place: :func:`budget_lists`, then :func:`budget_fill`."""
    lists = budget_lists(critical_value_weights, critical_position_embedding, ivcp_config,
                         seq_length_with_past, device)
    return budget_fill(lists, ivcp_config, seq_length_with_past, device, target)


def official_ivcp_forward(lm, inputs_embeds, ivcp_config, select=official_keep_indexs):
    """``IVCP_forward_flashattention`` L799-1011 on a transformers ``LlamaModel`` (prefill, batch 1, eager
    attention, no cache). Returns (keep_indexs, final normed hidden states, (critical_value_weights,
    critical_position_embedding)); ``select`` is L896-945 (the official) or a budget rule."""
    IVCP_k = ivcp_config['ivcp_k']
    seq = inputs_embeds.shape[1]
    cache_position = torch.arange(0, seq, device=inputs_embeds.device)
    position_ids = cache_position.unsqueeze(0)
    causal_mask = torch.full((seq, seq), torch.finfo(inputs_embeds.dtype).min).triu(1)[None, None]
    hidden_states = inputs_embeds
    device = hidden_states.device
    seq_length_with_past = 0 + inputs_embeds.shape[1]
    position_embeddings = official_rotary(lm.rotary_emb, hidden_states, position_ids)
    cur_position_ids = position_ids
    cur_position_embeddings = position_embeddings
    cur_attention_mask = causal_mask
    critical_value_weights = None
    critical_position_embedding = None
    keep_indexs = torch.arange(seq)
    for layer_idx, decoder_layer in enumerate(lm.layers):
        if layer_idx == IVCP_k and critical_value_weights is not None:
            keep_indexs = select(critical_value_weights, critical_position_embedding, ivcp_config,
                                 seq_length_with_past, device)
            hidden_states = hidden_states[:, keep_indexs, :]
            cur_position_ids = keep_indexs.unsqueeze(0)
            cur_attention_mask = causal_mask[:, :, keep_indexs, :][:, :, :, keep_indexs]
            cur_position_embeddings = (position_embeddings[0][:, keep_indexs, :],
                                       position_embeddings[1][:, keep_indexs, :])
        if layer_idx == IVCP_k - 1:
            normalized_hs = decoder_layer.input_layernorm(hidden_states)
            _, _, critical_value_weights, critical_position_embedding = official_compute_attention_weights(
                lm.layers, normalized_hs, cur_attention_mask, layer_idx,
                position_embeddings=cur_position_embeddings)
        layer_outputs = decoder_layer(hidden_states, attention_mask=cur_attention_mask,
                                      position_ids=cur_position_ids,
                                      position_embeddings=cur_position_embeddings)
        hidden_states = layer_outputs[0] if isinstance(layer_outputs, tuple) else layer_outputs
    return keep_indexs, lm.norm(hidden_states), (critical_value_weights, critical_position_embedding)


def ivcp_config(ctx, k):
    """``llava_v1.5_7b_IVCP``'s config (config.py L514-518) at GLaMM's place and count of the visual
    tokens."""
    return {"ivcp_k": k, "image_token_start_index": ctx.image_start, "image_token_length": ctx.num_visual}


def run_official(ctx, k, target=None):
    """The official loop over ``ctx``'s sequence (eager attention); ``target``: the budget rule instead of
    L896-945."""
    lm = ctx.lm
    old = lm.config._attn_implementation
    lm.config._attn_implementation = "eager"
    select = official_keep_indexs if target is None else functools.partial(budget_keep_indexs, target=target)
    try:
        with torch.no_grad():
            return official_ivcp_forward(lm, ctx.embeds, ivcp_config(ctx, k), select)
    finally:
        lm.config._attn_implementation = old


# ----------------------------------------------------------------------------------------------
# The pipeline against the official loop (a real image, float32)
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def glamm_ctx(tiny_glamm, tiny_glamm_prep):
    """The tiny GLaMM's context over the prepared COCO image (read only), made once per module."""
    return tiny_glamm.context(tiny_glamm_prep)


@pytest.mark.parametrize("layer",
                         [2, pytest.param(1, marks=pytest.mark.slow),
                          pytest.param(3, marks=pytest.mark.slow)])
def test_pipeline_equals_the_official_loop(tiny_glamm, tiny_glamm_prep, glamm_ctx, layer):
    pipe, prep, ctx = tiny_glamm, tiny_glamm_prep, glamm_ctx
    budget = ivc.official_budget(ctx, layer)
    ours = pipe.ground(prep, "ivc-prune", budget, layer=layer)
    keep, final, _ = run_official(ctx, layer)
    assert ours.kept_indices.tolist() == visual_part(keep, ctx) and len(ours.kept_indices) == budget
    assert ours.prune_layer == layer and int(ours.selection.parts["official_budget"]) == budget
    assert ours.seq_len == final.shape[1] == ctx.seq_len - ctx.num_visual + budget
    torch.testing.assert_close(ours.seg_hidden, final[0, ours.seg_positions], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("budget",
                         [9, *(pytest.param(k, marks=pytest.mark.slow) for k in (576, 300, 64, 40, 1))])
def test_pipeline_at_other_budgets_equals_the_budget_rule(tiny_glamm, tiny_glamm_prep, glamm_ctx, budget):
    pipe, prep, ctx = tiny_glamm, tiny_glamm_prep, glamm_ctx
    ours = pipe.ground(prep, "ivc-prune", budget)
    assert ours.prune_layer == ivc.default_layer(4) == 2
    keep, final, _ = run_official(ctx, 2, target=budget)
    assert ours.kept_indices.tolist() == visual_part(keep, ctx) and len(ours.kept_indices) == budget
    assert ours.seq_len == final.shape[1]
    torch.testing.assert_close(ours.seg_hidden, final[0, ours.seg_positions], rtol=1e-4, atol=1e-4)
    if budget == ctx.num_visual:  # nothing pruned: the unpruned model
        torch.testing.assert_close(ours.seg_hidden, pipe.ground(prep, "none").seg_hidden, rtol=1e-4,
                                   atol=1e-4)


@pytest.fixture(scope="module")
def pipe32(tiny_glamm):
    """The tiny GLaMM with a 32-layer LLM (random, seed 1), so the official ``ivcp_k = 16`` applies as it
    is."""
    from litelvlm.glamm import GlammPipeline, build_glamm

    model = build_glamm(replace(tiny_glamm.model.arch, llm_layers=32), seed=1)
    return GlammPipeline(model, tiny_glamm.tokenizer, tiny_glamm.clip, name="tiny32-random:1")


@pytest.mark.parametrize("n", [144, pytest.param(576, marks=pytest.mark.slow)])
def test_default_layer_is_the_official_16_of_32(pipe32, tiny_glamm_prep, n):
    """On a 32-layer LLM the default layer is the official ``ivcp_k = 16`` (the prepared image's CLIP trace
    and prompt; its SAM embedding is not used), with the image's first N visual tokens."""
    ctx = LLMContext(pipe32, tiny_glamm_prep, pipe32.visual_tokens(tiny_glamm_prep)[:n])
    budget = ivc.official_budget(ctx)
    with torch.no_grad():
        sel = ivc.ivc_prune_select(ctx, budget)
        ours, pred = ivc.IVC_PRUNE.forward(ctx, sel)
    keep, final, _ = run_official(ctx, 16)
    assert ctx.num_layers == 32 and sel.prune_layer == 16
    assert sel.indices.tolist() == visual_part(keep, ctx) and ours.shape == final.shape
    torch.testing.assert_close(ours[0, pred], final[0, pred], rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------------
# Every dtype, every budget, other token counts
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["float32", "bfloat16", "float16"])
def typed(request):
    """The tiny GLaMM in each dtype (float16: the official run's; bfloat16: GLaMM's), its value projections
    scaled by 8 so that the value similarities spread (about 200 distinct bfloat16 foreground scores over 576
    tokens instead of 7: the ranking is the scores', not only ``topk``'s tie-breaking), a prepared image and
    its context (read only)."""
    from PIL import Image

    from litelvlm.glamm import GlammPipeline

    p = GlammPipeline.from_model_string("tiny-random:0", dtype=getattr(torch, request.param))
    with torch.no_grad():
        for layer in p.model.language_model.layers:
            layer.self_attn.v_proj.weight.mul_(8)
    g = torch.Generator().manual_seed(7)
    image = Image.fromarray((torch.rand(80, 120, 3, generator=g) * 255).to(torch.uint8).numpy())
    prep = p.prepare(image, ["the dog on the left", "a red cup"])
    return p, prep, p.context(prep)


def _sweep(ctx, layer, budgets):
    """Our selection at every budget against the budget rule over the official loop's own tensors; at the
    official count, against the official selection too. The selection runs at every budget; the scores it
    reads (``ivc_scores``, a function of the context and the layer) are computed once per sweep."""
    _, _, (weights, pe) = run_official(ctx, layer)
    assert weights.dtype == pe[0].dtype == ctx.embeds.dtype
    cfg, dev = ivcp_config(ctx, layer), ctx.embeds.device
    official = visual_part(official_keep_indexs(weights, pe, cfg, ctx.seq_len, dev), ctx)
    assert len(official) == ivc.official_budget(ctx, layer)
    lists = budget_lists(weights, pe, cfg, ctx.seq_len, dev)
    with computed_once(ivc, "ivc_scores"):
        for budget in sorted({*budgets, len(official)}):
            with torch.no_grad():
                sel = ivc.ivc_prune_select(ctx, budget, layer=layer)
            ref = visual_part(budget_fill(lists, cfg, ctx.seq_len, dev, budget), ctx)
            assert sel.indices.tolist() == ref and len(ref) == budget, f"K={budget}"
            if budget == len(official):
                assert ref == official
            parts = sel.parts
            assert set(parts["ivc"].tolist()) | set(parts["seeds"].tolist()) \
                | set(parts["foreground"].tolist()) == set(ref)


def test_similarity_and_rope_are_the_official(typed):
    pipe, prep, ctx = typed
    pe = official_rotary(ctx.lm.rotary_emb, ctx.embeds, torch.arange(ctx.seq_len)[None])
    ours = ctx.lm.rotary_emb(ctx.embeds, position_ids=ctx.position_ids)
    assert torch.equal(ours[0], pe[0]) and torch.equal(ours[1], pe[1])
    with torch.no_grad():
        normed = ctx.lm.layers[1].input_layernorm(ctx.hidden_before(1))
        weights = official_compute_attention_weights(ctx.lm.layers, normed, None, 1, pe)[2]
        assert torch.equal(ivc.value_similarity(ctx, 1), torch.mean(weights, dim=1)[0])
        lists = ivc.ivc_scores(ctx, 2)
    assert lists["score"].dtype == pipe.dtype and lists["score"].unique().numel() > 100


def test_sampled_budgets_equal_the_transcription(typed):
    """N = 576: every 97th budget, the edges, around the priority's size (up to 64) and the official count
    (added by ``_sweep``), at layer 2; every budget in the slow test below."""
    pipe, prep, ctx = typed
    n = ctx.num_visual
    _sweep(ctx, 2, {1, 2, 3, 5, 57, 58, 63, 64, 65, 179, n - 1, n, *range(4, n, 97)})


@pytest.mark.parametrize("n,layer", [(1, 3), (7, 3), (20, 3), *(pytest.param(n, layer, marks=pytest.mark.slow)
                                                          for n,
                                                                layer
                                                                in ((20, 1), (37, 1), (37, 3), (100, 3)))])
def test_every_budget_on_other_token_counts(typed, n, layer):
    """N visual tokens (the first N of the image's), every budget 1..N."""
    pipe, prep, _ = typed
    ctx = LLMContext(pipe, prep, pipe.visual_tokens(prep)[:n])
    _sweep(ctx, layer, range(1, n + 1))


@pytest.mark.slow
def test_every_budget_at_576(typed):
    pipe, prep, ctx = typed
    _sweep(ctx, 2, range(1, ctx.num_visual + 1))


@pytest.mark.parametrize("budget", [None, 5, pytest.param(64, marks=pytest.mark.slow)])
def test_official_loop_in_each_dtype(typed, budget):
    """Kept tokens and [SEG] states of the method's pruned forward (None: the official count)."""
    pipe, prep, ctx = typed
    k = ivc.official_budget(ctx) if budget is None else budget
    with torch.no_grad():
        sel = ivc.ivc_prune_select(ctx, k)
        ours, pred = ivc.IVC_PRUNE.forward(ctx, sel)
    keep, final, _ = run_official(ctx, 2, target=budget)
    assert sel.indices.tolist() == visual_part(keep, ctx) and ours.shape == final.shape
    tol = 1e-4 if pipe.dtype == torch.float32 else 2e-2
    torch.testing.assert_close(ours[0, pred], final[0, pred], rtol=tol, atol=tol)


# ----------------------------------------------------------------------------------------------
# Counts, schedule, refusals
# ----------------------------------------------------------------------------------------------

def test_counts_layers_and_schedule():
    assert ivc.part_counts(576) == (6, 115, 29)  # L907, L921, L934-935 on LLaVA-1.5's 576 tokens
    assert ivc.part_counts(20) == (1, 4, 1) and ivc.part_counts(1) == (1, 0, 0)
    assert [ivc.default_layer(n) for n in (32, 40, 4, 1)] == [16, 20, 2, 1]
    assert ivc.ivc_schedule(64, 576, 32) == ((0, 576), (16, 64))
    assert ivc.ivc_schedule(64, 576, 4, layer=3) == ((0, 576), (3, 64))
    from litelvlm.methods import get_method

    m = get_method("ivc-prune")
    assert m.stage.name == "llm-layer" and m.host_sync and not m.needs_text and m.schedule is ivc.ivc_schedule


def test_official_count_is_at_most_the_parts(glamm_ctx):
    ctx = glamm_ctx
    budget = ivc.official_budget(ctx)
    assert 115 <= budget <= 6 + 115 + 2 * 29


def test_refusals(tiny_glamm, tiny_glamm_prep, glamm_ctx):
    from types import SimpleNamespace

    ctx = glamm_ctx
    with pytest.raises(LiteLVLMError, match="layer K must be in 1..4"):
        ivc.ivc_prune_select(ctx, 64, layer=0)
    with pytest.raises(LiteLVLMError, match="budget"):  # the budget: counted once, where ground takes it
        tiny_glamm.ground(tiny_glamm_prep, "ivc-prune", 0)
    with pytest.raises(LiteLVLMError, match="question rows"):
        ivc.ivc_scores(SimpleNamespace(image_start=3, num_visual=5, seq_len=10), 2)
    three = SimpleNamespace(position_ids=torch.zeros(3, 1, 10, dtype=torch.long))
    with pytest.raises(LiteLVLMError, match="multi-axis positions"):
        ivc.rope_means(three)
