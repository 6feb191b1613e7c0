"""FastV in the GLaMM LLM keeps the tokens, and runs the layers, that the official FastV code does.

Transcribes pkunlp-icler/FastV @ d1659729b5bf1be225e99ee15783deeea80f63b1,
``src/FastV/llava-hf/transformers/src/transformers/models/llama/modeling_llama.py`` L1069-1120
(``fastv_forward``, the no-cache branch): layer ``K-1`` returns its attentions; before layer ``K``
the head-averaged attention of the LAST token over the image tokens ranks them, the top
``round(N * (1 - R))`` are kept with every text token, ``keep_indexs`` sorted, hidden states
filtered, ``position_ids = keep_indexs`` (original RoPE positions) and a plain causal mask
over the shorter sequence.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def pipe():
    from litelvlm.lvlm import GlammPipeline

    return GlammPipeline.from_model_string("tiny-random:0")


def _official_fastv(lm, embeds, image_start, image_len, fastv_k, fastv_r):
    """The official loop on a transformers ``LlamaModel`` with eager attention (returns keep, final hidden)."""
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
    kept_visual = keep[(keep >= ctx.image_start) & (keep < ctx.image_start + ctx.num_visual)] - ctx.image_start
    assert ours.kept_indices.tolist() == kept_visual.tolist()
    assert ours.seq_len == final.shape[1]
    torch.testing.assert_close(ours.seg_hidden, final[0, ours.seg_positions], rtol=1e-4, atol=1e-5)
