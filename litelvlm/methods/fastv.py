"""FastV (Chen et al., 2024) inside the LLM: after layer K-1, keep the visual tokens the last token
attends to most; layers K.. run on the kept tokens with their ORIGINAL RoPE positions.

Only the last token's attention row of layer K-1 is computed (``LLMContext.attention_rows``). With
``score_dtype="model"`` (``--protocol official``) it is computed as the official stack does
(transformers 4.28's eager ``LlamaAttention``: model-dtype logits, float32 softmax cast to the model
dtype), then averaged over heads and ranked in the model dtype (bfloat16 for GLaMM); with ``float32``
the row and its mean are float32.
The pruned sequence gets an explicit attention mask (see ``litelvlm.llm.context.causal_mask``).
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..llm.context import LLMContext, run_layers
from ..method import Method
from ..pruning.selection import Selection

#: FastV's default filtering layer (K=2 in the paper).
DEFAULT_LAYER = 2


def fastv_select(ctx: LLMContext, budget: int, *, layer: int = DEFAULT_LAYER) -> Selection:
    """Top-``budget`` visual tokens by the last token's head-averaged attention at layer ``layer-1``."""
    if not 1 <= layer <= ctx.num_layers:
        raise LiteLVLMError(f"FastV layer K must be in 1..{ctx.num_layers}; got {layer}")
    kernel = "llama-4.28" if ctx.score_dtype == "model" else "float32"
    score = ctx.visual_attention(layer - 1, "last", kernel)
    top = torch.topk(score, budget, sorted=True).indices
    return Selection(indices=torch.sort(top).values, scores=score.float(), prune_layer=layer)


def run_pruned_from(ctx: LLMContext, kept: torch.Tensor,
                    prune_layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(final normed hidden (1, S', h), kept sequence positions) when visual tokens outside ``kept``
    are dropped before decoder layer ``prune_layer``."""
    dev = ctx.embeds.device
    s, n = ctx.image_start, ctx.num_visual
    keep = torch.cat([torch.arange(s, device=dev), s + kept.to(dev).long(),
                      torch.arange(s + n, ctx.seq_len, device=dev)])
    hidden = ctx.hidden_before(prune_layer)[:, keep]
    pos = ctx.pruned_positions(keep, official="keep")  # FastV's and DART's rule (their Method.positions)
    hidden = run_layers(ctx.lm, hidden, pos, prune_layer, ctx.num_layers)
    return ctx.lm.norm(hidden), keep


def pruned_forward(ctx: LLMContext, sel: Selection) -> tuple[torch.Tensor, torch.Tensor]:
    """(final normed hidden (1, S', h), rows predicting each [SEG]) when the visual tokens outside
    ``sel.indices`` are dropped before decoder layer ``sel.prune_layer`` (FastV, DART)."""
    final, keep = run_pruned_from(ctx, sel.indices, sel.prune_layer)
    orig = ctx.seg_predictors.to(keep.device)
    pred = torch.searchsorted(keep, orig)
    if not torch.equal(keep[pred], orig):
        raise AssertionError("a [SEG]-predicting token was pruned")
    return final, pred


def pruned_at_layer(budget: int, num_visual: int, num_layers: int, *, layer: int = DEFAULT_LAYER):
    """Token schedule of one pruning inside the LLM: N visual tokens up to layer K-1, K from layer
    ``layer``."""
    return ((0, num_visual), (layer, budget))


def fastv_attention_weights(num_layers: int) -> tuple[int, ...]:
    """The layer whose attention weights FastV reads at its default K: K-1 (the last token's row)."""
    return (DEFAULT_LAYER - 1,)


#: its command-line option (``--fastv-layer``): :data:`litelvlm.methods.options.FASTV_OPTIONS`, named by its
#: registry entry
FASTV = Method("llm-layer", fastv_select, forward=pruned_forward, ranks=True, schedule=pruned_at_layer,
               positions="keep", attention_weights=fastv_attention_weights)
