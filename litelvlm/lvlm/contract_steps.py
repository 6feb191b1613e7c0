"""What three final members of the family contract (:class:`litelvlm.lvlm.family.GroundingPipeline`) run, for
any family's pipeline: ``method_error`` (a method refused by the family's abilities), ``final_hidden`` (the
LLM's standard forward) and ``kept_positions`` (the original positions of kept visual tokens)."""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..llm.captured import runner_of
from ..llm.context import run_layers
from ..llm.limits import check_llm_input
from ..methods import get_method, mapped_methods
from .abilities import refusal


def method_error(pipe, method: str) -> str | None:
    """:meth:`litelvlm.lvlm.family.GroundingPipeline.method_error` (``pipe``: a pipeline or its class)."""
    ab = pipe.abilities
    spec = get_method(method, ab.backbone)
    if spec.uses_clip and ab.clip_side == "none":
        return (f"{method} reads CLIP's patch grid; the {pipe.family} family pairs no CLIP with its "
                "visual tokens yet (an external CLIP mapped onto its grid): use a method that acts with "
                "the LLM")
    if spec.uses_clip and ab.clip_side == "mapped" and not spec.scores_only:
        return (f"{method} reads CLIP's features or attention on CLIP's own patch grid; the "
                f"{pipe.family} family maps only an external CLIP's per-token scores onto its own tokens "
                "(this project's adaptation), so the CLIP-side methods that read scores alone run on it: "
                f"{', '.join(mapped_methods())}, or a method that acts with the LLM")
    if spec.uses_vision_tower and not ab.tower_stage:
        return (f"{method} prunes inside a vision tower; the {pipe.family} family offers no vision-tower "
                "stage")
    if spec.one_axis_positions and ab.position_axes != 1:
        return (f"{method}'s official position rule is for 1-D RoPE; the {pipe.family} family's "
                f"positions have {ab.position_axes} axes (multi-axis positions need a rule of the "
                "method's own first)")
    return refusal(spec, method, ab.refuses)


def final_hidden(pipe, embeds: torch.Tensor, position_ids: torch.Tensor,
                 num_visual: int | None = None) -> torch.Tensor:
    """:meth:`litelvlm.lvlm.family.GroundingPipeline.final_hidden`."""
    b, s = embeds.shape[:2]
    pos = position_ids.to(embeds.device)
    grad = torch.is_grad_enabled() and embeds.requires_grad
    check_llm_input(pipe.language_model, pipe.name, s, pos, num_visual, b, grad)
    if b == 1 and not grad and runner_of(pipe.language_model) is not None:  # ``--prefill captured``
        return pipe.language_model.norm(run_layers(pipe.language_model, embeds, pos))
    pos = pos.expand(*pos.shape[:-2], b, pos.shape[-1]) if b > 1 else pos
    with pipe.forward_context():
        out = pipe.language_model(inputs_embeds=embeds, position_ids=pos,
                                  attention_mask=torch.ones(b, s, dtype=torch.long, device=embeds.device),
                                  use_cache=False)
    return out.last_hidden_state


def kept_positions(pipe, prepared, kept: torch.Tensor) -> torch.Tensor:
    """:meth:`litelvlm.lvlm.family.GroundingPipeline.kept_positions`."""
    kept = kept.long().cpu()
    if bool((kept < 0).any()):
        raise LiteLVLMError("positions='keep': the selection holds tokens that are no single visual "
                            "token (a [CLS] or merged extra token), which have no original position")
    full = pipe.layout(prepared, pipe.num_visual(prepared))
    s, n = full.image_start, full.num_visual
    return full.positions(torch.cat([torch.arange(s), s + kept, torch.arange(s + n, full.seq_len)]))
