"""The GLaMM pipeline as separately measurable parts: CLIP vision, CLIP text (text-guided selectors
only), the selector, the projector, the LLM prefill, SAM (encoder + mask decoder).

``meta_flops`` counts every part on the ``meta`` device (the selector itself runs on real tensors of
the true shapes, since selection is data dependent); :class:`DevicePipeline` builds the parts with
random weights on a real device for wall time, CUDA time and memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from litelvlm.pruning import SelectorInputs, get_method, select

from .arch import EffArch, build_clip, build_heads, build_llm, build_sam
from .clip_backend import InMemoryClip, materialize_selector_modules, synthetic_trace
from .flops import TokenPlan, count_flops, run_llm, token_plan

#: The referring expression used for text-guided selectors (its token count is fixed, see clip_backend).
QUERY = "the person on the left"


def needs_text(method: str) -> bool:
    """Whether ``method`` encodes the prompt with CLIP's text tower (LiteLVLM and its variants)."""
    return method not in ("none", "fastv") and get_method(method).needs_text


def sam_forward(sam: torch.nn.Module, heads, pixels: torch.Tensor, seg_hidden: torch.Tensor):
    """SAM image encoder, then the mask decoder prompted by the projected [SEG] hidden state (GLaMM)."""
    emb = sam.get_image_embeddings(pixels)
    b, c, h, w = emb.shape
    pos = sam.get_image_wide_positional_embeddings().repeat(b, 1, 1, 1)
    sparse = heads.seg_fc(seg_hidden).reshape(b, 1, 1, -1)
    dense = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(b, -1, h, w)
    return sam.mask_decoder(image_embeddings=emb, image_positional_embeddings=pos,
                            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                            multimask_output=False)


def sam_pixels(arch: EffArch, device, dtype) -> torch.Tensor:
    size = arch.glamm.sam_image_size
    if str(device) == "meta":
        return torch.empty(1, 3, size, size, device="meta", dtype=dtype)
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device, dtype)


def clip_pixels(arch: EffArch, device, dtype) -> torch.Tensor:
    size = arch.clip.image_size
    if str(device) == "meta":
        return torch.empty(1, 3, size, size, device="meta", dtype=dtype)
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device, dtype)


@dataclass
class MetaModels:
    """The full pipeline on ``meta`` (no memory), for counting."""

    arch: EffArch
    llm: torch.nn.Module
    clip: torch.nn.Module
    heads: torch.nn.Module
    sam: torch.nn.Module

    @classmethod
    def build(cls, arch: EffArch, attn: str = "sdpa", dtype: torch.dtype = torch.float32) -> MetaModels:
        return cls(arch, build_llm(arch, "meta", dtype, attn), build_clip(arch, "meta", dtype, attn),
                   build_heads(arch, "meta", dtype), build_sam(arch, "meta", dtype))


def constant_flops(m: MetaModels) -> dict[str, int]:
    """FLOPs of the parts pruning does not touch: CLIP vision, CLIP text (one query), SAM."""
    a, dt = m.arch, m.llm.dtype
    clip_px = clip_pixels(a, "meta", dt)
    ids = torch.zeros(1, 16, dtype=torch.long, device="meta")
    backend = InMemoryClip(m.clip)
    seg = torch.empty(1, a.glamm.llm_hidden, device="meta", dtype=dt)
    return {
        "clip": count_flops(lambda: m.clip.vision_model(pixel_values=clip_px, output_hidden_states=True))[0],
        "text": count_flops(lambda: backend._text_forward(ids, torch.zeros(1, dtype=torch.long), False))[0],
        "sam": count_flops(lambda: sam_forward(m.sam, m.heads, sam_pixels(a, "meta", dt), seg))[0],
    }


def projector_flops(m: MetaModels, visual: int) -> int:
    x = torch.empty(1, visual, m.arch.clip.vision_width, device="meta", dtype=m.llm.dtype)
    return count_flops(lambda: m.heads.projector(x))[0]


class SelectorBench:
    """Runs CLIP-side selectors on a synthetic trace with the arch's true CLIP shapes (real tensors)."""

    def __init__(self, arch: EffArch, device: str | torch.device = "cpu", seed: int = 0):
        model = materialize_selector_modules(build_clip(arch, "meta"), device, seed)
        self.backend = InMemoryClip(model, f"{arch.name}-clip")
        self.trace = synthetic_trace(self.backend, seed, device)
        g = torch.Generator().manual_seed(seed + 1)
        from litelvlm.clip.base import TextTrace

        emb = torch.randn(1, arch.clip.embed_dim, generator=g).to(device)
        self.text = TextTrace(texts=[QUERY], input_ids=torch.zeros(1, 16, dtype=torch.long),
                              eos_index=torch.tensor([15]), text_embeds=emb, hidden_states=None,
                              truncated=[False], backend=self.backend)

    def inputs(self) -> SelectorInputs:
        return SelectorInputs(self.trace, self.text)

    def flops(self, method: str, budget: int) -> int:
        """FLOPs of the selection itself (0 for ``none`` and for FastV, whose cost is inside the LLM)."""
        if method in ("none", "fastv"):
            return 0
        return count_flops(lambda: select(method, self.inputs(), budget))[0]


class DevicePipeline:
    """Every part with random weights on ``device`` in ``dtype``, LLM attention ``attn``."""

    def __init__(self, arch: EffArch, device: str | torch.device, dtype: torch.dtype, attn: str):
        self.arch, self.device, self.dtype, self.attn = arch, torch.device(device), dtype, attn
        torch.manual_seed(0)
        self.llm = build_llm(arch, self.device, dtype, attn)
        self.clip = InMemoryClip(build_clip(arch, self.device, dtype, attn), f"{arch.name}-clip")
        self.heads = build_heads(arch, self.device, dtype)
        self.sam = build_sam(arch, self.device, dtype)
        self.clip_px = clip_pixels(arch, self.device, dtype)
        self.sam_px = sam_pixels(arch, self.device, dtype)
        with torch.no_grad():
            self.trace = self.clip.trace_image(self.clip_px)
            self.text = self.clip.encode_text([QUERY], hidden_states=False)
        self._embeds: dict[TokenPlan, torch.Tensor] = {}

    def weight_bytes(self) -> int:
        mods = (self.llm, self.clip.model, self.heads, self.sam)
        return sum(p.numel() * p.element_size() for m in mods for p in m.parameters())

    # -- parts ----------------------------------------------------------------------------------
    def run_clip(self):
        return self.clip.trace_image(self.clip_px)

    def run_text(self):
        return self.clip.encode_text([QUERY], hidden_states=False)

    def run_select(self, method: str, budget: int, trace=None, text=None):
        trace = self.trace if trace is None else trace
        if method in ("none", "fastv"):
            return trace.patches(-2)[0]
        feats_sel = select(method, SelectorInputs(trace, self.text if text is None else text), budget)
        if feats_sel.features is not None:
            return feats_sel.features
        return trace.patches(-2)[0][feats_sel.indices.to(self.device)]

    def llm_embeds(self, plan: TokenPlan) -> torch.Tensor:
        if plan not in self._embeds:
            from .flops import llm_inputs

            self._embeds[plan] = llm_inputs(self.arch, plan, self.device, self.dtype)
        return self._embeds[plan]

    def run_llm(self, plan: TokenPlan):
        return run_llm(self.llm, self.arch, plan, self.llm_embeds(plan))

    def run_sam(self, seg_hidden: torch.Tensor | None = None):
        if seg_hidden is None:
            seg_hidden = torch.zeros(1, self.arch.glamm.llm_hidden, device=self.device, dtype=self.dtype)
        return sam_forward(self.sam, self.heads, self.sam_px, seg_hidden)

    def run_e2e(self, method: str, budget: int, fastv_layer: int = 2):
        """The whole chain for one image and one query; returns the mask logits."""
        a = self.arch
        trace = self.run_clip()
        text = self.run_text() if needs_text(method) else None
        feats = self.run_select(method, budget, trace, text)
        vis = self.heads.projector(feats[None].to(self.dtype))
        plan = token_plan(a, method, budget, fastv_layer)
        txt = self.llm_embeds(TokenPlan(a.text_tokens, a.text_tokens, 0))
        x = torch.cat([txt[:, :a.prefix_tokens], vis, txt[:, a.prefix_tokens:]], dim=1)
        out = run_llm(self.llm, a, plan, x)
        return self.run_sam(out.hidden_states[-1][:, -1])
