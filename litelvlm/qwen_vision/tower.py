"""Qwen2.5-VL's vision tower as a vision-tower stage (:class:`~litelvlm.pruning.tower.TowerContext`): its
blocks run as their attention and MLP branches on any subset of the patches, for a rule that prunes inside
the tower and gives every token back (IPCV).

Everything is at patch level in the tower's window order (one sequence, B = 1, no prefix), as the tower's own
forward runs it: the patch embedding, the window permutation of the states and the rotary tables,
``fullatt_block_indexes`` attending per image (``cu_seqlens``) and the other blocks per window
(``cu_window_seqlens``), the merger and ``argsort(window_index)`` at the end; with every patch kept the output
is the tower's own. A subset of the patches keeps its rows of the rotary tables, and each block's bounds are
recounted over the kept rows (:func:`kept_bounds`): per image as the official Qwen2-VL IPCV code recounts its
frames (``searchsorted(cu_seqlens, keep, right=False) - 1``, which counts a kept first token of an image in
the image before it), and per window exactly (each kept token attends to the kept tokens of its own window:
this project's mapping of the rule onto window attention, which the official Qwen2-VL tower does not have).
"""

from __future__ import annotations

import torch

from ..pruning.tower import TowerContext
from .index import tower_index
from .vision import QwenVision


def kept_bounds(cu: torch.Tensor, rows: torch.Tensor, official: bool) -> torch.Tensor:
    """The cumulative bounds of the segments ``cu`` over the kept (sorted) ``rows``, empty segments dropped:
    ``official`` as the official code counts frames (``searchsorted`` left, minus 1, clamped), else each row
    in the segment holding it."""
    cu = cu.cpu().long()
    segments = len(cu) - 1
    where = torch.searchsorted(cu, rows.cpu().long(), right=not official) - 1
    counts = torch.bincount(where.clamp(min=0, max=segments - 1), minlength=segments)
    bounds = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    return torch.unique_consecutive(bounds).to(torch.int32)


class QwenTower(TowerContext):
    """The stage on one image's (or frame group's) pass through Qwen2.5-VL's tower (``vision``); ``to_llm``:
    the merged tokens are the LLM's visual tokens as they are."""

    def __init__(self, vision: QwenVision):
        self.vision, self.visual = vision, vision.visual
        v = self.visual
        self.index = tower_index(v, vision.grid_thw)
        self.flash = "max_seqlen" in self.index
        self.full_blocks = set(v.fullatt_block_indexes)
        self.prefix = 0
        self.total_blocks = self.num_blocks = len(v.blocks)
        self.num_visual = int(vision.pixel_values.shape[0])
        self.num_tokens = self.num_visual // vision.merge_unit
        self.to_llm = lambda sel: (sel.features, sel.indices)
        self._embedded: tuple | None = None

    def _embedding(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the block-0 input (P, W), cos, sin) in window order, as the tower's forward computes them."""
        if self._embedded is None:
            v, w = self.visual, self.index["window_index"]
            x = v.patch_embed(self.vision.pixel_values)
            p = x.shape[0]
            x = v.permute_input_for_window_attn(x, w, seq_len=p)
            cos, sin = v.rotary_pos_emb(x, self.index["position_ids"])
            self._embedded = (x, v.permute_input_for_window_attn(cos, w, seq_len=p),
                              v.permute_input_for_window_attn(sin, w, seq_len=p))
        return self._embedded

    def embed(self) -> torch.Tensor:
        return self._embedding()[0][None]

    def attend(self, index: int, x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        _, cos, sin = self._embedding()
        full = index in self.full_blocks
        cu = self.index["cu_seqlens" if full else "cu_window_seqlens"]
        if rows is not None:
            rows = rows[0]
            cu = kept_bounds(cu, rows, official=full)
            cos, sin = cos[rows.to(cos.device)], sin[rows.to(sin.device)]
        kw = {}
        if self.flash:
            cu = cu.to(x.device)
            kw["max_seqlen"] = int((cu[1:] - cu[:-1]).max())
        block = self.visual.blocks[index]
        h = x[0]
        return (h + block.attn(block.norm1(h), cu_seqlens=cu, position_embeddings=(cos, sin), **kw))[None]

    def feed(self, index: int, x: torch.Tensor) -> torch.Tensor:
        block = self.visual.blocks[index]
        return x + block.mlp(block.norm2(x))

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        merged = self.visual.merger(x[0])
        return merged[torch.argsort(self.index["window_index"].to(merged.device))]


__all__ = ["QwenTower", "kept_bounds"]
