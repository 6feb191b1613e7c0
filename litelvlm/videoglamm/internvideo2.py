"""InternVideo2's vision encoder as VideoGLaMM runs it: a small torch port of what inference needs.

Official source: mbzuai-oryx/VideoGLaMM @ 6b15b1e, ``model/videogpt_plus/model/internvideo/internvideo2.py``.

Details: docs/videoglamm.md (``litelvlm.videoglamm.internvideo2``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import InternVideo2Size

#: ``vision_encoder.*`` module prefixes of the official model that the inference path never runs.
UNUSED = ("img_pos_embed", "clip_pos_embed", "clip_img_pos_embed", "clip_projector.", "clip_decoder.",
          "final_clip_decoder.")


class RMSNorm(nn.Module):
    """internvideo2.py L134-145."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise in float32, cast back, scale."""
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * h.to(dtype)


class LayerScale(nn.Module):
    """internvideo2.py L148-163 with ``force_fp32`` True."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(1e-5 * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x * gamma`` in float32, cast back."""
        return (x.float() * self.gamma.float()).to(x.dtype)


class Attention(nn.Module):
    """``Attention._naive_attn`` with qk normalisation (internvideo2.py L166-209; qkv without bias)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.q_norm = RMSNorm(dim)
        self.k_norm = RMSNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) -> (B, N, C)."""
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        _, H, _, D = q.shape
        q = self.q_norm(q.transpose(1, 2).flatten(-2, -1)).view(B, N, H, D).transpose(1, 2)
        k = self.k_norm(k.transpose(1, 2).flatten(-2, -1)).view(B, N, H, D).transpose(1, 2)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    """internvideo2.py L238-262 (exact GELU)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """fc1, GELU, fc2."""
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """internvideo2.py L265-316, the non-fused path."""

    def __init__(self, dim: int, num_heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = RMSNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = RMSNorm(dim)
        self.mlp = Mlp(dim, hidden)
        self.ls2 = LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-norm residual attention then MLP."""
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """internvideo2.py L319-351 (tubelet 1, no norm)."""

    def __init__(self, size: InternVideo2Size) -> None:
        super().__init__()
        p = size.patch_size
        self.proj = nn.Conv3d(3, size.embed_dim, kernel_size=(1, p, p), stride=(1, p, p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, T, HW, C)."""
        return self.proj(x).flatten(3).permute(0, 2, 3, 1)


class InternVideo2Encoder(nn.Module):
    """``PretrainInternVideo2`` on VideoGLaMM's path (docs/videoglamm.md); names match the official module."""

    def __init__(self, size: InternVideo2Size) -> None:
        super().__init__()
        self.size = size
        self.patch_embed = PatchEmbed(size)
        tokens = size.num_frames * size.grid ** 2 + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, size.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, size.embed_dim))
        self.blocks = nn.ModuleList(Block(size.embed_dim, size.num_heads, size.mlp_hidden)
                                    for _ in range(size.depth))

    @property
    def dtype(self) -> torch.dtype:
        return self.patch_embed.proj.weight.dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, 1 + T*HW, C): the output of block ``depth - 2`` (L585-651)."""
        x = self.patch_embed(x.type(self.dtype))
        B, T, L, C = x.shape
        x = torch.cat((self.cls_token.expand(B, -1, -1), x.reshape(B, T * L, C)), dim=1)
        x = x + self.pos_embed
        for idx, blk in enumerate(self.blocks):
            x = blk(x)
            if idx == len(self.blocks) - 2:
                break
        return x


class InternVideo2Tower(nn.Module):
    """``InternVideo2_Stage2V`` (utils.py L146-238): the tower ``encode_videos`` calls on (chunks, 4, C, H,
    W)."""

    def __init__(self, size: InternVideo2Size) -> None:
        super().__init__()
        self.vision_encoder = InternVideo2Encoder(size)

    @property
    def dtype(self) -> torch.dtype:
        return self.vision_encoder.dtype

    @torch.no_grad()
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) -> (B, 1 + T*HW, C) (utils.py L229-238: permute to (B, C, T, H, W), cast)."""
        return self.vision_encoder(image.permute(0, 2, 1, 3, 4).to(self.dtype))


__all__ = ["UNUSED", "InternVideo2Encoder", "InternVideo2Tower"]
