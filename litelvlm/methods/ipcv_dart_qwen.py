"""IPCV + DART's Qwen2.5-VL variant: the Qwen2-VL rule of :mod:`.ipcv_qwen` in the tower
(``Qwen2-VL/Qwen2VL_IPCV/modeling_qwen2_vl_IPCV.py``, "IPCV + Dart implementation"), then DART."""

from __future__ import annotations

from ..llm.pruned_forward import pruned_forward
from ..method import Method
from .ipcv_fastv import composed_schedule, ipcv_dart_select
from .ipcv_qwen import ipcv_qwen_tokens

IPCV_DART_QWEN = Method("llm-layer", ipcv_dart_select, forward=pruned_forward,
                        tower_tokens=ipcv_qwen_tokens,
                        schedule=composed_schedule, ranks=True, positions="keep", host_sync=True,
                        reads_vision_blocks=True,
                        name="ipcv+dart", backbone="qwen2.5-vl",
                        description="IPCV + DART with IPCV's Qwen2-VL rule in Qwen2.5-VL's tower")
