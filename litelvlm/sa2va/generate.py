"""Sa2VA's ``answer="generate"``: the official greedy answer and the masks of the ``[SEG]`` tokens it
generates (bytedance/Sa2VA @ 9832e1a, ``modeling_sa2va_qwen.py`` ``predict_forward``).

Details: docs/sa2va.md (`litelvlm.sa2va.generate`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class RecordingHead(nn.Module):
    """An LM head that appends each input ``(1, h)`` (the last row's final normed state) to ``seen``."""

    def __init__(self, head: nn.Module, seen: list) -> None:
        super().__init__()
        self.head, self.seen = head, seen

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        self.seen.append(hidden.detach())
        return self.head(hidden)


@contextlib.contextmanager
def reading_generation(pipe) -> Iterator[list]:
    """Within: each forward's last-row state the mask head reads is appended to the list yielded -- the LM
    head's input (``pipe.lm_head`` records it), or the final norm's input where the abilities'
    ``seg_reads`` is ``norm_input`` -- and the decoder reads no [SEG] rows itself (``pipe.seg_token_id`` -1:
    the prompt holds none, and Sa2VA's rows are read after it)."""
    seen: list = []
    unnormed = pipe.abilities.seg_reads == "norm_input"
    seg = pipe.seg_token_id
    pipe._lm_head_inputs, pipe.seg_token_id = ([] if unnormed else seen), -1
    handle = pipe.language_model.norm.register_forward_pre_hook(
        lambda module, args: seen.append(args[0][:, -1].detach())) if unnormed else None
    try:
        yield seen
    finally:
        pipe._lm_head_inputs, pipe.seg_token_id = None, seg
        if handle is not None:
            handle.remove()


def generated_masks(pipe, prepared, out, seen: list):
    """``out`` (a generation's :class:`GroundingOutput`, no mask read yet) with the masks of its generated
    ``[SEG]`` rows (docs/sa2va.md): one image's union, or a video's first; none generated: an all-zero
    mask."""
    ids = out.generated
    steps = [t for t in range(len(ids)) if int(ids[t]) == pipe.seg_token_id and t + 1 < len(seen)]
    if prepared.video is not None:
        steps = steps[:1]
    if not steps:
        return out
    seg_hidden = torch.cat([seen[t + 1] for t in steps])                       # (R, h)
    prompts = pipe.seg_prompts(seg_hidden)
    low = pipe.decode_masks(prepared, prompts)
    logits = pipe.upscale_masks(prepared, low).amax(dim=0, keepdim=True)      # the union of the masks
    prompt_len = out.seq_len
    out.masks, out.mask_logits, out.low_res_logits = logits > 0, logits, low
    out.seg_hidden, out.prompt_embeddings = seg_hidden, prompts
    out.seg_positions = torch.tensor([prompt_len + t for t in steps], dtype=torch.long)
    return out


__all__ = ["RecordingHead", "generated_masks", "reading_generation"]
