"""Transcription of the official LiteLVLM token selection (sejong-rcv/LiteLVLM @ 5896153,
``model/llava/model/multimodal_encoder/clip_encoder.py``): the context ranking of ``ctx_aware_pruning``
(L78-96), the similarity of ``sim_aware_pruning`` (L98-113) and the adaptive token selection (L158-168), as
statements of the official code (hooks on the last block's q/k/v projections; the layer ``select_layer`` patch
tokens through ``post_layernorm`` + ``visual_projection``; ``text_embeds`` of the questions,
``truncation=True, padding=True``).

:func:`official_context` and :func:`official_similarities` are the two scores' statements on the tensors
they read (what a pinned CLIP returned); :func:`official_scores` and :func:`official_retain` split the
official forward at the scores, so a test can put the scores on another grid (UniPixel's merged tokens)
before the official selection rule; :func:`official_keep` is the whole official forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def official_scores(vision_tower, text_tower, text_tokenizer, images, questions, select_layer=-2):
    """(attn_toks (1, N): the context score, similarities (T, N)) of the official code."""
    attn_outs = {}

    def _hook_q(module, input, output):
        attn_outs["hq"] = output

    def _hook_k(module, input, output):
        attn_outs["hk"] = output

    def _hook_v(module, input, output):
        attn_outs["hv"] = output

    self_attn = vision_tower.vision_model.encoder.layers[-1].self_attn
    hq = self_attn.q_proj.register_forward_hook(_hook_q)
    hk = self_attn.k_proj.register_forward_hook(_hook_k)
    hv = self_attn.v_proj.register_forward_hook(_hook_v)
    try:
        image_forward_outs = vision_tower(images.to(dtype=vision_tower.dtype), output_hidden_states=True)
        image_features = image_forward_outs.hidden_states[select_layer].to(images.dtype)  # cls_patch
        attn_toks = official_context(attn_outs["hq"], attn_outs["hk"], attn_outs["hv"])
    finally:
        hq.remove()
        hk.remove()
        hv.remove()
    input_text = text_tokenizer(text=questions, return_tensors="pt", truncation=True, padding=True)
    text_features = text_tower(**input_text, output_attentions=True)
    # sim_aware_pruning (L98-113)
    feats = image_features[:, 1:].to(vision_tower.vision_model.post_layernorm.weight.dtype)
    proj = vision_tower.visual_projection(vision_tower.vision_model.post_layernorm(feats))
    return attn_toks, official_similarities(proj, text_features.text_embeds)


def official_context(hq, hk, hv):
    """``ctx_aware_pruning`` (L78-96) on what the hooks on the last block's q/k/v projections saw: (1, N)."""
    cls_q, img_k, img_v = hq[:, :1, :], hk[:, 1:, :], hv[:, 1:, :]
    _, _, dim = cls_q.shape
    attn_logits = torch.matmul(F.normalize(cls_q, dim=-1), F.normalize(img_k, dim=-1).transpose(-2, -1))
    attn_weights = F.softmax(attn_logits / (dim ** 0.5), dim=-1)
    return (attn_weights.transpose(1, 2) * img_v).norm(dim=-1)


def official_similarities(proj, text_embeds):
    """``sim_aware_pruning``'s similarities (L98-113) of the projected patches (1, N, C) with the text
    embeds (T, C): (T, N)."""
    return torch.matmul(proj, text_embeds.unsqueeze(-1)).squeeze(-1)


def official_retain(attn_toks, similarities, num_retain_tokens):
    """The kept token indices, in the order the LLM receives them, from the official scores ((1, N) and (T,
    N))."""
    # The official call is torch.sort(..., descending=True) on the GPU, where a 576-long row is
    # sorted by a radix sort that keeps tied scores in index order (PyTorch's sortKeyValueInplace);
    # on the CPU an unstable sort breaks ties otherwise, and bfloat16 scores tie often. stable=True
    # reproduces the GPU order on the CPU (an assumption about CUDA PyTorch, not checked on a GPU here).
    _, ctx_tok_idxs = torch.sort(attn_toks.view(-1), descending=True, stable=True)
    num_adaptive_toks = num_retain_tokens // similarities.shape[0]  # the official text_embeds.shape[0]: T
    low = torch.topk(similarities, num_adaptive_toks, dim=-1, largest=False, sorted=True).indices
    lowk_sim_tok_idxs = torch.unique(low.view(-1)).unsqueeze(0)
    # adaptive token selection (L158-168)
    num_sim_topk = lowk_sim_tok_idxs.shape[1]
    m_ctx_tok_idxs = ~torch.isin(ctx_tok_idxs.view(-1), lowk_sim_tok_idxs.view(-1))
    l_ctx_tok_idxs = ctx_tok_idxs.view(-1)[m_ctx_tok_idxs].unsqueeze(0)
    num_left_tokens = num_retain_tokens - num_sim_topk
    retain = torch.cat([l_ctx_tok_idxs[:, :num_left_tokens], lowk_sim_tok_idxs], dim=1).to(torch.int64)
    assert retain.shape[1] == num_retain_tokens
    return retain[0]


def official_keep(vision_tower, text_tower, text_tokenizer, images, questions, num_retain_tokens,
                  select_layer=-2):
    """The official ``CLIPVisionTower.forward``'s kept indices for one image and its questions."""
    attn_toks, similarities = official_scores(vision_tower, text_tower, text_tokenizer, images, questions,
                                              select_layer)
    return official_retain(attn_toks, similarities, num_retain_tokens)
