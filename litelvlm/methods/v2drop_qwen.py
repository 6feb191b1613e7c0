"""V2Drop on Qwen2.5-VL (Sa2VA, UniPixel): the official Qwen2-VL code's schedule, with this project's
adaptations where our Qwen2.5-VL use departs from it.

Official source: xuyang-liu16/V2Drop @ 219e03e, ``Qwen2-VL/Qwen2VL_V2Drop/modeling_qwen2_vl_self.py``.

Details, the official statements with their lines and the deviations: docs/methods/v2drop_qwen.md
"""

from __future__ import annotations

from collections.abc import Sequence

from ..llm.context import LLMContext
from ..method import Method, no_layers
from ..pruning.selection import Selection
from .v2drop import Defaults, schedule_with, select_with, v2drop_forward

#: ``target_layer_indices = {3, 16, 22}`` (L347), keep ratios 0.25 / 0.05 / 0 (L359-364), Qwen2-VL-7B's depth
QWEN2_VL = Defaults(layers=(3, 16, 22), ratios=(0.25, 0.05, 0.0), reference_layers=28)


def v2drop_qwen_select(ctx: LLMContext, budget: int, *, layers: str | Sequence[int] | None = None,
                       ratios: str | Sequence[float] | None = None) -> Selection:
    """The K visual tokens left after V2Drop's last drop with the Qwen2-VL code's layers 3/16/22 and ratios
    0.25/0.05/0 by default (mapped to the LLM's depth)."""
    return select_with(ctx, budget, layers, ratios, QWEN2_VL)


def v2drop_qwen_schedule(budget: int, num_visual: int, num_layers: int, *, layers=None, ratios=None):
    """The visual tokens the LLM's layers see at budget K (the Qwen2-VL code's schedule, mapped)."""
    return schedule_with(budget, num_visual, num_layers, layers, ratios, QWEN2_VL)


V2DROP_QWEN = Method("llm-stages", v2drop_qwen_select, forward=v2drop_forward, schedule=v2drop_qwen_schedule,
                     positions="keep", attention_weights=no_layers,
                     name="v2drop", backbone="qwen2.5-vl",
                     description=("V2Drop, its official Qwen2-VL code's schedule: before LLM layers "
                                  "3/16/22 of 28 (this project's adaptation: the same relative depth "
                                  "elsewhere) drop the least-varying visual tokens, keeping 0.25/0.05/0 "
                                  "of them but at least K; kept tokens keep their M-RoPE ids"))
