"""VisPruner (Zhang et al., 2025): important tokens by [CLS] attention, then diverse tokens.

A statement-level port of the official code, Theia-4869/VisPruner at commit
aefa01adc7c7ce6334e880c88225e90cede760d1:

* ``llava/model/multimodal_encoder/clip_encoder.py`` L36-52: the features are the patch
  tokens of ``hidden_states[select_layer]`` (LLaVA: -2) and the attention is
  ``attentions[select_layer]``, row of the CLS query, patch columns; i.e. the attention of
  the encoder block whose OUTPUT are the features (block -2 for layer -2). Here: the
  patches of ``inputs.feature_layer`` and the block ``layer_index(feature_layer) - 1``
  (``attention_block`` overrides it).
* ``llava/model/llava_arch.py`` L141-186:

  - ``T_imp = int(K * important_ratio)`` (default ratio 0.5, ``--important_ratio`` in
    ``llava/eval/model_vqa_loader.py``), ``T_div = K - T_imp``;
  - the attention is averaged over heads, all patches are sorted by it in descending order;
    the first ``T_imp`` are the important tokens, the rest (``residual``) KEEP THAT
    DESCENDING-ATTENTION ORDER;
  - the features are divided by their L2 norm; while ``T_div > 0``:
    ``r = min(8, R - T_div)``, stop if ``r <= 0``; set A = residual[0::2], set B =
    residual[1::2]; each A token's score is its highest cosine to a B token; the ``r`` A
    tokens with the highest scores are dropped (``argsort(descending)[r:]`` keeps the
    others, in that score order), and the new residual is ``cat[A kept, B]``;
  - kept = important + residual; the LLM receives them through a boolean mask over the
    patches, i.e. in RASTER order. ``indices`` are therefore sorted ascending.

Deviations from the official code (none changes a selection the official code makes for
the LLaVA-1.5 grid, N = 576, except where it would crash or lose a token):

1. Odd residual length R. The official code indexes ``residual[..., ::2]`` (ceil(R/2)
   tokens) with ``torch.arange(B).unsqueeze(-1).expand(-1, R // 2 - r)`` next to
   ``distinct_indices`` of ceil(R/2) - r columns. For odd R these shapes only broadcast
   when ``R // 2 - r`` is 0 or 1: for ``R // 2 - r >= 2`` (e.g. K = 63 or K = 66 with
   ratio 0.5 on 576 patches) it raises a shape-mismatch error. Here the unpaired last
   token stays in set A, as ``[::2]`` puts it there, and competes like every other A
   token: all ceil(R/2) - r distinct A tokens are kept, so each round removes exactly r.
   This equals the official result where the official code runs (``R // 2 - r == 1``).
   Where ``R // 2 - r == 0`` (odd R <= 17; not reachable on 576 patches with ratio 0.5)
   the official broadcast silently drops the single surviving A token as well, leaving
   K - 1 tokens; here that token is kept, so the budget holds.
2. More removals than A tokens (``r > ceil(R/2)``, only when fewer than 16 residual tokens
   remain, e.g. on tiny test grids): the official ``expand`` gets a negative size and
   raises (it only works for a size of -1, where it removes all of A). Here at most
   ``len(A)`` tokens are removed per round (all of A, as the official code does in its
   -1 case) and the loop goes on until ``T_div`` tokens remain.
3. None in the rounding: the arithmetic runs in the trace's dtype, as the official code runs
   in the vision tower's (fp16 in LLaVA's evaluation), the CLS attention is computed by
   transformers' eager statements (``attention="official"``, the default:
   :func:`~litelvlm.pruning.scores.eager_cls_attention`), and the sorts are the same calls
   (``argsort(descending=True)``, not stable), so ties fall the same way on the same device.
   ``attention="project"`` is the earlier computation (one float32 row, cast). Because A and
   B alternate along the descending-attention order, swapping two near-equal attentions
   swaps their sets: the selection is sensitive to such rounding.
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
