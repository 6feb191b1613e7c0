"""The architectures the efficiency study runs: a model family, one of its presets, and the prompt around the image.

An :class:`EffArch` names its family (``glamm`` or ``unipixel``) and the family's preset; what the study reads
from it (the decoder's sizes ``llm``, N = ``num_patches`` visual tokens, the prompt tokens around them) comes
from the family:

* GLaMM = CLIP ViT-L/14-336 (visual tokens) -> 2-layer GELU projector -> Llama-2-7B (Vicuna) LLM ->
  SAM ViT-H image encoder + mask decoder (the [SEG] token's hidden state is the prompt). Every size
  is a preset of ``litelvlm.glamm.config.ARCHS`` (``glamm-7b``, ``scaled``, ``tiny``), and the models
  are built by ``litelvlm.lvlm`` (see ``analysis.efficiency.build``), so the model counted and timed here is
  the model ``eval-grounding`` runs. The study only adds the prompt length around the visual tokens.
* UniPixel = Qwen2.5-VL (native-resolution ViT with window attention, 2x2 merger) + SAM 2.1 prompted by the
  ``<|seg|>`` hidden state: ``unipixel-3b``, ``unipixel-7b``, ``unipixel-tiny`` are the presets of
  ``litelvlm.unipixel.config.PRESETS``; N is the merged-token count of the study's synthetic photo after
  UniPixel's protocol resize (:mod:`analysis.efficiency.unipixel`).
* VideoGLaMM (``videoglamm``, ``videoglamm-tiny``; not a registered family) = CLIP ViT-L/14-336 on 16 frames +
  InternVideo2-1B -> Phi-3-mini -> SAM 2 per frame: one video prompt, N = a frame's 576 CLIP tokens, budgets per
  frame (:mod:`analysis.efficiency.videoglamm`).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from litelvlm.errors import LiteLVLMError
from litelvlm.methods import get_method

if TYPE_CHECKING:  # litelvlm.lvlm imports torch and transformers: only when an arch is built
    from litelvlm.clip.random_init import ClipArch
    from litelvlm.glamm.config import GlammArch


@dataclass(frozen=True)
class EffArch:
    """One architecture of a model family and the prompt it is run with.

    ``family`` and ``preset`` name it; ``llm`` holds the decoder's sizes (an ``LLMSizes``: a ``GlammArch``,
    or ``analysis.common.flops.DecoderSizes`` of the family's decoder config); ``num_patches`` is N, the
    visual tokens of the study's image; ``text_tokens`` the prompt tokens around them, ``prefix_tokens`` of
    them before the visual tokens (system prompt, ``USER:``). ``glamm`` holds every GLaMM size (None on
    another family); ``extra`` what a family adds to the run's config (UniPixel: the image's resize and grid).
    """

    name: str
    family: str
    preset: str
    llm: Any
    num_patches: int
    text_tokens: int = 129
    prefix_tokens: int = 36
    description: str = ""
    glamm: GlammArch | None = None
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def clip(self) -> ClipArch:
        """The CLIP tower's sizes (GLaMM's)."""
        if self.glamm is None:
            raise LiteLVLMError(f"--arch {self.name}: the {self.family} family has no CLIP tower")
        return self.glamm.clip_arch

    def spec(self, method: str):
        """The :class:`~litelvlm.method.Method` ``method`` runs as on this architecture's family (its variant for the
        family's backbone where one is registered)."""
        from litelvlm.families import get_family

        return get_method(method, get_family(self.family).backbone)

    def n_tokens(self, visual: int) -> int:
        """LLM sequence length with ``visual`` visual tokens."""
        return self.text_tokens + visual

    def to_dict(self) -> dict:
        if self.glamm is not None:
            return {"name": self.name, "glamm": self.glamm.to_dict(), "clip": asdict(self.clip),
                    "text_tokens": self.text_tokens, "prefix_tokens": self.prefix_tokens,
                    "description": self.description, "family": self.family}
        return {"name": self.name, "family": self.family, "preset": self.preset, "llm": asdict(self.llm),
                "num_visual": self.num_patches, "text_tokens": self.text_tokens, "prefix_tokens": self.prefix_tokens,
                "description": self.description, **dict(self.extra)}


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
GLAMM_ARCH_NAMES = tuple(_PROMPT)
#: ``--arch`` of the unipixel family -> its ``litelvlm.unipixel.config.PRESETS`` name
UNIPIXEL_ARCHS = {"unipixel-3b": "3b", "unipixel-7b": "7b", "unipixel-tiny": "tiny"}
#: ``--arch`` of VideoGLaMM (not a registered family: ``analysis.efficiency.videoglamm``) -> its preset
VIDEOGLAMM_ARCHS = {"videoglamm": "videoglamm", "videoglamm-tiny": "tiny"}
#: every ``--arch``
ARCH_NAMES = GLAMM_ARCH_NAMES + tuple(UNIPIXEL_ARCHS) + tuple(VIDEOGLAMM_ARCHS)
#: the full-size archs (not timed on a CPU)
FULL_SIZE = ("glamm-7b", "unipixel-3b", "unipixel-7b", "videoglamm")


@functools.cache
def _tiny_vocab() -> int:
    from litelvlm.glamm.tokenizer import build_tiny_tokenizer

    return len(build_tiny_tokenizer())


def get_arch(name: str, text_tokens: int | None = None) -> EffArch:
    """The architecture ``name`` (optionally with another prompt length)."""
    if name not in ARCH_NAMES:
        raise LiteLVLMError(f"unknown --arch {name!r}; choose one of {', '.join(ARCH_NAMES)}")
    if text_tokens is not None and text_tokens < 2:
        raise LiteLVLMError(f"--text-tokens must be at least 2, got {text_tokens}")
    if name in VIDEOGLAMM_ARCHS:
        from analysis.efficiency.videoglamm import videoglamm_arch

        return videoglamm_arch(name, VIDEOGLAMM_ARCHS[name], text_tokens)
    if name in UNIPIXEL_ARCHS:
        from analysis.efficiency.unipixel import unipixel_arch

        return unipixel_arch(name, UNIPIXEL_ARCHS[name], text_tokens)
    from litelvlm.glamm.config import ARCHS as GLAMM_ARCHS
    from litelvlm.glamm.config import with_vocab

    glamm = GLAMM_ARCHS[name]
    if glamm.vocab_size is None:  # the tiny LLM takes its tokenizer's length, as build_glamm does
        glamm = with_vocab(glamm, _tiny_vocab())
    text, prefix = _PROMPT[name]
    if text_tokens is not None:
        text, prefix = text_tokens, min(prefix, text_tokens - 1)
    return glamm_arch(name, glamm, text, prefix)


def glamm_arch(name: str, glamm: GlammArch, text_tokens: int, prefix_tokens: int) -> EffArch:
    """The GLaMM architecture of ``glamm``'s sizes: its LLM, N = its CLIP grid (576 for ViT-L/14 at 336 px)."""
    return EffArch(name, "glamm", name, glamm, glamm.num_visual_tokens, text_tokens, prefix_tokens,
                   _DESCRIPTIONS.get(name, ""), glamm=glamm)


def with_sizes(arch: EffArch, **sizes) -> EffArch:
    """A copy of a GLaMM ``arch`` with some ``GlammArch`` fields replaced (e.g. ``llm_layers=2``)."""
    if arch.glamm is None:
        raise LiteLVLMError(f"with_sizes replaces GLaMM sizes; --arch {arch.name} is {arch.family}'s")
    return glamm_arch(arch.name, replace(arch.glamm, **sizes), arch.text_tokens, arch.prefix_tokens)
