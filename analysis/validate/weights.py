"""The modules whose weights make a pipeline's model, and their storage bytes (``litelvlm validate``'s
memory).

The family contract (``litelvlm.lvlm.family.GroundingPipeline``) names no such list, so :func:`weight_modules`
reads what any pipeline exposes: each attribute that is a ``torch.nn.Module``, or a backend wrapper handing
one out through ``modules()`` (GLaMM's CLIP backends). GLaMM: ``model`` (LLM, projector, SAM) and ``clip``
(vision and text towers); UniPixel: ``qwen`` (Qwen2.5-VL), ``seg_head`` and ``sam2``. :func:`weights_mb`
counts every storage once (``litelvlm.machine.memory.storage_bytes``), so a module held by two attributes, or
tied weights, are not counted twice.
"""

from __future__ import annotations

import torch

from litelvlm.machine.memory import storage_bytes


def weight_modules(pipe) -> dict[str, torch.nn.Module]:
    """{attribute name: module} of every module the pipeline holds, in attribute order (see the module doc); a
    private attribute is named without its underscore (UniPixel's paired CLIP, ``_clip``, loaded on first
    use)."""
    out = {}
    for attr, value in vars(pipe).items():
        name = attr.lstrip("_")
        if isinstance(value, torch.nn.Module):
            out[name] = value
        elif not isinstance(value, type) and callable(getattr(value, "modules", None)):
            module = value.modules()
            if isinstance(module, torch.nn.Module):
                out[name] = module
    return out


def weights_mb(pipe) -> dict:
    """``{"parts": {attribute: MiB}, "total": MiB}``: the storage bytes of each module's parameters, buffers
    and quantization states, and of all of them together (each storage once), in MiB."""
    modules = weight_modules(pipe)
    return {"parts": {k: storage_bytes(m) / 2**20 for k, m in modules.items()},
            "total": storage_bytes(*modules.values()) / 2**20}


__all__ = ["weight_modules", "weights_mb"]
