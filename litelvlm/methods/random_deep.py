"""Random pruning at a deep LLM layer (``random-deep``): K visual tokens drawn uniformly before a deep layer.

This project's reading of "When Token Pruning is Worse than Random" (Wang et al., CVPR 2026, arXiv
2512.07580), not official code (YahongWang1/Information-Horizon holds only a README); the layer is this
project's choice.

Details, the official statements with their lines and the deviations: docs/methods/random_deep.md
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..llm.context import LLMContext
from ..llm.pruned_forward import pruned_at_layer, pruned_forward
from ..method import Method, Option, no_layers
from ..pruning.selection import Selection

#: the pruning layer on a 32-layer LLM (the abstract's "beyond the 20th"; the README names none)
DEFAULT_LAYER = 20
#: the depth ``DEFAULT_LAYER`` is written for (LLaVA-1.5-7B, GLaMM-7B)
REFERENCE_LAYERS = 32


def default_layer(num_layers: int) -> int:
    """The pruning layer L on an LLM of ``num_layers`` layers: 20 of 32, the same relative depth elsewhere
    (rounded half up), within 1..num_layers."""
    half_up = (2 * DEFAULT_LAYER * num_layers + REFERENCE_LAYERS) // (2 * REFERENCE_LAYERS)
    return min(num_layers, max(1, half_up))


def checked_layer(num_layers: int, layer: int | None) -> int:
    """``layer``, or :func:`default_layer`; an error outside 1..num_layers."""
    layer = default_layer(num_layers) if layer is None else int(layer)
    if not 1 <= layer <= num_layers:
        raise LiteLVLMError(f"random-deep's layer L must be in 1..{num_layers}; got {layer}")
    return layer


def input_seed(ctx: LLMContext, seed: int | None = None) -> int:
    """The seed of the draw: ``seed``, or the prepared input's (``random``'s)."""
    return int(ctx.prepared.seed) if seed is None else int(seed)


def uniform_draw(num_tokens: int, budget: int, seed: int) -> torch.Tensor:
    """``budget`` of ``num_tokens`` indices drawn uniformly without replacement (``random``'s), sorted."""
    if not 1 <= budget <= num_tokens:
        raise LiteLVLMError(f"budget must be in 1..{num_tokens}; got {budget}")
    g = torch.Generator().manual_seed(seed)
    return torch.sort(torch.randperm(num_tokens, generator=g)[:budget]).values


def random_deep_select(ctx: LLMContext, budget: int, *, layer: int | None = None,
                       seed: int | None = None) -> Selection:
    """K visual tokens drawn uniformly (seeded), kept from decoder layer ``layer`` on (default: 20 of 32)."""
    layer = checked_layer(ctx.num_layers, layer)
    kept = uniform_draw(ctx.num_visual, budget, input_seed(ctx, seed))
    return Selection(indices=kept.to(ctx.visual_embeds.device), prune_layer=layer)


def random_deep_schedule(budget: int, num_visual: int, num_layers: int, *, layer: int | None = None):
    """N visual tokens in layers 0..L-1, K from layer L (default: 20 of 32 layers)."""
    return pruned_at_layer(budget, num_visual, num_layers, layer=checked_layer(num_layers, layer))


#: the pruning layer's command-line option (also divprune+random-deep's)
RANDOM_DEEP_LAYER = Option(
    "layer", "random_deep_layer", "1..L",
    help="random-deep, divprune+random-deep (this project's reading of the information-horizon paper): the "
         "LLM layer L from which K random visual tokens remain (default: 20 of 32 layers, the same relative "
         "depth on other LLMs)")
RANDOM_DEEP_OPTIONS = (RANDOM_DEEP_LAYER,)

RANDOM_DEEP = Method("llm-layer", random_deep_select, forward=pruned_forward, schedule=random_deep_schedule,
                     positions="keep", attention_weights=no_layers,
                     name="random-deep", options=RANDOM_DEEP_OPTIONS,
                     description=("random deep pruning (this project's reading of the "
                                  "information-horizon paper; no official code): K visual tokens drawn "
                                  "uniformly (seeded) remain from LLM layer L (20 of 32), the layers "
                                  "before it see all N (kept tokens keep their RoPE positions)"))
