"""One grounding call of a family's pipeline as separately measurable parts (GLaMM's here; UniPixel's in
:mod:`analysis.efficiency.unipixel_parts`), the LLM prefill of a token schedule shared (:class:`PrefillParts`).

Each part runs the statements the pipeline runs for it, on the pipeline's own modules, so what is
counted and timed is what ``eval-grounding`` runs:

* ``clip``: the CLIP vision forward of ``prepare_image`` (``clip.trace_image``);
* ``text``: ``with_sentences`` (the prompt's tokenisation and the CLIP text forward); the pipeline
  runs it for every method, the tables charge it to the methods that read it (text-guided selectors);
* ``select``: ``ground``'s CLIP-side selection (``litelvlm.pruning.select`` on
  ``prepared.selector_inputs()``, as ``litelvlm.lvlm.prune.clip_side``);
* ``projector``: ``model.project`` on the rows ``ground`` projects (all N patch tokens, of which it
  then gathers the kept ones; the K merged features of a merging method such as VisionZip);
* ``prefill``: ``ground``'s LLM forward for a token schedule (``sequence_embeds`` + ``final_hidden``;
  with pruning inside the LLM, the method's selection on an ``LLMContext`` and
  ``fastv.run_pruned_from``), plus the LM head on every position: the logits GLaMM's generation
  computes in its prefill (``ground`` itself reads the hidden states only);
* ``sam``: SAM's image encoder (``prepare_image``) and ``ground``'s mask decoding (``seg_prompts``,
  ``decode_masks``, ``upscale_masks``);
* ``e2e``: ``prepare_image`` + ``with_sentences`` + ``ground``, i.e. :func:`analysis.efficiency.build.prepare`
  and ``GlammPipeline.ground(prepared, method, budget)``.
"""

from __future__ import annotations

import torch
from PIL import Image

from analysis.common.flops import TokenPlan
from analysis.efficiency.arch import EffArch
from analysis.efficiency.build import prepare, synthetic_image, with_sentence
from litelvlm.errors import LiteLVLMError
from litelvlm.glamm import GlammPipeline
from litelvlm.glamm.sam_preprocess import sam_inputs
from litelvlm.lvlm.family import GroundingPipeline
from litelvlm.lvlm.fastv import run_pruned_from
from litelvlm.lvlm.llm_attention import LLMContext
from litelvlm.pruning import get_method, select


def family_parts(arch: EffArch) -> tuple:
    """(``build_pipeline``, ``set_attention``, the parts class) of the arch's family."""
    if arch.family == "unipixel":
        from analysis.efficiency.unipixel import build_pipeline as build_unipixel
        from analysis.efficiency.unipixel import set_attention as set_unipixel_attention
        from analysis.efficiency.unipixel_parts import UniPixelParts

        return build_unipixel, set_unipixel_attention, UniPixelParts
    from analysis.efficiency.build import build_pipeline, set_attention

    return build_pipeline, set_attention, PipelineParts


def needs_text(method: str) -> bool:
    """Whether ``method`` reads the CLIP text trace (LiteLVLM and its variants)."""
    return get_method(method).needs_text


class PrefillParts:
    """What every family's parts share: the prepared input (``prepared``, ``visual``: the (N, h) visual tokens)
    and the LLM prefill of a token schedule (:meth:`run_prefill`). A family's parts set ``pipe``, ``arch``,
    ``fastv_layer``, ``prepared`` and ``visual``, and give the LM head (:meth:`lm_head`)."""

    pipe: GroundingPipeline
    arch: EffArch
    fastv_layer: int
    prepared: object
    visual: torch.Tensor

    def lm_head(self, final: torch.Tensor) -> torch.Tensor:
        """The family's LM head on the final hidden states (the logits its generation computes in the prefill)."""
        raise NotImplementedError

    def options(self, method: str) -> dict:
        """``ground``'s options for ``method`` (FastV's layer, as ``eval-grounding --fastv-layer`` passes it)."""
        return self.arch.spec(method).options_from(self)

    def fixed_parts(self) -> dict:
        """{time column: part} of the parts every method runs the same (timed once per attention kernel)."""
        raise NotImplementedError

    def part_times(self, method: str, fixed: dict[str, float], selector_ms: float) -> dict[str, float]:
        """{time column: ms} of the parts of ``method``'s grounding call beside its prefill, in the table's order."""
        raise NotImplementedError

    def run_prefill(self, plan: TokenPlan) -> torch.Tensor:
        """Next-token logits (1, S', V) of the LLM forward with the token schedule ``plan``: one stage is
        the LLM on that many visual tokens (``none``, CLIP-side methods, DivPrune); more stages run the
        plan's LLM-side method inside the LLM (FastV and DART at their layer, SparseVLM's stages)."""
        pipe, prepared = self.pipe, self.prepared
        if plan.text_tokens != self.arch.text_tokens:
            raise LiteLVLMError(f"the plan has {plan.text_tokens} text tokens, the prompt {self.arch.text_tokens}")
        spec = self.arch.spec(plan.method) if plan.method else None  # None: the plan needs no LLM-side method
        if pipe.device.type == "meta" and spec is not None and spec.host_sync:  # its selection cannot run on meta
            return self.lm_head(self._staged_stand_in(plan))
        if spec is not None and spec.stage == "llm-input" and not spec.baseline:  # its selection on the projector outputs, then K tokens
            ctx = LLMContext(pipe, prepared, self.visual)
            kept = self.visual[spec.select(ctx, plan.budget).indices.to(self.visual.device)]
            final = pipe.run_llm(prepared, kept)[0]
        elif len(plan.stages) == 1:
            final = pipe.run_llm(prepared, self.visual[: plan.stages[0][1]])[0]
        elif spec is not None and spec.forward is not None:  # the method's own forward inside the LLM
            ctx = LLMContext(pipe, prepared, self.visual)
            layer = {"layer": plan.stages[1][0]} if spec.stage == "llm-layer" else {}  # FastV's and DART's K
            sel = spec.select(ctx, plan.budget, **layer)
            # one pruning layer: the pruned forward alone (the method's forward also checks the [SEG] rows,
            # with torch.equal, which the meta device of the FLOPs count cannot run)
            final = (run_pruned_from(ctx, sel.indices, layer["layer"]) if layer else spec.forward(ctx, sel))[0]
        else:
            raise LiteLVLMError(f"no prefill for the token stages {plan.stages} of method {plan.method!r}")
        return self.lm_head(final)

    def _staged_stand_in(self, plan: TokenPlan) -> torch.Tensor:
        """Final hidden states of an LLM forward with ``plan``'s token counts, keeping the FIRST visual tokens
        at each stage: a selection that reads tensor values (``Method.host_sync``: DivPrune's greedy order,
        DART's pivots, SparseVLM's clustering) cannot run on the meta device, and which tokens are kept does
        not change the FLOPs."""
        from litelvlm.lvlm.llm_attention import run_layers

        ctx = LLMContext(self.pipe, self.prepared, self.visual)
        s, n = ctx.image_start, ctx.num_visual
        keep = torch.cat([torch.arange(s), s + torch.arange(plan.stages[0][1]), torch.arange(s + n, ctx.seq_len)])
        # 1-D RoPE: the kept rows' indices; M-RoPE (3, 1, S): the kept rows' original ids
        hidden, pos = ctx.embeds[:, keep], keep[None] if self.pipe.position_axes == 1 else ctx.layout.positions(keep)
        ends = [first for first, _ in plan.stages[1:]] + [ctx.num_layers]
        prev = plan.stages[0][1]
        for (first, visual), end in zip(plan.stages, ends):
            if first:  # prune to ``visual`` tokens before this stage (recycled tokens count as visual)
                idx = torch.cat([torch.arange(s), s + torch.arange(visual), torch.arange(s + prev, hidden.shape[1])])
                hidden, pos = hidden[:, idx], pos[..., idx.to(pos.device)]
            hidden = run_layers(ctx.lm, hidden, pos.to(hidden.device), first, end)
            prev = visual
        return ctx.lm.norm(hidden)


class PipelineParts(PrefillParts):
    """The parts of one grounding call of a GLaMM ``pipe`` (one synthetic image, one sentence, the arch's prompt)."""

    def __init__(self, pipe: GlammPipeline, arch: EffArch, fastv_layer: int = 2, image: Image.Image | None = None):
        self.pipe, self.arch, self.fastv_layer = pipe, arch, fastv_layer
        self.image = synthetic_image() if image is None else image
        with torch.no_grad():
            self.base = pipe.prepare_image(self.image)  # the image part, before any sentence
            self.prepared = with_sentence(pipe, arch, self.base)
            self.clip_pixels = pipe.clip.preprocess([self.image])
            self.sam_pixels = sam_inputs(self.image, pipe.sam_size)[0].to(pipe.device, pipe.dtype)
            self.visual = pipe.visual_tokens(self.prepared)  # (N, h): what the LLM gets before pruning
        self.seg_hidden = torch.zeros(1, arch.glamm.llm_hidden, device=pipe.device, dtype=pipe.dtype)

    def lm_head(self, final: torch.Tensor) -> torch.Tensor:
        return self.pipe.model.llava.lm_head(final)

    def fixed_parts(self) -> dict:
        return {"clip_ms": self.run_clip, "text_ms": self.run_text, "sam_ms": self.run_sam}

    def part_times(self, method: str, fixed: dict[str, float], selector_ms: float) -> dict[str, float]:
        text = fixed["text_ms"] if needs_text(method) else 0.0
        return {"clip_ms": fixed["clip_ms"], "text_ms": text, "selector_ms": selector_ms, "sam_ms": fixed["sam_ms"]}

    def projector_rows(self, selection) -> int:
        """How many rows ``ground`` projects after ``selection`` (None: no CLIP-side selection)."""
        if selection is None:
            return self.arch.num_patches
        return int(selection.features.shape[0]) if selection.features is not None else len(selection)

    # -- parts ----------------------------------------------------------------------------------
    def run_clip(self):
        """The CLIP vision trace of the image (``prepare_image``'s CLIP forward)."""
        return self.pipe.clip.trace_image(self.clip_pixels)

    def run_text(self):
        """The prepared image with the sentence (``with_sentences``: prompt and CLIP text trace)."""
        return with_sentence(self.pipe, self.arch, self.base)

    def run_select(self, method: str, budget: int):
        """The selection of a CLIP-side method (``ground``'s first step for it)."""
        return select(method, self.prepared.selector_inputs(), budget)

    def run_projector(self, rows: int) -> torch.Tensor:
        """The projector on ``rows`` CLIP feature-layer tokens."""
        feats = self.prepared.vision.patches(self.prepared.feature_layer)[0][:rows]
        return self.pipe.model.project(feats.to(self.pipe.dtype))

    def run_sam(self) -> torch.Tensor:
        """Mask logits at the image size: SAM's image encoder, then ``ground``'s mask decoding of one [SEG]."""
        model = self.pipe.model
        embeddings = model.sam.get_image_embeddings(self.sam_pixels)
        low = model.decode_masks(embeddings, model.seg_prompts(self.seg_hidden))
        return self.pipe.upscale_masks(self.prepared, low)

    def run_e2e(self, method: str, budget: int) -> torch.Tensor:
        """The whole chain for one image and one sentence; returns the mask logits."""
        prepared = prepare(self.pipe, self.arch, self.image)
        return self.pipe.ground(prepared, method, budget, **self.options(method)).mask_logits
