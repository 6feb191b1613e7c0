"""DivPrune followed by random deep pruning (``divprune+random-deep``): DivPrune at the LLM input, then K of
its tokens drawn uniformly before a deep decoder layer.

This project's reading of the combination in "When Token Pruning is Worse than Random" (Wang et al.,
CVPR 2026, arXiv 2512.07580), not official code (YahongWang1/Information-Horizon holds only a README).

Details, the official statements with their lines and the deviations: docs/methods/divprune_random_deep.md
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..llm.context import LLMContext, run_layers
from ..method import Method, Option, no_layers
from ..pruning.selection import Selection
from .divprune import budget_from_ratio, divprune_select
from .random_deep import RANDOM_DEEP_LAYER, checked_layer, input_seed, uniform_draw

#: the share of the N visual tokens DivPrune keeps at the LLM input (our reading of the abstract's "50%")
DEFAULT_RATIO = 0.5


def intermediate_count(budget: int, num_visual: int, ratio: float = DEFAULT_RATIO) -> int:
    """M, the visual tokens DivPrune keeps at the LLM input: ``round(ratio N)``, within K..N."""
    if not 0.0 < float(ratio) <= 1.0:
        raise LiteLVLMError(f"divprune+random-deep's ratio must be in (0, 1]; got {ratio}")
    return min(num_visual, max(int(budget), budget_from_ratio(float(ratio), num_visual)))


def divprune_random_deep_select(ctx: LLMContext, budget: int, *, layer: int | None = None,
                                ratio: float = DEFAULT_RATIO, seed: int | None = None) -> Selection:
    """DivPrune keeps M of the N visual tokens at the LLM input, K of those M drawn uniformly remain from
    layer ``layer`` on; ``parts["input"]``: the M (sorted), ``parts["order"]``: DivPrune's pick order."""
    layer = checked_layer(ctx.num_layers, layer)
    m = intermediate_count(budget, ctx.num_visual, ratio)
    first = divprune_select(ctx.visual_embeds, m)
    entering = first.indices
    kept = entering[uniform_draw(m, budget, input_seed(ctx, seed)).to(entering.device)]
    return Selection(indices=kept, parts={"input": entering, "order": first.parts["order"]},
                     prune_layer=layer if m > budget else 0)


def two_stage_forward(ctx: LLMContext, sel: Selection) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(final normed hidden (1, S', h), rows predicting each [SEG]) of the LLM on the M input tokens, cut to
    the K kept ones before layer ``sel.prune_layer``; None when nothing is dropped inside the LLM (K = M: the
    pipeline feeds DivPrune's tokens at the input)."""
    entering = sel.parts["input"]
    if sel.prune_layer == 0 or len(sel) == int(entering.numel()):
        return None
    dev = ctx.embeds.device
    s, n = ctx.image_start, ctx.num_visual

    def rows(visual: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.arange(s, device=dev), s + visual.to(dev).long(),
                          torch.arange(s + n, ctx.seq_len, device=dev)])

    rows_m, rows_k = rows(entering), rows(sel.indices)
    pos_m = ctx.pruned_positions(rows_m, official="renumber")  # DivPrune's rule at the input
    hidden = run_layers(ctx.lm, ctx.embeds[:, rows_m], pos_m, 0, sel.prune_layer)
    local = torch.searchsorted(rows_m, rows_k)  # the survivors' rows in the M-token sequence
    hidden = run_layers(ctx.lm, hidden[:, local], pos_m[..., local.to(pos_m.device)], sel.prune_layer,
                        ctx.num_layers)
    orig = ctx.seg_predictors.to(dev)
    pred = torch.searchsorted(rows_k, orig)
    if not torch.equal(rows_k[pred], orig):
        raise AssertionError("a [SEG]-predicting token was pruned")
    return ctx.lm.norm(hidden), pred


def two_stage_schedule(budget: int, num_visual: int, num_layers: int, *, layer: int | None = None,
                       ratio: float = DEFAULT_RATIO):
    """M visual tokens in layers 0..L-1, K from layer L (K >= M: K from layer 0)."""
    m = intermediate_count(budget, num_visual, ratio)
    if m <= budget:
        return ((0, budget),)
    return ((0, m), (checked_layer(num_layers, layer), budget))


#: its command-line options (``--random-deep-layer``, ``--random-deep-ratio``)
DIVPRUNE_RANDOM_DEEP_OPTIONS = (
    RANDOM_DEEP_LAYER,
    Option("ratio", "random_deep_ratio", value_type=float, default=DEFAULT_RATIO,
           help="divprune+random-deep (this project's reading): the share of the N visual tokens DivPrune "
                "keeps at the LLM input before the random deep pruning to K (at least K)"),
)

DIVPRUNE_RANDOM_DEEP = Method("llm-stages", divprune_random_deep_select, forward=two_stage_forward,
                              schedule=two_stage_schedule, host_sync=True, attention_weights=no_layers,
                              name="divprune+random-deep", options=DIVPRUNE_RANDOM_DEEP_OPTIONS,
                              description=("DivPrune then random deep pruning (this project's reading of "
                                           "the information-horizon paper; no official code): DivPrune "
                                           "keeps 50% of N at the LLM input, K of them drawn uniformly "
                                           "(seeded) remain from LLM layer L (20 of 32)"))
