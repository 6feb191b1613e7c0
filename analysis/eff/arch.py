"""The architectures the efficiency study runs, taken from the library's own definitions.

GLaMM = CLIP ViT-L/14-336 (visual tokens) -> 2-layer GELU projector -> Llama-2-7B (Vicuna) LLM ->
SAM ViT-H image encoder + mask decoder (the [SEG] token's hidden state is the prompt). The sizes are
``litelvlm.lvlm.config.ARCHS`` (``glamm-7b``, ``tiny``) and ``litelvlm.clip.random_init.ARCHS``, and
the transformers configs come from the same modules (``llama_config``, ``sam_config``, ``hf_config``),
so the model counted here is the model the rest of the suite builds. The study only adds ``scaled``
(the GLaMM family at CPU size, for timing ratios) and the prompt length around the visual tokens.
Every part is built with random weights on any device (``meta`` needs no memory, so the full 7B model
can be FLOP-counted anywhere).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from litelvlm.clip.random_init import ClipArch, hf_config
from litelvlm.errors import LiteLVLMError
from litelvlm.lvlm.config import ARCHS as GLAMM_ARCHS
from litelvlm.lvlm.config import GlammArch, llama_config, sam_config, with_vocab


@dataclass(frozen=True)
class EffArch:
    """One GLaMM architecture and the prompt it is run with.

    ``glamm`` holds every LLM and SAM size; ``clip`` is its CLIP tower (``glamm.clip_arch`` except for
    ``scaled``, whose tower is scaled too). ``text_tokens`` is the number of prompt tokens around the
    visual tokens, ``prefix_tokens`` of them before the visual tokens (system prompt, ``USER:``).
    """

    name: str
    glamm: GlammArch
    clip: ClipArch
    text_tokens: int = 64
    prefix_tokens: int = 36
    description: str = ""

    @property
    def num_patches(self) -> int:
        """N, the number of visual tokens (576 for ViT-L/14 at 336 px)."""
        return (self.clip.image_size // self.clip.patch_size) ** 2

    def n_tokens(self, visual: int) -> int:
        """LLM sequence length with ``visual`` visual tokens."""
        return self.text_tokens + visual

    def to_dict(self) -> dict:
        return {"name": self.name, "glamm": self.glamm.to_dict(), "clip": asdict(self.clip),
                "text_tokens": self.text_tokens, "prefix_tokens": self.prefix_tokens,
                "description": self.description}


@functools.cache
def _tiny_vocab() -> int:
    from litelvlm.lvlm.tokenizer import build_tiny_tokenizer

    return len(build_tiny_tokenizer())


#: The GLaMM family at CPU size, for timing ratios: the LLM keeps Llama's m/d ratio and 64-wide heads
#: but is 8x narrower and 8x shallower; CLIP keeps its 24x24 grid; SAM runs at 512 px.
SCALED = GlammArch(
    name="scaled", clip="tiny-336", llm_hidden=512, llm_layers=4, llm_intermediate=1376, llm_heads=8,
    llm_kv_heads=8, vocab_size=4000, sam_hidden=128, sam_layers=8, sam_heads=2, sam_global_attn=(1, 3, 5, 7),
    sam_window=8, sam_patch=16, sam_decoder_mlp=256, sam_decoder_heads=2, prompt_dim=32, sam_image_size=512,
    sam_mask_input_channels=4, max_positions=2048)
SCALED_CLIP = ClipArch(336, 14, 128, 6, 2, 64, 2, 2, 64)

_DESCRIPTIONS = {
    "glamm-7b": "GLaMM-7B (litelvlm.lvlm ARCHS['glamm-7b']): CLIP ViT-L/14-336, Llama-2-7B (Vicuna), SAM ViT-H",
    "scaled": "GLaMM family scaled for CPU timing: LLM d=512 L=4 m=1376; CLIP width 128 (24x24 grid); "
              "SAM width 128 at 512 px",
    "tiny": "litelvlm.lvlm ARCHS['tiny'] (576 visual tokens, tiny widths), for tests",
}
#: (text tokens, of which before the image) per arch; glamm-7b's is GLaMM's segmentation prompt.
_PROMPT = {"glamm-7b": (64, 36), "scaled": (64, 36), "tiny": (20, 12)}
ARCH_NAMES = ("glamm-7b", "scaled", "tiny")


def get_arch(name: str, text_tokens: int | None = None) -> EffArch:
    """The architecture ``name`` (optionally with another prompt length)."""
    if name not in ARCH_NAMES:
        raise LiteLVLMError(f"unknown --arch {name!r}; choose one of {', '.join(ARCH_NAMES)}")
    if name == "scaled":
        glamm, clip = SCALED, SCALED_CLIP
    else:
        glamm = GLAMM_ARCHS[name]
        if glamm.vocab_size is None:  # the tiny LLM takes its tokenizer's length, as build_glamm does
            glamm = with_vocab(glamm, _tiny_vocab())
        clip = glamm.clip_arch
    text, prefix = _PROMPT[name]
    if text_tokens is not None:
        if text_tokens < 2:
            raise LiteLVLMError(f"--text-tokens must be at least 2, got {text_tokens}")
        text, prefix = text_tokens, min(prefix, text_tokens - 1)
    return EffArch(name, glamm, clip, text, prefix, _DESCRIPTIONS[name])


def with_sizes(arch: EffArch, **llm) -> EffArch:
    """A copy of ``arch`` with some ``GlammArch`` fields replaced (e.g. ``llm_layers=2``)."""
    return replace(arch, glamm=replace(arch.glamm, **llm))


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Temporarily set torch's default dtype (modules are created directly in ``dtype``)."""
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(prev)


def build_llm(arch: EffArch, device: str | torch.device = "meta", dtype: torch.dtype = torch.float32,
              attn: str = "sdpa") -> nn.Module:
    """A random ``LlamaForCausalLM`` with GLaMM's LLM config on ``device`` (``meta``: no memory)."""
    from transformers import LlamaForCausalLM

    cfg = llama_config(arch.glamm)
    cfg._attn_implementation = attn
    with default_dtype(dtype), torch.device(device):
        model = LlamaForCausalLM(cfg)
    return model.eval().requires_grad_(False)


def build_clip(arch: EffArch, device: str | torch.device = "meta", dtype: torch.dtype = torch.float32,
               attn: str = "sdpa") -> nn.Module:
    """A random transformers ``CLIPModel`` (vision + text tower) of the arch's CLIP sizes."""
    from transformers import CLIPModel

    cfg = hf_config(arch.clip)
    cfg._attn_implementation = attn
    with default_dtype(dtype), torch.device(device):
        model = CLIPModel(cfg)
    return model.eval().requires_grad_(False)


def build_sam(arch: EffArch, device: str | torch.device = "meta", dtype: torch.dtype = torch.float32) -> nn.Module:
    """A random transformers ``SamModel`` with GLaMM's SAM config (image encoder, prompts, mask decoder)."""
    from transformers import SamModel

    with default_dtype(dtype), torch.device(device):
        model = SamModel(sam_config(arch.glamm))
    return model.eval().requires_grad_(False)


class GlammHeads(nn.Module):
    """GLaMM's two small adapters, shaped as in ``litelvlm.lvlm.model.GlammModel``: the visual projector
    (mlp2x_gelu, CLIP width -> d) and the [SEG] projection (d -> d -> prompt width, ReLU)."""

    def __init__(self, arch: EffArch):
        super().__init__()
        d = arch.glamm.llm_hidden
        self.projector = nn.Sequential(nn.Linear(arch.clip.vision_width, d), nn.GELU(), nn.Linear(d, d))
        self.seg_fc = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, arch.glamm.prompt_dim))


def build_heads(arch: EffArch, device: str | torch.device = "meta", dtype: torch.dtype = torch.float32) -> GlammHeads:
    """Random GLaMM adapters (projector, [SEG] projection)."""
    with default_dtype(dtype), torch.device(device):
        heads = GlammHeads(arch)
    return heads.eval().requires_grad_(False)
