"""IPCV's official InternVL2 code, transcribed statement by statement for the tests (any block given as its
attention and MLP branches).

Perkzi/IPCV @ 29726f044f0f9c0c2be4eb0005888ddeb5fa188e,
``InternVL2/InternVL2_IPCV/modeling_intern_vit_sparse_IPCV.py``: L288-348 ``InternVisionEncoderLayer.forward``
(attention stabilisation), L427-633 ``IPCV_ViT.forward`` (per tile: the [CLS] kept, the patches ranked by
``get_retained_image_token_diff`` L645-663, neighbours among the kept tokens of every tile, the rebuild after
the last block).
"""

from __future__ import annotations

import torch


def official_layer(layer, hidden_states, sparse_vit_saved=None, branches=None):
    """L288-348 (``drop_path`` the identity); ``branches``: the block's (attention, MLP) branch functions, the
    official ``attn(norm1(h)) * ls1`` and ``mlp(norm2(h)) * ls2``."""
    if sparse_vit_saved is not None:
        saved = sparse_vit_saved
        B, L, D = saved["removed_states"].size(0), saved["orig_seq_len"], saved["removed_states"].size(2)
        K = saved["orig_kept_states"].shape[1]
        flat_new_kept = hidden_states.reshape(B * K, D)
        flat_orig_kept = saved["orig_kept_states"].reshape(B * K, D)
        full_states_patch = []
        for b in range(B):
            rem_to_kept_idx = saved["rem_to_kept_idx"][b]
            unique_idx = saved["unique_idx"][b]
            inv_idx = saved["inv_idx"][b]
            delta_unique = flat_new_kept[unique_idx] - flat_orig_kept[unique_idx]
            inv_idx = inv_idx.view(rem_to_kept_idx.shape)
            avg_delta_removed = delta_unique[inv_idx].mean(dim=1)
            full_states = torch.zeros(L, D, device=hidden_states.device, dtype=flat_new_kept.dtype)
            full_states[saved["keep_indexs"][b]] = hidden_states[b]
            full_states[saved["removed_indices"][b]] = saved["removed_states"][b] + avg_delta_removed
            full_states_patch.append(full_states)
        hidden_states = torch.stack(full_states_patch, dim=0)
    hidden_states = hidden_states + branches[0](layer, hidden_states)
    if sparse_vit_saved is not None:
        hidden_states = torch.stack([hidden_states[b, saved["keep_indexs"][b], :] for b in range(B)], dim=0)
    return hidden_states + branches[1](layer, hidden_states)


def official_ipcv(layers, hidden_states, token_topk, K, AS_layer, Top_K, branches):
    """L452-633 (``TOKEN_TOPK`` given as the count)."""
    hidden_states_prev, saved = None, None
    for idx, blk in enumerate(layers):
        seq_len = hidden_states.shape[1]
        if K - 1 > 0 and idx == K - 1 and seq_len > 1:
            hidden_states_prev = hidden_states
        if idx == K and seq_len > 1:
            B = hidden_states.shape[0]
            keeps, removed = [], []
            for b in range(B):
                diff_norm = torch.norm(hidden_states[b, 1:] - hidden_states_prev[b, 1:], dim=-1)
                keep_idx = diff_norm.topk(token_topk).indices.sort().values + 1
                keep_idx = torch.cat([torch.tensor([0], dtype=keep_idx.dtype), keep_idx])
                removed_mask = torch.ones(seq_len, dtype=torch.bool)
                removed_mask[keep_idx] = False
                keeps.append(keep_idx)
                removed.append(torch.nonzero(removed_mask, as_tuple=False).view(-1))
            keeps, removed = torch.stack(keeps), torch.stack(removed)
            orig_states = hidden_states.detach().clone()
            orig_kept_states = torch.stack([orig_states[b, keeps[b], :] for b in range(B)])
            removed_states = torch.stack([orig_states[b, removed[b], :] for b in range(B)])
            _, Kk, D = orig_kept_states.shape
            all_kept = orig_kept_states.reshape(B * Kk, D)
            rem, uniq, inv = [], [], []
            for b in range(B):
                dists = torch.cdist(removed_states[b].float(), all_kept.float(), p=2.0)
                _, near = dists.topk(min(Top_K, all_kept.shape[0]), largest=False, dim=1)
                u, i = torch.unique(near.view(-1), return_inverse=True)
                rem.append(near)
                uniq.append(u)
                inv.append(i)
            hidden_states = orig_kept_states
            saved = {"orig_seq_len": seq_len, "keep_indexs": keeps, "removed_indices": removed,
                     "removed_states": removed_states, "orig_kept_states": orig_kept_states,
                     "rem_to_kept_idx": torch.stack(rem), "unique_idx": uniq, "inv_idx": inv}
        if saved is not None and idx < K + AS_layer:
            hidden_states = official_layer(blk, hidden_states, saved, branches)
        else:
            hidden_states = official_layer(blk, hidden_states, branches=branches)
        if idx == len(layers) - 1 and saved is not None:
            hidden_states = _rebuild(saved, hidden_states)
    return hidden_states


def _rebuild(saved, hidden_states):
    """L596-628."""
    B, L, D = saved["removed_states"].size(0), saved["orig_seq_len"], saved["removed_states"].size(2)
    K = saved["orig_kept_states"].shape[1]
    flat_new_kept = hidden_states.reshape(B * K, D)
    flat_orig_kept = saved["orig_kept_states"].reshape(B * K, D)
    out = []
    for b in range(B):
        delta_unique = flat_new_kept[saved["unique_idx"][b]] - flat_orig_kept[saved["unique_idx"][b]]
        inv_idx = saved["inv_idx"][b].view(saved["rem_to_kept_idx"][b].shape)
        full_states = torch.zeros(L, D, dtype=flat_new_kept.dtype)
        full_states[saved["keep_indexs"][b]] = hidden_states[b]
        avg_delta_removed = delta_unique[inv_idx].mean(dim=1)
        full_states[saved["removed_indices"][b]] = saved["removed_states"][b] + avg_delta_removed
        out.append(full_states)
    return torch.stack(out)
