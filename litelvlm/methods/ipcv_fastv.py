"""IPCV + FastV and IPCV + DART, the official compositions of IPCV with an LLM-side method (Perkzi/IPCV at
commit 29726f044f0f9c0c2be4eb0005888ddeb5fa188e: ``InternVL2/InternVL2_IPCV/modeling_internvl_chat_sparse_
IPCV_FastV.py`` and ``modeling_internvl_chat_sparse_IPCV.py`` with ``llm_method=fastv`` / ``dart``; the
scripts' ``pruned_layer`` 3 and equal ratios ``vit_reduction_ratio`` = ``reduction_ratio`` 0.65).

The vision tower runs IPCV (:mod:`.ipcv`: its rule on InternViT and CLIP; the Qwen variants take the Qwen2-VL
rule, :mod:`.ipcv_fastv_qwen`) at the budget's share K / N, which gives the LLM all N tokens back; FastV
(:mod:`.fastv`) or DART (:mod:`.dart`) then keeps K of them from LLM layer ``layer`` (default 3, the IPCV
scripts' ``pruned_layer``). The LLM-side parts are this project's FastV and DART, each tested against its own
official code; the IPCV repository's copies of them are not transcribed here.
"""

from __future__ import annotations

from ..llm.context import LLMContext
from ..llm.pruned_forward import pruned_at_layer, pruned_forward
from ..method import Method, Option
from ..pruning import Selection
from .dart import dart_select
from .fastv import fastv_select
from .ipcv import IPCV_OPTIONS, TOP_K, ipcv_tokens

#: the IPCV scripts' LLM pruning layer (``pruned_layers=(3)``)
LLM_LAYER = 3

#: the LLM-side layer and IPCV's options (``--ipcv-llm-layer``, ``--ipcv-layer``, ...)
COMPOSED_OPTIONS = (
    Option("layer", "ipcv_llm_layer", "1..L", default=LLM_LAYER,
           help="IPCV + FastV / DART: the LLM-side method prunes after LLM layer K-1 (IPCV's pruned_layer)"),
) + IPCV_OPTIONS


def ipcv_fastv_select(ctx: LLMContext, budget: int, *, layer: int = LLM_LAYER, vit_layer: int | None = None,
                      as_layers: int | None = None, top_k: int = TOP_K) -> Selection:
    """FastV's K tokens among the N that IPCV's tower gave back (the tower's options read by
    ``tower_tokens``)."""
    return fastv_select(ctx, budget, layer=layer)


def ipcv_dart_select(ctx: LLMContext, budget: int, *, layer: int = LLM_LAYER, vit_layer: int | None = None,
                     as_layers: int | None = None, top_k: int = TOP_K) -> Selection:
    """DART's K tokens (its official 4 + 4 pivots) among the N that IPCV's tower gave back."""
    return dart_select(ctx, budget, layer=layer)


def composed_attention_weights(num_layers: int) -> tuple[int, ...]:
    """The layer whose attention weights IPCV + FastV reads at its default K: FastV's, K-1."""
    return (LLM_LAYER - 1,)


def composed_schedule(budget: int, num_visual: int, num_layers: int, *, layer: int = LLM_LAYER,
                      **tower: object) -> tuple[tuple[int, int], ...]:
    """N visual tokens up to LLM layer K-1, K from layer K (the tower's pruning is no LLM token)."""
    return pruned_at_layer(budget, num_visual, num_layers, layer=layer)


IPCV_FASTV = Method("llm-layer", ipcv_fastv_select, forward=pruned_forward, tower_tokens=ipcv_tokens,
                    schedule=composed_schedule, ranks=True, positions="keep", host_sync=True,
                    attention_weights=composed_attention_weights,
                    reads_vision_blocks=True,
                    name="ipcv+fastv", options=COMPOSED_OPTIONS,
                    description=("IPCV + FastV: IPCV inside the vision tower (all N tokens given back), then "
                                 "FastV keeps K from LLM layer 3"))
