"""ViTCoP's official LLaVA-1.5 code, transcribed statement by statement (its test:
``tests/litelvlm/methods/test_vitcop_official.py``).

chaser682/ViTCoP @ 627f63214ef9c67158beb7744d7dff087d43e6df, folder ``LLaVA/llava/``:

* ``model/multimodal_encoder/utils.py`` L27-170 (``VIC``: ``fit``, ``_compute_pairwise_distances``).
* ``model/multimodal_encoder/clip_encoder.py`` L170-185 (``get_pos``) and L187-244
  (``visual_tokens_spatial_similarity``): block -2's attention (``attentions[-2]``, transformers 4.x's eager
  ``CLIPAttention``: ``test_vispruner_visionzip_official.official_clip_attention``), its ``k_proj`` output
  (the L194 hook), the features of layer -2.
* ``model/vitcop_llava_arch.py`` L138-141 and L383-512: the kept features through the projector, in the
  prompt at ``pre_prompt_length_list[0]``, ``image_shape`` = V, positions 0..S-1.
* ``model/language_model/vitcop_modeling_llama.py`` L1163-1427 (the decoder loop's VITCOP branch, prefill,
  B = 1), with ``token_filter_l2_norm_cluster`` L1191-1288 and the counts L1290-1296; the keys are read from
  a transformers ``DynamicCache`` as the official ``layer_outputs[1][layer_idx][0]`` (L1410, L1413).
* ``eval/llava/vitcop_llava_1_5.sh`` L11-18: p = 0.3333/0.2222/0.1111, v = 0.5/0.4/0.3, c = 0.18/0.15/0.12,
  layers 2 and 22.

The official decoder layers are transformers 4.37's; here the reference loop runs the model's own layers (as
the other in-LLM transcriptions do) with the causal mask of the current length. Where the official code
hard-codes LLaVA's 24x24 grid or 32-layer LLM, the transcription takes the value as an argument (marked
``# argument``).
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import DynamicCache

from tests.litelvlm.methods.test_vscan_official import causal_4d


class VIC:
    """utils.py L27-170 (``get_clusters``/``get_cluster_info`` left out: not called)."""

    def __init__(self, dc=8, percentage=0.08, k=0.6):
        self.dc = dc
        self.percentage = percentage
        self.k = k

    def fit(self, X, pos=None):
        n_samples = X.shape[0]
        if n_samples == 0:
            self.labels_ = np.array([], dtype=int)
            return
        device = X.device
        dist_feat = self._compute_pairwise_distances(X)
        dist_feat = torch.clamp(dist_feat, min=0.0)
        dist = dist_feat
        dist.fill_diagonal_(0)
        rho = torch.exp(-(dist / self.dc) ** 2).sum(dim=1)
        rho_expand = rho.unsqueeze(1).expand(n_samples, n_samples)
        rho_compare = ~torch.gt(rho_expand, rho_expand.t())
        rho_compare.fill_diagonal_(False)
        if pos is not None:
            dist_spatial = self._compute_pairwise_distances(pos)
            dist_spatial = torch.clamp(dist_spatial, min=0.0)
            spatial_mask = dist_spatial <= self.k
            valid_mask = rho_compare & spatial_mask
            inf_mask = torch.full_like(dist, float('inf'))
            conditioned_dist = torch.where(valid_mask, dist, inf_mask)
            delta, nearest_higher_density_indices = torch.min(conditioned_dist, dim=1)
        else:
            inf_mask = torch.full_like(dist, float('inf'))
            conditioned_dist = torch.where(rho_compare, dist, inf_mask)
            delta, nearest_higher_density_indices = torch.min(conditioned_dist, dim=1)
        gamma = delta * rho
        gamma_sorted_indices = torch.argsort(-gamma)
        num_cluster_centers = max(1, int(self.percentage * n_samples))
        cluster_centers = gamma_sorted_indices[:num_cluster_centers]
        labels = torch.full((n_samples,), -1, dtype=torch.long, device=device)
        cluster_centers = cluster_centers.to(device)
        labels[cluster_centers] = torch.arange(len(cluster_centers), device=device)
        unassigned_mask = (labels == -1)
        updated = True
        while updated:
            to_update = unassigned_mask & (labels[nearest_higher_density_indices] != -1)
            if not to_update.any():
                updated = False
                break
            src_labels = labels[nearest_higher_density_indices[to_update]]
            labels[to_update] = src_labels
            unassigned_mask = (labels == -1)
        labels[cluster_centers] = torch.arange(len(cluster_centers), device=device)
        self.labels_ = labels.cpu().numpy()

    def _compute_pairwise_distances(self, X):
        X_expanded = X.unsqueeze(1)
        X_transposed = X.unsqueeze(0)
        dist_squared = torch.sum((X_expanded - X_transposed) ** 2, dim=2)
        return torch.sqrt(dist_squared + 1e-8)


def get_pos(X, W=24, H=24):
    """clip_encoder.py L170-185."""
    n_samples = X.shape[1]
    assert n_samples == W * H, f"Number of samples {n_samples} not equal grid size {W}*{H}={W*H}"
    yy, xx = torch.meshgrid(torch.arange(H, device=X.device), torch.arange(W, device=X.device), indexing='ij')
    pos = torch.stack([yy, xx], dim=-1).reshape(-1, 2).float()
    pos_norm = pos / torch.tensor([H, W], device=X.device, dtype=torch.float)
    return pos_norm.unsqueeze(0).expand(X.shape[0], -1, -1)


def official_spatial_similarity(attn_weights, hidden_states, desired_layer_k, vision_prune_ratio,
                                cluster_percentage, grid=(24, 24)):
    """clip_encoder.py L196-244 on ``attentions[-2]``, ``hidden_states[-2]`` and the hooked ``k_proj``
    output; returns (hidden_states_filtered, labels, mask: bookkeeping)."""
    metric = desired_layer_k
    device = hidden_states.device
    cls_attention = attn_weights[:, :, 0, 1:]
    cls_attention_sum = cls_attention.sum(dim=1)
    hidden_states_filtered = hidden_states[:, 1:, :].view(hidden_states.shape[0], -1, hidden_states.shape[2])
    metric_filtered = metric[:, 1:, :].view(hidden_states_filtered.shape[0], -1, metric.shape[2])
    vision_pos = get_pos(hidden_states_filtered, W=grid[1], H=grid[0])  # argument
    vision_retained_token = int(vision_prune_ratio * hidden_states_filtered.shape[1])
    topk_indices = cls_attention_sum.topk(vision_retained_token, dim=1).indices
    mask = torch.ones_like(hidden_states_filtered[:, :, 0], dtype=torch.bool,
                           device=metric.device).scatter_(1, topk_indices, False)
    hidden_states_filtered = hidden_states_filtered.masked_select(~mask.unsqueeze(-1)).view(
        hidden_states.shape[0], vision_retained_token, hidden_states.shape[2])
    metric_filtered = metric_filtered.masked_select(~mask.unsqueeze(-1)).view(
        hidden_states.shape[0], vision_retained_token, metric.shape[2])
    vision_pos_filtered = vision_pos.masked_select(~mask.unsqueeze(-1)).view(
        hidden_states.shape[0], vision_retained_token, vision_pos.shape[2])
    clustered_labels = []
    for i in range(hidden_states_filtered.shape[0]):
        vic = VIC(dc=8, percentage=cluster_percentage, k=0.6)
        vic.fit(X=metric_filtered[i], pos=vision_pos_filtered[i])
        clustered_labels.append(torch.tensor(vic.labels_, device=device, dtype=torch.long))
    return hidden_states_filtered, torch.stack(clustered_labels, dim=0), mask


def official_token_filter(cluster_labels, l2_norm, R, visual_start):
    """vitcop_modeling_llama.py L1191-1288 (``token_filter_l2_norm_cluster``)."""
    device = l2_norm.device
    cluster_mask = cluster_labels >= -1
    labels = torch.unique(cluster_labels[cluster_mask])
    K = labels.size(0)
    cluster_l2_sum = torch.stack([l2_norm[cluster_labels == cid].sum() for cid in labels])
    sizes = torch.tensor([(cluster_labels == cid).sum() for cid in labels], device=device)
    selected_abs, merged_groups, merged_positions = [], [], []
    if K > R:
        topk_indices = torch.topk(cluster_l2_sum, k=R - 1, largest=False).indices
        retained_cids = labels[topk_indices]
        merged_cids = [cid for cid in labels.tolist() if cid not in retained_cids.tolist()]
        for cid in retained_cids:
            abs_indices = (cluster_labels == cid).nonzero(as_tuple=False).squeeze(1)
            merged_groups.append((abs_indices + visual_start).tolist())
            sorted_idx = torch.sort(abs_indices).values
            mid_idx = len(sorted_idx) // 2
            merged_positions.append(sorted_idx[mid_idx].item() + visual_start)
        merged_indices = torch.cat([(cluster_labels == cid).nonzero(as_tuple=False).squeeze(1)
                                    for cid in merged_cids])
        if merged_indices.numel() > 0:
            merged_groups.append((merged_indices + visual_start).tolist())
            sorted_idx = torch.sort(merged_indices).values
            mid_idx = len(sorted_idx) // 2
            merged_positions.append(sorted_idx[mid_idx].item() + visual_start)
    else:
        cluster_sizes = torch.stack([(cluster_labels == label).sum() for label in labels])
        total_cluster_tokens = cluster_sizes.sum()
        weights = (cluster_sizes.float() - 1) / (total_cluster_tokens - K)
        initial_quota = (weights * (R - K)).round().to(torch.long)
        max_quota = torch.clamp(sizes - 1, min=0)
        quotas = torch.minimum(initial_quota, max_quota)
        diff = (R - K) - quotas.sum().item()
        if diff != 0:
            sort_idx = torch.argsort(cluster_l2_sum, descending=(diff < 0))
            for i in sort_idx:
                if diff > 0 and quotas[i] < max_quota[i]:
                    quotas[i] += 1
                    diff -= 1
                elif diff < 0 and quotas[i] > 0:
                    quotas[i] -= 1
                    diff += 1
                if diff == 0:
                    break
        for i, cid in enumerate(labels):
            abs_indices = (cluster_labels == cid).nonzero(as_tuple=False).squeeze(1)
            size = abs_indices.size(0)
            keep_count = min(quotas[i].item(), size - 1)
            if keep_count > 0:
                _, topk_idx = torch.topk(l2_norm[abs_indices], k=keep_count, largest=False)
                top_indices = abs_indices[topk_idx]
                selected_abs.extend((top_indices + visual_start).tolist())
                keep_mask = torch.ones(size, dtype=torch.bool, device=device)
                keep_mask[topk_idx] = False
                merge_indices = abs_indices[keep_mask]
            else:
                merge_indices = abs_indices
            if merge_indices.numel() > 0:
                merged_groups.append((merge_indices + visual_start).tolist())
                sorted_idx = torch.sort(merge_indices).values
                mid_idx = len(sorted_idx) // 2
                merged_positions.append(sorted_idx[mid_idx].item() + visual_start)
    return selected_abs, merged_groups, merged_positions


def official_counts(v_token_num, vitcop_pruned_ratio, vision_prune_ratio, shallow, deep, num_layers=32):
    """L1295-1296 (``32``: ``num_layers``, an argument)."""
    shallow_token_num = round((num_layers * vitcop_pruned_ratio / vision_prune_ratio - shallow)  # argument
                              / (deep - shallow + (num_layers - deep) / 5) * v_token_num)
    return shallow_token_num, round(shallow_token_num / 5)


def official_llama(lm, inputs_embeds, cluster_labels, image_shape, pre_prompt_length_list, ratio,
                   vision_ratio, shallow, deep, num_layers, shallow_token_num=None):
    """vitcop_modeling_llama.py L1163-1413 (prefill, ``seq_length > 1``, B = 1); ``shallow_token_num``: the
    count where the official one fails (deviation 1). Returns (final normed hidden, stage rows)."""
    seq_length = inputs_embeds.shape[1]
    position_ids = torch.arange(0, seq_length, dtype=torch.long)[None]
    cache = DynamicCache(config=lm.config)
    hidden_states = inputs_embeds
    rows, self_ = {}, {}  # self_: the official ``self.k_shallow`` / ``self.k_deep``
    for decoder_layer in lm.layers:
        layer_idx = decoder_layer.self_attn.layer_idx
        v_token_start = pre_prompt_length_list[0]
        v_token_num = image_shape
        counts = official_counts(v_token_num, ratio, vision_ratio, shallow, deep, num_layers)
        shallow_token_num, deep_token_num = counts if shallow_token_num is None else (
            shallow_token_num, round(shallow_token_num / 5))
        if layer_idx == shallow and seq_length > 1:
            device = hidden_states.device
            visual_start = v_token_start
            visual_end = v_token_start + v_token_num
            image_k_l2_norm = self_["k_shallow"].mean(dim=1).norm(p=2, dim=-1)[0][visual_start:visual_end]
            selected_abs, merged_groups, merged_positions = official_token_filter(
                cluster_labels[0], image_k_l2_norm, shallow_token_num, visual_start)
            non_visual_before = torch.arange(0, visual_start, device=device)
            non_visual_after = torch.arange(visual_end, hidden_states.shape[1], device=device)
            selected_abs_tensor = torch.tensor(selected_abs, device=device, dtype=torch.long)
            merged_positions_tensor = torch.tensor(merged_positions, device=device, dtype=torch.long)
            merged_tokens = []
            for i, group in enumerate(merged_groups):
                group_tensor = torch.tensor(group, device=device, dtype=torch.long)
                merged_token = hidden_states[:, merged_positions_tensor[i], :] + hidden_states[
                    :, group_tensor, :].mean(dim=1, keepdim=True)
                merged_tokens.append(merged_token)
            merged_tokens_tensor = torch.cat(merged_tokens, dim=1) if merged_tokens else torch.empty(0)
            selected_tokens_tensor = (hidden_states[:, selected_abs_tensor, :] if selected_abs
                                      else torch.empty(0))
            non_visual_before_tensor = hidden_states[:, non_visual_before, :]
            non_visual_after_tensor = hidden_states[:, non_visual_after, :]
            mid_positions = torch.cat([selected_abs_tensor, merged_positions_tensor])
            mid_tokens = torch.cat([selected_tokens_tensor, merged_tokens_tensor], dim=1)
            sorted_mid, indices = torch.sort(mid_positions)
            mid_tokens_sorted = mid_tokens[:, indices, :]
            hidden_states = torch.cat([non_visual_before_tensor, mid_tokens_sorted, non_visual_after_tensor],
                                      dim=1)
            position_ids = torch.cat([non_visual_before, sorted_mid, non_visual_after], dim=0).unsqueeze(0)
            rows["shallow"] = sorted_mid - visual_start  # bookkeeping
        if layer_idx == deep and seq_length > 1:
            device = hidden_states.device
            visual_start = v_token_start
            visual_end = v_token_start + shallow_token_num
            image_k_l2_norm = self_["k_deep"].mean(dim=1).norm(p=2, dim=-1)[0][visual_start:visual_end]
            topk = torch.topk(image_k_l2_norm, deep_token_num, largest=False).indices
            selected_indices = topk + visual_start
            non_visual_before = torch.arange(0, visual_start, device=device)
            non_visual_after = torch.arange(visual_end, hidden_states.shape[1], device=device)
            all_keep = torch.cat([non_visual_before, selected_indices, non_visual_after]).unique(sorted=True)
            hidden_states = hidden_states.index_select(1, all_keep)
            position_ids = all_keep.unsqueeze(0)
            kept_rows = all_keep[visual_start:visual_start + deep_token_num] - visual_start  # bookkeeping
            rows["deep"] = rows["shallow"][kept_rows]
        # transformers 4.37's 4-D causal mask (L1139-1141), sliced to the current length (L1357-1358)
        mask = causal_4d(hidden_states.shape[1], hidden_states.dtype)
        pe = lm.rotary_emb(hidden_states, position_ids)
        out = decoder_layer(hidden_states, attention_mask=mask, position_ids=position_ids, cache=cache,
                            use_cache=True, position_embeddings=pe)
        if layer_idx == shallow - 1 and seq_length > 1:
            self_["k_shallow"] = cache.layers[layer_idx].keys
        if layer_idx == deep - 1 and seq_length > 1:
            self_["k_deep"] = cache.layers[layer_idx].keys
        hidden_states = out[0] if isinstance(out, tuple) else out
    return lm.norm(hidden_states), rows
