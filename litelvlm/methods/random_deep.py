"""Random pruning at a deep LLM layer (``random-deep``): this project's reading of "When Token Pruning is
Worse than Random: Understanding Visual Token Information in VLLMs" (Wang et al., CVPR 2026, arXiv
2512.07580, the "information horizon"), not official code.

Its repository, YahongWang1/Information-Horizon, holds only a README ("Code will be released soon"): no code,
no layer and no ratio were read. The paper's abstract: in deep layers ("e.g., beyond the 20th") existing
training-free pruning methods do no better than random pruning, visual tokens having lost the information of
their own beyond an intermediate layer; random pruning in deep layers balances performance and efficiency.

This reading:

* Layers ``0..L-1`` see all N visual tokens. Before decoder layer ``L`` (FastV's mechanism,
  :func:`litelvlm.llm.pruned_forward.pruned_forward`), K of them drawn uniformly without replacement are kept
  with every text token, at their original RoPE positions (``positions="keep"``, as FastV and DART; a family's
  own rule or ``ground(positions=...)`` switches it). ``L`` equal to the LLM's depth prunes after its last
  layer.
* The draw is seeded as ``random``'s: ``torch.randperm(N)`` of a CPU generator seeded with the prepared
  input's ``seed`` (0 unless ``prepare_image(seed=...)``), its first K, sorted; the same seed and N give the
  same tokens (and, on GLaMM, the tokens ``random`` keeps at the LLM input).
* ``L`` (``--random-deep-layer``): by default 20 on a 32-layer LLM (the abstract's "beyond the 20th",
  LLaVA-1.5-7B's depth; the README gives no layer) and the same relative depth on others, ``20 L / 32``
  rounded half up (this project's choice): 18 of Qwen2.5-VL-7B's 28 layers, 23 of 3B's 36, 3 of the tiny
  GLaMM's 4, 1 of the tiny Sa2VA's 2.

Reads no attention weight and no CLIP trace; runs wherever FastV runs (every family's LLM).
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
