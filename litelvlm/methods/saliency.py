"""Differentiable grounding targets of the visual tokens, and the ``saliency`` oracle pruning method.

:class:`GroundingTarget` maps a batch of visual token embeddings ``(B, N, h)`` (the projector
output) through the unpruned LLM, the ``[SEG]`` projection and the SAM mask decoder to
low-resolution mask logits ``(B, S, 4h', 4w')`` (one map per ``[SEG]``). Its targets:

* ``mask``: the sum of the mask logits inside the mask predicted from the unperturbed tokens
  (held fixed, so the target is smooth; an empty mask falls back to the whole map), summed
  over the ``[SEG]`` tokens;
* ``seg_norm``: the norm of the ``[SEG]`` prompt embeddings (``text_hidden_fcs`` output).

The targets are ``attribution.mask_logit_target`` and ``attribution.seg_norm_target`` over
:meth:`GroundingTarget.mask_logits` and :meth:`GroundingTarget.prompts`.

The ``saliency`` method (``SALIENCY``, named in :mod:`litelvlm.methods`) is an ORACLE: it needs a full
forward and backward pass of the unpruned model. It keeps the ``budget`` tokens with the
largest attribution (``attribution.token_attributions``; captum ``Saliency`` by default: the
gradient norm per token) and gives them to the LLM in raster order.
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..llm.attribution import mask_logit_target, nonempty_mask, seg_norm_target, token_attributions
from ..method import Method
from ..pruning.selection import Selection
from ..switches import SALIENCY_TARGETS

#: the attributions the oracle ranks by (``attribution.METHODS``; per-token scores as there)
ATTRIBUTIONS = ("saliency", "input_x_gradient", "integrated_gradients")


class GroundingTarget:
    """The unpruned grounding forward of a family's pipeline as a function of the visual tokens of one
    prepared input."""

    def __init__(self, pipeline, prepared) -> None:
        self.pipeline = pipeline
        self.prepared = prepared
        n = pipeline.num_visual(prepared)
        self.num_visual = n
        self.layout = pipeline.layout(prepared, n)
        self.seg_positions = self.layout.seg_predictors
        with torch.no_grad():
            vis = pipeline.visual_tokens(prepared)
            self.reference_logits = self.mask_logits(vis[None])[0]          # (S, h4, w4)
        self.reference_mask = nonempty_mask(self.reference_logits > 0)     # an empty map: the whole map
        self.targets = {"mask": mask_logit_target(self.mask_logits, self.reference_mask),
                        "seg_norm": seg_norm_target(self.prompts)}

    def _final_hidden(self, visual: torch.Tensor) -> torch.Tensor:
        """(B, S_seq, h) final hidden states of the LLM for a batch of visual-token sets."""
        pipe = self.pipeline
        return pipe.final_hidden(pipe.sequence_embeds(self.prepared, visual), self.layout.position_ids)

    def prompts(self, visual: torch.Tensor) -> torch.Tensor:
        """(B, S, prompt_dim) ``[SEG]`` prompt embeddings."""
        with self.pipeline.seg_source() as states:
            final = self._final_hidden(visual)
            seg = states(final, self.seg_positions.to(final.device))
        return self.pipeline.seg_prompts(seg)

    def mask_logits(self, visual: torch.Tensor) -> torch.Tensor:
        """(B, S, 4h', 4w') low-resolution mask logits of every ``[SEG]``."""
        prompts = self.prompts(visual)
        return torch.stack([self.pipeline.decode_masks(self.prepared, p)[:, 0] for p in prompts])

    def __call__(self, visual: torch.Tensor, target: str = "mask") -> torch.Tensor:
        """(B,) the target per batch element (``mask`` or ``seg_norm``, summed over the ``[SEG]`` tokens)."""
        if target not in self.targets:
            raise LiteLVLMError(f"unknown saliency target {target!r}; choose one of "
                                f"{', '.join(SALIENCY_TARGETS)}")
        return self.targets[target](visual)


def saliency_select(ctx, budget: int, *, attribution: str = "saliency", target: str = "mask",
                    n_steps: int = 16, internal_batch_size: int = 4) -> Selection:
    """Oracle: keep the ``budget`` visual tokens with the largest captum attribution of the grounding
    ``target`` (``mask`` logits inside the predicted mask, or the ``seg_norm``) in the unpruned model."""
    if target not in SALIENCY_TARGETS:
        raise LiteLVLMError(f"unknown saliency target {target!r}; choose one of "
                            f"{', '.join(SALIENCY_TARGETS)}")
    if attribution not in ATTRIBUTIONS:
        raise LiteLVLMError(f"unknown attribution {attribution!r}; choose one of {', '.join(ATTRIBUTIONS)}")
    gt = GroundingTarget(ctx.pipeline, ctx.prepared)
    score = token_attributions(lambda v: gt(v, target), ctx.visual_embeds, attribution, n_steps=n_steps,
                               internal_batch_size=internal_batch_size, convergence_delta=False).scores
    top = torch.topk(score, budget, sorted=True).indices
    return Selection(indices=torch.sort(top).values.cpu(), scores=score.cpu(),
                     parts={"ranking": torch.argsort(score, descending=True, stable=True).cpu()})


SALIENCY = Method("llm-input", saliency_select, oracle=True, needs_mask_gradient=True,
                  name="saliency",
                  description=("oracle: rank visual tokens by captum gradient saliency of the predicted "
                               "mask logits w.r.t. the visual tokens (a full forward and backward of the "
                               "unpruned model)"))
