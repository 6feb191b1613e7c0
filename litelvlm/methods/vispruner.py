"""VisPruner (Zhang et al., 2025): important tokens by [CLS] attention, then diverse tokens.

Official source: Theia-4869/VisPruner @ aefa01a, ``llava/model/llava_arch.py`` and ``clip_encoder.py``.
Where the official code would fail (odd residual lengths, tiny grids) the deviations list says what runs.

Details, the official statements with their lines and the deviations: docs/methods/vispruner.md
"""

from __future__ import annotations

import torch

from ..method import Method
from ..pruning.scores import cls_attention_rows
from ..pruning.selection import Selection, SelectorInputs

#: Tokens removed per round of duplicate removal (``min(8, R - T_div)`` in the official loop).
STEP = 8


def remove_duplicates(features: torch.Tensor, residual: torch.Tensor, keep: int,
                      step: int = STEP) -> torch.Tensor:
    """The official even/odd duplicate-removal loop, for one image.

    ``features`` (N, W) are the feature-layer patch tokens, ``residual`` the patch indices in
    descending-attention order; returns ``keep`` indices in the loop's final order
    (A's surviving tokens by descending score, then B's).
    """
    normalized = features / features.norm(dim=-1, keepdim=True)
    while keep > 0:
        R = residual.shape[0]
        r = min(step, R - keep)
        if r <= 0:
            break
        tokens = normalized[residual]
        a, b = tokens[::2], tokens[1::2]
        scores = (a @ b.T).max(dim=-1).values
        r = min(r, a.shape[0])  # deviation 2: never more than all of A
        distinct = scores.argsort(descending=True)[r:]
        residual = torch.cat([residual[::2][distinct], residual[1::2]])  # deviation 1: odd R works
    return residual


def important_and_diverse(attn: torch.Tensor, features: torch.Tensor, budget: int,
                          important_ratio: float = 0.5,
                          step: int = STEP) -> tuple[torch.Tensor, torch.Tensor]:
    """(important, diverse) token indices for K: the top ``int(K * ratio)`` by ``attn`` (N,) in descending
    order, then :func:`remove_duplicates` over the rest of ``features`` (N, W) (``llava_arch.py``
    L141-183)."""
    n_imp = int(budget * important_ratio)
    n_div = budget - n_imp
    order = attn.argsort(descending=True)
    important, residual = order[:n_imp], order[n_imp:]
    diverse = remove_duplicates(features, residual, n_div, step) if n_div > 0 else residual[:0]
    return important, diverse


def vispruner(inputs: SelectorInputs, budget: int, *, important_ratio: float = 0.5,
              attention_block: int | None = None, step: int = STEP, attention: str = "official") -> Selection:
    if attention_block is None:  # attentions[select_layer]: the block whose output are the features
        attention_block = inputs.vision.layer_index(inputs.feature_layer) - 1
        if attention_block < 0:
            raise ValueError(f"feature layer {inputs.feature_layer} is the embedding output; "
                             "VisPruner needs the attention of the block that produced it")
    attn = cls_attention_rows(inputs, attention_block, attention).mean(0)
    important, diverse = important_and_diverse(attn, inputs.patches(), budget, important_ratio, step)
    idx = torch.sort(torch.cat([important, diverse])).values  # the LLM gets them through a mask: raster order
    return Selection(indices=idx, scores=attn, parts={"important": important, "diverse": diverse})

VISPRUNER = Method("clip", vispruner, ranks=True, tower_attention_weights=True,
                   name="vispruner",
                   description="VisPruner: [CLS]-attention important tokens + diverse tokens")
