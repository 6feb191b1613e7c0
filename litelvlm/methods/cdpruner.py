"""CDPruner (Zhang et al., 2025): a conditional DPP over the LLM's visual input embeddings, conditioned on
the instruction's relevance to each visual token.

A statement-level port of the official code, Theia-4869/CDPruner at commit
9541616c40fcd5625de1cdb8ea6c33c129eb7864:

* ``llava/model/multimodal_encoder/clip_encoder.py`` L60-99 (``CLIPVisionTower.forward``): the image
  features are the patch tokens of ``hidden_states[select_layer]`` (CLS dropped, ``feature_select``);
  the CLIP image embeds are ``visual_projection(post_layernorm(those patches).float())``; the text
  embeds are the CLIP text tower's ``text_embeds`` of the instruction, tokenised, zero-padded and
  reshaped into segments of 77 tokens (one row per segment).
* ``llava/model/llava_arch.py`` L141-188 (``encode_images``), batch element by batch element:

  - similarity: the cosine of the PROJECTOR OUTPUTS ``mm_projector(image_features)`` (the LLM's
    input embeddings), each row divided by its L2 norm in the model's dtype, then cast to float32,
    ``matmul`` with its transpose;
  - relevance: ``mean`` over the text rows of the NEGATIVE cosine of the CLIP image embeds with the
    text embeds, min-max normalised as ``(r - min + 1e-6) / (max - min)`` (the ``1e-6`` in the
    numerator only, as in the official code);
  - kernel ``L_ij = r_i * S_ij * r_j``;
  - greedy fast MAP inference of the DPP for ``visual_token_num`` = K steps: ``j = argmax(di2s)``
    (the first maximal index on ties), ``e = (L_j - c_j^T C) / sqrt(di2s_j)``, ``di2s -= e**2``,
    ``di2s_j = -inf``; the picks are sorted and scattered into an index mask, so the LLM receives
    the kept tokens in RASTER order, at the LLM input.

The selector needs the projector outputs, which a CLIP trace does not have: its stage is ``llm-input``
(:mod:`litelvlm.method`), like DivPrune. It reads ``ctx.visual_embeds`` (the (N, h) rows the LLM would
receive) and, for the relevance, the pipeline's CLIP traces (``ctx.prepared.selector_inputs()``): the
image embeds are ``vision.projected(feature_layer)`` (``visual_projection(post_layernorm(patches))`` of
the LLM's feature layer, -2 on GLaMM, as the official ``select_layer``), the text embeds
``text.text_embeds``. :func:`cdpruner_select` runs it on any tensors. Arithmetic runs in float32, as
the official code's (the norms of the projector outputs in their own dtype, then the cast, as there).

This project's adaptation of the text (labelled, not in the official code): the official code embeds
the whole instruction (the question), split into 77-token segments, and averages the relevance over
the segments. On GLaMM the CLIP texts are the turns' questions, as LiteLVLM reads them, one text row
per question; each is shorter than 77 tokens, i.e. one segment, and the relevance is the mean over
these rows, the same reduction as the official mean over segments.

Deviations from the official code:

1. Already-selected tokens are not candidates again. The official loop sets a picked token's
   ``di2s`` to ``-inf``, but once the kernel's rank is exhausted (K above the rank of the
   embeddings: the tiny random model's width, or near-duplicate tokens) the conditional variances
   reach zero or below, ``sqrt`` gives NaN, every ``di2s`` (the ``-inf`` ones too) becomes NaN and
   ``argmax`` returns the first NaN index, often a token already picked: the official index mask
   then holds fewer than K tokens. Here the picked tokens are masked to ``-inf`` before each
   ``argmax`` (the ``di2s`` arithmetic itself is the official one), so K distinct tokens are kept.
   Wherever the official loop picks K distinct tokens the two selections are identical
   (tests/litelvlm/methods/test_cdpruner_official.py).
2. The CLIP joint-space projection is the pipeline's shared trace (``vision.projected``, in the
   CLIP tower's dtype), then cast to float32; the official code loads ``visual_projection`` and the
   text tower in float32 and applies the projection to the ``post_layernorm`` output cast to
   float32. Identical where the tower runs in float32 (the tiny random model); in bfloat16 (GLaMM's
   precision) the image embeds are rounded once more before the float32 arithmetic.
3. The budget is a token count K (``visual_token_num``), the project's convention; batch size 1.
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
