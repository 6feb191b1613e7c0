"""IPCV + DART, the official composition (:mod:`.ipcv_fastv` describes both)."""

from __future__ import annotations

from ..llm.pruned_forward import pruned_forward
from ..method import Method
from .ipcv import ipcv_tokens
from .ipcv_fastv import COMPOSED_OPTIONS, composed_schedule, ipcv_dart_select

IPCV_DART = Method("llm-layer", ipcv_dart_select, forward=pruned_forward, tower_tokens=ipcv_tokens,
                   schedule=composed_schedule, ranks=True, positions="keep", host_sync=True,
                   reads_vision_blocks=True,
                   name="ipcv+dart", options=COMPOSED_OPTIONS,
                   description=("IPCV + DART: IPCV inside the vision tower (all N tokens given back), then "
                                "DART keeps K from LLM layer 3"))
