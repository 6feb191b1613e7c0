"""CDPruner (Zhang et al., 2025): a conditional DPP over the LLM's visual input embeddings, conditioned on
the instruction's relevance to each visual token.

Official source: Theia-4869/CDPruner @ 9541616, ``llava/model/llava_arch.py`` and ``clip_encoder.py``.
The text that conditions it is this project's adaptation (labelled, not in the official code).

Details, the official statements with their lines and the deviations: docs/methods/cdpruner.md
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..method import Method
from ..pruning.selection import Selection, check_budget

if TYPE_CHECKING:
    from ..llm.context import LLMContext


def similarity_matrix(visual_embeds: torch.Tensor) -> torch.Tensor:
    """(N, N) float32 cosine of the projector outputs (L2 norm in their dtype, then float32, as official)."""
    normalized = visual_embeds / visual_embeds.norm(dim=-1, keepdim=True)
    normalized = normalized.float()
    return torch.matmul(normalized, normalized.transpose(0, 1))


def relevance_scores(image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """(N,) float32 relevance: mean over texts of ``-cos(image, text)``, min-max normalised (official ``+
    1e-6``)."""
    image_embeds = image_embeds.float()
    text_embeds = text_embeds.to(image_embeds.device).float()
    image_embeds = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
    text_embeds = text_embeds / text_embeds.norm(dim=-1, keepdim=True)
    relevance = torch.matmul(image_embeds, text_embeds.t())
    relevance = (-relevance).mean(dim=-1)
    return (relevance - relevance.min() + 1e-6) / (relevance.max() - relevance.min())


def kernel_matrix(similarity: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """(N, N) conditional DPP kernel ``r_i * S_ij * r_j``."""
    return relevance.unsqueeze(1) * similarity * relevance.unsqueeze(0)


def map_order(kernel: torch.Tensor, budget: int) -> torch.Tensor:
    """Greedy fast MAP inference of the DPP with kernel (N, N): the K picks in selection order.

    The official updates with its batch axis kept (B = 1) and the same ``einsum``; no value is read in
    Python, so it also runs on the ``meta`` device.
    """
    n = kernel.shape[-1]
    check_budget(budget, n)
    device = kernel.device
    kernel = kernel.unsqueeze(0)  # (B, N, N), B = 1
    rows = torch.arange(1, device=device)
    cis = torch.zeros((budget, 1, n), device=device)
    di2s = torch.diagonal(kernel, dim1=1, dim2=2).clone()
    taken = torch.zeros(1, n, dtype=torch.bool, device=device)
    order = torch.empty((budget, 1), dtype=torch.long, device=device)
    for i in range(budget):
        j = torch.argmax(di2s.masked_fill(taken, float("-inf")), dim=-1)  # deviation 1
        order[i] = j
        eis = (kernel[rows, j] - torch.einsum("tb,tbn->bn", cis[:i, rows, j], cis[:i])) \
            / torch.sqrt(di2s[rows, j]).unsqueeze(-1)
        cis[i, :, :] = eis
        di2s -= torch.square(eis)
        di2s[rows, j] = -float("inf")
        taken[rows, j] = True
    return order[:, 0]


@torch.no_grad()
def cdpruner_select(visual_embeds: torch.Tensor, image_embeds: torch.Tensor, text_embeds: torch.Tensor,
                    budget: int) -> Selection:
    """CDPruner on (N, h) LLM input embeddings, (N, C) CLIP image embeds and (T, C) CLIP text embeds: K
    indices in raster order; ``parts["order"]`` is the pick order."""
    visual_embeds = visual_embeds.detach()
    relevance = relevance_scores(image_embeds.detach().to(visual_embeds.device), text_embeds.detach())
    return conditional_dpp(visual_embeds, relevance, budget)


@torch.no_grad()
def conditional_dpp(visual_embeds: torch.Tensor, relevance: torch.Tensor, budget: int) -> Selection:
    """The conditional DPP on (N, h) LLM input embeddings and an (N,) relevance: the kernel ``r_i S_ij r_j``
    of their cosine, its greedy MAP picks sorted into raster order; ``parts["order"]`` is the pick order."""
    order = map_order(kernel_matrix(similarity_matrix(visual_embeds.detach()), relevance), budget)
    return Selection(indices=torch.sort(order).values, parts={"order": order})


def cdpruner(ctx: LLMContext, budget: int) -> Selection:
    """CDPruner at the LLM input: the conditional DPP over the N visual input embeddings (projector
    outputs)."""
    inputs = ctx.prepared.selector_inputs()
    if inputs.text is None or len(inputs.text.texts) == 0:
        raise ValueError("cdpruner needs texts")
    image_embeds = inputs.vision.projected(inputs.feature_layer)[inputs.image_index]
    return cdpruner_select(ctx.visual_embeds, image_embeds, inputs.text.text_embeds, budget)


CDPRUNER = Method("llm-input", cdpruner, needs_text=True, reads_clip=True,
                  name="cdpruner",
                  description=("CDPruner: greedy MAP of a conditional DPP (cosine of the LLM input "
                               "embeddings weighted by the CLIP text relevance), applied at the LLM "
                               "input, raster order"))
