"""``litelvlm-context``: LiteLVLM's context ranking alone (‡ this project's ablation; not in the official
code).

The K visual tokens with the highest LiteLVLM context score (:func:`litelvlm.pruning.scores.context_scores`:
the norm of the [CLS] query's attention-weighted value of each token in the last CLIP block), in the order
LiteLVLM ranks its context tokens (descending, stable). It equals LiteLVLM with the whole budget given to
the context part (``litelvlm_select(..., context_ratio=1.0)``; tested) and reads no text. Beside
``litelvlm`` (no context share: the paper's method) and ``litelvlm-ctx`` (half of K), it spans the split
between LiteLVLM's two parts, so a study can tell what the reversed similarity adds.
"""

from __future__ import annotations

import torch

from ..method import Method
from ..pruning.scores import context_scores
from ..pruning.selection import Selection, SelectorInputs


def context_only(inputs: SelectorInputs, budget: int) -> Selection:
    """The ``budget`` tokens of highest context score, highest first."""
    score = context_scores(inputs)
    order = torch.sort(score, descending=True, stable=True).indices
    return Selection(indices=order[:budget].long(), scores=score, parts={"context": order})


LITELVLM_CONTEXT = Method("clip", context_only, scores_only=True, tower_attention_weights=True,
                          name="litelvlm-context",
                          description=("LiteLVLM's context ranking alone (‡ this project's ablation; not "
                                       "in the official code): the K tokens of highest context score, no "
                                       "text"))
