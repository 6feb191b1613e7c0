"""IPCV + FastV's Qwen2.5-VL variant: the Qwen2-VL rule of :mod:`.ipcv_qwen` in the tower
(``Qwen2-VL/Qwen2VL_IPCV/modeling_qwen2_vl_IPCV_FastV.py``), then FastV (:mod:`.ipcv_fastv`)."""

from __future__ import annotations

from ..llm.pruned_forward import pruned_forward
from ..method import Method
from .ipcv_fastv import composed_attention_weights, composed_schedule, ipcv_fastv_select
from .ipcv_qwen import ipcv_qwen_tokens

IPCV_FASTV_QWEN = Method("llm-layer", ipcv_fastv_select, forward=pruned_forward,
                         tower_tokens=ipcv_qwen_tokens,
                         schedule=composed_schedule, ranks=True, positions="keep", host_sync=True,
                         attention_weights=composed_attention_weights,
                         reads_vision_blocks=True,
                         name="ipcv+fastv", backbone="qwen2.5-vl",
                         description="IPCV + FastV with IPCV's Qwen2-VL rule in Qwen2.5-VL's tower")
