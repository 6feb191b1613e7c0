"""The pipeline the efficiency study measures: ``litelvlm.lvlm``'s ``GlammPipeline`` with random weights.

:func:`build_pipeline` assembles what ``GlammPipeline.from_model_string`` loads from files, in
memory: the ``GlammModel`` of the arch's preset (``litelvlm.lvlm.build_glamm``, created directly
on the device in the target dtype; ``meta`` needs no memory, so the full 7B model can be counted
anywhere), a transformers ``CLIPModel`` of the arch's tower behind the library's ``HFClip``
backend (its vision tower shared with LLaVA, as in the pipeline), and the tiny LLM tokenizer.
:func:`prepare` runs the pipeline's own per-image steps (``prepare_image``, ``with_sentences``) on a
synthetic photo and one referring expression, and then gives the prompt the study's fixed length
(``EffArch.text_tokens``, the visual tokens after ``prefix_tokens`` of them; :func:`with_sentence`).
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import replace

import torch
from PIL import Image

from analysis.efficiency.arch import EffArch
from litelvlm.clip.hf import HFClip
from litelvlm.clip.traces import Geometry
from litelvlm.errors import LiteLVLMError
from litelvlm.glamm import GlammPipeline, PreparedImage, build_glamm
from litelvlm.glamm.prompts import IMAGE_PLACEHOLDER

#: The referring expression: GLaMM's first question around it is 16 CLIP tokens (BOS and EOS included).
SENTENCE = "woman on the left in blue"
#: Size (W, H) of the synthetic photo (a COCO-like 4:3 image).
IMAGE_SIZE = (640, 480)


@functools.cache
def clip_tokenizer():
    """OpenAI CLIP's tokenizer, from the BPE that ships with open_clip (what random CLIP folders hold)."""
    from litelvlm.clip.random_init import write_clip_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        return write_clip_tokenizer(tmp)


class InMemoryHFClip(HFClip):
    """The library's transformers CLIP backend over an in-memory ``CLIPModel`` (random weights).

    ``HFClip`` loads its model, tokenizer and image processor from a folder; this one takes the model
    and uses the tokenizer and processor that ``save_random_hf_clip`` writes. Every method is HFClip's.
    """

    def __init__(self, model: torch.nn.Module, name: str = "in-memory-clip"):
        from transformers import CLIPImageProcessor

        vc, tc = model.config.vision_config, model.config.text_config
        size = vc.image_size
        self.name = self.source = name
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = clip_tokenizer()
        self.processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
        self.image_mean = tuple(self.processor.image_mean)
        self.image_std = tuple(self.processor.image_std)
        self.vision_heads = vc.num_attention_heads
        self.text_heads = tc.num_attention_heads
        self.context_length = tc.max_position_embeddings
        self._grid = (size // vc.patch_size,) * 2
        self.geometry = Geometry(mode="shortest", resize=size, crop=(size, size), crop_rounding="floor")

    def weights_hash(self) -> str:
        return "random"


def build_clip_model(arch: EffArch, device: str | torch.device = "meta",
                     dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """A random transformers ``CLIPModel`` (vision + text tower) of the arch's CLIP sizes on ``device``."""
    return build_clip_sizes(arch.clip, device, dtype)


def build_clip_sizes(clip, device: str | torch.device = "meta", dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """A random transformers ``CLIPModel`` of the sizes ``clip`` (a ``litelvlm.clip.random_init.ClipArch``)."""
    from transformers import CLIPModel

    from litelvlm.clip.random_init import hf_config

    with torch.device(device):
        model = CLIPModel(hf_config(clip))
    return model.to(dtype).eval().requires_grad_(False)


def set_attention(pipe: GlammPipeline, attn: str) -> None:
    """Use attention implementation ``attn`` (``eager``: the official stack's; ``sdpa``) in the LLM, CLIP and
    SAM (same weights)."""
    from litelvlm.lvlm.numerics import set_attention as set_attn

    set_attn(attn, pipe.model.llava, pipe.model.sam, pipe.clip.model)
    pipe.numerics = replace(pipe.numerics, attn=attn)


def build_pipeline(arch: EffArch, device: str | torch.device = "meta", dtype: torch.dtype = torch.float32,
                   attn: str = "sdpa", seed: int = 0, quantize: str = "none",
                   quantize_backend: str = "bitsandbytes") -> GlammPipeline:
    """A ``GlammPipeline`` of ``arch`` with random weights on ``device`` in ``dtype``, LLM/CLIP attention ``attn``;
    ``quantize`` (``int8``/``nf4``) its decoder layers' weights as ``GlammPipeline.from_model_string`` does."""
    from litelvlm.glamm.tokenizer import build_tiny_tokenizer
    from litelvlm.quantize import quantize_llm_layers

    if quantize != "none" and torch.device(device).type == "meta":
        raise LiteLVLMError("--quantize needs weights: it cannot run on the meta device of the FLOPs count")
    model = build_glamm(arch.glamm, device, dtype, seed=seed, init_on_device=True)
    report = quantize_llm_layers(model, quantize, quantize_backend, device) if quantize != "none" else None
    torch.manual_seed(seed + 1)
    clip = InMemoryHFClip(build_clip_model(arch, device, dtype), f"{arch.name}-random-clip")
    pipe = GlammPipeline(model, build_tiny_tokenizer(), clip, name=f"{arch.name}-random:{seed}")
    pipe.quantization = report
    set_attention(pipe, attn)
    return pipe


def synthetic_image(seed: int = 0) -> Image.Image:
    """A random RGB photo of :data:`IMAGE_SIZE` (time, FLOPs and memory do not depend on its content)."""
    g = torch.Generator().manual_seed(seed)
    w, h = IMAGE_SIZE
    return Image.fromarray(torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy())


def prompt_ids(arch: EffArch, seg_token_id: int) -> torch.Tensor:
    """Prompt ids of the study's length: ``text_tokens`` tokens (BOS first, the image placeholder after
    ``prefix_tokens`` of them, [SEG] two tokens before the end as in "It is [SEG].</s>" where it fits)."""
    n, p = arch.text_tokens, arch.prefix_tokens
    ids = 3 + torch.arange(n + 1) % 200  # ordinary tokens of every vocabulary (0-2: unk, bos, eos)
    ids[0], ids[-1] = 1, 2
    ids[p] = IMAGE_PLACEHOLDER
    ids[max(p + 1, n - 2)] = seg_token_id
    return ids


def with_sentence(pipe: GlammPipeline, arch: EffArch, base: PreparedImage) -> PreparedImage:
    """``with_sentences`` of the pipeline for :data:`SENTENCE` (prompt and CLIP text trace), with the
    prompt ids of :func:`prompt_ids` (the study's prompt length) in place of the tokenised prompt."""
    return replace(pipe.with_sentences(base, [SENTENCE]), input_ids=prompt_ids(arch, pipe.seg_token_id))


def prepare(pipe: GlammPipeline, arch: EffArch, image: Image.Image | None = None) -> PreparedImage:
    """The pipeline's per-image steps: ``prepare_image``, then :func:`with_sentence`."""
    return with_sentence(pipe, arch, pipe.prepare_image(synthetic_image() if image is None else image))
