"""The architectures the efficiency study runs: GLaMM-7B sizes, a tiny one for tests, a scaled one for CPUs.

GLaMM = CLIP ViT-L/14-336 (visual tokens) -> 2-layer GELU projector -> Llama-2-7B (Vicuna) LLM ->
SAM ViT-H image encoder + mask decoder (the [SEG] token's hidden state is the prompt). Every part is
built from the standard transformers classes with random weights, on any device (``meta`` needs no
memory, so the full 7B model can be FLOP-counted anywhere).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from litelvlm.errors import LiteLVLMError


@dataclass(frozen=True)
class LlmSizes:
    """A Llama decoder: width d, depth L, SwiGLU width m, heads, vocabulary V."""

    hidden: int
    layers: int
    intermediate: int
    heads: int
    vocab: int


@dataclass(frozen=True)
class ClipSizes:
    """A CLIP ViT (vision tower used for the visual tokens; text tower used by text-guided selectors)."""

    image_size: int
    patch_size: int
    width: int
    layers: int
    heads: int
    text_width: int
    text_layers: int
    text_heads: int
    embed_dim: int


@dataclass(frozen=True)
class SamSizes:
    """SAM's ViT image encoder (windowed attention with a few global blocks) and its mask decoder."""

    image_size: int
    width: int
    layers: int
    heads: int
    global_blocks: tuple[int, ...]
    window: int
    out_channels: int = 256
    patch_size: int = 16


@dataclass(frozen=True)
class EffArch:
    """One GLaMM-shaped architecture and the prompt it is run with.

    ``text_tokens`` is the number of prompt tokens around the visual tokens, split into
    ``prefix`` tokens before them (system prompt, ``USER:``) and the rest after them.
    """

    name: str
    llm: LlmSizes
    clip: ClipSizes
    sam: SamSizes
    text_tokens: int = 64
    prefix_tokens: int = 36
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def num_patches(self) -> int:
        """N, the number of visual tokens (576 for ViT-L/14 at 336 px)."""
        return (self.clip.image_size // self.clip.patch_size) ** 2

    def n_tokens(self, visual: int) -> int:
        """LLM sequence length with ``visual`` visual tokens."""
        return self.text_tokens + visual

    def to_dict(self) -> dict:
        return asdict(self)


#: Llama-2-7B / Vicuna-7B plus GLaMM's added tokens ([SEG], <p>, </p>, <bbox>, <im_start>, <im_end>, ...).
GLAMM_VOCAB = 32006

ARCHS: dict[str, EffArch] = {
    "glamm-7b": EffArch(
        "glamm-7b",
        LlmSizes(hidden=4096, layers=32, intermediate=11008, heads=32, vocab=GLAMM_VOCAB),
        ClipSizes(336, 14, 1024, 24, 16, 768, 12, 12, 768),
        SamSizes(image_size=1024, width=1280, layers=32, heads=16, global_blocks=(7, 15, 23, 31), window=14),
        description="GLaMM-7B: CLIP ViT-L/14-336, Llama-2-7B (Vicuna), SAM ViT-H"),
    # Same family, CPU-sized: the LLM keeps Llama's m/d ratio and 64-wide heads but is 8x narrower and
    # 8x shallower (attention's share of the FLOPs stays small, as at full size); the encoders shrink too.
    "scaled": EffArch(
        "scaled",
        LlmSizes(hidden=512, layers=4, intermediate=1376, heads=8, vocab=4000),
        ClipSizes(336, 14, 128, 6, 2, 64, 2, 2, 64),
        SamSizes(image_size=512, width=128, layers=8, heads=2, global_blocks=(1, 3, 5, 7), window=8,
                 out_channels=32),
        description="GLaMM family scaled for CPU timing: LLM d=512 L=4 m=1376; CLIP width 128; SAM width 128"),
    "tiny": EffArch(
        "tiny",
        LlmSizes(hidden=64, layers=3, intermediate=172, heads=2, vocab=256),
        ClipSizes(336, 14, 32, 2, 2, 32, 2, 2, 24),
        SamSizes(image_size=256, width=32, layers=2, heads=2, global_blocks=(1,), window=4, out_channels=16),
        text_tokens=20, prefix_tokens=12,
        description="tiny GLaMM-shaped model for tests (576 visual tokens, tiny widths)"),
}


def get_arch(name: str, text_tokens: int | None = None) -> EffArch:
    """The architecture ``name`` (optionally with another prompt length)."""
    if name not in ARCHS:
        raise LiteLVLMError(f"unknown --arch {name!r}; choose one of {', '.join(ARCHS)}")
    a = ARCHS[name]
    if text_tokens is not None:
        if text_tokens < 2:
            raise LiteLVLMError(f"--text-tokens must be at least 2, got {text_tokens}")
        from dataclasses import replace

        a = replace(a, text_tokens=text_tokens, prefix_tokens=min(a.prefix_tokens, text_tokens - 1))
    return a


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Temporarily set torch's default dtype (modules are created directly in ``dtype``)."""
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(prev)


def llama_config(arch: EffArch, attn: str = "sdpa"):
    """A transformers ``LlamaConfig`` with the arch's LLM sizes."""
    from transformers import LlamaConfig

    s = arch.llm
    cfg = LlamaConfig(hidden_size=s.hidden, intermediate_size=s.intermediate, num_hidden_layers=s.layers,
                      num_attention_heads=s.heads, num_key_value_heads=s.heads, vocab_size=s.vocab,
                      max_position_embeddings=4096, rms_norm_eps=1e-5, tie_word_embeddings=False)
    cfg._attn_implementation = attn
    return cfg


def build_llm(arch: EffArch, device: str | torch.device = "meta", dtype: torch.dtype = torch.float32,
              attn: str = "sdpa") -> nn.Module:
    """A random ``LlamaForCausalLM`` of the arch's LLM sizes on ``device`` (``meta``: no memory)."""
    from transformers import LlamaForCausalLM

    with default_dtype(dtype), torch.device(device):
        model = LlamaForCausalLM(llama_config(arch, attn))
    return model.eval().requires_grad_(False)


def clip_config(arch: EffArch):
    """A transformers ``CLIPConfig`` with the arch's CLIP sizes (quick_gelu, as OpenAI's)."""
    from transformers import CLIPConfig

    c = arch.clip
    return CLIPConfig(
        text_config=dict(hidden_size=c.text_width, intermediate_size=4 * c.text_width,
                         num_hidden_layers=c.text_layers, num_attention_heads=c.text_heads,
                         max_position_embeddings=77, vocab_size=49408, bos_token_id=49406,
                         eos_token_id=49407, pad_token_id=49407, hidden_act="quick_gelu",
                         projection_dim=c.embed_dim),
        vision_config=dict(hidden_size=c.width, intermediate_size=4 * c.width, num_hidden_layers=c.layers,
                           num_attention_heads=c.heads, image_size=c.image_size, patch_size=c.patch_size,
                           hidden_act="quick_gelu", projection_dim=c.embed_dim),
        projection_dim=c.embed_dim)


def build_clip(arch: EffArch, device: str | torch.device = "meta", dtype: torch.dtype = torch.float32,
               attn: str = "sdpa") -> nn.Module:
    """A random transformers ``CLIPModel`` (vision + text tower) of the arch's CLIP sizes."""
    from transformers import CLIPModel

    cfg = clip_config(arch)
    cfg._attn_implementation = attn
    with default_dtype(dtype), torch.device(device):
        model = CLIPModel(cfg)
    return model.eval().requires_grad_(False)


def sam_config(arch: EffArch):
    """A transformers ``SamConfig`` with the arch's SAM sizes."""
    from transformers import SamConfig

    s = arch.sam
    vision = dict(hidden_size=s.width, num_hidden_layers=s.layers, num_attention_heads=s.heads,
                  global_attn_indexes=list(s.global_blocks), window_size=s.window, image_size=s.image_size,
                  patch_size=s.patch_size, output_channels=s.out_channels, mlp_dim=4 * s.width,
                  num_pos_feats=s.out_channels // 2)
    prompt = dict(hidden_size=s.out_channels, image_size=s.image_size, patch_size=s.patch_size)
    decoder = dict(hidden_size=s.out_channels, mlp_dim=8 * s.out_channels, iou_head_hidden_dim=s.out_channels,
                   num_attention_heads=8 if s.out_channels >= 64 else 2)
    return SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)


def build_sam(arch: EffArch, device: str | torch.device = "meta", dtype: torch.dtype = torch.float32) -> nn.Module:
    """A random transformers ``SamModel`` (image encoder, prompt encoder, mask decoder)."""
    from transformers import SamModel

    with default_dtype(dtype), torch.device(device):
        model = SamModel(sam_config(arch))
    return model.eval().requires_grad_(False)


class GlammHeads(nn.Module):
    """GLaMM's two small adapters: the visual projector (mlp2x_gelu, CLIP width -> d) and the
    [SEG] text projection (d -> d -> SAM prompt width, ReLU)."""

    def __init__(self, arch: EffArch):
        super().__init__()
        d = arch.llm.hidden
        self.projector = nn.Sequential(nn.Linear(arch.clip.width, d), nn.GELU(), nn.Linear(d, d))
        self.seg_fc = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, arch.sam.out_channels))


def build_heads(arch: EffArch, device: str | torch.device = "meta", dtype: torch.dtype = torch.float32) -> GlammHeads:
    """Random GLaMM adapters (projector, [SEG] projection)."""
    with default_dtype(dtype), torch.device(device):
        heads = GlammHeads(arch)
    return heads.eval().requires_grad_(False)
