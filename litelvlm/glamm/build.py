"""Build a GLaMM model of a named architecture with random weights (on CPU, a GPU, or ``meta``)."""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..models.random_weights import default_dtype, fast_fill, init_plan, resolve_fill, skip_init
from .config import TEST_PRESETS, GlammArch, get_arch, with_vocab
from .model import GlammModel
from .tokenizer import build_tiny_tokenizer


def build_glamm(arch: str | GlammArch = "tiny", device: str | torch.device = "cpu",
                dtype: torch.dtype = torch.float32, seed: int = 0,
                vocab_size: int | None = None, init_on_device: bool = False,
                fill: str = "auto") -> GlammModel:
    """A randomly initialised ``GlammModel`` (eval mode, no grads); ``device="meta"`` allocates nothing.

    ``vocab_size`` overrides the architecture's (the tiny one takes its tokenizer's length). By default the
    modules are created on the CPU in float32 and then moved; ``init_on_device`` creates them directly on
    ``device`` in ``dtype`` (torch's initialisation runs there: the full-size model on a GPU in seconds, never
    a float32 copy on the CPU; other random values). ``fill`` (:mod:`litelvlm.models.random_weights`):
    ``"auto"`` fast-fills the full size (created on ``device`` in ``dtype`` without initialisation, then
    filled on every core), initialises the test sizes as above.
    """
    a = get_arch(arch)
    if vocab_size is not None:
        a = with_vocab(a, vocab_size)
    if a.vocab_size is None:
        a = with_vocab(a, len(build_tiny_tokenizer()))
    dev = torch.device(device)
    if dev.type == "meta":  # shapes alone: torch's initialisation would only spend time on them
        with torch.device("meta"), skip_init():
            model = GlammModel(a)
        return model.to(dtype).eval().requires_grad_(False)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LiteLVLMError(f"device {device!r} requested but CUDA is not available")
    torch.manual_seed(seed)
    if resolve_fill(fill, a.name not in TEST_PRESETS) == "fast":
        with default_dtype(dtype), dev, skip_init():
            model = GlammModel(a)
        fast_fill(init_plan(model), seed, desc=f"random GLaMM {a.name}: filling")
    elif init_on_device:
        with default_dtype(dtype), dev:
            model = GlammModel(a)
    else:
        model = GlammModel(a).to(device=dev, dtype=dtype)
    lm = model.language_model  # keep RoPE frequencies in float32 whatever the weights' dtype
    lm.rotary_emb = type(lm.rotary_emb)(config=lm.config).to(dev)
    return model.eval().requires_grad_(False)
