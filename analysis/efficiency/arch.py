"""The architectures the efficiency study runs, as each family's cost description declares them.

An ``--arch`` name belongs to one registered family's cost description (:class:`litelvlm.cost.FamilyCost`, the
``cost`` of its card); ``--model`` names a family's random preset, whose arch the cost gives. What the study
reads of an arch (a :class:`litelvlm.cost.CostArch`: the decoder's sizes ``llm``, N = ``num_patches`` visual
tokens, the prompt tokens around them) comes from the family. This module names no family.
"""

from __future__ import annotations

from litelvlm.cost import CostArch, FamilyCost, cost_of_arch, costs, family_cost
from litelvlm.errors import LiteLVLMError
from litelvlm.registry.families import card, cards, resolve


def get_arch(name: str, text_tokens: int | None = None) -> CostArch:
    """The architecture ``name`` (optionally with another prompt length)."""
    cost = cost_of_arch(name)
    if text_tokens is not None and text_tokens < 2:
        raise LiteLVLMError(f"--text-tokens must be at least 2, got {text_tokens}")
    return cost.arch(name, text_tokens)


def cost_of(arch: CostArch) -> FamilyCost:
    """The cost description of ``arch``'s family."""
    return family_cost(card(arch.family))


def arch_of_model(model: str) -> str:
    """The ``--arch`` of a family's random model string (``--model``): its preset's arch in the family's
    cost."""
    resolved = resolve(model)   # resolved once (as it is, where the options resolved it)
    c = resolved.card
    cost, preset = family_cost(c), resolved.preset if resolved.is_preset else None
    name = cost.arch_of_preset(preset) if cost is not None and preset is not None else None
    if name is None:
        offered = [f"{m}[:SEED]" for m, p in c.presets.items() if cost is not None and cost.arch_of_preset(p)]
        raise LiteLVLMError(f"--model {model}: the efficiency study counts random presets of the "
                            f"{c.display_name} family only ({', '.join(offered) or 'none'}); a checkpoint's "
                            "sizes: its --arch")
    return name


def arch_names() -> list[str]:
    """Every ``--arch`` of the registered families, in the registry's order."""
    return [name for cost in costs() for name in cost.archs]


def paper_archs() -> set[str]:
    """The archs of the paper's efficiency table (its numbers are drawn only beside their rows): each card's
    ``paper_preset``, which its cost description offers under the same name (light: reads the cards only)."""
    return {c.paper_preset for c in cards() if c.paper_preset}
