"""SparseVLM in the GLaMM LLM against a statement-by-statement transcription of its official code.

Transcribes Gumpest/SparseVLMs @ 26a5f48813c46cd1c7364160354e7fdd3febaa67 (``USE_VERSION=1_0``):

* ``llava/model/language_model/modelling_sparse_llama.py`` L186-322 and L351, L373
  (``LlamaDynamicvitModel.forward``: text raters, the three pruning layers, recycling, renumbered
  ``position_ids``), L641-714 (``LlamaDynamicvitSdpaAttention.forward``, eval path, no cache) and
  L764-801 (``LlamaDynamicvitDecoderLayer.forward``);
* ``llava/model/language_model/score.py`` L23-46 (``attn_postprocess_topk``; its globals
  ``sparse_token_dict[RETAIN_TOKN]`` and ``layer_dict`` become arguments);
* ``llava/model/language_model/utils.py`` L20-45 (``batch_index_select``), L95-116
  (``scaled_dot_product_attention``), L159-176 (``index_points``), L179-239 (``cluster_and_merge``;
  its density noise ``torch.rand`` is an argument, zero in the comparisons: deviation 1).

The official code targets transformers 4.37: ``rotary_emb(value_states, seq_len)`` then
``apply_rotary_pos_emb(q, k, cos, sin, position_ids)`` gathers the rows of ``position_ids``; here
``rotary_emb(value_states, position_ids)`` returns those rows directly. Every decoder layer runs
through the transcribed SDPA path (the official model uses it in every layer), so the reference is
independent of the project's ``run_layers``. Bookkeeping the official code does not have
(original index of each visual row, for comparing kept indices) is marked ``# bookkeeping``.

The transcription computes in the model's dtype, as the official code does (bfloat16 in the GLaMM
runs); the pipelines here use the official numerics (``score_dtype="model"``), so the comparisons in
bfloat16 check that the rater rows, their head and rater means and the ``topk`` are taken in
bfloat16 as the official ``utils.py`` L95-116 and ``score.py`` L27-32 take them.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

from litelvlm.methods import sparsevlm as sv

OFFICIAL_COMMIT = "26a5f48813c46cd1c7364160354e7fdd3febaa67"
SENTENCES = ["the dog on the left", "a red cup"]


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def batch_index_select(x, idx):
    """utils.py L20-45 (the 3-D and 2-D branches)."""
    if len(x.size()) == 3:
        B, N, C = x.size()
        N_new = idx.size(1)
        offset = torch.arange(B, dtype=torch.long, device=x.device).view(B, 1) * N
        idx = idx + offset
        return x.reshape(B * N, C)[idx.reshape(-1)].reshape(B, N_new, C)
    B, N = x.size()
    N_new = idx.size(1)
    offset = torch.arange(B, dtype=torch.long, device=x.device).view(B, 1) * N
    idx = idx + offset
    return x.reshape(B * N)[idx.reshape(-1)].reshape(B, N_new)


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False):
    """utils.py L95-116 (dropout 0)."""
    L, S = query.size(-2), key.size(-2)
    scale_factor = 1 / math.sqrt(query.size(-1))
    attn_bias = torch.zeros(L, S, dtype=query.dtype)
    if is_causal:
        temp_mask = torch.ones(L, S, dtype=torch.bool).tril(diagonal=0)
        attn_bias.masked_fill_(temp_mask.logical_not(), float("-inf"))
    attn_weight = query @ key.transpose(-2, -1) * scale_factor
    attn_weight += attn_bias.to(query.device)
    attn_weight = torch.softmax(attn_weight, dim=-1)
    attn_logits = attn_weight
    return attn_weight @ value, attn_logits


def official_decoder_layer(layer, hidden_states, position_ids, rotary_emb):
    """LlamaDynamicvitDecoderLayer.forward L764-801 with LlamaDynamicvitSdpaAttention L641-714 (eval,
    no mask, no cache): (layer output, attn_logits)."""
    attn = layer.self_attn
    residual = hidden_states
    hidden_states = layer.input_layernorm(hidden_states)
    bsz, q_len, _ = hidden_states.size()
    num_heads, head_dim = attn.config.num_attention_heads, attn.head_dim
    num_kv = attn.config.num_key_value_heads
    query_states = attn.q_proj(hidden_states).view(bsz, q_len, num_heads, head_dim).transpose(1, 2)
    key_states = attn.k_proj(hidden_states).view(bsz, q_len, num_kv, head_dim).transpose(1, 2)
    value_states = attn.v_proj(hidden_states).view(bsz, q_len, num_kv, head_dim).transpose(1, 2)
    cos, sin = rotary_emb(value_states, position_ids)
    query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)
    key_states = repeat_kv(key_states, attn.num_key_value_groups)
    value_states = repeat_kv(value_states, attn.num_key_value_groups)
    attn_output, attn_logits = scaled_dot_product_attention(query_states, key_states, value_states,
                                                            attn_mask=None, is_causal=q_len > 1)
    attn_output = attn_output.transpose(1, 2).contiguous().reshape(bsz, q_len, -1)
    hidden_states = residual + attn.o_proj(attn_output)
    residual = hidden_states
    hidden_states = layer.mlp(layer.post_attention_layernorm(hidden_states))
    return residual + hidden_states, attn_logits


def attn_postprocess_topk(self_attn_weights, v_token_start, v_token_num, text_token_start, t_token_idx,
                          layer_idx, sparse_token_list, layer_dict):
    """score.py L23-46."""
    self_attn_weights = self_attn_weights.mean(1)
    t_token_idx = t_token_idx[1] + text_token_start
    relation_vis_text = self_attn_weights[:, t_token_idx, v_token_start: v_token_start + v_token_num]
    relation_vis_text = relation_vis_text.mean(1)
    relation_vis = relation_vis_text
    s_flag = True
    if v_token_num != 0:
        mask = torch.zeros_like(relation_vis, dtype=bool)
        _, indices = torch.topk(relation_vis, min(sparse_token_list[layer_dict[layer_idx]], v_token_num - 1),
                                dim=1)
        mask[0][indices] = 1
    else:
        mask = torch.ones_like(relation_vis_text, dtype=bool)
        s_flag = False
    return mask, s_flag, relation_vis_text


def index_points(points, idx):
    """utils.py L159-176."""
    device = points.device
    B = points.shape[0]
    view_shape = list(idx.shape)
    view_shape[1:] = [1] * (len(view_shape) - 1)
    repeat_shape = list(idx.shape)
    repeat_shape[0] = 1
    batch_indices = torch.arange(B, dtype=torch.long).to(device).view(view_shape).repeat(repeat_shape)
    return points[batch_indices, idx, :]


def official_cluster_and_merge(x, cluster_num, rand=torch.rand):
    """utils.py L179-239 (einops ``rearrange`` written as indexing)."""
    B, N, C = x.shape
    x1 = x[:, :, None, :]
    x2 = x[:, None, :, :]
    distance = (x1 - x2).norm(dim=-1, p=2)
    dist_matrix = distance / (C ** 0.5)
    dist_nearest, index_nearest = torch.topk(dist_matrix, k=cluster_num, dim=-1, largest=False)
    density = (-(dist_nearest ** 2).mean(dim=-1)).exp()
    density = density + rand(density.shape, device=density.device, dtype=density.dtype) * 1e-6
    mask = density[:, None, :] > density[:, :, None]
    mask = mask.type(x.dtype)
    dist_max = dist_matrix.flatten(1).max(dim=-1)[0][:, None, None]
    dist, index_parent = (dist_matrix * mask + dist_max * (1 - mask)).min(dim=-1)
    score = dist * density
    _, index_down = torch.topk(score, k=cluster_num, dim=-1)
    dist_matrix = index_points(dist_matrix, index_down)
    idx_cluster = dist_matrix.argmin(dim=1)
    idx_batch = torch.arange(B, device=x.device)[:, None].expand(B, cluster_num)
    idx_tmp = torch.arange(cluster_num, device=x.device)[None, :].expand(B, cluster_num)
    idx_cluster[idx_batch.reshape(-1), index_down.reshape(-1)] = idx_tmp.reshape(-1)
    B, N, C = x.shape
    token_weight = x.new_ones(B, N, 1)
    idx_batch = torch.arange(B, device=x.device)[:, None]
    idx = idx_cluster + idx_batch * cluster_num
    all_weight = token_weight.new_zeros(B * cluster_num, 1)
    all_weight.index_add_(dim=0, index=idx.reshape(B * N), source=token_weight.reshape(B * N, 1))
    all_weight = all_weight + 1e-6
    norm_weight = token_weight / all_weight[idx]
    x_merged = x.new_zeros(B * cluster_num, C)
    source = x * norm_weight
    x_merged.index_add_(dim=0, index=idx.reshape(B * N), source=source.reshape(B * N, C).type(x.dtype))
    return x_merged.reshape(B, cluster_num, C)


def _no_noise(shape, device=None, dtype=None):
    return torch.zeros(shape, device=device, dtype=dtype)


def official_sparse_forward(lm, inputs_embeds, pre_prompt_length, image_shape, sparse_token_list,
                            pruning_loc):
    """LlamaDynamicvitModel.forward L186-322, L351, L373 (prefill, eval, B = 1, ``USE_VERSION=1_0``);
    returns (final normed hidden, [original visual indices kept after each stage], [visual counts])."""
    layer_dict = {loc: i for i, loc in enumerate(pruning_loc)}  # score.py L9 for the given layers
    hidden_states = inputs_embeds
    B, L, _ = hidden_states.shape
    position_ids = torch.arange(L)[None]
    pre_prompt_length_list = [pre_prompt_length]
    v_token_start = pre_prompt_length_list[0]
    text_token_start = v_token_start + image_shape
    v_token_num = image_shape
    v_t = hidden_states[:, v_token_start: text_token_start, :]
    t_t = hidden_states[:, text_token_start:, :]
    m_v_t = v_t @ t_t.transpose(1, 2)
    m_v_t = m_v_t.softmax(2).mean(1)
    t_token_idx = torch.where(m_v_t > m_v_t.mean())
    labels = torch.arange(image_shape)  # bookkeeping
    kept, counts = [], []  # bookkeeping
    for layer_idx, decoder_layer in enumerate(lm.layers):
        if layer_idx in pruning_loc:
            layer_outputs = official_decoder_layer(decoder_layer, hidden_states, position_ids, lm.rotary_emb)
            layer_outputs = (layer_outputs[0], None, layer_outputs[1])
            attn_logits = layer_outputs[2]
            pred_score_vis, s_flag, relation_vis_text = attn_postprocess_topk(
                attn_logits, v_token_start, v_token_num, text_token_start, t_token_idx, layer_idx,
                sparse_token_list, layer_dict)
            policy = torch.ones(B, hidden_states.shape[1], dtype=hidden_states.dtype,
                                device=hidden_states.device)
            policy[:, v_token_start:text_token_start] = pred_score_vis.type(dtype=hidden_states.dtype)
            for batch in range(len(pre_prompt_length_list)):
                prompt_length = pre_prompt_length_list[batch]
                policy[batch, :prompt_length, ] = 1
                text_token_start = prompt_length + image_shape
                policy[batch, text_token_start:, ] = 1
            total_sparse_token_idx = torch.where(policy == 0)[1].unsqueeze(0)
            if s_flag and total_sparse_token_idx.shape[1] > 0:
                total_sparse_token_idx = torch.where(policy == 0)[1].unsqueeze(0)
                total_sparse_token = batch_index_select(layer_outputs[0], total_sparse_token_idx)
                merge_token_idx_stage1 = torch.where(pred_score_vis == 0)[1]
                merge_token_stage1 = relation_vis_text[0][merge_token_idx_stage1]
                merge_token_num_stage1 = int(merge_token_idx_stage1.shape[0] * 0.3) + 1
                merge_token_stage2_idx = merge_token_stage1.topk(merge_token_num_stage1)[1]
                merge_token_stage2 = total_sparse_token[:, merge_token_stage2_idx, :]
                cluster_num = int(merge_token_stage2.shape[1] / 10) + 1
                if cluster_num == 0:
                    cluster_num = merge_token_stage2.shape[1]
                merge_sparse_token = official_cluster_and_merge(merge_token_stage2, cluster_num, _no_noise)
                select_token_idx = torch.where(policy == 1)[1].unsqueeze(0)
                select_token = batch_index_select(layer_outputs[0], select_token_idx)
                select_vis_token_num = pred_score_vis.sum()
                select_and_merge_token = torch.cat((select_token[:, :v_token_start + select_vis_token_num, :],
                                                    merge_sparse_token,
                                                    select_token[:, v_token_start + select_vis_token_num:, :])
                                                   , dim=1)
                layer_outputs = (select_and_merge_token, layer_outputs[1])
                position_ids = position_ids[:, :len(select_token_idx[0]) + cluster_num]
                labels = torch.cat([labels[pred_score_vis[0]], torch.full((cluster_num,), -1)])  # bookkeeping
                v_token_num = pred_score_vis.sum() + cluster_num
                text_token_start = v_token_start + v_token_num
            else:
                select_token_idx = torch.where(policy == 1)[1].unsqueeze(0)
                layer_outputs = (batch_index_select(layer_outputs[0], select_token_idx), layer_outputs[1])
                position_ids = position_ids[:, :len(select_token_idx[0])]
                labels = labels[pred_score_vis[0]]  # bookkeeping
                v_token_num = pred_score_vis.sum()
                text_token_start = v_token_start + v_token_num
            kept.append(labels[labels >= 0])  # bookkeeping
            counts.append(int(v_token_num))  # bookkeeping
        else:
            layer_outputs = (
                official_decoder_layer(decoder_layer, hidden_states, position_ids, lm.rotary_emb)[0],)
        hidden_states = layer_outputs[0]
    return lm.norm(hidden_states), kept, counts


# ----------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipe(tiny_glamm):
    return tiny_glamm


@pytest.fixture(scope="module")
def pipe32(pipe):
    """The tiny GLaMM with a 32-layer LLM (random, seed 1), so the official layers 2/6/15 apply as they
    are. Its q/k projections are scaled by 8: the rater scores then spread (std/mean about 0.4 instead
    of 0.006), so the top-k is decided by the attention, not by float32 rounding."""
    from litelvlm.glamm import GlammPipeline, build_glamm

    model = build_glamm(replace(pipe.model.arch, llm_layers=32), seed=1)
    for layer in model.language_model.layers:
        layer.self_attn.q_proj.weight.mul_(8)
        layer.self_attn.k_proj.weight.mul_(8)
    return GlammPipeline(model, pipe.tokenizer, pipe.clip, name="tiny32-random:1")


@pytest.fixture(scope="module")
def image():
    from PIL import Image

    g = torch.Generator().manual_seed(5)
    arr = (torch.rand(96, 128, 3, generator=g) * 255).to(torch.uint8).numpy()
    return Image.fromarray(arr)


@pytest.fixture(scope="module")
def prep(pipe, image):
    return pipe.prepare(image, SENTENCES)


@pytest.fixture(scope="module")
def prep32(pipe32, image):
    return pipe32.prepare(image, SENTENCES)


def _compare(pipe, prep, budget, layers, counts=None):
    out = pipe.ground(prep, "sparsevlm", budget, **({"layers": layers} if layers else {}),
                      **({"counts": counts} if counts else {}))
    ctx = pipe.context(prep)
    schedule = counts or sv.stage_counts(budget)
    with torch.no_grad():
        final, kept, counts_ref = official_sparse_forward(ctx.lm, ctx.embeds, ctx.image_start, ctx.num_visual,
                                                          list(schedule), list(layers or sv.PRUNING_LOC))
    parts = out.selection.parts
    for i, ref in enumerate(kept):
        assert parts[f"stage{i}_kept"].tolist() == ref.tolist(), f"stage {i}, K={budget}"
    assert parts["stage_visual"].tolist() == counts_ref
    assert out.kept_indices.tolist() == kept[-1].tolist()
    assert out.seq_len == final.shape[1]
    # text tokens are never dropped: each [SEG]-predicting row moves by the change in visual tokens
    assert out.seg_positions.tolist() == (ctx.seg_predictors - ctx.num_visual + counts_ref[-1]).tolist()
    torch.testing.assert_close(out.seg_hidden, final[0, out.seg_positions], rtol=1e-4, atol=1e-4)
    return out


# ----------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed,n", [(0, 83), (1, 33), (2, 1), (3, 17)])
def test_cluster_and_merge_equals_official(seed, n):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, n, 4096, generator=g)
    c = int(n / 10) + 1
    torch.testing.assert_close(sv.cluster_and_merge(x, c), official_cluster_and_merge(x, c, _no_noise),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("budget", [192, 128, 96, 64])
def test_official_layers_on_a_32_layer_llm(pipe32, prep32, budget):
    out = _compare(pipe32, prep32, budget, None)
    assert out.prune_layer == 3 and out.selection.parts["stage_layers"].tolist() == [2, 6, 15]
    sched = sv.token_schedule(budget)
    assert out.selection.parts["stage_visual"].tolist() == [sched[3], sched[7], sched[16]]


@pytest.mark.parametrize("budget,counts", [(192, None), (64, None), (32, None), (100, (120, 60, 30))])
def test_mapped_layers_on_the_tiny_llm(pipe, prep, budget, counts):
    """Four LLM layers: the official 2/6/15 of 32 map to 0/1/2 (deviation 3)."""
    assert sv.stage_layers(pipe.model.arch.llm_layers) == (0, 1, 2)
    _compare(pipe, prep, budget, (0, 1, 2), counts)


def test_schedule():
    assert sv.stage_layers(32) == sv.PRUNING_LOC
    assert sv.token_schedule(192) == [576] * 3 + [309] * 4 + [204] * 9 + [113] * 16
    assert sv.token_schedule(128) == [576] * 3 + [312] * 4 + [117] * 9 + [39] * 16
    assert sv.token_schedule(64) == [576] * 3 + [82] * 4 + [32] * 9 + [18] * 16
    assert sv.token_schedule(576) == [576] * 32
    assert sv.stage_counts(32) == (33, 15, 8) and sv.stage_counts(96) == (238, 48, 26)


def test_run_recomputes_equal(pipe, prep):
    """The selection returns its forward (``llm_output``), which the method's forward hands the pipeline;
    recomputing from the selection's schedule gives the same."""
    from dataclasses import replace

    out = pipe.ground(prep, "sparsevlm", 64)
    ctx = pipe.context(prep)
    assert sv.staged_forward(ctx, out.selection) is out.selection.llm_output
    assert torch.equal(out.selection.llm_output[1], out.seg_positions)
    final, seg = sv.staged_forward(ctx, replace(out.selection, llm_output=None))
    assert torch.equal(seg, out.seg_positions)
    torch.testing.assert_close(final[0, seg], out.seg_hidden, rtol=0, atol=0)


def test_pipeline_budgets_on_a_real_image(pipe, coco128):
    from PIL import Image

    image = Image.open(sorted((coco128 / "images").glob("*.jpg"))[0]).convert("RGB")
    prep = pipe.prepare(image, ["the person on the left"])
    base = pipe.ground(prep, "none")
    for budget in (576, 192, 128, 64):
        out = pipe.ground(prep, "sparsevlm", budget)
        assert out.masks.shape == base.masks.shape and torch.isfinite(out.seg_hidden).all()
        if budget == 576:
            assert out.prune_layer == 0 and torch.equal(out.seg_hidden, base.seg_hidden)
            continue
        last = sv.token_schedule(budget, num_layers=4, layers=(0, 1, 2))[-1]
        assert out.seq_len == base.seq_len - 576 + last
        assert out.selection.parts["stage_visual"][-1] == last
        assert len(out.kept_indices) <= last and torch.all(out.kept_indices.diff() > 0)


# ----------------------------------------------------------------------------------------------
# The official precision (bfloat16) and every budget
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def spread(request, image):
    """The tiny GLaMM (4 layers: stages 0/1/2) in each dtype, its token embeddings and q/k projections
    scaled by 8 so that, in bfloat16 too, there are raters (``m_v_t`` above its mean) and the rater
    scores spread (about 200 distinct bfloat16 values over 576 tokens instead of 4)."""
    from litelvlm.glamm import GlammPipeline

    p = GlammPipeline.from_model_string("tiny-random:0", dtype=getattr(torch, request.param))
    assert p.numerics.score_dtype == "model"
    with torch.no_grad():
        p.model.language_model.embed_tokens.weight.mul_(8)
        for layer in p.model.language_model.layers:
            layer.self_attn.q_proj.weight.mul_(8)
            layer.self_attn.k_proj.weight.mul_(8)
    prep = p.prepare(image, SENTENCES)
    ctx = p.context(prep)
    assert len(sv.text_raters(ctx.embeds, ctx.image_start, ctx.num_visual)) > 1
    return p, prep, ctx


def _stages_equal_official(pipe, prep, ctx, budget):
    """Every stage's kept tokens and visual counts equal the transcription's with ``stage_counts(budget)``:
    the official schedule at 192/128/96/64, the documented scaling (deviation 2) elsewhere."""
    with torch.no_grad():
        sel = sv.sparsevlm_select(ctx, budget)  # ctx's cached layer-0 output serves every budget
        if budget == ctx.num_visual:  # no pruning (the official code has no such budget)
            assert sel.indices.tolist() == list(range(budget)) and "stage_layers" not in sel.parts
            return
        _, kept, counts = official_sparse_forward(ctx.lm, ctx.embeds, ctx.image_start, ctx.num_visual,
                                                  list(sv.stage_counts(budget)), [0, 1, 2])
    for i, ref in enumerate(kept):
        assert sel.parts[f"stage{i}_kept"].tolist() == ref.tolist(), f"K={budget}, stage {i}"
    assert sel.parts["stage_visual"].tolist() == counts == sv.token_schedule(budget, ctx.num_visual, 4,
                                                                             (0, 1, 2))[1:4], f"K={budget}"


def _first_layer_once(monkeypatch, ctx):
    """The transcription's decoder layer 0 sees the unpruned ``ctx.embeds`` at every budget: computed once
    per test (the later layers, on the pruned sequences, run each time). The layers after the last stage
    (layer 2 here) pass their input through: the kept tokens and counts compared do not depend on them."""
    plain, memo = official_decoder_layer, {}
    after_the_stages = set(ctx.lm.layers[3:])

    def layer(decoder_layer, hidden_states, position_ids, rotary_emb):
        if decoder_layer in after_the_stages:
            return hidden_states, None
        if decoder_layer is not ctx.lm.layers[0] or hidden_states is not ctx.embeds:
            return plain(decoder_layer, hidden_states, position_ids, rotary_emb)
        assert torch.equal(position_ids, torch.arange(hidden_states.shape[1])[None])
        if not memo:
            memo[0] = plain(decoder_layer, hidden_states, position_ids, rotary_emb)
        return memo[0]

    monkeypatch.setitem(globals(), "official_decoder_layer", layer)


@pytest.mark.parametrize("budgets", ["official", "spread"])
def test_budgets_equal_the_official_stages(spread, budgets, monkeypatch):
    """The official budgets and a spread of the others (every 13th, the edges) in each dtype; the slow
    test below takes every budget."""
    pipe, prep, ctx = spread
    _first_layer_once(monkeypatch, ctx)
    n = ctx.num_visual
    ks = sorted(sv.SPARSE_TOKEN_DICT) if budgets == "official" else sorted(
        {1, 2, 3, n - 1, n, *range(5, n, 13)})
    for budget in ks:
        _stages_equal_official(pipe, prep, ctx, budget)


@pytest.mark.slow
def test_every_budget_equals_the_official_stages(spread, monkeypatch):
    pipe, prep, ctx = spread
    _first_layer_once(monkeypatch, ctx)
    for budget in range(1, ctx.num_visual + 1):
        _stages_equal_official(pipe, prep, ctx, budget)


@pytest.mark.parametrize("budget", [192, 64, 5])
def test_official_loop_at_the_official_precision(spread, budget):
    """Kept tokens, counts and [SEG] states of the whole staged forward (the layers between the stages
    run on transformers' kernels here, on the transcribed SDPA there: bfloat16 rounding apart)."""
    pipe, prep, _ = spread
    out = pipe.ground(prep, "sparsevlm", budget)
    ctx = pipe.context(prep)
    with torch.no_grad():
        final, kept, counts = official_sparse_forward(ctx.lm, ctx.embeds, ctx.image_start, ctx.num_visual,
                                                      list(sv.stage_counts(budget)), [0, 1, 2])
    assert out.kept_indices.tolist() == kept[-1].tolist()
    assert out.selection.parts["stage_visual"].tolist() == counts and out.seq_len == final.shape[1]
    tol = 1e-4 if pipe.dtype == torch.float32 else 5e-2
    torch.testing.assert_close(out.seg_hidden, final[0, out.seg_positions], rtol=tol, atol=tol)


def test_float32_scores_are_the_earlier_computation(spread):
    """``score_dtype="float32"``: the rater rows and their means in float32 (``--protocol
    per-expression``)."""
    from dataclasses import replace as dc_replace

    from litelvlm.llm.context import attention_rows_at

    pipe, prep, ctx = spread
    old = pipe.numerics
    pipe.numerics = dc_replace(old, score_dtype="float32")
    try:
        with torch.no_grad():
            sel = sv.sparsevlm_select(pipe.context(prep), 64)
            rows = attention_rows_at(ctx.lm, 0, ctx.embeds, ctx.position_ids,
                                     sel.parts["raters"] + ctx.image_start + ctx.num_visual)
    finally:
        pipe.numerics = old
    assert rows.dtype == torch.float32
    expected = rows.mean(0)[:, ctx.image_start:ctx.image_start + ctx.num_visual].mean(0)
    assert torch.equal(sel.scores, expected)
