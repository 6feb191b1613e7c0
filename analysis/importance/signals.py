"""Every per-token importance signal of one sentence on any family's pipeline (:mod:`litelvlm.lvlm.family`):
CLIP side and LLM side.

A signal is one score per visual token (the image's ``N``, in the family's sequence order), keyed by
:class:`SignalKey` (``name``, ``query``, ``layer``, ``head``; ``layer``/``head`` are -1 where they do not
apply, ``head`` -1 is the mean over heads). CLIP side: ``clip_rev_sim`` (-s, LiteLVLM's
ranking), ``clip_context`` (LiteLVLM's context score), ``clip_topsim`` (+s). LLM side:
``attention`` (rows of the ``seg``/``last``/``text`` queries onto the visual keys, every
layer, per head and head mean, captured with hooks in one forward:
``litelvlm.llm.attention_rows``), the captum attributions of ``litelvlm.llm.attribution``
(``saliency``, ``input_x_gradient``, ``integrated_gradients``, ``layer_integrated_gradients``) and
``ablation`` (mask-IoU drop per spatial token group).

What a family cannot give is refused before a run writes anything (:func:`signal_error`): the CLIP signals
need a family that pairs a CLIP with its visual tokens (its abilities' ``clip_side``),
``layer_integrated_gradients`` a projector from CLIP features to the LLM (GLaMM's), which the family contract
does not declare.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from analysis.importance import sensitivity
from analysis.importance.options import CLIP_SIGNALS, GRADIENT_SIGNALS, LLM_SIGNALS
from litelvlm.errors import LiteLVLMError
from litelvlm.llm import attention_rows, attribution
from litelvlm.methods.saliency import GroundingTarget
from litelvlm.methods.select import select
from litelvlm.pruning.scores import context_scores, similarity
from litelvlm.switches import QUERY_KINDS as QUERY_SETS  # the query rows whose attention is read


class SignalKey(NamedTuple):
    """Which signal a score vector is: name, query set (or ""), LLM layer (-1: none), head (-1: mean)."""

    name: str
    query: str = ""
    layer: int = -1
    head: int = -1


@dataclass
class SignalOptions:
    """Settings of the LLM-side signals."""

    target: str = "mask"            # "mask" (mask logits inside the predicted mask) or "seg_norm"
    ig_steps: int = 16
    internal_batch_size: int = 4
    group: int = 4                  # ablation: group x group spatial token blocks
    per_head: bool = True


def projector(pipe):
    """The module mapping CLIP features to the LLM's visual tokens (``project``, ``projector``), when the
    family has one (``GroundingPipeline.projector``: GLaMM's MLP); None otherwise."""
    return pipe.projector()


def signal_error(pipe, name: str) -> str | None:
    """Why signal ``name`` (CLIP-side or LLM-side) cannot be computed on ``pipe``'s family (None: it can)."""
    family = pipe.family or "this"
    if name in CLIP_SIGNALS and pipe.abilities.clip_side == "none":
        return (f"{name} reads CLIP's scores of the visual tokens; the {family} family pairs no CLIP with "
                "its visual tokens")
    if name == "layer_integrated_gradients" and projector(pipe) is None:
        return ("layer_integrated_gradients integrates the CLIP features a projector maps to the LLM; the "
                f"{family} family exposes no such projector")
    return None


def clip_signals(prepared) -> dict[SignalKey, torch.Tensor]:
    """The three CLIP-side scores of the (single) sentence of ``prepared``."""
    inputs = prepared.selector_inputs()
    sim = similarity(inputs, layer=inputs.feature_layer)[0].float().cpu()
    return {SignalKey("clip_rev_sim"): -sim, SignalKey("clip_context"): context_scores(inputs).float().cpu(),
            SignalKey("clip_topsim"): sim}


def method_signals(pipe, prepared, methods: Iterable[str]) -> dict[SignalKey, torch.Tensor]:
    """``method:<name>``: the (N,) score each method (one with ``Method.ranks``) ranks the visual tokens
    by."""
    n = pipe.num_visual(prepared)
    out: dict[SignalKey, torch.Tensor] = {}
    for m in methods:
        spec = pipe.spec(m)
        with torch.no_grad():
            sel = (select(m, prepared.selector_inputs(), n) if spec.acts_on_clip
                   else spec.select(pipe.context(prepared), n))
        if sel.scores is None or sel.scores.numel() != n:
            raise LiteLVLMError(f"method {m!r} has no per-token score to compare")
        out[SignalKey(f"method:{m}")] = sel.scores.detach().float().cpu().reshape(n)
    return out


def attention_signals(pipe, prepared, per_head: bool = True) -> dict[SignalKey, torch.Tensor]:
    """Attention the visual tokens receive in every LLM layer from the ``seg``/``last``/``text`` queries
    (one no-grad forward with row-capturing hooks; no full attention matrix is formed)."""
    ctx = pipe.context(prepared)
    sl = ctx.visual_slice()
    sets = {q: ctx.query_rows(q) for q in QUERY_SETS}
    lm = pipe.language_model
    with torch.no_grad(), attention_rows.capture_attention_rows(lm, sets,
                                                                torch.arange(sl.start, sl.stop)) as rows:
        s = ctx.seq_len
        lm(inputs_embeds=ctx.embeds, position_ids=ctx.position_ids,
           attention_mask=torch.ones(1, s, dtype=torch.long, device=ctx.embeds.device), use_cache=False)
    out: dict[SignalKey, torch.Tensor] = {}
    for layer in rows.layers:
        for q in QUERY_SETS:
            per = rows.per_head(layer, q)[0].float()             # (H, N)
            out[SignalKey("attention", q, layer, -1)] = per.mean(0)
            if per_head:
                for h in range(per.shape[0]):
                    out[SignalKey("attention", q, layer, h)] = per[h]
    return out


def mask_gradient_error(pipe, prepared) -> str | None:
    """Why the ``mask`` target gives no gradient on ``pipe``'s family (its mask decoder runs without
    autograd), or None: one decode of a prompt that requires a gradient."""
    with torch.enable_grad():
        hidden = torch.zeros(1, pipe.hidden_size, device=pipe.device, dtype=pipe.dtype, requires_grad=True)
        low = pipe.decode_masks(prepared, pipe.seg_prompts(hidden))
    if low.requires_grad:
        return None
    return (f"--target mask: the {pipe.family} family's mask decoder gives no gradient to its prompts, so "
            "the gradient signals cannot reach the mask logits; use --target seg_norm")


def gradient_signals(pipe, prepared, names: Iterable[str],
                     opts: SignalOptions) -> tuple[dict[SignalKey, torch.Tensor],
                                                                                       dict[str, float]]:
    """captum attributions w.r.t. the visual token embeddings; also the IG convergence deltas."""
    if opts.target == "mask" and (why := mask_gradient_error(pipe, prepared)):
        raise LiteLVLMError(why)
    gt = GroundingTarget(pipe, prepared)
    vis = pipe.visual_tokens(prepared).detach()
    model = projector(pipe)
    out, deltas = {}, {}
    for name in names:
        if name == "layer_integrated_gradients":
            feats = prepared.vision.patches(prepared.feature_layer)[0].to(pipe.dtype).detach()
            res = attribution.token_attributions(lambda f: gt(model.project(f), opts.target), feats, name,
                                     n_steps=opts.ig_steps, internal_batch_size=opts.internal_batch_size,
                                     layer=model.projector)
        else:
            res = attribution.token_attributions(lambda v: gt(v, opts.target), vis, name,
                                                 n_steps=opts.ig_steps,
                                     internal_batch_size=opts.internal_batch_size)
        out[SignalKey(name)] = res.scores.float().cpu()
        if res.delta is not None:
            deltas[name] = res.delta
    return out, deltas


def pruned_masks(pipe, prepared, keep: torch.Tensor) -> torch.Tensor:
    """(S, H, W) bool masks with only the visual tokens ``keep`` (sorted indices) in the LLM."""
    with torch.no_grad():
        with pipe.seg_source() as states:
            final, layout = pipe.run_llm(prepared, pipe.visual_tokens(prepared)[keep.to(pipe.device)])
            prompts = pipe.seg_prompts(states(final, layout.seg_predictors.to(final.device))[0])
        low = pipe.decode_masks(prepared, prompts)
    return pipe.upscale_masks(prepared, low) > 0


def ablation_signal(pipe, prepared, group: int) -> torch.Tensor:
    """(N,) drop in mask IoU against the unpruned mask when each token's ``group`` x ``group`` block is
    removed."""
    n = pipe.num_visual(prepared)
    full = pruned_masks(pipe, prepared, torch.arange(n))[0]

    def iou(keep: torch.Tensor) -> float:
        idx = torch.nonzero(keep).reshape(-1)
        if idx.numel() == 0:
            return sensitivity.mask_iou(torch.zeros_like(full), full)
        return sensitivity.mask_iou(pruned_masks(pipe, prepared, idx)[0], full)

    return sensitivity.ablation_importance(iou, pipe.visual_grid(prepared), group=group)


def llm_signals(pipe, prepared, names: Iterable[str],
                opts: SignalOptions) -> tuple[dict[SignalKey, torch.Tensor],
                                                                                  dict[str, float]]:
    """The requested LLM-side signals (``LLM_SIGNALS``) of the (single) sentence of ``prepared``."""
    names = list(names)
    bad = [n for n in names if n not in LLM_SIGNALS]
    if bad:
        raise LiteLVLMError(f"--signals: unknown {', '.join(bad)}; choose from {', '.join(LLM_SIGNALS)}")
    out: dict[SignalKey, torch.Tensor] = {}
    deltas: dict[str, float] = {}
    if "attention" in names:
        out.update(attention_signals(pipe, prepared, opts.per_head))
    grads = [n for n in names if n in GRADIENT_SIGNALS]
    if grads:
        g, deltas = gradient_signals(pipe, prepared, grads, opts)
        out.update(g)
    if "ablation" in names:
        out[SignalKey("ablation")] = ablation_signal(pipe, prepared, opts.group)
    return out, deltas
