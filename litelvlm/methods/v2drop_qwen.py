"""V2Drop on Qwen2.5-VL (Sa2VA, UniPixel): the official Qwen2-VL code's schedule, with this project's
adaptations where our Qwen2.5-VL use departs from it.

The official Qwen2-VL code, xuyang-liu16/V2Drop @ 219e03e,
``Qwen2-VL/Qwen2VL_V2Drop/modeling_qwen2_vl_self.py`` (L431: ``Qwen2VLForConditionalGeneration``'s LLM is its
``DART`` model, L250-419), runs the statements of the LLaVA code (:mod:`litelvlm.methods.v2drop`) with:

* the layers ``{3, 16, 22}`` (L347) and the keep ratios 0.25, 0.05 and 0 (L358-366, ``k = max(1, int(v *
  keep_ratio))``), written for Qwen2-VL-7B's 28 layers: N -> N/4 -> N/80 -> 1;
* the variation ``torch.norm(current - prev, p=2, dim=-1)[0]`` of the visual tokens at
  ``DART_config['image_token_start_index']`` and ``['image_token_length']`` (L337-356), the ``topk`` (L367),
  ``keep_indexs`` sorted (L371-372), the hidden states gathered (L373);
* ``position_ids[:, :, keep_indexs]`` (L382): the kept tokens keep their 3-D M-RoPE ids (t, h, w);
* ``cache_position[keep_indexs]`` and ``_update_causal_mask(None, ...)`` (L378-381), which under the flash
  attention of its evaluation (``Qwen2-VL/eval_scripts/lmms_eval.sh``: ``use_flash_attention_2=True``) is no
  mask (L191-194): causal over the kept rows, as here.

The budget K and the floor ``max(K, int(v * r))`` are the LLaVA module's (the official code is K = 1); K =
N prunes nothing.

This project's adaptations (Qwen2.5-VL, not the Qwen2-VL code):

1. The image's start and token count are the family's layout (Sa2VA's or UniPixel's prompt with one image);
   the official ones come from lmms_eval's model wrapper, which is not in the repository (its script passes
   the placeholders 0 / 0).
2. Depth: on Qwen2.5-VL-7B's 28 layers the official layers as they are; on other depths (Qwen2.5-VL-3B's 36
   layers: 4, 21, 28; the tiny 2-layer test model: one drop before layer 1 keeping K) the LLaVA module's
   mapping with 28 as the reference depth.
3. Qwen2.5-VL's M-RoPE ids (its absolute-time axis) are the family's (transformers' ``get_rope_index``); the
   kept tokens keep them, as the Qwen2-VL code keeps Qwen2-VL's.
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
