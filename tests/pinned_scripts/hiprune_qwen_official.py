"""HiPrune's Qwen2.5-VL rule under HiPrune's pinned transformers (4.52.0), on a written random folder; run by
``tests/pinned_env.run_pinned``. Imports the pinned packages and this folder's helpers only.

Danielement321/HiPrune @6e83a12 ``Qwen2_5_VL/qwen2_5_vl_HiPrune.py`` is 4.52.0's ``modeling_qwen2_5_vl.py``
with statements added: the tower (patch embedding, ``rot_pos_emb``, ``get_window_index``, the blocks' loop
L531-577) is the release's, run here as the pinned ``Qwen2_5_VisionTransformerPretrainedModel`` with each
block's input taken at the block; the added statements are transcribed: the flash class's weights L201-211
(the rotary kernel of L152-159, ``flash_attn``'s, replaced by the eager rotation L216-234), the eager class's
L245-287, the reduction per merged token L570-577, and the selection L1854-1896.

usage: hiprune_qwen_official.py MODEL_DIR CASES.pt OUT.pt
"""

import math
import os
import sys

import torch
import torch.nn.functional as F
from official_qwen_rules import apply_rotary_pos_emb_vision  # this folder (on the path: run_pinned)
from qwen2_5_vl_pinned import load, tower, tower_blocks
from torch import nn

from results import save


def official_weights(self, hidden_states, cu_seqlens, position_embeddings, impl):
    """The weights a block's attention returns: eager L251-286, flash L175-211."""
    seq_length = hidden_states.shape[0]
    q, k, v = self.qkv(hidden_states).reshape(seq_length, 3, self.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    cos, sin = position_embeddings
    if impl == "flash":
        q, k = apply_rotary_pos_emb_vision(q.unsqueeze(0), k.unsqueeze(0), cos, sin)
        q = q.squeeze(0)
        k = k.squeeze(0)
        q = q.permute(1, 0, 2)  # [H, T, D]
        k = k.permute(1, 0, 2)  # [H, T, D]
        attn_logits = torch.matmul(q, k.transpose(-1, -2))
        attn_logits = attn_logits / (q.shape[-1] ** 0.5)
        attn_logits = F.softmax(attn_logits, dim=-1)
        return attn_logits
    q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
    attention_mask = torch.full(
        [1, seq_length, seq_length], torch.finfo(q.dtype).min, device=q.device, dtype=q.dtype
    )
    for i in range(1, len(cu_seqlens)):
        attention_mask[..., cu_seqlens[i - 1]: cu_seqlens[i], cu_seqlens[i - 1]: cu_seqlens[i]] = 0
    q = q.transpose(0, 1)
    k = k.transpose(0, 1)
    head_dim = q.shape[-1]
    attn_weights = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(head_dim)
    attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(q.dtype)
    return attn_weights


@torch.no_grad()
def official_attn_list(visual, seen, window_index, impl):
    """The tower's ``attn_list`` (L558-577): each block's weights (on ``blk.norm1`` of its input, L360-364),
    reduced per merged token and un-permuted."""
    reverse_indices = torch.argsort(window_index)
    attn_list = []
    for layer_num, blk in enumerate(visual.blocks):
        got = seen[layer_num]
        attn_weights = official_weights(blk.attn, blk.norm1(got["h"]), got["cu_seqlens"],
                                        got["position_embeddings"], impl)
        attn_weights = attn_weights.mean(dim=0)
        attn_weights = attn_weights.sum(dim=0)
        attn_weights = attn_weights.view(attn_weights.shape[0] // 4, -1).mean(dim=-1)
        attn_weights = attn_weights[reverse_indices]
        attn_list.append(attn_weights)
    return attn_list


def official_hiprune(attn_list, image_grid_thw, n_image_tokens, retention, alpha, object_layer,
                     spatial_merge_size=2):
    """L1854-1896 (B = 1): the kept visual tokens in the sequence's order (``img_mask`` over the image rows);
    the environment variables are the module's constants (L47-49)."""
    os.environ["HIPRUNE_OBJECT_LAYER"], os.environ["HIPRUNE_ALPHA"] = str(object_layer), str(alpha)
    os.environ["HIPRUNE_QWEN_RETENTION"] = str(retention)
    OBJECT_LAYER = int(os.environ['HIPRUNE_OBJECT_LAYER'])
    ALPHA = float(os.environ['HIPRUNE_ALPHA'])
    RETAIN = float(os.environ['HIPRUNE_QWEN_RETENTION'])
    n_image_features = n_image_tokens
    shallow_attention = attn_list[OBJECT_LAYER - 1]
    deep_attention = attn_list[-1].clone()
    select_mask = torch.zeros_like(deep_attention, dtype=torch.bool)
    visual_token_num = round(n_image_tokens * RETAIN)
    shallow_token_num = round((visual_token_num * ALPHA) / 5)
    shallow_token_indices = torch.topk(shallow_attention, k=shallow_token_num).indices
    width = int(image_grid_thw[0][2] / spatial_merge_size)
    shallow_token_indices = torch.cat([shallow_token_indices,
                                       shallow_token_indices - 1,
                                       shallow_token_indices + 1,
                                       shallow_token_indices - width,
                                       shallow_token_indices + width])
    shallow_token_indices = shallow_token_indices.clamp(0, n_image_tokens - 1)
    shallow_token_indices = torch.unique(shallow_token_indices, sorted=False)
    deep_token_num = visual_token_num - shallow_token_indices.shape[0]
    available_index_mask = torch.zeros(n_image_features, dtype=torch.bool, device=deep_attention.device)
    available_index_mask.scatter_(0, shallow_token_indices, 1)
    deep_attention -= available_index_mask.int()
    deep_token_indices = torch.topk(deep_attention, k=deep_token_num).indices
    retain = torch.cat([shallow_token_indices, deep_token_indices])
    select_mask[retain] = True
    return torch.nonzero(select_mask).flatten()


def main(folder, cases, out) -> None:
    spec = torch.load(cases, weights_only=False)
    model, info = load(folder, spec["dtype"], spec["tower_attn"])
    visual = tower(model)
    results = []
    for case in spec["images"]:
        grid = case["grid_thw"]
        embeds, seen, window_index = tower_blocks(visual, case["pixel_values"], grid)
        n = embeds.shape[0]
        attn = {impl: official_attn_list(visual, seen, window_index, impl) for impl in case["impls"]}
        kept = {}
        for impl, alpha, layer, budgets in case["runs"]:
            for budget in budgets:
                retention = budget / n
                assert round(n * retention) == budget
                try:
                    kept[impl, alpha, layer, budget] = official_hiprune(attn[impl], grid, n, retention, alpha,
                                                                        layer)
                except RuntimeError:  # topk with a negative k: more anchors and buffers than K
                    kept[impl, alpha, layer, budget] = None
        results.append({"embeds": embeds, "attn": attn, "kept": kept, "window_index": window_index,
                        "block_inputs": {b: (s["h"], *s["position_embeddings"], s["cu_seqlens"])
                                         for b, s in seen.items()}})
    save(out, results, missing_keys=[k for k in info["missing_keys"]], tower_attn=spec["tower_attn"])


if __name__ == "__main__":
    main(*sys.argv[1:])
