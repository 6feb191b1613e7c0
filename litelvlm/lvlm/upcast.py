"""Float32 arithmetic in the LLM's decoder layers and SAM's image-encoder layers, weights kept in bfloat16
(this project's option, for CPUs without native bfloat16).

A CPU with only AVX2 emulates bfloat16 matrix products: one GLaMM-7B decoder layer on 706 tokens took
17.8 s against 1.6 s upcast, on an Intel Xeon capped at AVX2 (2 threads; ``benchmarks/bench_layer_dtype.py``,
docs/validate.md). With
:func:`upcast_layers`, each decoder layer casts its weights to float32 when it is called (a forward
pre-hook), runs in float32 on float32 inputs, and drops the copy afterwards (a forward hook restores the
bfloat16 tensors, bit for bit, and casts the output back). Memory grows by one layer's float32 copy.
The results differ from bfloat16 arithmetic at bfloat16's rounding: this is not the official numerics.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..errors import LiteLVLMError
from ..switches import LAYER_DTYPES
from .fastest_dtype import fastest_dtype


def _cast(obj, dtype: torch.dtype):
    """Floating tensors in ``obj`` (nested tuples, lists and dicts) cast to ``dtype``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, (tuple, list)):
        return type(obj)(_cast(o, dtype) for o in obj)
    if isinstance(obj, dict):
        return {k: _cast(v, dtype) for k, v in obj.items()}
    return obj


class _Upcast:
    """The hooks of one layer: weights and inputs up before, weights back and output down after."""

    def __init__(self) -> None:
        self.saved: list[tuple[nn.Parameter, torch.Tensor]] = []
        self.dtype: torch.dtype | None = None

    def before(self, module, args, kwargs):
        self.saved = [(p, p.data) for p in module.parameters() if p.dtype != torch.float32]
        self.dtype = self.saved[0][1].dtype if self.saved else None
        for p, data in self.saved:
            p.data = data.float()
        return _cast(args, torch.float32), _cast(kwargs, torch.float32)

    def after(self, module, args, kwargs, output):
        for p, data in self.saved:
            p.data = data
        self.saved = []
        return _cast(output, self.dtype) if self.dtype is not None else output


def upcast_layers(layers: nn.ModuleList) -> list[RemovableHandle]:
    """Run each of ``layers`` in float32 (see the module docstring); returns the hooks' handles
    (``handle.remove()`` restores the plain layers)."""
    handles = []
    for layer in layers:
        h = _Upcast()
        handles.append(layer.register_forward_pre_hook(h.before, with_kwargs=True))
        handles.append(layer.register_forward_hook(h.after, with_kwargs=True, always_call=True))
    return handles


def check_layer_dtype(layer_dtype: str, quantize: str = "none") -> None:
    """Refuse an unknown ``--layer-dtype``, or float32 layers with quantized weights (nothing to upcast)."""
    if layer_dtype not in LAYER_DTYPES:
        raise LiteLVLMError(f"--layer-dtype {layer_dtype!r}: choose one of {', '.join(LAYER_DTYPES)}")
    if layer_dtype == "float32" and quantize != "none":
        raise LiteLVLMError("--layer-dtype float32 upcasts the decoder layers' weights, which --quantize "
                            f"{quantize} replaces: use one of them")


def resolve_layer_dtype(layer_dtype: str, weights: torch.dtype, device: str | torch.device, tokens: int,
                        hidden: int, intermediate: int, quantize: str = "none") -> tuple[str, dict | None]:
    """(``model`` or ``float32``, the record of ``auto``'s choice or None) for ``--layer-dtype layer_dtype``
    with weights in ``weights``: ``auto`` upcasts bfloat16 weights where float32 arithmetic measured faster
    (:func:`litelvlm.lvlm.fastest_dtype.fastest_dtype`, on a layer of these widths); float32 or quantized
    weights keep their arithmetic (nothing to choose)."""
    if layer_dtype != "auto":
        return layer_dtype, None
    if quantize != "none" or weights != torch.bfloat16:
        why = f"quantized weights ({quantize})" if quantize != "none" else f"{str(weights)[6:]} weights"
        return "model", {"asked": "auto", "layer_dtype": "model", "reason": f"{why}: nothing to choose"}

    choice = fastest_dtype(device, tokens, hidden, intermediate)
    resolved = "float32" if choice.dtype == "float32" else "model"
    return resolved, {"asked": "auto", "layer_dtype": resolved, **choice.to_dict()}


__all__ = ["LAYER_DTYPES", "check_layer_dtype", "resolve_layer_dtype", "upcast_layers"]
