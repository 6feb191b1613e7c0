"""VideoGLaMM's eager attention with its score tensors in reused scratch memory (CPU, float32), bit for bit
the same.

Phi-3 runs eager attention (transformers 4.41 has no SDPA for it;
:func:`~litelvlm.videoglamm.config.phi3_config`), so every layer of every prefill makes (1, heads, S, S)
float32 score tensors: the product, the masked product and the softmax, 175 MB each on the tiny preset's 4
heads at S ~ 3380 (1.4 GB on the real 32). glibc serves blocks that large with a fresh ``mmap`` (its threshold
tops out at 32 MB) and unmaps them when freed, so each prefill faulted in every page again: ``eval-video``
spent half its CPU time in the kernel. :func:`scratch_attention` computes the same operations (transformers'
``eager_attention_forward``: the product, ``* scaling``, ``+ mask``, the float32 softmax, the product with the
values) in place, into two buffers that one :class:`Scratch` keeps from one prefill to the next (grown when a
longer prompt needs more), and eager's (1, 1, S, S) float mask into a third (:func:`scratch_mask`), so the
pages are touched once per run. Elsewhere (another device or dtype, training or gradients, attention weights
asked for) it is transformers' own function.
:func:`scratch_eager` switches a Phi-3 to it for one forward.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask, sdpa_mask
from transformers.models.phi3.modeling_phi3 import eager_attention_forward, repeat_kv

#: the name the scratch attention is registered under (transformers' attention and mask interfaces)
NAME = "litelvlm_scratch_eager"


class Scratch:
    """Flat float32 buffers (two for the scores, one for the mask), grown to the largest seen with a quarter's
    headroom (a prompt a few tokens longer reuses them), viewed at each call's shape."""

    def __init__(self) -> None:
        self.flat: list[torch.Tensor] = []
        self.flat_mask: torch.Tensor | None = None

    @staticmethod
    def _fits(old: torch.Tensor | None, n: int, device: torch.device) -> bool:
        return old is not None and old.numel() >= n and old.device == device

    @staticmethod
    def _size(old: torch.Tensor | None, n: int) -> int:
        return max(n, 0 if old is None else old.numel() * 5 // 4)

    def views(self, shape: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Two contiguous float32 tensors of ``shape`` on ``device`` over the kept buffers (grown when too
        small)."""
        n = math.prod(int(s) for s in shape)
        if not self._fits(self.flat[0] if self.flat else None, n, device):
            size = self._size(self.flat[0] if self.flat else None, n)
            self.flat = []   # the old buffers go before the larger ones are made
            self.flat = [torch.empty(size, dtype=torch.float32, device=device) for _ in range(2)]
        return self.flat[0][:n].view(shape), self.flat[1][:n].view(shape)

    def mask(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """A contiguous float32 tensor of ``shape`` over the kept mask buffer (grown when too small)."""
        n = math.prod(int(s) for s in shape)
        if not self._fits(self.flat_mask, n, device):
            size = self._size(self.flat_mask, n)
            self.flat_mask = None
            self.flat_mask = torch.empty(size, dtype=torch.float32, device=device)
        return self.flat_mask[:n].view(shape)


#: the scratch of the forward running inside :func:`scratch_eager` (its mask is made there)
_ACTIVE: list[Scratch] = []


def scratch_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, scaling: float, dropout: float = 0.0, **kwargs):
    """transformers' ``eager_attention_forward`` (``models/phi3/modeling_phi3.py``) with the scores in
    ``module``'s model's :class:`Scratch` on a CPU float32 inference forward (the same values; no attention
    weights returned); transformers' own function otherwise."""
    scratch = getattr(module, "_litelvlm_scratch", None)
    if scratch is None or module.training or torch.is_grad_enabled() or query.device.type != "cpu" \
            or query.dtype != torch.float32 or kwargs.get("output_attentions"):
        return eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout, **kwargs)
    key_states = repeat_kv(key, module.num_key_value_groups)
    value_states = repeat_kv(value, module.num_key_value_groups)
    scores, probs = scratch.views((*query.shape[:-1], key_states.shape[-2]), query.device)
    torch.matmul(query, key_states.transpose(2, 3), out=scores)
    scores.mul_(scaling)
    if attention_mask is not None:
        scores.add_(attention_mask)
    torch.softmax(scores, -1, out=probs)
    attn_output = torch.matmul(probs, value_states)
    return attn_output.transpose(1, 2).contiguous(), None


def scratch_mask(**kwargs) -> torch.Tensor | None:
    """transformers' ``eager_mask`` (``masking_utils.py``: ``sdpa_mask``'s boolean mask as 0 / the dtype's
    minimum) written into the active :class:`Scratch`'s mask buffer (the same values); ``eager_mask`` itself
    otherwise."""
    dtype = kwargs.get("dtype", torch.float32)
    if not _ACTIVE or dtype != torch.float32:
        return eager_mask(**kwargs)
    kwargs = {k: v for k, v in kwargs.items() if k not in ("allow_is_causal_skip", "dtype")}
    mask = sdpa_mask(allow_is_causal_skip=False, **kwargs)
    if mask is None:
        return None
    out = _ACTIVE[-1].mask(tuple(mask.shape), mask.device)
    low = torch.full((), torch.finfo(dtype).min, device=mask.device, dtype=dtype)
    return torch.where(mask, torch.zeros((), device=mask.device, dtype=dtype), low, out=out)


def _register() -> None:
    AttentionInterface.register(NAME, scratch_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, scratch_mask)   # eager's own mask, in the scratch


@contextlib.contextmanager
def scratch_eager(model: nn.Module, scratch: Scratch) -> Iterator[None]:
    """Run ``model`` (a Phi-3 with eager attention) on :func:`scratch_attention` with ``scratch`` for the
    block; the model's own attention (and its config) as before afterwards. Another attention is left as it
    is."""
    config = model.config
    if config._attn_implementation != "eager":
        yield
        return
    _register()
    layers = [m for m in model.modules() if hasattr(m, "num_key_value_groups")]
    for m in layers:
        m._litelvlm_scratch = scratch
    config._attn_implementation = NAME
    _ACTIVE.append(scratch)
    try:
        yield
    finally:
        _ACTIVE.pop()
        config._attn_implementation = "eager"
        for m in layers:
            del m._litelvlm_scratch


__all__ = ["NAME", "Scratch", "scratch_attention", "scratch_eager", "scratch_mask"]
