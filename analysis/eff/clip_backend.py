"""A ``ClipBackend`` over an in-memory transformers ``CLIPModel`` (random weights, any device).

The selectors read CLIP traces through the backend interface; this backend lets them run on a
model built here (no files), and on a full-size model of which only the modules the selectors
touch (the last two vision blocks, the post-layernorm and the projection) hold real tensors.
Text "tokenisation" is a fixed-length id sequence: the cost study needs shapes, not words.
"""

from __future__ import annotations

import torch
from torch import nn

from litelvlm.clip.base import ClipBackend, Geometry, VisionTrace

#: Length of the synthetic referring expression fed to the CLIP text tower (BOS + words + EOS).
QUERY_TOKENS = 16


class InMemoryClip(ClipBackend):
    """Backend over ``model`` (a ``CLIPModel``); ``name`` labels it in descriptions."""

    backend = "hf"

    def __init__(self, model: nn.Module, name: str = "in-memory-clip"):
        self.model = model
        self.name = name
        vc, tc = model.config.vision_config, model.config.text_config
        self.vision_heads = vc.num_attention_heads
        self.text_heads = tc.num_attention_heads
        self.context_length = tc.max_position_embeddings
        self._grid = (vc.image_size // vc.patch_size,) * 2
        self.geometry = Geometry(mode="shortest", resize=vc.image_size, crop=(vc.image_size, vc.image_size))
        self.image_mean = (0.48145466, 0.4578275, 0.40821073)
        self.image_std = (0.26862954, 0.26130258, 0.27577711)

    @property
    def grid(self) -> tuple[int, int]:
        return self._grid

    @property
    def device(self) -> torch.device:
        return self.model.visual_projection.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.visual_projection.weight.dtype

    def modules(self) -> nn.Module:
        return self.model

    def preprocess(self, images, pad_to_square: bool = False) -> torch.Tensor:
        raise NotImplementedError("the efficiency study feeds random pixels; no image transform here")

    @torch.no_grad()
    def trace_image(self, pixel_values: torch.Tensor) -> VisionTrace:
        out = self.model.vision_model(pixel_values=pixel_values.to(self.device, self.dtype),
                                      output_hidden_states=True)
        return VisionTrace(hidden_states=tuple(out.hidden_states), grid=self.grid, num_prefix_tokens=1,
                           backend=self)

    def tokenize(self, texts: list[str]):
        n = len(texts)
        ids = torch.full((n, QUERY_TOKENS), 320, dtype=torch.long)
        ids[:, 0] = 49406
        ids[:, -1] = 49407
        return ids, torch.full((n,), QUERY_TOKENS - 1, dtype=torch.long), [False] * n

    def _text_forward(self, input_ids, eos_index, hidden_states):
        out = self.model.text_model(input_ids=input_ids, output_hidden_states=hidden_states)
        pooled = out.last_hidden_state[torch.arange(input_ids.shape[0], device=input_ids.device), eos_index]
        return self.model.text_projection(pooled), (tuple(out.hidden_states) if hidden_states else None)

    def project_patches(self, patches: torch.Tensor) -> torch.Tensor:
        return self.model.visual_projection(self.model.vision_model.post_layernorm(patches))

    def vision_qkv(self, block: int, hidden: torch.Tensor):
        layer = self.model.vision_model.encoder.layers[block]
        x = layer.layer_norm1(hidden)
        a = layer.self_attn
        return a.q_proj(x), a.k_proj(x), a.v_proj(x)

    def text_qkv(self, block: int, hidden: torch.Tensor):
        layer = self.model.text_model.encoder.layers[block]
        x = layer.layer_norm1(hidden)
        a = layer.self_attn
        return a.q_proj(x), a.k_proj(x), a.v_proj(x)

    def weights_hash(self) -> str:
        return "random"


def materialize_selector_modules(model: nn.Module, device: str | torch.device = "cpu", seed: int = 0) -> nn.Module:
    """Give real random tensors to the modules selectors use (last two vision blocks, post-layernorm,
    visual projection) of a ``meta`` CLIPModel; everything else stays on ``meta``."""
    g = torch.Generator().manual_seed(seed)
    vm = model.vision_model
    mods = [*vm.encoder.layers[-2:], vm.post_layernorm, model.visual_projection]
    for mod in mods:
        mod.to_empty(device=device)
        for name, p in mod.named_parameters():
            if name.endswith("bias"):
                p.data.zero_()
            elif p.dim() == 1:
                p.data.fill_(1.0)
            else:
                p.data.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return model


def synthetic_trace(backend: InMemoryClip, seed: int = 0, device: str | torch.device = "cpu") -> VisionTrace:
    """A VisionTrace of random hidden states with the real shapes (1, 1+N, W) for every layer."""
    cfg = backend.model.config.vision_config
    g = torch.Generator().manual_seed(seed)
    n = backend.num_patches + 1
    hs = tuple(torch.randn(1, n, cfg.hidden_size, generator=g).to(device, backend.dtype)
               for _ in range(cfg.num_hidden_layers + 1))
    return VisionTrace(hidden_states=hs, grid=backend.grid, num_prefix_tokens=1, backend=backend)
