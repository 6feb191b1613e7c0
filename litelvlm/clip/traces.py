"""What a CLIP backend returns: the traces of one vision forward and one text forward, their geometry, the
hook points that name what they expose, and the attention rows computed from q and k.

Layer conventions (stable names, used everywhere in the project):

* ``hidden_states[i]`` for ``i in 0..L``: 0 is the embedding output (after the pre-norm
  where the model has one), ``i`` is the output of encoder block ``i-1``, ``L`` the last.
* ``block`` ``b in 0..L-1`` is an encoder layer; its attention reads ``hidden_states[b]``.
  Negative block and layer indices count from the end, as in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..errors import UnsupportedModelError

if TYPE_CHECKING:
    from .base import ClipBackend

#: Hook-point names of the quantities a trace exposes, and the trace method each one reads:
#: ``hook_point(name, vision=..., text=...)`` resolves them (``{layer}``/``{block}`` are integers,
#: negative ones counting from the end).
HOOK_POINTS: dict[str, tuple[str, str]] = {
    "vision.hidden_states.{layer}": ("vision", "hidden_state"),
    "vision.blocks.{block}.attn.qkv": ("vision", "qkv"),
    "vision.blocks.{block}.attn.cls_row": ("vision", "cls_attention"),
    "vision.projected.{layer}": ("vision", "projected"),
    "text.hidden_states.{layer}": ("text", "hidden_state"),
    "text.blocks.{block}.attn.qkv": ("text", "qkv"),
    "text.blocks.{block}.attn.pattern": ("text", "attention"),
    "text.blocks.{block}.attn.eos_row": ("text", "eos_attention"),
    "text.text_embeds": ("text", "text_embeds"),
}


def hook_point(name: str, vision: VisionTrace | None = None, text: TextTrace | None = None):
    """The tensor (or q/k/v tuple) a :data:`HOOK_POINTS` name stands for, read from the given traces."""
    for template, (side, method) in HOOK_POINTS.items():
        rx = "^" + re.escape(template).replace(r"\{layer\}", r"(-?\d+)").replace(
            r"\{block\}", r"(-?\d+)") + "$"
        m = re.match(rx, name)
        if m is None:
            continue
        trace = vision if side == "vision" else text
        if trace is None:
            raise ValueError(f"hook point {name!r} needs a {side} trace")
        attr = getattr(trace, method)
        return attr(*(int(g) for g in m.groups())) if callable(attr) else attr
    raise KeyError(f"unknown hook point {name!r}; known: {', '.join(HOOK_POINTS)}")


@dataclass(frozen=True)
class Geometry:
    """The geometric part of a backend's image transform (what the mask must undergo too).

    ``mode`` is ``"shortest"`` (resize the shortest side to ``resize``, then centre-crop
    ``crop``), ``"squash"`` (resize both sides to ``crop``) or ``"longest"`` (resize the
    longest side, then pad). ``pad_to_square`` is LLaVA's "pad" preprocessing, applied first.
    ``crop_rounding`` names how the centre-crop offset is rounded: ``"floor"`` as in
    transformers' image processors, ``"round"`` as in torchvision's ``CenterCrop``.
    """

    mode: str
    resize: int
    crop: tuple[int, int]
    crop_rounding: str = "floor"
    pad_to_square: bool = False


@dataclass
class VisionTrace:
    """Everything one vision forward pass yields, for a batch of images."""

    hidden_states: tuple[torch.Tensor, ...]
    grid: tuple[int, int]
    num_prefix_tokens: int
    backend: ClipBackend = field(repr=False)

    @property
    def num_layers(self) -> int:
        """L, the number of encoder blocks."""
        return len(self.hidden_states) - 1

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def layer_index(self, layer: int) -> int:
        """Normalise a (possibly negative) index into ``hidden_states``."""
        n = len(self.hidden_states)
        if not -n <= layer < n:
            raise IndexError(f"layer {layer} out of range for {n} hidden states (0..{n - 1})")
        return layer % n

    def hidden_state(self, layer: int) -> torch.Tensor:
        """``hidden_states[layer]`` (B, S, W), prefix tokens included (0: embeddings)."""
        return self.hidden_states[self.layer_index(layer)]

    def patches(self, layer: int = -2) -> torch.Tensor:
        """Patch tokens (B, N, W) of ``hidden_states[layer]``, CLS excluded."""
        return self.hidden_states[layer][:, self.num_prefix_tokens:]

    def cls(self, layer: int = -2) -> torch.Tensor:
        """The CLS token (B, W) of ``hidden_states[layer]``."""
        self._need_cls()
        return self.hidden_states[layer][:, 0]

    def projected(self, layer: int = -2) -> torch.Tensor:
        """Patch tokens of a layer mapped into the joint space: ``visual_projection(post_layernorm(h))``."""
        return self.backend.project_patches(self.patches(layer))

    def qkv(self, block: int = -1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v (B, S, W) of an encoder block, all heads concatenated, before scaling."""
        b = block % self.num_layers
        return self.backend.vision_qkv(b, self.hidden_states[b])

    def cls_attention(self, block: int = -1) -> torch.Tensor:
        """The CLS query's attention over the patches (B, H, N) in an encoder block."""
        self._need_cls()
        q, k, _ = self.qkv(block)
        row = attention_rows(q[:, :1], k, self.backend.vision_heads)[:, :, 0]
        return row[..., self.num_prefix_tokens:]

    def _need_cls(self) -> None:
        if self.num_prefix_tokens < 1:
            raise UnsupportedModelError(
                f"{self.backend.name} has no CLS token; CLS attention and the context score are "
                "undefined for it (the similarity-based quantities still work)")


@dataclass
class TextTrace:
    """Everything one batched text forward pass yields, for T texts."""

    texts: list[str]
    input_ids: torch.Tensor
    eos_index: torch.Tensor
    text_embeds: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None
    truncated: list[bool]
    backend: ClipBackend = field(repr=False)
    #: per block, the [EOS] rows (T, H, S) captured during the forward pass (``encode_text(eos_rows=True)``)
    eos_rows: tuple[torch.Tensor, ...] | None = field(default=None, repr=False)

    @property
    def num_layers(self) -> int:
        return 0 if self.hidden_states is None else len(self.hidden_states) - 1

    def _hs(self) -> tuple[torch.Tensor, ...]:
        if self.hidden_states is None:
            raise ValueError("this TextTrace was made with hidden_states=False")
        return self.hidden_states

    def hidden_state(self, layer: int) -> torch.Tensor:
        """``hidden_states[layer]`` (T, S, W) of the text encoder (traces made with hidden states)."""
        return self._hs()[layer]

    def qkv(self, block: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v (T, S, W) of a text encoder block."""
        hs = self._hs()
        b = block % (len(hs) - 1)
        return self.backend.text_qkv(b, hs[b])

    def attention(self, block: int) -> torch.Tensor:
        """The full causal attention pattern (T, H, S, S) of a text block (texts are short)."""
        q, k, _ = self.qkv(block)
        return attention_rows(q, k, self.backend.text_heads, causal_offset=0)

    def eos_attention(self, block: int) -> torch.Tensor:
        """The [EOS] query's attention row (T, H, S) in a text block; keys after [EOS] get 0."""
        if self.eos_rows is not None:
            return self.eos_rows[block]
        q, k, _ = self.qkv(block)
        idx = self.eos_index.to(q.device)
        q_eos = q[torch.arange(q.shape[0], device=q.device), idx][:, None]
        return attention_rows(q_eos, k, self.backend.text_heads, query_positions=idx[:, None])[:, :, 0]



def attention_rows(q: torch.Tensor, k: torch.Tensor, num_heads: int, *,
                   query_positions: torch.Tensor | None = None,
                   causal_offset: int | None = None) -> torch.Tensor:
    """Softmax attention (B, H, Q, S) of query rows ``q`` (B, Q, W) over keys ``k`` (B, S, W).

    Causal masking: ``query_positions`` (B, Q) gives each query's position, or
    ``causal_offset=0`` means query j sits at position j. Without either, no mask.
    """
    B, Q, W = q.shape
    S = k.shape[1]
    d = W // num_heads
    qh = q.reshape(B, Q, num_heads, d).transpose(1, 2).float()
    kh = k.reshape(B, S, num_heads, d).transpose(1, 2).float()
    logits = qh @ kh.transpose(-1, -2) * d ** -0.5
    if causal_offset is not None:
        query_positions = (torch.arange(Q, device=q.device) + causal_offset)[None].expand(B, Q)
    if query_positions is not None:
        keys = torch.arange(S, device=q.device)
        allowed = keys[None, None, :] <= query_positions[:, :, None]
        logits = logits.masked_fill(~allowed[:, None], float("-inf"))
    return logits.softmax(-1).to(q.dtype)
