"""The modules whose weights make a pipeline's model, and their storage bytes (``litelvlm validate``'s
memory).

:func:`weight_modules` (``litelvlm.machine.memory``) reads what any pipeline exposes: GLaMM: ``model``
(LLM, projector, SAM) and ``clip`` (vision and text towers); UniPixel: ``qwen`` (Qwen2.5-VL), ``seg_head``
and ``sam2``. :func:`weights_mb` counts every storage once (``litelvlm.machine.memory.storage_bytes``), so a
module held by two attributes, or tied weights, are not counted twice.
"""

from __future__ import annotations

from litelvlm.machine.memory import storage_bytes, weight_modules


def weights_mb(pipe) -> dict:
    """``{"parts": {attribute: MiB}, "total": MiB}``: the storage bytes of each module's parameters, buffers
    and quantization states, and of all of them together (each storage once), in MiB."""
    modules = weight_modules(pipe)
    return {"parts": {k: storage_bytes(m) / 2**20 for k, m in modules.items()},
            "total": storage_bytes(*modules.values()) / 2**20}


__all__ = ["weight_modules", "weights_mb"]
