"""The study's input and the in-memory CLIP every family's cost builds: a synthetic photo, one referring
expression, and a random transformers ``CLIPModel`` behind the library's ``HFClip`` backend (what
``litelvlm.clip.random_init.save_random_hf_clip`` writes, held in memory)."""

from __future__ import annotations

import functools
import tempfile

import torch
from PIL import Image
from transformers import CLIPImageProcessor, CLIPModel

from ..clip.hf import HFClip
from ..clip.random_init import ARCHS, hf_config, write_clip_tokenizer
from ..clip.traces import Geometry

#: The referring expression: GLaMM's first question around it is 16 CLIP tokens (BOS and EOS included).
SENTENCE = "woman on the left in blue"
#: Size (W, H) of the synthetic photo (a COCO-like 4:3 image).
IMAGE_SIZE = (640, 480)


@functools.cache
def clip_tokenizer():
    """OpenAI CLIP's tokenizer, from the BPE that ships with open_clip (what random CLIP folders hold)."""
    with tempfile.TemporaryDirectory() as tmp:
        return write_clip_tokenizer(tmp)


class InMemoryHFClip(HFClip):
    """The library's transformers CLIP backend over an in-memory ``CLIPModel`` (random weights).

    ``HFClip`` loads its model, tokenizer and image processor from a folder; this one takes the model
    and uses the tokenizer and processor that ``save_random_hf_clip`` writes. Every method is HFClip's.
    """

    def __init__(self, model: torch.nn.Module, name: str = "in-memory-clip"):
        vc, tc = model.config.vision_config, model.config.text_config
        size = vc.image_size
        self.name = self.source = name
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = clip_tokenizer()
        self.processor = CLIPImageProcessor(size={"shortest_edge": size},
                                            crop_size={"height": size, "width": size})
        self.image_mean = tuple(self.processor.image_mean)
        self.image_std = tuple(self.processor.image_std)
        self.vision_heads = vc.num_attention_heads
        self.text_heads = tc.num_attention_heads
        self.context_length = tc.max_position_embeddings
        self._grid = (size // vc.patch_size,) * 2
        self.geometry = Geometry(mode="shortest", resize=size, crop=(size, size), crop_rounding="floor")

    def weights_hash(self) -> str:
        return "random"


def build_clip_sizes(clip, device: str | torch.device = "meta",
                     dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """A random transformers ``CLIPModel`` of the sizes ``clip`` (a
    ``litelvlm.clip.random_init.ClipArch``)."""
    with torch.device(device):
        model = CLIPModel(hf_config(clip))
    return model.to(dtype).eval().requires_grad_(False)


def paired_clip(sizes: str, device: str | torch.device, dtype: torch.dtype, name: str) -> InMemoryHFClip:
    """An in-memory random CLIP of ``litelvlm.clip.random_init.ARCHS[sizes]`` (a family's paired CLIP)."""
    return InMemoryHFClip(build_clip_sizes(ARCHS[sizes], device, dtype), name)


def synthetic_image(seed: int = 0) -> Image.Image:
    """A random RGB photo of :data:`IMAGE_SIZE` (time, FLOPs and memory do not depend on its content)."""
    g = torch.Generator().manual_seed(seed)
    w, h = IMAGE_SIZE
    return Image.fromarray(torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy())
