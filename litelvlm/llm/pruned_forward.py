"""Running the LLM on the kept visual tokens from one decoder layer on, the tokens keeping their original RoPE
positions: FastV's mechanism, shared by every method that prunes once inside the LLM (FastV, DART, IVC-Prune,
random-deep), and their token schedule.
"""

from __future__ import annotations

import torch

from ..pruning.selection import Selection
from .context import LLMContext, run_layers


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


def pruned_at_layer(budget: int, num_visual: int, num_layers: int, *,
                    layer: int) -> tuple[tuple[int, int], ...]:
    """Token schedule of one pruning inside the LLM: N visual tokens up to layer ``layer``-1, K from
    ``layer``."""
    return ((0, num_visual), (layer, budget))
