"""Sa2VA-InternVL3's video path: the first five frames to the LLM, each one 448-px image in a block of its
own, the ``[SEG]`` prompt on each of them, SAM 2's memory over the rest.

bytedance/Sa2VA @9832e1a, ``modeling_sa2va_chat.py`` ``predict_forward`` video branch (L627-648, L703-708,
L760-770), as ``sa2va_eval_ref_vos.py`` L188-193 calls it with every frame: the first ``min(5, T)`` frames go
through ``self.transformer`` whole (resized to 448 x 448, no tiles), 256 ``<IMG_CONTEXT>`` each, their
``<img>...</img>`` blocks joined by ``\\n`` in place of ``<image>`` in the Ref-VOS question; SAM 2 sees every
frame as on Sa2VA-Qwen2.5-VL (the same ``sam2.py``: :mod:`litelvlm.sa2va.video`, whose ``propagate`` and
``video_parts`` run here).

Pruning a video is this project's adaptation (:data:`VIDEO_PRUNING`, :func:`joined`).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..video import joined_rows

#: how a video's LLM input is pruned (this project's adaptation)
VIDEO_PRUNING = ("this project's adaptation: a pruned video (K < N) joins its min(5, T) frames' token blocks "
                 "into one (the </img>, \\n, <img> rows between them dropped, every row keeping its official "
                 "1-D position) and the method keeps K of the N visual tokens over the whole video; the "
                 "unpruned run (none) and any method at K = N run the official prompt")


def joined(prepared):
    """A video's prompt with its frames' blocks joined into one (:data:`VIDEO_PRUNING`): the rows between the
    first and the last visual token that are no visual token dropped, every other row keeping its position in
    the official prompt (``joined_positions``); the same input if already joined."""
    if prepared.joined_positions is not None:
        return prepared
    keep, dropped = joined_rows(prepared)
    rows = torch.arange(len(keep))
    return replace(prepared, input_ids=prepared.input_ids[keep],
                   mm_token_type_ids=prepared.mm_token_type_ids[keep], joined_positions=rows[keep][None],
                   prompt_len=None if prepared.prompt_len is None else prepared.prompt_len - dropped)


__all__ = ["VIDEO_PRUNING", "joined"]
