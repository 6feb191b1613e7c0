"""``--attn flash``: transformers' SDPA attention restricted to PyTorch's FlashAttention backend.

Registered through transformers' public extension points, no patching: :func:`register` adds
:data:`NAME` to ``transformers.AttentionInterface`` (:func:`sdpa_fa_attention`: transformers' own
``sdpa_attention_forward`` inside ``torch.nn.attention.sdpa_kernel(SDPBackend.FLASH_ATTENTION)``) and to
``transformers.masking_utils.AttentionMaskInterface`` (transformers' ``sdpa_mask``, so the masks are SDPA's:
none for a plain causal prefill, whose kernel then runs ``is_causal``). Only the LLM's decoder runs it
(:func:`litelvlm.lvlm.numerics.set_attention`); CLIP, SAM and the vision towers run ``sdpa`` when ``flash``
is asked.

The name holds no "flash": transformers takes any implementation whose name contains it for a
``flash_attention_*`` one (``is_flash_attention_requested``) and changes its calls for it (Qwen2.5-VL's vision
tower passes packed ``cu_seqlens`` instead of one call per window, the masks are made for flash_attn), which
SDPA would not read.

The kernel takes no explicit mask: a forward that needs one (padded batches, a sliding window shorter than the
sequence) is refused with one line (:class:`~litelvlm.errors.LiteLVLMError`) rather than PyTorch's "No
available kernel". It runs on CUDA in float16 / bfloat16 only (:func:`check_flash`).
"""

from __future__ import annotations

import functools

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from ..errors import LiteLVLMError

#: the attention implementation's name in transformers' interfaces (``config._attn_implementation``)
NAME = "litelvlm_sdpa_fa"
#: the dtypes PyTorch's FlashAttention kernel computes in
FLASH_DTYPES = (torch.float16, torch.bfloat16)


def sdpa_fa_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, *args, **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' ``sdpa_attention_forward`` with SDPA held to its FlashAttention backend."""
    if attention_mask is not None:
        raise LiteLVLMError(f"--attn flash: {type(module).__name__} needs an explicit attention mask here "
                            f"(shape {tuple(attention_mask.shape)}: padding or a sliding window), which "
                            "PyTorch's FlashAttention kernel does not take; use --attn sdpa")
    if query.device.type != "cuda" or query.dtype not in FLASH_DTYPES:
        raise LiteLVLMError(f"--attn flash: {type(module).__name__} computes in "
                            f"{str(query.dtype).replace('torch.', '')} on {query.device}; PyTorch's "
                            "FlashAttention kernel needs float16 or bfloat16 on CUDA")
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        return sdpa_attention_forward(module, query, key, value, attention_mask, *args, **kwargs)


@functools.cache
def register() -> str:
    """Register :data:`NAME` (once per process) in transformers' attention and mask interfaces; returns it."""
    AttentionInterface.register(NAME, sdpa_fa_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME


def check_flash(model: torch.nn.Module, what: str = "the LLM") -> None:
    """Refuse (one line) ``--attn flash`` for ``model`` off CUDA or outside float16 / bfloat16."""
    param = next(model.parameters(), None)
    if param is None:
        return
    if param.device.type != "cuda":
        raise LiteLVLMError(f"--attn flash runs PyTorch's FlashAttention kernel, which needs CUDA; {what} is "
                            f"on device {param.device}")
    if param.dtype not in FLASH_DTYPES:
        raise LiteLVLMError(f"--attn flash needs float16 or bfloat16 weights (FlashAttention has no "
                            f"{str(param.dtype).replace('torch.', '')} kernel): give --dtype bfloat16")


__all__ = ["FLASH_DTYPES", "NAME", "check_flash", "register", "sdpa_fa_attention"]
