"""One image's pass through Qwen2.5-VL's vision tower, for the methods' Qwen2.5-VL variants to hook or re-run.

:class:`QwenVision` holds the tower and the processor's inputs of one image (or frame group); ``block_inputs``
captures, in one ordinary forward, what chosen blocks' attention modules receive (forward pre-hooks, removed
in ``finally``), and ``block_attention`` recomputes one block's softmax attention from them (the vision RoPE
applied, a window block's attention masked to its windows), as :mod:`litelvlm.clip.traces` does for CLIP.
Everything is in the tower's window order at patch level; ``to_llm_order`` averages the patches of each merged
token and puts the tokens in the LLM's order (``argsort(window_index)``, :mod:`litelvlm.qwen_vision.grid`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision

from .grid import TokenGrid, window_index


@dataclass
class QwenVision:
    """The vision tower (``Qwen2_5_VisionTransformerPretrainedModel``) and one image's processor inputs."""

    visual: torch.nn.Module
    pixel_values: torch.Tensor      # (patches, C * T * 14 * 14) in patchify order
    grid_thw: torch.Tensor          # (groups, 3) patches in time, height, width

    @property
    def merge_unit(self) -> int:
        """Patches per merged token (4)."""
        return int(self.visual.spatial_merge_size) ** 2

    def grids(self) -> list[TokenGrid]:
        """The patch grid of each image or frame group."""
        v = self.visual
        return [TokenGrid.from_thw(g, patch=v.patch_size, merge=v.spatial_merge_size) for g in self.grid_thw]

    def window_order(self) -> torch.Tensor:
        """(M,) the LLM index of each merged token in the tower's window order (``window_index``)."""
        return window_index(self.grids(), window_size=self.visual.window_size)

    def to_llm_order(self, per_patch: torch.Tensor) -> torch.Tensor:
        """(..., P) values per patch in window order -> (..., M) per merged token (mean of its patches), LLM
        order."""
        per_token = per_patch.reshape(*per_patch.shape[:-1], -1, self.merge_unit).mean(-1)
        return per_token[..., torch.argsort(self.window_order().to(per_token.device))]

    def block_inputs(self, blocks: list[int]) -> dict[int, dict]:
        """{block: its attention's normed input ``x``, ``cu_seqlens`` and ``position_embeddings``} from one
        forward of the tower (``blocks`` may be negative)."""
        seen: dict[int, dict] = {}
        handles = []
        for b in sorted({b % len(self.visual.blocks) for b in blocks}):
            def keep(module, args, kwargs, b=b) -> None:
                seen[b] = dict(x=args[0] if args else kwargs["hidden_states"],
                               cu_seqlens=kwargs["cu_seqlens"],
                               position_embeddings=kwargs["position_embeddings"])

            handles.append(self.visual.blocks[b].attn.register_forward_pre_hook(keep, with_kwargs=True))
        try:
            self.visual(self.pixel_values, grid_thw=self.grid_thw)
        finally:
            for h in handles:
                h.remove()
        return seen

    def block_qk(self, block: int, seen: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(q, k, v), each (heads, P, d), of block ``block`` from its captured inputs; q and k after the
        vision RoPE."""
        attn = self.visual.blocks[block % len(self.visual.blocks)].attn
        x = seen["x"]
        s = x.shape[0]
        q, k, v = attn.qkv(x).reshape(s, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
        cos, sin = seen["position_embeddings"]
        q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
        return q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)

    def block_attention(self, block: int, seen: dict) -> torch.Tensor:
        """(heads, P, P) block ``block``'s softmax attention (masked to its windows, or per image for a
        full-attention block) from its captured inputs, in the block's dtype (softmax in float32)."""
        q, k, _ = self.block_qk(block, seen)
        s = q.shape[1]
        mask = torch.full((1, s, s), torch.finfo(q.dtype).min, device=q.device, dtype=q.dtype)
        cu = seen["cu_seqlens"].tolist()
        for lo, hi in zip(cu[:-1], cu[1:]):
            mask[..., lo:hi, lo:hi] = 0
        weights = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(q.size(-1)) + mask
        return torch.softmax(weights, dim=-1, dtype=torch.float32).to(q.dtype)


__all__ = ["QwenVision"]
