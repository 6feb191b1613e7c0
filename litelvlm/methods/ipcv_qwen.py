"""IPCV's Qwen2.5-VL variant: the official Qwen2-VL rule inside Qwen2.5-VL's vision tower.

A statement-level port of the official Qwen2-VL code, Perkzi/IPCV at commit
29726f044f0f9c0c2be4eb0005888ddeb5fa188e, ``Qwen2-VL/Qwen2VL_IPCV/modeling_qwen2_vl_IPCV.py``
(``Qwen2-VL/eval_scripts/lmms_eval_multi.sh``: ``vit_pruned_layer`` 3, ``AS_layer`` 7, ``Top_K`` 10):
``IPCV_ViT.forward`` L1139-1297 and ``Qwen2VLVisionBlock.forward`` L393-437, the same rule as the InternVL2
code (:mod:`.ipcv`) on one sequence of every frame's patches (no prefix; ``get_retained_image_token_diff``
L1299-1315 ranks the patches of all frames together), with the frames' attention bounds recounted over the
kept patches (L1236-1245) and the kept patches' rows of the rotary table (L1218); the AS blocks attend over
the rebuilt sequence with the original bounds and table (L1252-1254).

The budget K keeps ``4K`` of the ``4N`` patches (the official ``vit_reduction_ratio`` ``1 - K / N``; the
official ``int`` of the float product can fall one short). Qwen2.5-VL's tower differs from Qwen2-VL's in its
window attention (:mod:`litelvlm.qwen_vision.tower`): the rule runs in the tower's window order, the
full-attention blocks recount their images as the official code recounts its frames, and the window blocks
recount their windows exactly, each kept patch attending to the kept patches of its own window (this
project's mapping; the AS blocks attend per window over the rebuilt sequence, as the tower does unpruned).
On a tower whose blocks all attend per image (the official Qwen2-VL architecture) it is the official code.
"""

from __future__ import annotations

import torch

from ..method import Method
from ..pruning import Selection
from ..pruning.tower import TowerContext
from .ipcv import TOP_K, all_tokens, ipcv_tokens

#: the official Qwen2-VL settings (``Qwen2-VL/eval_scripts/lmms_eval_multi.sh``)
QWEN_LAYER = 3
QWEN_AS_LAYERS = 7


def ipcv_qwen_tokens(tower: TowerContext, budget: int, *, vit_layer: int | None = None,
                     as_layers: int | None = None, top_k: int = TOP_K) -> torch.Tensor:
    """(N, h) the LLM's visual tokens of IPCV's Qwen2-VL rule at budget K."""
    return ipcv_tokens(tower, budget, vit_layer=vit_layer, as_layers=as_layers, top_k=top_k,
                       defaults=(QWEN_LAYER, QWEN_AS_LAYERS))


def ipcv_qwen(ctx: TowerContext, budget: int, *, vit_layer: int | None = None, as_layers: int | None = None,
              top_k: int = TOP_K) -> Selection:
    """IPCV alone on Qwen2.5-VL's tower: all N merged tokens, from a tower run keeping 4K patches."""
    feats = ipcv_qwen_tokens(ctx, budget, vit_layer=vit_layer, as_layers=as_layers, top_k=top_k)
    return Selection(indices=torch.arange(ctx.num_tokens), features=feats)


IPCV_QWEN = Method("vision-tower", ipcv_qwen, host_sync=True, reads_vision_blocks=True, restores_tokens=True,
                   schedule=all_tokens,
                   name="ipcv", backbone="qwen2.5-vl",
                   description=("IPCV (Qwen2-VL rule) inside Qwen2.5-VL's vision tower, window attention "
                                "recounted per window"))
