"""DivPrune (Alvar et al., CVPR 2025): the max-min diverse subset of the LLM's visual input embeddings.

Official source: vbdi/divprune @ 799e2d9, ``LLaVA/llava/model/llava_arch.py``. The budget is a token count
K (the project's convention) and already-selected tokens are not candidates again (the deviations list).

Details, the official statements with their lines and the deviations: docs/methods/divprune.md
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..method import Method
from ..pruning.selection import Selection, check_budget

if TYPE_CHECKING:
    from ..llm.context import LLMContext

#: The official retained ratio (``SUBSET_RATIO`` in run_Divprune.sh).
RATIO = 0.098


def budget_from_ratio(ratio: float = RATIO, num_tokens: int = 576) -> int:
    """The official token count for a retained ratio: ``int(round(ratio * N))`` (56 of 576 for 0.098)."""
    return int(round(ratio * num_tokens))


def cosine_distance(embeds: torch.Tensor) -> torch.Tensor:
    """(N, N) ``1 - cos`` as the official ``pairwise_cosine_similarity`` computes it (embeddings' dtype)."""
    normed = embeds / embeds.norm(dim=1, keepdim=True)
    return 1.0 - torch.mm(normed, normed.t())


def max_min_order(distance: torch.Tensor, budget: int) -> torch.Tensor:
    """Greedy max-min selection on a (N, N) distance matrix; the K picks in selection order."""
    n = distance.shape[0]
    check_budget(budget, n)
    order = torch.empty(budget, dtype=torch.long, device=distance.device)
    if n == 1:  # deviation 4: topk(k=2) needs two tokens
        order[0] = 0
        return order
    taken = torch.zeros(n, dtype=torch.bool, device=distance.device)
    to_set = distance[0]  # set at i == 1
    for i in range(budget):
        if i == 0:  # the token whose nearest neighbour (second-smallest distance in its column) is farthest
            scores = torch.topk(distance, 2, dim=0, largest=False).values[1, :]
        else:  # distance to the selected set: min over the selected rows, as a running minimum (exact)
            to_set = distance[order[0]] if i == 1 else torch.minimum(to_set, distance[order[i - 1]])
            # deviation 1: selected tokens are no candidates
            scores = to_set.masked_fill(taken, float("-inf"))
        pick = torch.argmax(scores)
        order[i] = pick
        taken[pick] = True
    return order


@torch.no_grad()
def divprune_select(embeds: torch.Tensor, budget: int) -> Selection:
    """DivPrune on (N, h) LLM input embeddings: K indices in raster order; ``parts["order"]`` is the pick
    order."""
    order = max_min_order(cosine_distance(embeds.detach()), budget)
    return Selection(indices=torch.sort(order).values, parts={"order": order})


def divprune(ctx: LLMContext, budget: int) -> Selection:
    """DivPrune at the LLM input: diversity over the N visual input embeddings (projector outputs)."""
    return divprune_select(ctx.visual_embeds, budget)


DIVPRUNE = Method("llm-input", divprune, host_sync=True,
                  name="divprune",
                  description=("DivPrune: greedy max-min cosine-diverse visual tokens, measured on the "
                               "LLM input embeddings (projector outputs), applied at the LLM input"))
