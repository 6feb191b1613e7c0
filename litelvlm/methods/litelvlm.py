"""LiteLVLM: keep the tokens LEAST similar to each text's [EOS] embedding, fill with context tokens.

The official ``CLIPVisionTower.forward`` (sejong-rcv/LiteLVLM, ``clip_encoder.py`` L78-172; the
equality is tested in ``tests/litelvlm/methods/test_litelvlm_official_loop.py``): with T texts, the K//T
lowest-similarity tokens of every text are taken and united (sorted ascending); the context ranking
(descending) minus that union fills the rest; the LLM receives ``[context[:K - |union|], union]``.
"""

from __future__ import annotations

import torch

from ..method import Method
from ..pruning.scores import context_scores, similarity
from ..pruning.selection import Selection, SelectorInputs

#: LiteLVLM‡ (context-heavy): the share of the budget reserved for context tokens. NOT in the official
#: code (neither its sources nor its compiled files): this project's reading of the paper.
CONTEXT_HEAVY_RATIO = 0.5


def similarity_aware(sim: torch.Tensor, budget_per_text: int, largest: bool = False) -> torch.Tensor:
    """Union (ascending) of each text's ``budget_per_text`` lowest (or highest) similarity tokens."""
    if budget_per_text <= 0:
        return torch.empty(0, dtype=torch.long, device=sim.device)
    idx = torch.topk(sim, budget_per_text, dim=-1, largest=largest, sorted=True).indices
    return torch.unique(idx.reshape(-1))


def combine(union: torch.Tensor, context_order: torch.Tensor, budget: int) -> torch.Tensor:
    """``[context tokens not in the union, first K-|union| of them] + union``."""
    rest = context_order[~torch.isin(context_order, union.to(context_order.device))]
    return torch.cat([rest[: budget - union.numel()], union.to(rest.device)]).long()


def litelvlm_select(inputs: SelectorInputs, budget: int, *, per_query: bool = False, query_index: int = 0,
                    raster: bool = False, similarity_kind: str = "dot", context_ratio: float = 0.0,
                    largest: bool = False) -> Selection:
    """LiteLVLM token selection (see the module docstring).

    ``per_query`` uses only text ``query_index`` (one text at a time); ``raster`` re-sorts the
    kept indices into raster order; ``context_ratio`` reserves that share of K for context
    tokens before the similarity split (0 is the paper's LiteLVLM, 0.5 its context-heavy ‡).
    ``largest=True`` turns it into the (non-reversed) top-similarity ablation.
    """
    sim = similarity(inputs, layer=inputs.feature_layer, kind=similarity_kind)
    if per_query:
        sim = sim[query_index:query_index + 1]
    ctx = context_scores(inputs)
    context_order = torch.sort(ctx, descending=True, stable=True).indices
    sim_budget = budget - int(round(context_ratio * budget))
    union = similarity_aware(sim, sim_budget // sim.shape[0], largest=largest)
    order = combine(union, context_order, budget)
    if raster:
        order = torch.sort(order).values
    score = -sim.min(0).values if not largest else sim.max(0).values
    return Selection(indices=order, scores=score, parts={"similarity": union, "context": context_order})


def litelvlm(inputs: SelectorInputs, budget: int, **options) -> Selection:
    return litelvlm_select(inputs, budget, **options)


def litelvlm_ctx(inputs: SelectorInputs, budget: int, **options) -> Selection:
    options.setdefault("context_ratio", CONTEXT_HEAVY_RATIO)
    return litelvlm_select(inputs, budget, **options)

#: the context score is the [CLS] query's (cosine) attention over the patches of CLIP's last block
LITELVLM = Method("clip", litelvlm, needs_text=True, scores_only=True, tower_attention_weights=True,
                  name="litelvlm",
                  description="LiteLVLM: lowest CLIP similarity to the text [EOS] + context tokens")
LITELVLM_CTX = Method("clip", litelvlm_ctx, needs_text=True, scores_only=True, tower_attention_weights=True,
                      name="litelvlm-ctx",
                      description=("LiteLVLM‡ (context-heavy, this project's reading of the paper; not "
                                   "in the official code): 50% of K to context tokens first"))
