"""DivPrune (Alvar et al., CVPR 2025): the max-min diverse subset of the LLM's visual input embeddings.

A statement-level port of the official code, vbdi/divprune at commit
799e2d950aa01ba7860907f5a6d86061f885dca6:

* ``LLaVA/llava/model/llava_arch.py`` L141-144 (``encode_images``): the image features are
  ``mm_projector(vision_tower(images))``, the vision tower's output being the patch tokens of
  ``hidden_states[-2]`` (``clip_encoder.py`` L78-86, L333-335; CLS dropped). These projector
  outputs are placed in the sequence unchanged (L284-295).
* ``llava_arch.py`` L365-385 (``prepare_inputs_labels_for_multimodal``, env ``LAYER_INDEX=0``):
  the diversity is measured on ``new_input_embeds[0][35:35 + N]``, i.e. on the N visual rows of
  the LLM's INPUT EMBEDDINGS (the projector outputs, in the model's dtype), not on CLIP
  features; ``SYS_TOKEN_LEN = 35`` is where LLaVA-1.5's vicuna_v1 prompt puts the image. The
  kept rows are ``keep_indexs.sort()``: the visual tokens enter the LLM in RASTER order, with
  contiguous positions (``position_ids`` is None in generation), before decoder layer 0.
* ``llava_arch.py`` L147-171 (``pairwise_cosine_similarity``, ``DivPrune``):

  - budget ``int(round(threshold_ratio * N))`` (Python rounding, half to even), the ratio
    from env ``SUBSET_RATIO``: 0.098 in ``run_Divprune.sh`` L11, ``eval_time.sh`` L8 and the
    README (L33), i.e. 56 of 576 tokens (:func:`budget_from_ratio`);
  - distance ``1 - cos``: rows divided by their L2 norm, ``torch.mm(n, n.t())``;
  - first token: ``argmax`` over columns of ``topk(D, 2, dim=0, largest=False).values[1]``,
    the second-smallest entry of each column (its smallest is the token's own distance, ~0):
    the token whose nearest neighbour is farthest;
  - then, greedily: ``argmax`` over ALL N columns of ``min`` over the selected rows (the
    distance of each token to the selected set); ``argmax`` returns the first maximal index
    on ties.

The selector therefore needs the projector outputs, which a CLIP trace does not have: its stage is
``llm-input`` (:mod:`litelvlm.method`), and it reads ``ctx.visual_embeds`` of the pipeline's
``LLMContext``: the (N, h) rows the LLM would receive (GLaMM's projector outputs of the feature-layer
patches, or the caller's ``visual_embeds``). The pipeline applies it at the LLM input (layer 0), as the
official code does. :func:`divprune_select` runs it on any (N, h) tensor.

Deviations from the official code:

1. Already-selected tokens are not candidates again. The official ``argmax`` runs over all N
   tokens; a selected token's score is its own distance ``1 - cos(x, x)`` (0 up to rounding,
   and up to ~4e-3 in bfloat16). Once no unselected token is farther than that from the
   selected set (exact or near duplicates: flat or padded regions, or large budgets in half
   precision) the official loop picks a selected token again, and as the set of rows does
   not change it picks that same token in every remaining step: the LLM then gets one token
   repeated and fewer than K distinct tokens. Here the selected tokens' scores are set to
   -inf before each ``argmax``, so K distinct tokens are kept (the max-min diversity problem
   of the paper selects a subset of size K). Wherever the official loop picks distinct
   tokens the two selections are identical (tests/litelvlm/methods/test_divprune_official.py).
2. The budget is a token count K (the project's convention); the official code takes a
   ratio. ``budget_from_ratio(0.098) == 56`` gives the official count; ratios that round to 0
   (an empty selection in the official code) are rejected by the budget check.
3. The visual rows are the pipeline's N visual tokens, wherever GLaMM's prompt puts them;
   the official code slices the hard-coded ``[35:35 + N]`` of batch element 0, which is the
   image only for LLaVA-1.5's vicuna_v1 prompt.
4. ``N == 1`` (only on toy grids): the official ``topk(..., 2)`` raises; here the one token
   is kept.
5. Arithmetic runs in the embeddings' dtype, as the official code runs in the LLM's (fp16 in
   its LLaVA evaluation; GLaMM's official precision is bfloat16, float32 for the tiny random
   model), with the same calls. The running ``min`` over selected rows is exact, so keeping a
   running minimum instead of re-reducing ``index_select``-ed rows changes no value.
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
