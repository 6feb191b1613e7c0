"""GLaMM's cost description for the efficiency study (``COST``, its card's ``cost``).

GLaMM = CLIP ViT-L/14-336 (visual tokens) -> 2-layer GELU projector -> Llama-2-7B (Vicuna) LLM -> SAM ViT-H
image encoder + mask decoder (the [SEG] token's hidden state is the prompt). Every size is a preset of
:data:`litelvlm.glamm.config.ARCHS` (``glamm-7b``, ``scaled``, ``tiny``), built by ``litelvlm.glamm`` so the
model counted and timed is the model ``eval-grounding`` runs; the study only adds the prompt length around the
visual tokens (:data:`OFFICIAL_PROMPT_TOKENS`).

:func:`litelvlm.glamm.cost_parts.build_pipeline` assembles what ``GlammPipeline.from_model_string`` loads from
files, in memory: the ``GlammModel`` of the arch's preset (created directly on the device in the target dtype;
``meta`` needs no memory, so the full 7B model can be counted anywhere), a transformers ``CLIPModel`` of the
arch's tower behind the library's ``HFClip`` backend, and the tiny LLM tokenizer. ``cost_parts.prepare`` runs
the pipeline's own per-image steps (``prepare_image``, ``with_sentences``) on the study's photo and sentence,
then gives the prompt the study's fixed length (``cost_parts.with_sentence``). Those, the parts and the FLOPs
rows:
:mod:`litelvlm.glamm.cost_parts`.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from ..cost import CostArch, FamilyCost
from .card import CARD
from .config import ARCHS, with_vocab
from .cost_parts import PipelineParts, build_pipeline, count_rows, set_attention
from .tokenizer import build_tiny_tokenizer

if TYPE_CHECKING:  # the pipeline imports torch and transformers: only when an arch is built
    from ..clip.random_init import ClipArch
    from .config import GlammArch

_DESCRIPTIONS = {
    "glamm-7b": "GLaMM-7B (litelvlm.lvlm ARCHS['glamm-7b']): CLIP ViT-L/14-336, Llama-2-7B (Vicuna), SAM "
    "ViT-H",
    "scaled": "GLaMM family scaled for CPU timing: LLM d=512 L=4 m=1376; CLIP width 128 (24x24 grid); "
              "SAM width 128 at 512 px",
    "tiny": "litelvlm.lvlm ARCHS['tiny'] (576 visual tokens, tiny widths), for tests",
}
#: Text tokens of GLaMM's official referring-segmentation prompt (``litelvlm.glamm.protocol.official_prompt``
#: with the GLaMM-RefSeg tokenizer, the ``<image>`` placeholder not counted): the median over the 1,500
#: RefCOCO val images with GLaMM's 3 sampled sentences (seed 0; mean 128.9, range 89-162; 1 sentence
#: would give 72, 2 give 101). The paper's 4.66 / 2.11 / 1.27 TMACs imply 124-131 (3 sentences); with
#: 129 the count gives 4.70 / 2.11 / 1.26. ``tests/analysis/test_efficiency.py`` recomputes both.
OFFICIAL_PROMPT_TOKENS = 129
#: of which before the image (system prompt, ``USER:``, ``<im_start>``)
OFFICIAL_PREFIX_TOKENS = 36
#: (text tokens, of which before the image) per arch; glamm-7b's and scaled's are the official prompt's.
_PROMPT = {"glamm-7b": (OFFICIAL_PROMPT_TOKENS, OFFICIAL_PREFIX_TOKENS),
           "scaled": (OFFICIAL_PROMPT_TOKENS, OFFICIAL_PREFIX_TOKENS), "tiny": (20, 12)}


@dataclass(frozen=True)
class GlammCostArch(CostArch):
    """A GLaMM architecture: :class:`~litelvlm.cost.CostArch` with every GLaMM size (``glamm``)."""

    glamm: GlammArch | None = None

    @property
    def clip(self) -> ClipArch:
        """The CLIP tower's sizes."""
        return self.glamm.clip_arch

    def to_dict(self) -> dict:
        return {"name": self.name, "glamm": self.glamm.to_dict(), "clip": asdict(self.clip),
                "text_tokens": self.text_tokens, "prefix_tokens": self.prefix_tokens,
                "description": self.description, "family": self.family}


@functools.cache
def _tiny_vocab() -> int:
    return len(build_tiny_tokenizer())


def glamm_arch(name: str, glamm: GlammArch, text_tokens: int, prefix_tokens: int) -> GlammCostArch:
    """The GLaMM architecture of ``glamm``'s sizes: its LLM, N = its CLIP grid (576 for ViT-L/14 at 336
    px)."""
    return GlammCostArch(name, "glamm", name, glamm, glamm.num_visual_tokens, text_tokens, prefix_tokens,
                         _DESCRIPTIONS.get(name, ""), glamm=glamm)


def with_sizes(arch: GlammCostArch, **sizes) -> GlammCostArch:
    """A copy of a GLaMM ``arch`` with some ``GlammArch`` fields replaced (e.g. ``llm_layers=2``)."""
    return glamm_arch(arch.name, replace(arch.glamm, **sizes), arch.text_tokens, arch.prefix_tokens)


class GlammCost(FamilyCost):
    """GLaMM's cost: its presets at the official prompt's length, its parts
    (:mod:`litelvlm.glamm.cost_parts`)."""

    family = "glamm"
    archs = CARD.cost_archs
    full_size = ("glamm-7b",)
    paper_arch = CARD.paper_preset  # the paper's table: GLaMM-7B

    def arch(self, name: str, text_tokens: int | None = None) -> GlammCostArch:
        glamm = ARCHS[name]
        if glamm.vocab_size is None:  # the tiny LLM takes its tokenizer's length, as build_glamm does
            glamm = with_vocab(glamm, _tiny_vocab())
        text, prefix = _PROMPT[name]
        if text_tokens is not None:
            text, prefix = text_tokens, min(prefix, text_tokens - 1)
        return glamm_arch(name, glamm, text, prefix)

    def count(self, arch, rows, attns, dtype, method_args):
        return count_rows(self, arch, rows, attns, dtype, method_args)

    def build(self, arch, device, dtype, attn="sdpa", quantize=("none", "bitsandbytes")):
        return build_pipeline(arch, device, dtype, attn, quantize=quantize[0], quantize_backend=quantize[1])

    def set_attention(self, pipe, attn: str) -> None:
        set_attention(pipe, attn)

    def parts(self, pipe, arch, method_args: Any):
        return PipelineParts(pipe, arch, method_args)


#: the efficiency study's cost description of this family
COST = GlammCost()


