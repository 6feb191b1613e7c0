"""VScan's Qwen2.5-VL prefill under VScan's pinned transformers (4.51.3), on a written random folder; run by
``tests/pinned_env.run_pinned``. Imports the pinned packages and this folder's helpers only.

Tencent/SelfEvolvingAgent @a82450e ``VScan/qwen/``: ``eval/test_refcoco.py`` L134-140 binds its forwards onto
4.51.3's Qwen2.5-VL classes, so the tower's patch embedding, vision RoPE, window permutation, blocks and
merger, ``get_rope_index`` (``model/qwen2_5_vl_custom.py`` L113), the embedding, the decoder's RoPE and layers
and the final norm are the pinned release's own here. Transcribed (as ``tests/official_vscan_qwen.py`` does
for this project's environment): ``model/qwen2_5_vl_utils.py`` L11-28 (the vision rotation), L97-134 and
L136-193 (``token_merging``, ``window_selection``); ``model/qwen2_5_vl_custom.py`` L338-392 (the local and
global blocks' weights, summed over heads, averaged over queries and merge units, un-permuted) with the
weights of L474-509, L143-188 (the selection, merge and kept position ids), L575-670 (the decoder loop: the
layers called with ``attention_mask=None``, causal under SDPA) and ``layer_prune`` L691-785.

usage: vscan_qwen_official.py MODEL_DIR CASES.pt OUT.pt
"""

import math
import sys
from types import SimpleNamespace

import torch
import torch.nn as nn
from official_qwen_rules import (  # this folder (on the path: run_pinned)
    apply_rotary_pos_emb_vision,
    official_select,
)
from qwen2_5_vl_pinned import decoder, load, tower, tower_blocks
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import repeat_kv

from results import save


def sdpa_x_weights(self, hidden_states, cu_seqlens, position_embeddings):  # custom.py L474-509, the weights
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
    """(image_embeds, attn_weights_local, attn_weights_global): custom.py L338-392 on the pinned tower."""
    image_embeds, seen, window_index = tower_blocks(visual, pixel_values, grid_thw)
    num_blocks = len(visual.blocks)
    selected_layer_local = visual.fullatt_block_indexes[0]
    selected_layer_global = num_blocks - 1
    weights = {b: sdpa_x_weights(visual.blocks[b].attn, visual.blocks[b].norm1(seen[b]["h"]),
                                 seen[b]["cu_seqlens"], seen[b]["position_embeddings"])
               for b in (selected_layer_local, selected_layer_global)}
    spatial_merge_unit = visual.spatial_merge_size ** 2
    attn_weights_local = torch.sum(weights[selected_layer_local], dim=0)
    attn_weights_local = torch.mean(attn_weights_local, dim=0)
    attn_weights_local = attn_weights_local.view(-1, spatial_merge_unit)
    attn_weights_local = torch.mean(attn_weights_local, dim=1)
    attn_weights_global = torch.sum(weights[selected_layer_global], dim=0)
    attn_weights_global = torch.mean(attn_weights_global, dim=0)
    attn_weights_global = attn_weights_global.view(-1, spatial_merge_unit)
    attn_weights_global = torch.mean(attn_weights_global, dim=1)
    reverse_indices = torch.argsort(window_index)
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
    """custom.py L575-670 on the pinned decoder: the final normed states and each stage's kept rows."""
    self = SimpleNamespace(layers=lm.layers, rotary_emb=lm.rotary_emb, norm=lm.norm,
                           image_start_index=image_start_index)
    hidden_states = inputs_embeds
    position_embeddings = self.rotary_emb(hidden_states, position_ids)
    cur_image_tokens = n_image_tokens
    kept = []
    for layer_idx, decoder_layer in enumerate(self.layers):
        layer_outputs = decoder_layer(hidden_states, attention_mask=None, position_ids=position_ids,
                                      use_cache=False, position_embeddings=position_embeddings)
        hidden_states = layer_outputs[0]
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


@torch.no_grad()
def run_case(model, case):
    """The official prefill of one prompt (``runs``), and (``fed``) the same on ``case["features"]`` in place
    of the pinned tower's output where given."""
    visual, lm = tower(model), decoder(model)
    grid, input_ids = case["grid_thw"], case["input_ids"][None]
    # custom.py L113
    position_ids, _ = model.get_rope_index(input_ids, None, grid, case["second_per_grid_ts"])
    pixel_values = case["pixel_values"].type(visual.dtype)  # L126
    embeds, local, global_ = official_vision(visual, pixel_values, grid)
    mask = input_ids == case["video_token_id"]
    runs = [prefill(lm, case, embeds, local, global_, input_ids, mask, position_ids)]
    if case.get("features") is not None:  # the same prefill on the other side's tower output
        runs.append(prefill(lm, case, case["features"], local, global_, input_ids, mask, position_ids))
    return dict(position_ids=position_ids, image_embeds=embeds, local=local, global_=global_, runs=runs[0],
                fed=runs[-1])


def prefill(lm, case, embeds, local, global_, input_ids, mask, position_ids):
    """Each (visual_token_ratio, layer, ratio) of ``case["runs"]``: custom.py L143-188, then L575-670."""
    runs = []
    for visual_token_ratio, layer, ratio in case["runs"]:
        merged, keep, local_kept, global_kept, ids, pos = official_select(
            embeds.clone(), local, global_.clone(), input_ids, mask, position_ids, case["grid_thw"],
            visual_token_ratio)
        image_start_index = torch.nonzero(mask)[0, 1]  # L179
        inputs_embeds = lm.embed_tokens(ids)  # L184-188
        image_mask = (ids == case["video_token_id"]).unsqueeze(-1).expand_as(inputs_embeds)
        inputs_embeds = inputs_embeds.masked_scatter(image_mask, merged.to(inputs_embeds.dtype))
        final, kept = official_llm(lm, image_start_index, inputs_embeds, pos, int(image_mask[..., 0].sum()),
                                   [layer], [ratio])
        runs.append(dict(embeds=merged, keep=keep, local=local_kept, global_=global_kept, final=final,
                         rows=kept[0] if kept else None))
    return runs


def main(folder, cases, out) -> None:
    spec = torch.load(cases, weights_only=False)
    model, info = load(folder, spec["dtype"], "sdpa")
    save(out, [run_case(model, case) for case in spec["cases"]], missing_keys=info["missing_keys"])


if __name__ == "__main__":
    main(*sys.argv[1:])
