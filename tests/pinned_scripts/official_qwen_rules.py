"""The official statements that both the tests in this project's environment and the pinned official sides
(``hiprune_qwen_official.py``, ``vscan_qwen_official.py``, ``ivc_prune_qwen_official.py``) run, transcribed
once. Imports torch only, so that it runs under any pin.

* Danielement321/HiPrune @6e83a12 ``Qwen2_5_VL/qwen2_5_vl_HiPrune.py`` L216-234 (``rotate_half``,
  ``apply_rotary_pos_emb_vision``: the same statements as Tencent/SelfEvolvingAgent @a82450e
  ``VScan/qwen/model/qwen2_5_vl_utils.py`` L11-28);
* Tencent/SelfEvolvingAgent @a82450e ``VScan/qwen/model/qwen2_5_vl_utils.py`` L97-134 and L136-193
  (``token_merging``, ``window_selection``) and ``model/qwen2_5_vl_custom.py`` L143-175 (``official_select``);
* FireRedTeam/IVC-Prune @03afd9c ``transformers/src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py``
  L697-706 (``repeat_kv``), the value states of L1103-1104, L866-873, L887-889, L895-918, L948-949, L1355-1390
  (``calculate_avg_similarity_for_subset_einsum``) and the selection L1487-1551 (``official_lists``,
  ``official_fill``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def rotate_half(x):
    """L216-220."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb_vision(q, k, cos, sin):
    """L223-234."""
    orig_q_dtype = q.dtype
    orig_k_dtype = k.dtype
    q, k = q.float(), k.float()
    cos, sin = cos.unsqueeze(-2).float(), sin.unsqueeze(-2).float()
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    q_embed = q_embed.to(orig_q_dtype)
    k_embed = k_embed.to(orig_k_dtype)
    return q_embed, k_embed


def token_merging(image_embeds, keep_indices, scaling=1):  # qwen2_5_vl_utils.py L97-134
    N, D = image_embeds.shape
    T = len(keep_indices)

    keep_index_mask = torch.zeros(N, dtype=torch.bool, device=image_embeds.device)
    keep_index_mask[keep_indices] = True

    retained_tokens = image_embeds[keep_index_mask, :]  # [T, D]
    non_retained_tokens = image_embeds[~keep_index_mask, :]  # [N - T, D]

    cosine_sim = F.cosine_similarity(non_retained_tokens.unsqueeze(1), retained_tokens.unsqueeze(0), dim=2)
    nearest_token_indices = cosine_sim.argmax(dim=1)  # [N - T]

    merged_features = torch.zeros_like(retained_tokens)  # [T, D]
    merged_features += retained_tokens * scaling

    expanded_indices = nearest_token_indices  # [N - T]
    merged_features.scatter_add_(0, expanded_indices.unsqueeze(-1).expand(-1, D), non_retained_tokens)

    merge_count = torch.zeros(T, device=image_embeds.device, dtype=torch.int)  # [T]
    merge_count.scatter_add_(0, expanded_indices, torch.ones_like(expanded_indices, dtype=merge_count.dtype))
    merged_features /= (scaling + merge_count.unsqueeze(1))

    return merged_features


def window_selection(attn_weights, num_keep_tokens, image_grid_thw, window_size=4):
    # qwen2_5_vl_utils.py L136-193
    token_h, token_w = image_grid_thw[0, 1] // 2, image_grid_thw[0, 2] // 2
    assert token_h * token_w == attn_weights.shape[
        0], "The number of tokens in the window is not equal to num_keep_tokens"

    num_windows_h = (token_h / window_size).floor().int()
    num_windows_w = (token_w / window_size).floor().int()
    num_windows = num_windows_h * num_windows_w
    extra_h = token_h - (num_windows_h * window_size)  # noqa: F841
    extra_w = token_w - (num_windows_w * window_size)  # noqa: F841

    sorted_indices = torch.argsort(attn_weights, dim=0, descending=True)
    window_counter = torch.zeros(token_h, token_w, device=attn_weights.device, dtype=torch.int)
    total_counter = 0

    # Calculate the limit of the number of tokens to keep in each window
    limit = (num_keep_tokens / num_windows).ceil().int()

    keep_indices = torch.zeros(num_keep_tokens, device=attn_weights.device, dtype=torch.int)
    for index in sorted_indices:
        x = (index // token_w) // window_size
        y = (index % token_w) // window_size
        if x == num_windows_h:
            x = num_windows_h - 1
        if y == num_windows_w:
            y = num_windows_w - 1
        x = x.int()
        y = y.int()
        if window_counter[x, y] < limit:
            window_counter[x, y] += 1
            keep_indices[total_counter] = index
            total_counter += 1
        if total_counter >= num_keep_tokens:
            break

    assert total_counter == num_keep_tokens, "The number of tokens to keep is not equal to num_keep_tokens"
    return keep_indices


def official_select(image_embeds, attn_weights_local, attn_weights_global, input_ids, mask, position_ids,
                    image_grid_thw, visual_token_ratio):
    """custom.py L143-175: (image_embeds, keep_indices, keep_indices_local, keep_indices_global, input_ids,
    position_ids) after the vision-side pruning; ``mask`` marks the image tokens."""
    n_image_tokens = int(mask.sum())
    keep_indices = keep_indices_local = keep_indices_global = None
    if visual_token_ratio != 1:
        num_keep_tokens = int(visual_token_ratio * n_image_tokens)
        indices = torch.nonzero(mask)

        keep_indices_local = window_selection(attn_weights_local, num_keep_tokens // 2, image_grid_thw,
                                              window_size=4)

        attn_weights_global[keep_indices_local] = 0  # avoid repetition
        keep_indices_global = torch.topk(attn_weights_global, num_keep_tokens - num_keep_tokens // 2).indices

        keep_indices = torch.cat((keep_indices_local, keep_indices_global), dim=0)
        keep_indices = torch.sort(keep_indices, dim=0)[0]
        image_embeds = token_merging(image_embeds, keep_indices, scaling=1)

        all_indices = torch.arange(n_image_tokens).to(keep_indices.device)
        remove_indices = all_indices[~torch.isin(all_indices, keep_indices)]
        indices_to_remove = indices[remove_indices]
        remove_mask = torch.ones_like(input_ids, dtype=torch.bool)
        for index in indices_to_remove:
            remove_mask[index[0], index[1]] = False
        input_ids = input_ids[remove_mask].reshape(input_ids.shape[0], -1)
        position_ids = position_ids[remove_mask.unsqueeze(0).expand(position_ids.shape[0], -1, -1)].reshape(
            position_ids.shape[0], position_ids.shape[1], -1)
    return image_embeds, keep_indices, keep_indices_local, keep_indices_global, input_ids, position_ids


def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    """L697-706."""
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


def official_value_states(decoder_layer, hidden_states):
    """The value states decoder layer ``K-1`` returns (L1103-1104, then L866-873, L887-889, L895-918,
    L948-949; the KV-cache update L883-885 returns the prefill's own states)."""
    self = decoder_layer.self_attn
    hidden_states = decoder_layer.input_layernorm(hidden_states)
    bsz, q_len, _ = hidden_states.size()
    query_states = self.q_proj(hidden_states)
    value_states = self.v_proj(hidden_states)
    query_states = query_states.view(bsz, q_len, -1, self.head_dim).transpose(1, 2)
    value_states = value_states.view(bsz, q_len, -1, self.head_dim).transpose(1, 2)
    value_states = repeat_kv(value_states, self.num_key_value_groups)
    input_dtype = query_states.dtype
    if input_dtype == torch.float32:
        target_dtype = self.q_proj.weight.dtype
        value_states = value_states.to(target_dtype)
    value_states = value_states.transpose(1, 2)
    return value_states


def calculate_avg_similarity_for_subset_einsum(value_states, query_token_indices, head_dim, img_start=None,
                                               img_len=None):
    """L1355-1390 (``self`` dropped)."""
    if value_states.shape[0] != 1:
        raise NotImplementedError("This efficient implementation currently supports batch_size=1")
    value_states = value_states.transpose(1, 2)
    value_states_query = value_states[:, :, query_token_indices, :]
    value_states_t = value_states[:, :, img_start:img_start + img_len, :].transpose(2, 3)
    scale = math.sqrt(head_dim)
    sim_slice = torch.einsum('bhqd,bhdk->bhqk', value_states_query, value_states_t) / scale
    weights_slice = nn.functional.softmax(sim_slice, dim=-1, dtype=torch.float32).to(value_states.dtype)
    final_score_vector = torch.mean(weights_slice, dim=(0, 1))
    return final_score_vector


def official_lists(critical_value_states, position_embeddings, IVCP_image_token_start_index,
                   IVCP_image_token_length, seq_length_with_past, head_dim, device):
    """The selection's scores and lists, L1487-1524: (seeds, final score mean, cos top, sin top)."""
    text_query_indices = torch.arange(
        IVCP_image_token_start_index + IVCP_image_token_length + 2, seq_length_with_past, device=device)
    value_attn_text_to_img = calculate_avg_similarity_for_subset_einsum(
        critical_value_states, text_query_indices, head_dim,
        img_start=IVCP_image_token_start_index, img_len=IVCP_image_token_length)
    value_attn_text_to_img_mean = torch.mean(value_attn_text_to_img, dim=0)
    top_attention_rank_index = value_attn_text_to_img_mean.topk(
        max(1, round(IVCP_image_token_length * 0.01))).indices + IVCP_image_token_start_index
    value_attn_A_to_img = calculate_avg_similarity_for_subset_einsum(
        critical_value_states, top_attention_rank_index, head_dim,
        img_start=IVCP_image_token_start_index, img_len=IVCP_image_token_length)
    img_scores_final = torch.cat((value_attn_text_to_img, value_attn_A_to_img), dim=0)
    img_scores_final_mean = torch.mean(img_scores_final, dim=0)
    cos, sin = position_embeddings
    span = slice(IVCP_image_token_start_index, IVCP_image_token_start_index + IVCP_image_token_length)
    cos_mean = cos[:, 0, span, ].mean(dim=(0, 2))
    sin_mean = sin[:, 0, span, ].mean(dim=(0, 2))
    topk_index_1 = cos_mean.topk(round(IVCP_image_token_length * 0.1)).indices + IVCP_image_token_start_index
    topk_index_2 = sin_mean.topk(round(IVCP_image_token_length * 0.1)).indices + IVCP_image_token_start_index
    return top_attention_rank_index, img_scores_final_mean, topk_index_1, topk_index_2


def official_fill(lists, IVCP_image_token_start_index, IVCP_image_token_length, seq_length_with_past, device,
                  target=None):
    """L1524-1551 (``target``: ``target_image_token_count`` instead of ``round(n * 0.5)``; below the
    priority's size, the module's deviation 1, which is not official)."""
    top_attention_rank_index, img_scores_final_mean, topk_index_1, topk_index_2 = lists
    pe_index = torch.cat((topk_index_1, topk_index_2))
    priority_indices = torch.cat((pe_index, top_attention_rank_index))
    priority_indices_unique = torch.unique(priority_indices)
    target_image_token_count = round(IVCP_image_token_length * 0.5) if target is None else target
    if target is not None and target < len(priority_indices_unique):  # deviation 1
        total = len(topk_index_1) + len(topk_index_2) + len(top_attention_rank_index)
        c, k = len(topk_index_1) * target // total, len(top_attention_rank_index) * target // total
        priority_indices_unique = torch.unique(torch.cat(
            (topk_index_1[:c], topk_index_2[:c], top_attention_rank_index[:k])))
    remaining_count = target_image_token_count - len(priority_indices_unique)
    if remaining_count > 0:
        all_value_scores_indices = img_scores_final_mean.topk(IVCP_image_token_length).indices \
            + IVCP_image_token_start_index
        mask = ~torch.isin(all_value_scores_indices, priority_indices_unique)
        additional_indices = all_value_scores_indices[mask][:remaining_count]
        selected_image_indices = torch.cat((priority_indices_unique, additional_indices))
    else:
        selected_image_indices = priority_indices_unique
    keep_indexs = torch.cat((
        torch.arange(IVCP_image_token_start_index, device=device),
        selected_image_indices,
        torch
        .arange(IVCP_image_token_start_index + IVCP_image_token_length, seq_length_with_past, device=device)))
    return torch.unique(keep_indexs, sorted=True)
