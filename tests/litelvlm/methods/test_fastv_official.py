"""FastV in the GLaMM LLM keeps the tokens, and runs the layers, that the official FastV code does.

Transcribes pkunlp-icler/FastV @ d1659729b5bf1be225e99ee15783deeea80f63b1,
``src/FastV/llava-hf/transformers/src/transformers/models/llama/modeling_llama.py`` L1069-1120
(``fastv_forward``, the no-cache branch): layer ``K-1`` returns its attentions; before layer ``K``
the head-averaged attention of the LAST token over the image tokens ranks them, the top
``round(N * (1 - R))`` are kept with every text token, ``keep_indexs`` sorted, hidden states
filtered, ``position_ids = keep_indexs`` (original RoPE positions) and a plain causal mask
over the shorter sequence.

The official GLaMM stack runs transformers 4.28 (GLaMM pins commit cae78c46, 4.28.0.dev0; read here
from the v4.28.1 release), whose eager ``LlamaAttention`` gives FastV its attentions:
``models/llama/modeling_llama.py`` L94-140 (``LlamaRotaryEmbedding``, ``rotate_half``,
``apply_rotary_pos_emb``) and L195-231 (``LlamaAttention.forward``: logits in the model dtype
divided by ``math.sqrt(head_dim)``, additive mask clamped to the dtype's minimum, float32 softmax
cast back to the model dtype). FastV then averages over heads and ranks in that dtype (bfloat16 in
the GLaMM runs): ``score_dtype="model"``, the default of the official numerics.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch


@pytest.fixture(scope="module")
def pipe(tiny_glamm):
    return tiny_glamm


def rotate_half(x):
    """modeling_llama.py (4.28.1) L126-130."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, position_ids):
    """modeling_llama.py (4.28.1) L133-140."""
    gather_indices = position_ids[:, None, :, None]  # [bs, 1, seq_len, 1]
    gather_indices = gather_indices.repeat(1, cos.shape[1], 1, cos.shape[3])
    cos = torch.gather(cos.repeat(gather_indices.shape[0], 1, 1, 1), 2, gather_indices)
    sin = torch.gather(sin.repeat(gather_indices.shape[0], 1, 1, 1), 2, gather_indices)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


def rotary_428(x, seq_len, dim, base):
    """``LlamaRotaryEmbedding`` (4.28.1) L95-123: cos/sin cached in float32, returned in ``x``'s dtype."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
    t = torch.arange(max(2048, seq_len), dtype=inv_freq.dtype)
    freqs = torch.einsum("i,j->ij", t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos_cached, sin_cached = emb.cos()[None, None, :, :], emb.sin()[None, None, :, :]
    return cos_cached[:, :, :seq_len, ...].to(dtype=x.dtype), sin_cached[:, :, :seq_len,
                                                                         ...].to(dtype=x.dtype)


def attention_weights_428(attn, hidden_states, position_ids, attention_mask):
    """``LlamaAttention.forward`` (4.28.1) L195-231, no cache: the ``attn_weights`` it returns."""
    bsz, q_len, _ = hidden_states.size()
    num_heads, head_dim = attn.config.num_attention_heads, attn.head_dim
    query_states = attn.q_proj(hidden_states).view(bsz, q_len, num_heads, head_dim).transpose(1, 2)
    key_states = attn.k_proj(hidden_states).view(bsz, q_len, num_heads, head_dim).transpose(1, 2)
    kv_seq_len = key_states.shape[-2]
    cos, sin = rotary_428(key_states, kv_seq_len, head_dim, attn.config.rope_parameters["rope_theta"])
    query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin, position_ids)
    attn_weights = torch.matmul(query_states, key_states.transpose(2, 3)) / math.sqrt(head_dim)
    attn_weights = attn_weights + attention_mask
    attn_weights = torch.max(attn_weights, torch.tensor(torch.finfo(attn_weights.dtype).min))
    return torch.nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query_states.dtype)


def _official_fastv(lm, embeds, image_start, image_len, fastv_k, fastv_r, weights_428=False):
    """The official loop on a transformers ``LlamaModel`` with eager attention (returns keep, final
    hidden)."""
    def causal(n):  # what ``_update_causal_mask`` builds for an unpadded sequence (additive, eager)
        return torch.full((n, n), torch.finfo(embeds.dtype).min).triu(1)[None, None]

    seq = embeds.shape[1]
    position_ids = torch.arange(seq)[None]
    hidden_states = embeds
    mask = causal(seq)
    layer_outputs = None
    for layer_idx, decoder_layer in enumerate(lm.layers):
        if layer_idx == fastv_k:
            last_layer_attention = layer_outputs[1]
            last_layer_attention_avg = torch.mean(last_layer_attention, dim=1)[0]
            last_layer_attention_avg_last_tok = last_layer_attention_avg[-1]
            image_att = last_layer_attention_avg_last_tok[image_start:image_start + image_len]
            top_attention_rank_index = image_att.topk(round(image_len * (1 - fastv_r))).indices + image_start
            keep_indexs = torch.cat((torch.arange(image_start), top_attention_rank_index,
                                     torch.arange(image_start + image_len, seq)))
            keep_indexs = keep_indexs.sort().values
            hidden_states = hidden_states[:, keep_indexs, :]
            position_ids = keep_indexs.unsqueeze(0)
            mask = causal(keep_indexs.shape[0])
        pe = lm.rotary_emb(hidden_states, position_ids)
        if layer_idx == fastv_k - 1:  # the layer whose attentions FastV reads
            attn = decoder_layer.self_attn
            normed = decoder_layer.input_layernorm(hidden_states)
            if weights_428:  # the official stack's attention (transformers 4.28)
                layer_outputs = (None, attention_weights_428(attn, normed, position_ids, mask))
            else:
                out = attn(normed, position_embeddings=pe, attention_mask=mask)
                layer_outputs = (None, out[1])
        hidden_states = decoder_layer(hidden_states, attention_mask=mask, position_ids=position_ids,
                                      position_embeddings=pe)
        hidden_states = hidden_states[0] if isinstance(hidden_states, tuple) else hidden_states
    return keep_indexs, lm.norm(hidden_states)


@pytest.mark.parametrize("budget,fastv_k", [(144, 2), (64, 2), (288, 3), (16, 1)])
def test_fastv_equals_the_official_loop(pipe, budget, fastv_k):
    from PIL import Image

    img = Image.new("RGB", (64, 48), (90, 140, 30))
    prep = pipe.prepare(img, ["the dog on the left", "a red cup"])
    ours = pipe.ground(prep, "fastv", budget, layer=fastv_k)
    ctx = pipe.context(prep)
    lm = pipe.model.language_model
    old = lm.config._attn_implementation
    lm.config._attn_implementation = "eager"
    try:
        with torch.no_grad():
            keep, final = _official_fastv(lm, ctx.embeds, ctx.image_start, ctx.num_visual, fastv_k,
                                          1 - budget / ctx.num_visual)
    finally:
        lm.config._attn_implementation = old
    kept_visual = keep[(keep >= ctx.image_start)
                       & (keep < ctx.image_start + ctx.num_visual)] - ctx.image_start
    assert ours.kept_indices.tolist() == kept_visual.tolist()
    assert ours.seq_len == final.shape[1]
    torch.testing.assert_close(ours.seg_hidden, final[0, ours.seg_positions], rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# The official precision (bfloat16, transformers 4.28's attention) and every budget
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def official_case(request):
    """(pipeline with the official numerics, prepared image, its context) in each dtype."""
    from PIL import Image

    from litelvlm.glamm import GlammPipeline

    p = GlammPipeline.from_model_string("tiny-random:0", dtype=getattr(torch, request.param))
    assert p.numerics.score_dtype == "model" and p.numerics.attn == "eager"
    g = torch.Generator().manual_seed(7)
    image = Image.fromarray((torch.rand(80, 120, 3, generator=g) * 255).to(torch.uint8).numpy())
    prep = p.prepare(image, ["the dog on the left", "a red cup"])
    return p, prep, p.context(prep)


def _official_image_attention(ctx, fastv_k):
    """``image_att`` of the official loop, layer ``fastv_k - 1`` computed as transformers 4.28 does."""
    lm = ctx.lm
    seq = ctx.seq_len
    mask = torch.full((seq, seq), torch.finfo(ctx.embeds.dtype).min).triu(1)[None, None]
    layer = lm.layers[fastv_k - 1]
    with torch.no_grad():
        weights = attention_weights_428(layer.self_attn,
                                        layer.input_layernorm(ctx.hidden_before(fastv_k - 1)),
                                        ctx.position_ids, mask)
    last_layer_attention_avg = torch.mean(weights, dim=1)[0]
    return last_layer_attention_avg[-1][ctx.image_start:ctx.image_start + ctx.num_visual]


def test_rotary_428_equals_the_models(official_case):
    """The 4.28 rotary tables equal transformers 5's in the model dtype (so the layers' own RoPE is the
    official)."""
    _, _, ctx = official_case
    attn = ctx.lm.layers[0].self_attn
    cos, sin = rotary_428(ctx.embeds, ctx.seq_len, attn.head_dim, attn.config.rope_parameters["rope_theta"])
    cos5, sin5 = ctx.lm.rotary_emb(ctx.embeds, ctx.position_ids)
    assert torch.equal(cos[0, 0], cos5[0]) and torch.equal(sin[0, 0], sin5[0])


@pytest.mark.parametrize("fastv_k", [1, 2, 3])
def test_every_budget_keeps_the_official_tokens(official_case, fastv_k, monkeypatch):
    """For every budget 1..N, the kept tokens are the official ``image_att.topk(round(N * (1 - R)))``
    with R = 1 - K/N, ranked in the model's dtype (bfloat16 scores, not float32). The scores do not
    depend on the budget: ``fastv_select`` runs at every budget on the ones computed at the first."""
    from litelvlm.methods.fastv import fastv_select

    pipe, _, ctx = official_case
    monkeypatch.setattr(ctx, "visual_attention", functools.cache(ctx.visual_attention))
    image_att = _official_image_attention(ctx, fastv_k)
    assert image_att.dtype == pipe.dtype
    n = ctx.num_visual
    for budget in range(1, n + 1):
        official = image_att.topk(round(n * (1 - (1 - budget / n)))).indices
        with torch.no_grad():
            sel = fastv_select(ctx, budget, layer=fastv_k)
        assert sel.indices.tolist() == official.sort().values.tolist(), f"K={budget}"
    # float32: the one row against the full matrix can differ in the last bit; bfloat16: identical
    tol = 1e-6 if pipe.dtype == torch.float32 else 0.0
    torch.testing.assert_close(sel.scores, image_att.float(), rtol=tol, atol=0)


@pytest.mark.parametrize("budget,fastv_k", [(144, 2), (16, 2), (1, 2), (575, 3)])
def test_fastv_equals_the_official_loop_at_the_official_precision(official_case, budget, fastv_k):
    pipe, prep, ctx = official_case
    ours = pipe.ground(prep, "fastv", budget, layer=fastv_k)
    lm = pipe.model.language_model
    with torch.no_grad():
        keep, final = _official_fastv(lm, ctx.embeds, ctx.image_start, ctx.num_visual, fastv_k,
                                      1 - budget / ctx.num_visual, weights_428=True)
    kept_visual = keep[(keep >= ctx.image_start)
                       & (keep < ctx.image_start + ctx.num_visual)] - ctx.image_start
    assert ours.kept_indices.tolist() == kept_visual.tolist()
    assert ours.seq_len == final.shape[1]
    tol = 1e-5 if pipe.dtype == torch.float32 else 2e-2
    torch.testing.assert_close(ours.seg_hidden, final[0, ours.seg_positions], rtol=tol, atol=tol)


def test_float32_scores_are_the_earlier_computation(official_case):
    """``score_dtype="float32"`` ranks by the float32 softmax row and its float32 mean (this project's
    earlier choice, kept for ``--protocol per-expression``)."""
    from dataclasses import replace

    from litelvlm.methods.fastv import fastv_select

    pipe, prep, _ = official_case
    old = pipe.numerics
    pipe.numerics = replace(old, score_dtype="float32")
    try:
        ctx = pipe.context(prep)
        with torch.no_grad():
            sel = fastv_select(ctx, 64)
            rows = ctx.attention_rows(1, "last")
    finally:
        pipe.numerics = old
    assert rows.dtype == torch.float32
    expected = rows[:, :, ctx.visual_slice()].mean(dim=(0, 1))
    assert torch.equal(sel.scores, expected)
    assert sel.indices.tolist() == torch.topk(expected, 64).indices.sort().values.tolist()
