"""FlowCut (Tong et al., NeurIPS 2025, "Rethinking Redundancy via Information Flow"): pruning inside LLaVA's
CLIP vision tower by the information flow to the [CLS] token, down to K patch tokens at the feature layer.

A statement-level port of the official LLaVA code, TungChintao/FlowCut at commit
a2ecd247cb3c605773ec317a0c246425b47abdbe (also the PyPI package ``flowcut`` 1.0.2), on the vision-tower stage
(:mod:`litelvlm.pruning.tower`; nothing is patched):

* ``flowcut/main.py`` L21-42: the tower keeps ``target = K + 1`` tokens (LLaVA-1.5's ``pad`` images and
  ``select_feature='patch'``: one slot for the [CLS] token, which the feature selection drops);
  ``apply_flowcut_config`` (``modeling_clip_flowcut.py`` L296-299): ``select_layer = L - 2``.
* ``modeling_clip_flowcut.py`` L174-245 ``CLIPEncoder_forward``: before block ``idx``, ``rpl = select_layer -
  idx - 1`` (the blocks left to prune in); the [CLS] row and the patch indices carried through every pruning.
* L100-172 ``CLIPEncoderLayer_forward``: after the block's MLP, while it holds more than ``target`` tokens:
  the head-averaged [CLS] attention over the patches (``attn_weights[:, :, 0, 1:].mean(1)``), the semantic
  attention (L39-40, L69: ``softmax`` over the tokens of the [CLS] value's dot products with every value, per
  head, averaged over heads, [CLS] column dropped) and the value metric (L29, L97: the values averaged over
  heads) give ``compute_score`` (``utils_flowcut.py`` L20-27: (cls / sum + semantic / sum) * L1 norm of the
  value); the scores accumulate as ``0.5 * cumulative + 0.5 * score``; in blocks with an even ``rpl`` the
  tokens are pruned to ``max(T - prune_num, target)``, ``prune_num = adaptive_prune_ratio(cls_attention, rpl,
  target - 1)`` (``utils_flowcut.py`` L30-42: ``(N - target) / sqrt(rpl) * (1 - (entropy / log N) ** 2)``,
  rounded) or all but the target at ``rpl = 0``; the kept patches are the top ``target_num - 1`` cumulative
  scores, sorted by position.
* ``clip_encoder.py`` L17-19 with LLaVA's ``feature_select``: the feature layer (``hidden_states[-2]``, the
  output of block L-2) without its [CLS] token: K patch tokens in raster order. The last block (L-1) does not
  reach the features and is not run.

The attention follows the official patched ``CLIPAttention_forward`` (L14-97, transformers 4.37's eager order:
queries scaled before ``bmm``, softmax in the tower's dtype), as :class:`~litelvlm.pruning.tower.ClipTower`
computes it. ``Selection.indices`` are the kept patches (raster order), ``features`` their feature-layer
output (the LLM receives them through the projector).

Deviation from the official code (where it cannot run): a tower of fewer than 3 blocks (the tiny test towers)
has no block with ``rpl = 0`` before the feature layer (the official code never prunes before the features and
fails at ``rpl = -2``, a complex ``sqrt``); there the patches are pruned to K after the last block the tower
runs, as at ``rpl = 0``. Towers of 3 or more blocks, ViT-L/14-336's 24 among them, run the official schedule
unchanged.
"""

from __future__ import annotations

import torch

from ..errors import UnsupportedModelError
from ..method import Method
from ..pruning import Selection
from ..pruning.tower import TowerBlock, TowerContext


def compute_score(cls_attn: torch.Tensor, semantic_attn: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``utils_flowcut.py`` L20-27: (relation + semantic score) times the L1 norm of each token's value."""
    relation_score = cls_attn / cls_attn.sum(dim=-1, keepdim=True)
    semantic_score = semantic_attn / semantic_attn.sum(dim=-1, keepdim=True)
    return (relation_score + semantic_score) * torch.norm(value, p=1, dim=-1)


def adaptive_prune_ratio(attn: torch.Tensor, rpl: int, target_num: int) -> int:
    """``utils_flowcut.py`` L30-42: the tokens to prune in this block, from the entropy of the [CLS]
    attention."""
    n = attn.shape[-1]
    prob = attn / attn.sum(dim=-1, keepdim=True)
    entropy = -torch.sum(prob * torch.log(prob), dim=-1)
    entropy_max = torch.log(torch.tensor(n))
    entropy_ratio = entropy / entropy_max
    r = (n - target_num) / rpl ** 0.5 * (1 - entropy_ratio ** 2)
    if r.shape[0] > 1:
        r = r.max(0).values
    return int(r.round())


def block_scores(block: TowerBlock) -> tuple[torch.Tensor, torch.Tensor]:
    """(the head-averaged [CLS] attention over the patches (B, N), FlowCut's score of each patch (B, N)) of a
    block."""
    b, heads, t, d = block.values.shape
    cls_attention = block.attention[:, :, 0, 1:].mean(dim=1)
    values = block.values.view(b * heads, t, d)
    semantic_weight = torch.bmm(values[:, :1], values.transpose(1, 2))
    semantic_attn = torch.nn.functional.softmax(semantic_weight, dim=-1).view(b, heads, t).mean(1)
    value_metric = block.values.mean(1)
    return cls_attention, compute_score(cls_attention, semantic_attn[:, 1:], value_metric[:, 1:])


@torch.no_grad()
def flowcut(ctx: TowerContext, budget: int) -> Selection:
    """FlowCut in the vision tower: the K patch tokens reaching the feature layer and their output there."""
    if ctx.prefix != 1:
        raise UnsupportedModelError(f"FlowCut reads the [CLS] token's attention; this tower has {ctx.prefix} "
                                    "prefix tokens")
    target = budget + 1  # main.py L39: target_num + 1, the [CLS] slot
    select_layer = ctx.total_blocks - 2  # apply_flowcut_config
    state: dict[str, torch.Tensor | None] = {"cumulative": None}

    def observe(block: TowerBlock) -> torch.Tensor | None:
        tokens = block.hidden.shape[1]
        if tokens <= target:
            return None
        cls_attention, scores = block_scores(block)
        cumulative = state["cumulative"]
        cumulative = scores.clone() if cumulative is None else 0.5 * cumulative + 0.5 * scores
        state["cumulative"] = cumulative
        rpl = select_layer - block.index - 1
        if rpl < 0 and block.last:  # the deviation: a tower too shallow for the official schedule
            rpl = 0
        if rpl % 2 or rpl < 0:
            return None
        prune_num = adaptive_prune_ratio(cls_attention, rpl, target - 1) if rpl else tokens
        target_num = max(tokens - prune_num, target)
        _, keep = torch.topk(cumulative, target_num - 1, dim=1)
        keep = keep.sort(dim=1).values
        state["cumulative"] = torch.gather(cumulative, dim=1, index=keep)
        return keep[0]

    return ctx.run(observe).selection()


FLOWCUT = Method("vision-tower", flowcut, host_sync=True, reads_vision_blocks=True,
                 tower_attention_weights=True,
                 name="flowcut",
                 description=("FlowCut: inside the CLIP vision tower, prune by the information flow to "
                              "[CLS] (relation + semantic attention x value L1 norm, accumulated over "
                              "blocks) on an entropy-adaptive schedule, the tower finishing on the K "
                              "kept patches"))
