"""The architectures the efficiency study runs: a ``litelvlm.lvlm`` preset and the prompt around the image.

GLaMM = CLIP ViT-L/14-336 (visual tokens) -> 2-layer GELU projector -> Llama-2-7B (Vicuna) LLM ->
SAM ViT-H image encoder + mask decoder (the [SEG] token's hidden state is the prompt). Every size
is a preset of ``litelvlm.glamm.config.ARCHS`` (``glamm-7b``, ``scaled``, ``tiny``), and the models
are built by ``litelvlm.lvlm`` (see ``analysis.efficiency.build``), so the model counted and timed here is
the model ``eval-grounding`` runs. The study only adds the prompt length around the visual tokens.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from litelvlm.errors import LiteLVLMError

if TYPE_CHECKING:  # litelvlm.lvlm imports torch and transformers: only when an arch is built
    from litelvlm.clip.random_init import ClipArch
    from litelvlm.glamm.config import GlammArch


@dataclass(frozen=True)
class EffArch:
    """One GLaMM architecture and the prompt it is run with.

    ``glamm`` holds every size (``clip`` is its CLIP tower, ``glamm.clip_arch``); ``text_tokens`` is
    the number of prompt tokens around the visual tokens, ``prefix_tokens`` of them before the
    visual tokens (system prompt, ``USER:``).
    """

    name: str
    glamm: GlammArch
    text_tokens: int = 129
    prefix_tokens: int = 36
    description: str = ""

    @property
    def clip(self) -> ClipArch:
        """The CLIP tower's sizes."""
        return self.glamm.clip_arch

    @property
    def num_patches(self) -> int:
        """N, the number of visual tokens (576 for ViT-L/14 at 336 px)."""
        return self.glamm.num_visual_tokens

    def n_tokens(self, visual: int) -> int:
        """LLM sequence length with ``visual`` visual tokens."""
        return self.text_tokens + visual

    def to_dict(self) -> dict:
        return {"name": self.name, "glamm": self.glamm.to_dict(), "clip": asdict(self.clip),
                "text_tokens": self.text_tokens, "prefix_tokens": self.prefix_tokens,
                "description": self.description}


_DESCRIPTIONS = {
    "glamm-7b": "GLaMM-7B (litelvlm.lvlm ARCHS['glamm-7b']): CLIP ViT-L/14-336, Llama-2-7B (Vicuna), SAM ViT-H",
    "scaled": "GLaMM family scaled for CPU timing: LLM d=512 L=4 m=1376; CLIP width 128 (24x24 grid); "
              "SAM width 128 at 512 px",
    "tiny": "litelvlm.lvlm ARCHS['tiny'] (576 visual tokens, tiny widths), for tests",
}
#: Text tokens of GLaMM's official referring-segmentation prompt (``litelvlm.glamm.protocol.official_prompt``
#: with the GLaMM-RefSeg tokenizer, the ``<image>`` placeholder not counted): the median over the 1,500
#: RefCOCO val images with GLaMM's 3 sampled sentences (seed 0; mean 128.9, range 89-162; 1 sentence
#: would give 72, 2 give 101). The paper's 4.66 / 2.11 / 1.27 TMACs imply 124-131 (3 sentences); with
#: 129 the count gives 4.70 / 2.11 / 1.26. ``tests/test_efficiency.py`` recomputes both.
OFFICIAL_PROMPT_TOKENS = 129
#: of which before the image (system prompt, ``USER:``, ``<im_start>``)
OFFICIAL_PREFIX_TOKENS = 36
#: (text tokens, of which before the image) per arch; glamm-7b's and scaled's are the official prompt's.
_PROMPT = {"glamm-7b": (OFFICIAL_PROMPT_TOKENS, OFFICIAL_PREFIX_TOKENS),
           "scaled": (OFFICIAL_PROMPT_TOKENS, OFFICIAL_PREFIX_TOKENS), "tiny": (20, 12)}
#: the presets of ``litelvlm.glamm.config.ARCHS`` the study runs (those with a prompt length here)
ARCH_NAMES = tuple(_PROMPT)


@functools.cache
def _tiny_vocab() -> int:
    from litelvlm.glamm.tokenizer import build_tiny_tokenizer

    return len(build_tiny_tokenizer())


def get_arch(name: str, text_tokens: int | None = None) -> EffArch:
    """The architecture ``name`` (optionally with another prompt length)."""
    if name not in ARCH_NAMES:
        raise LiteLVLMError(f"unknown --arch {name!r}; choose one of {', '.join(ARCH_NAMES)}")
    from litelvlm.glamm.config import ARCHS as GLAMM_ARCHS
    from litelvlm.glamm.config import with_vocab

    glamm = GLAMM_ARCHS[name]
    if glamm.vocab_size is None:  # the tiny LLM takes its tokenizer's length, as build_glamm does
        glamm = with_vocab(glamm, _tiny_vocab())
    text, prefix = _PROMPT[name]
    if text_tokens is not None:
        if text_tokens < 2:
            raise LiteLVLMError(f"--text-tokens must be at least 2, got {text_tokens}")
        text, prefix = text_tokens, min(prefix, text_tokens - 1)
    return EffArch(name, glamm, text, prefix, _DESCRIPTIONS[name])


def with_sizes(arch: EffArch, **sizes) -> EffArch:
    """A copy of ``arch`` with some ``GlammArch`` fields replaced (e.g. ``llm_layers=2``)."""
    return replace(arch, glamm=replace(arch.glamm, **sizes))
