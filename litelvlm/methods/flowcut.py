"""FlowCut (Tong et al., NeurIPS 2025): pruning inside LLaVA's CLIP vision tower by the information flow to
the [CLS] token, down to K patch tokens at the feature layer.

Official source: TungChintao/FlowCut @ a2ecd24 (PyPI ``flowcut`` 1.0.2), ``flowcut/modeling_clip_flowcut.py``,
on the vision-tower stage. Towers of fewer than 3 blocks run a deviation (where the official code cannot).

Details, the official statements with their lines and the deviations: docs/methods/flowcut.md
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
