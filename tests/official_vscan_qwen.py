"""VScan's official Qwen2.5-VL code, transcribed for the tests (not imported by the library).

Tencent/SelfEvolvingAgent @ a82450e1b5e15070bee79ee8b79f8d9a97cb85f7, folder ``VScan/qwen/``, the classes
``eval/test_refcoco.py`` L134-140 binds (``Qwen2_5_VLVisionSdpaAttention_X`` for the vision attention) with
its settings L147-153:

* ``model/qwen2_5_vl_utils.py`` ``token_merging`` L97-134 and ``window_selection`` L136-193, verbatim, with
  ``official_select`` (custom.py L143-175) in ``tests/pinned_scripts/official_qwen_rules.py``, which the
  official side under the pin runs too;
* ``model/qwen2_5_vl_custom.py``:
  - ``Qwen2_5_VisionTransformerPretrainedModel_X.forward`` L338-392 (the local block
    ``fullatt_block_indexes[0]``, the global block ``num_blocks - 1``, their weights summed over heads,
    averaged over queries and merge units, and un-permuted) with the weights of
    ``Qwen2_5_VLVisionSdpaAttention_X.forward`` L474-509. transformers 5 runs the tower's own forward; the two
    blocks' inputs are taken at the block (a forward pre-hook) and the weights computed from ``blk.norm1`` of
    them as L404-405 passes it;
  - ``Qwen2_5_VLForConditionalGeneration_X.forward`` L143-188 (the selection, the merge and the kept position
  ids);
  - ``Qwen2_5_VLModel_X.forward`` L575-670 (the decoder loop) and ``layer_prune`` L691-785. The decoder layers
    get ``attention_mask=None``: transformers 4.5x's ``_update_causal_mask`` gives sdpa None for an unpadded
    batch of one, so sdpa runs ``is_causal`` on every length, before and after the pruning (the official
    passes its old mask on).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from tests.pinned_scripts.official_qwen_rules import (  # noqa: F401 (the tests read them here)
    official_select,
    token_merging,
    window_selection,
)


def _sdpa_x_weights(attn, hidden_states, cu_seqlens, position_embeddings):
    # custom.py L474-509 (weights only)
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision

    self = attn
    seq_length = hidden_states.shape[0]
    q, k, v = self.qkv(hidden_states).reshape(seq_length, 3, self.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    cos, sin = position_embeddings
    q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
    q = q.transpose(0, 1)
    k = k.transpose(0, 1)
    attention_mask_X = torch.full([1, seq_length, seq_length], torch.finfo(q.dtype).min, device=q.device,
                                  dtype=q.dtype)
    for i in range(1, len(cu_seqlens)):
        attention_mask_X[..., cu_seqlens[i - 1]: cu_seqlens[i], cu_seqlens[i - 1]: cu_seqlens[i]] = 0
    head_dim = q.size(-1)
    attn_weights = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(head_dim)
    attn_weights = attn_weights + attention_mask_X
    return torch.nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(q.dtype)


@torch.no_grad()
def official_vision(visual, pixel_values, grid_thw):
    """(image_embeds, attn_weights_local, attn_weights_global) as
    ``Qwen2_5_VisionTransformerPretrainedModel_X``."""
    from transformers.vision_utils import get_vision_window_index

    num_blocks = len(visual.blocks)  # L341-343
    selected_layer_local = visual.fullatt_block_indexes[0]
    selected_layer_global = num_blocks - 1
    got = {}
    handles = [visual.blocks[b].register_forward_pre_hook(
        lambda m, a, kw, b=b: got.__setitem__(b, dict(h=a[0], **kw)), with_kwargs=True)
        for b in (selected_layer_local, selected_layer_global)]
    try:
        image_embeds = visual(pixel_values, grid_thw=grid_thw).pooler_output
    finally:
        for h in handles:
            h.remove()
    weights = {}
    for b, seen in got.items():  # blk(...) L355-358 -> Block_X L404-405 -> the attention's weights
        weights[b] = _sdpa_x_weights(visual.blocks[b].attn, visual.blocks[b].norm1(seen["h"]),
                                     seen["cu_seqlens"], seen["position_embeddings"])
    window_index, _ = get_vision_window_index(grid_thw, spatial_merge_size=visual.spatial_merge_size,
                                              window_size=visual.window_size, patch_size=visual.patch_size)
    spatial_merge_unit = visual.spatial_merge_size ** 2
    attn_weights_local = torch.sum(weights[selected_layer_local], dim=0)  # L364-377
    attn_weights_local = torch.mean(attn_weights_local, dim=0)
    attn_weights_local = attn_weights_local.view(-1, spatial_merge_unit)
    attn_weights_local = torch.mean(attn_weights_local, dim=1)
    attn_weights_global = torch.sum(weights[selected_layer_global], dim=0)
    attn_weights_global = torch.mean(attn_weights_global, dim=0)
    attn_weights_global = attn_weights_global.view(-1, spatial_merge_unit)
    attn_weights_global = torch.mean(attn_weights_global, dim=1)
    reverse_indices = torch.argsort(window_index)  # L388-391
    return image_embeds, attn_weights_local[reverse_indices], attn_weights_global[reverse_indices]


def layer_prune(self, rank_layer, features, position_ids, cur_image_tokens, next_image_tokens):  # L691-785
    seq_len = position_ids.shape[2]
    hidden_states = features.clone().detach()
    self_attn = self.layers[rank_layer].self_attn
    hidden_states = self.layers[rank_layer].input_layernorm(hidden_states)
    head_dim = self_attn.head_dim
    bsz, q_len, _ = hidden_states.size()
    query_states = self_attn.q_proj(hidden_states)
    key_states = self_attn.k_proj(hidden_states)
    query_states = query_states.view(bsz, q_len, -1, head_dim).transpose(1, 2)
    key_states = key_states.view(bsz, q_len, -1, head_dim).transpose(1, 2)
    # (L723-726: the multimodal RoPE is commented out)
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import repeat_kv

    key_states = repeat_kv(key_states, self_attn.num_key_value_groups)
    cur_key_states = key_states[0]
    cur_query_states = query_states[0]
    text_query_states = cur_query_states[:, seq_len - 1, :].unsqueeze(1)
    image_start_index = self.image_start_index
    image_end_index = image_start_index + cur_image_tokens
    attn_weights = torch.matmul(text_query_states, cur_key_states.transpose(1, 2)) / math.sqrt(head_dim)
    if text_query_states.dtype == torch.float16:
        attn_weights = torch.where(torch.isinf(attn_weights), torch.zeros_like(attn_weights), attn_weights)
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query_states.dtype)
    attention_avg_head = torch.mean(attn_weights, dim=0)
    attention_avg_head = attention_avg_head[:, image_start_index:image_end_index]
    attention_avg_text = torch.mean(attention_avg_head, dim=0)
    top_rank_index = attention_avg_text.topk(next_image_tokens).indices
    top_rank_index_x = top_rank_index.clone()
    top_rank_index = top_rank_index + image_start_index
    top_rank_index = top_rank_index.sort().values
    start_index = image_end_index
    new_input_embeds = torch.cat([features[0, :image_start_index, :], features[0, top_rank_index, :],
                                  features[0, start_index:, :]], dim=0)
    new_input_embeds = new_input_embeds.unsqueeze(0)
    new_position_ids = torch.cat([position_ids[:, :, :image_start_index], position_ids[:, :, top_rank_index],
                                  position_ids[:, :, start_index:]], dim=2)
    return new_position_ids, new_input_embeds, top_rank_index_x


@torch.no_grad()
def official_llm(lm, image_start_index, inputs_embeds, position_ids, n_image_tokens, layer_list,
                 image_token_ratio_list):
    """custom.py L575-670: the final normed hidden states and each stage's ``top_rank_index_x``; ``lm`` is the
    decoder stack (``self``), ``image_start_index`` what L179 sets on it."""
    from types import SimpleNamespace

    self = SimpleNamespace(layers=lm.layers, rotary_emb=lm.rotary_emb, norm=lm.norm,
                           image_start_index=image_start_index)
    hidden_states = inputs_embeds
    position_embeddings = self.rotary_emb(hidden_states, position_ids)
    cur_image_tokens = n_image_tokens
    kept = []
    for layer_idx, decoder_layer in enumerate(self.layers):
        layer_outputs = decoder_layer(hidden_states, attention_mask=None, position_ids=position_ids,
                                      use_cache=False, position_embeddings=position_embeddings)
        hidden_states = layer_outputs[0] if isinstance(layer_outputs, tuple) else layer_outputs
        rank_layer = layer_idx + 1
        if rank_layer in layer_list:
            if hidden_states.shape[1] != 1:
                if cur_image_tokens > 0:
                    stage = layer_list.index(rank_layer)
                    next_image_tokens = int(image_token_ratio_list[stage] * cur_image_tokens)
                    position_ids, hidden_states, top_rank_index_x = layer_prune(
                        self, rank_layer, hidden_states, position_ids, cur_image_tokens, next_image_tokens)
                    position_embeddings = self.rotary_emb(hidden_states, position_ids)
                    cur_image_tokens = next_image_tokens
                    kept.append(top_rank_index_x)
    return self.norm(hidden_states), kept
