"""FastV (Chen et al., 2024) inside the LLM: after layer K-1, keep the visual tokens the last token
attends to most; layers K.. run on the kept tokens with their ORIGINAL RoPE positions.

Only the last token's attention row of layer K-1 is computed (``LLMContext.attention_rows``). With
``score_dtype="model"`` (``--protocol official``) it is computed as the official stack does
(transformers 4.28's eager ``LlamaAttention``: model-dtype logits, float32 softmax cast to the model
dtype), then averaged over heads and ranked in the model dtype (bfloat16 for GLaMM); with ``float32``
the row and its mean are float32.
The pruned sequence gets an explicit attention mask (see ``litelvlm.llm.context.causal_mask``).
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..llm.context import LLMContext
from ..llm.pruned_forward import pruned_at_layer, pruned_forward
from ..method import Method, Option
from ..pruning.selection import Selection

#: FastV's default filtering layer (K=2 in the paper).
DEFAULT_LAYER = 2


def fastv_select(ctx: LLMContext, budget: int, *, layer: int = DEFAULT_LAYER) -> Selection:
    """Top-``budget`` visual tokens by the last token's head-averaged attention at layer ``layer-1``."""
    if not 1 <= layer <= ctx.num_layers:
        raise LiteLVLMError(f"FastV layer K must be in 1..{ctx.num_layers}; got {layer}")
    kernel = "llama-4.28" if ctx.score_dtype == "model" else "float32"
    score = ctx.visual_attention(layer - 1, "last", kernel)
    top = torch.topk(score, budget, sorted=True).indices
    return Selection(indices=torch.sort(top).values, scores=score.float(), prune_layer=layer)


def fastv_schedule(budget: int, num_visual: int, num_layers: int, *, layer: int = DEFAULT_LAYER):
    """FastV's token schedule: N visual tokens up to layer K-1, K from layer K (:func:`pruned_at_layer`)."""
    return pruned_at_layer(budget, num_visual, num_layers, layer=layer)


def fastv_attention_weights(num_layers: int) -> tuple[int, ...]:
    """The layer whose attention weights FastV reads at its default K: K-1 (the last token's row)."""
    return (DEFAULT_LAYER - 1,)


#: its command-line option (``--fastv-layer``)
FASTV_OPTIONS = (
    Option("layer", "fastv_layer", "1..L", default=DEFAULT_LAYER,
           help="FastV's K: prune after LLM layer K-1"),
)

FASTV = Method("llm-layer", fastv_select, forward=pruned_forward, ranks=True, schedule=fastv_schedule,
               positions="keep", attention_weights=fastv_attention_weights,
               name="fastv", options=FASTV_OPTIONS,
               description=("FastV: drop visual tokens by the last token's attention at LLM layer K-1 "
                            "(kept tokens keep their RoPE positions)"))
