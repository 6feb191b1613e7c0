"""One grounding call of a ``GlammPipeline`` as separately measurable parts, and GLaMM's FLOPs rows.

Details: docs/efficiency.md (``litelvlm.glamm.cost_parts``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from PIL import Image
from tqdm.auto import tqdm

from ..cost import CostArch, CountedRow
from ..cost.clip import SENTENCE, InMemoryHFClip, build_clip_sizes, synthetic_image
from ..cost.meta import MetaScalars, SelectorBench, llm_prefills
from ..cost.parts import PrefillParts
from ..cost.tokens import count_flops
from ..errors import LiteLVLMError
from ..lvlm.numerics import set_attention as set_attn
from ..models.quantize import quantize_llm_layers
from .build import build_glamm
from .pipeline import GlammPipeline
from .prompts import IMAGE_PLACEHOLDER
from .sam_preprocess import sam_inputs
from .tokenizer import build_tiny_tokenizer


def count_rows(cost, arch: CostArch, pairs: list[tuple[str, int]], attns: list[str], dtype: torch.dtype,
               method_args: Any) -> list[CountedRow]:
    """GLaMM's FLOPs rows: CLIP, text (for the methods that read it), selector, projector, prefill and SAM,
    and the end-to-end sum, with the ``meta`` activation of every prefill. A method running the tower itself
    (IPCV, FlowCut) has its run as the selector and the CLIP trace less one full tower run (this project's
    accounting, ``eval-grounding``'s and ``validate``'s stage costs)."""
    with MetaScalars():
        pipe = build_pipeline(arch, "meta", dtype, attns[0])
        parts = PipelineParts(pipe, arch, method_args)
        const = {name: count_flops(fn)[0] for name, fn in
                 (("clip", parts.run_clip), ("text", parts.run_text), ("sam", parts.run_sam))}
    bench = SelectorBench(arch)
    plans = {p: cost.plan(arch, p, method_args) for p in pairs}
    llm = llm_prefills(parts, plans, attns, lambda attn: set_attention(pipe, attn))
    selections = {p: bench.run(*p, **parts.options(p[0])) for p in tqdm(pairs, desc="selector FLOPs",
                                                                           leave=False)}
    # a method running the tower itself: its run (the selector) in place of the trace's full one
    in_place = {m: bench.full_tower_flops() for m in {m for m, _ in pairs} if arch.spec(m).uses_vision_tower}
    proj_flops: dict[int, int] = {}
    rows = []
    for attn in attns:
        for (method, budget), plan in plans.items():
            flops, peak, kept = llm[attn, plan]
            sel, selection = selections[method, budget]
            vis_in = parts.projector_rows(selection)
            text = const["text"] if arch.spec(method).needs_text else 0
            if vis_in not in proj_flops:
                with MetaScalars():
                    proj_flops[vis_in] = count_flops(lambda n=vis_in: parts.run_projector(n))[0]
            proj = proj_flops[vis_in]
            clip = const["clip"] - in_place.get(method, 0)
            own = {"clip_tflops": clip / 1e12, "text_tflops": text / 1e12,
                   "selector_tflops": sel / 1e12,
                   "projector_tflops": proj / 1e12, "sam_tflops": const["sam"] / 1e12,
                   "e2e_tflops": (clip + text + sel + proj + flops + const["sam"]) / 1e12}
            rows.append(CountedRow(attn, method, budget, plan, flops, peak, kept, own))
    return rows


class PipelineParts(PrefillParts):
    """The parts of one grounding call of a GLaMM ``pipe`` (one synthetic image, one sentence, the arch's
    prompt)."""

    tower_part = "clip_ms"

    def __init__(self, pipe, arch: CostArch, method_args: Any = None, image: Image.Image | None = None):
        self.pipe, self.arch, self.method_args = pipe, arch, method_args
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
        text = fixed["text_ms"] if self.arch.spec(method).needs_text else 0.0
        return {"clip_ms": fixed["clip_ms"], "text_ms": text, "selector_ms": selector_ms,
                "sam_ms": fixed["sam_ms"]}

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

    def run_projector(self, rows: int) -> torch.Tensor:
        """The projector on ``rows`` CLIP feature-layer tokens."""
        feats = self.prepared.vision.patches(self.prepared.feature_layer)[0][:rows]
        return self.pipe.model.project(feats.to(self.pipe.dtype))

    def run_sam(self) -> torch.Tensor:
        """Mask logits at the image size: SAM's image encoder, then ``ground``'s mask decoding of one
        [SEG]."""
        model = self.pipe.model
        embeddings = model.sam.get_image_embeddings(self.sam_pixels)
        low = model.decode_masks(embeddings, model.seg_prompts(self.seg_hidden))
        return self.pipe.upscale_masks(self.prepared, low)

    def run_forwards(self):
        """The image's forwards, as :meth:`run_e2e` makes them."""
        return self.pipe.prepare_image(self.image)

    def run_e2e(self, method: str, budget: int) -> torch.Tensor:
        """The whole chain for one image and one sentence; returns the mask logits."""
        prepared = prepare(self.pipe, self.arch, self.image)
        return self.pipe.ground(prepared, method, budget, **self.options(method)).mask_logits


def set_attention(pipe, attn: str) -> None:
    """Use attention implementation ``attn`` (``eager``: the official stack's; ``sdpa``; ``flash``: the LLM's,
    the others sdpa) in the LLM, CLIP and SAM (same weights)."""
    set_attn(attn, pipe.model.llava, pipe.model.sam, pipe.clip.model, llm=pipe.language_model,
             clip_softmax=pipe.numerics.clip_softmax)
    pipe.numerics = replace(pipe.numerics, attn=attn)


def build_pipeline(arch: CostArch, device="meta", dtype=None, attn: str = "sdpa", seed: int = 0,
                   quantize: str = "none", quantize_backend: str = "bitsandbytes"):
    """A ``GlammPipeline`` of ``arch`` with random weights on ``device`` in ``dtype`` (default float32),
    LLM/CLIP attention ``attn``; ``quantize`` (``int8``/``nf4``) its decoder layers' weights as
    ``GlammPipeline.from_model_string`` does."""
    dtype = torch.float32 if dtype is None else dtype
    if quantize != "none" and torch.device(device).type == "meta":
        raise LiteLVLMError("--quantize needs weights: it cannot run on the meta device of the FLOPs count")
    model = build_glamm(arch.glamm, device, dtype, seed=seed, init_on_device=True)
    report = quantize_llm_layers(model, quantize, quantize_backend, device) if quantize != "none" else None
    torch.manual_seed(seed + 1)
    clip = InMemoryHFClip(build_clip_sizes(arch.clip, device, dtype), f"{arch.name}-random-clip")
    pipe = GlammPipeline(model, build_tiny_tokenizer(), clip, name=f"{arch.name}-random:{seed}")
    pipe.quantization = report
    set_attention(pipe, attn)
    return pipe


def prompt_ids(arch: CostArch, seg_token_id: int):
    """Prompt ids of the study's length: ``text_tokens`` tokens (BOS first, the image placeholder after
    ``prefix_tokens`` of them, [SEG] two tokens before the end as in "It is [SEG].</s>" where it fits)."""
    n, p = arch.text_tokens, arch.prefix_tokens
    ids = 3 + torch.arange(n + 1) % 200  # ordinary tokens of every vocabulary (0-2: unk, bos, eos)
    ids[0], ids[-1] = 1, 2
    ids[p] = IMAGE_PLACEHOLDER
    ids[max(p + 1, n - 2)] = seg_token_id
    return ids


def with_sentence(pipe, arch: CostArch, base):
    """``with_sentences`` of the pipeline for the study's sentence (prompt and CLIP text trace), with the
    prompt ids of :func:`prompt_ids` (the study's prompt length) in place of the tokenised prompt."""
    return replace(pipe.with_sentences(base, [SENTENCE]), input_ids=prompt_ids(arch, pipe.seg_token_id))


def prepare(pipe, arch: CostArch, image=None):
    """The pipeline's per-image steps: ``prepare_image``, then :func:`with_sentence`."""
    return with_sentence(pipe, arch, pipe.prepare_image(synthetic_image() if image is None else image))
