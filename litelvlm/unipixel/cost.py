"""UniPixel's cost description for the efficiency study (``COST``, its card's ``cost``): its architectures, its
random pipeline and its per-image steps; the parts and the FLOPs rows: :mod:`litelvlm.unipixel.cost_parts`
(shared with Sa2VA, the other Qwen2.5-VL + SAM 2 family, whose cost subclasses :class:`UniPixelCost`).

``--arch unipixel-3b`` / ``unipixel-7b`` / ``unipixel-tiny`` are the presets ``3b``, ``7b``, ``tiny`` of
``litelvlm.unipixel.config.PRESETS`` (Qwen2.5-VL-3B/7B-Instruct's released sizes, ``litelvlm.qwen.config``, and
SAM 2.1 hiera b+ at 768 px; the tiny one for tests, whose LLM this study runs at 4 layers instead of 2, as GLaMM's
tiny, so that FastV at its default layer 2 and DART, which prunes after layer 1, run on it: this project's test
size, :func:`study_preset`). What the study reads comes from the family:

* the decoder's sizes: ``DecoderSizes.of`` the preset's transformers ``Qwen2_5_VLConfig.text_config`` (with its
  grouped-query key/value width);
* N: the study's synthetic photo (``litelvlm.cost.clip.IMAGE_SIZE``, 640 x 480) through UniPixel's protocol
  resize (``litelvlm.unipixel.protocol.resized_size``: 476 x 644 px, a 34 x 46 patch grid, 17 x 23 = 391 merged
  tokens, for every preset: the protocol's resize does not depend on the model's size);
* the prompt around them: the protocol's prompt for :data:`~litelvlm.cost.clip.SENTENCE` as the pipeline's
  ``with_sentences`` builds it (chat template, question, this project's teacher-forced answer), tokenized by the
  model's tokenizer: for the random presets the offline stand-in of ``litelvlm.qwen.tokenizer``, which splits
  English into more pieces than Qwen2.5's own BPE (a real checkpoint's tokenizer gives fewer text tokens;
  ``--text-tokens`` sets another length, then the prompt is :func:`synthetic_prompt`).

The pipeline is ``UniPixelPipeline`` over modules built in memory (``litelvlm.unipixel.checkpoint.build_unipixel``,
created directly on the device: ``meta`` needs no memory, so the 7B counts anywhere) and the processor a random
folder holds, loaded as ``UniPixelPipeline.from_model_string`` loads it (``backend="torchvision",
do_resize=False``; UniPixel's ``model/builder.py`` L21-23).
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image

from ..cost import CostArch, FamilyCost
from ..cost.clip import IMAGE_SIZE, SENTENCE, synthetic_image
from ..cost.tokens import DecoderSizes
from ..errors import LiteLVLMError

_DESCRIPTIONS = {
    "3b": "UniPixel-3B (litelvlm.unipixel PRESETS['3b']): Qwen2.5-VL-3B-Instruct (GQA 16/2 heads, tied embeddings), "
          "SAM 2.1 hiera b+ at 768 px",
    "7b": "UniPixel-7B (litelvlm.unipixel PRESETS['7b']): Qwen2.5-VL-7B-Instruct (GQA 28/4 heads), SAM 2.1 hiera b+ "
          "at 768 px",
    "tiny": "litelvlm.unipixel PRESETS['tiny'] (tiny Qwen2.5-VL and SAM 2 of the same structure) with a 4-layer LLM, "
            "for tests",
}


#: layers of the tiny LLM in this study (``litelvlm.qwen.config.PRESETS['tiny']`` has 2)
TINY_LLM_LAYERS = 4


def study_preset(preset: str):
    """The ``UniPixelPreset`` the study builds for ``preset``: the library's, the tiny one with its LLM at
    :data:`TINY_LLM_LAYERS` layers."""
    from ..qwen.config import get_preset as qwen_preset
    from .config import get_preset

    p = get_preset(preset)
    if p.name != "tiny":
        return p
    q = qwen_preset(p.qwen)
    return replace(p, qwen=replace(q, name=f"{q.name}-{TINY_LLM_LAYERS}-layers", layers=TINY_LLM_LAYERS))


def merged_grid(image_size: tuple[int, int] = IMAGE_SIZE) -> dict:
    """The protocol's view of a (W, H) image: ``resized`` (h, w) px, ``video_grid_thw`` (1, h/14, w/14) and the
    merged grid (h/28, w/28), whose product is N."""
    from ..qwen.config import get_preset as qwen_preset
    from .protocol import resized_size

    w, h = image_size
    rh, rw = resized_size(h, w)
    q = qwen_preset("3b")  # patch 14 and merge 2 in every preset
    patch, merge = q.patch_size, q.spatial_merge_size
    return {"image_size": [w, h], "resized": [rh, rw], "video_grid_thw": [1, rh // patch, rw // patch],
            "merged_grid": [rh // (patch * merge), rw // (patch * merge)]}


def unipixel_arch(name: str, preset: str, text_tokens: int | None = None) -> CostArch:
    """The ``--arch`` ``name`` of UniPixel preset ``preset`` (optionally with another prompt length)."""
    from ..qwen.config import get_preset as qwen_preset
    from ..qwen.config import qwen_config

    p = study_preset(preset)
    grid = merged_grid()
    n = grid["merged_grid"][0] * grid["merged_grid"][1]
    text, prefix, source = (*protocol_prompt_tokens(preset), "the protocol's prompt (model tokenizer)")
    if text_tokens is not None:
        text, prefix, source = text_tokens, min(prefix, text_tokens - 1), "--text-tokens (synthetic prompt)"
    extra = (("qwen_preset", qwen_preset(p.qwen).name), ("sam2", p.sam2), ("sam2_image_size", p.image_size), *grid.items(),
             ("prompt", source), ("sentence", SENTENCE), ("paired_clip", PAIRED_CLIP[preset]))
    llm = DecoderSizes.of(qwen_config(p.qwen).text_config)
    return CostArch(name, "unipixel", preset, llm, n, text, prefix, _DESCRIPTIONS[preset], extra=extra)


@functools.cache
def random_processor(preset: str):
    """The ``Qwen2_5_VLProcessor`` of a random UniPixel folder of ``preset`` (the stand-in tokenizer with UniPixel's
    three tokens, Qwen2.5-VL's preprocessor config and chat template), loaded as the pipeline loads a folder's."""
    from transformers import AutoProcessor

    from ..qwen.config import preprocessor_config
    from ..qwen.tokenizer import CHAT_TEMPLATE, build_qwen_tokenizer
    from .config import EXTRA_TOKENS

    p = study_preset(preset)
    tok = build_qwen_tokenizer(p.qwen)
    tok.add_special_tokens({"additional_special_tokens": list(EXTRA_TOKENS)})
    with tempfile.TemporaryDirectory() as folder:
        tok.save_pretrained(folder)
        Path(folder, "preprocessor_config.json").write_text(json.dumps(preprocessor_config(p.qwen)))
        Path(folder, "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}))
        return AutoProcessor.from_pretrained(folder, backend="torchvision", do_resize=False)


@functools.cache
def protocol_prompt_tokens(preset: str) -> tuple[int, int]:
    """(text tokens, of which before the visual tokens) of the protocol's prompt for :data:`SENTENCE` on the
    synthetic photo, tokenized by ``preset``'s processor (what ``UniPixelPipeline.with_sentences`` builds)."""
    from .protocol import prepare_inputs

    got = prepare_inputs(random_processor(preset), synthetic_image(), SENTENCE, answer="teacher-forced").inputs
    types = got["mm_token_type_ids"][0]
    visual = torch.nonzero(types > 0).flatten()
    return int(types.numel() - visual.numel()), int(visual[0])


#: the external CLIP a preset's random model pairs (``litelvlm.unipixel.pipeline.default_clip``): its
#: ``litelvlm.clip.random_init.ARCHS`` sizes (a real checkpoint pairs ViT-L/14-336, the 3B/7B's)
PAIRED_CLIP = {"3b": "vit-l-14-336", "7b": "vit-l-14-336", "tiny": "tiny-336"}


def build_pipeline(arch: CostArch, device: str | torch.device = "meta", dtype: torch.dtype = torch.float32,
                   attn: str = "sdpa", seed: int = 0, quantize: str = "none", **unused):
    """A ``UniPixelPipeline`` of ``arch`` with random weights on ``device`` in ``dtype``, attention ``attn`` in the
    LLM, the vision tower, SAM 2 and the paired CLIP (:data:`PAIRED_CLIP`, built in memory as GLaMM's)."""
    from ..clip.random_init import ARCHS as CLIP_ARCHS
    from ..cost.clip import InMemoryHFClip, build_clip_sizes
    from .checkpoint import build_unipixel
    from .pipeline import UniPixelPipeline

    if quantize != "none":  # UniPixelPipeline.from_model_string refuses it too
        raise LiteLVLMError(f"the {arch.family} family does not offer --quantize yet")
    qwen, head, sam2, _ = build_unipixel(study_preset(arch.preset), seed=seed, dtype=dtype, device=device)
    clip_sizes = PAIRED_CLIP[arch.preset]
    clip = InMemoryHFClip(build_clip_sizes(CLIP_ARCHS[clip_sizes], device, dtype), f"{clip_sizes}-random-clip")
    pipe = UniPixelPipeline(qwen, random_processor(arch.preset), head, sam2, name=f"{arch.name}-random:{seed}",
                            clip=clip)
    set_attention(pipe, attn)
    return pipe


def set_attention(pipe, attn: str) -> None:
    """Attention implementation ``attn`` in Qwen2.5-VL (decoder and vision tower), SAM 2 and the paired CLIP (same
    weights)."""
    from litelvlm.lvlm.numerics import set_attention as set_attn

    set_attn(attn, pipe.qwen, pipe.sam2.model, pipe.clip.model)
    pipe.numerics = replace(pipe.numerics, attn=attn)


def vision_inputs(pipe, image: Image.Image) -> dict:
    """The protocol's 1-frame video of ``image`` through the processor (``pixel_values_videos``, ``video_grid_thw``
    on the CPU), as ``UniPixelPipeline.prepare_image`` makes it."""
    from .protocol import resize_frame, video_frames

    return pipe.processor.video_processor(videos=[video_frames(resize_frame(image))], do_resize=False,
                                          return_tensors="pt")


def vision_index(pipe, grid: torch.Tensor) -> dict:
    """The vision tower's index tensors of ``grid`` (rotary positions, window order, window and full-attention
    sequence bounds), computed on the CPU by transformers' own functions and passed to the tower, so that it runs on
    ``meta`` (computed inside, they read values back from the device). Same arithmetic: no FLOPs among them."""
    from transformers.vision_utils import (
        get_vision_attention_seqlens,
        get_vision_position_ids,
        get_vision_window_index,
    )

    vc = pipe.qwen.config.vision_config
    window_index, cu_window_seqlens = get_vision_window_index(grid, vc.spatial_merge_size, vc.window_size,
                                                              vc.patch_size)
    cu_seqlens, _ = get_vision_attention_seqlens(grid, vc)
    return {"position_ids": get_vision_position_ids(grid, vc.spatial_merge_size).to(pipe.device),
            "cu_seqlens": cu_seqlens, "window_index": window_index, "cu_window_seqlens": cu_window_seqlens}


def prepare_image(pipe, image: Image.Image):
    """``UniPixelPipeline.prepare_image`` on a real device; on ``meta`` the same statements with the vision tower's
    index tensors given (:func:`vision_index`)."""
    if pipe.device.type != "meta":
        return pipe.prepare_image(image)
    from .pipeline import UniPixelInput

    video = vision_inputs(pipe, image)
    grid = video["video_grid_thw"]
    with torch.no_grad():
        visual = pipe.qwen.model.visual(video["pixel_values_videos"].to(pipe.device, pipe.dtype), grid_thw=grid,
                                        **vision_index(pipe, grid)).pooler_output
        sam = pipe.sam2.encode_image(pipe.sam2.preprocess(image))
    return UniPixelInput(image=image, image_size=(image.height, image.width), sentences=[],
                         input_ids=torch.empty(0, dtype=torch.long), mm_token_type_ids=torch.empty(0, dtype=torch.long),
                         grid_thw=grid.cpu(), second_per_grid_ts=torch.ones(1), visual=visual.to(pipe.dtype),
                         sam_features=sam)


def synthetic_prompt(prepared, arch: CostArch, seg_token_id: int):
    """``prepared`` with a prompt of ``arch.text_tokens`` text tokens: ordinary tokens, the N video pads after
    ``prefix_tokens`` of them, ``<|seg|>`` two tokens before the end where it fits (``--text-tokens``)."""
    n, start = int(prepared.visual.shape[0]), int(torch.nonzero(prepared.mm_token_type_ids > 0).flatten()[0])
    pad, video = prepared.input_ids[start], prepared.mm_token_type_ids[start]
    total, p = arch.text_tokens + n, arch.prefix_tokens
    ids = 3 + torch.arange(total) % 200  # ordinary tokens of every vocabulary (below the special tokens)
    types = torch.zeros(total, dtype=prepared.mm_token_type_ids.dtype)
    ids[p:p + n], types[p:p + n] = pad, video
    ids[max(p + n + 1, total - 2)] = seg_token_id
    return replace(prepared, input_ids=ids, mm_token_type_ids=types)


def with_sentence(pipe, arch: CostArch, base):
    """``with_sentences`` of the pipeline for :data:`SENTENCE` (the protocol's prompt); with ``--text-tokens``, the
    :func:`synthetic_prompt` of that length in its place."""
    prepared = pipe.with_sentences(base, [SENTENCE])
    n = pipe.num_visual(prepared)
    if n != arch.num_patches:
        raise AssertionError(f"the image gives {n} visual tokens, the arch says {arch.num_patches}")
    if prepared.input_ids.numel() - n == arch.text_tokens:
        return prepared
    return synthetic_prompt(prepared, arch, pipe.seg_token_id)


class UniPixelCost(FamilyCost):
    """UniPixel's cost: its presets on the protocol's view of the study's photo, its parts
    (:mod:`litelvlm.unipixel.cost_parts`). The hooks below (the image's view, the vision forward, the question) are
    what another Qwen2.5-VL + SAM 2 family replaces."""

    family = "unipixel"
    archs = {"unipixel-3b": "3b", "unipixel-7b": "7b", "unipixel-tiny": "tiny"}
    full_size = ("unipixel-3b", "unipixel-7b")
    fixed_grid = False  # N: the merged tokens of the image, so a budget above it is skipped, as per image
    cpu_dtype = "float32"  # its bfloat16 CPU timing fails in its seg head (float32 input)
    offers_quantize = False  # UniPixelPipeline.from_model_string refuses it too

    def arch(self, name: str, text_tokens: int | None = None) -> CostArch:
        return unipixel_arch(name, self.archs[name], text_tokens)

    def count(self, arch, rows, attns, dtype, method_args):
        from .cost_parts import count_rows

        return count_rows(self, arch, rows, attns, dtype, method_args)

    def build(self, arch, device, dtype, attn="sdpa", quantize=("none", "bitsandbytes")):
        return build_pipeline(arch, device, dtype, attn, quantize=quantize[0])

    def set_attention(self, pipe, attn: str) -> None:
        set_attention(pipe, attn)

    def parts(self, pipe, arch, method_args):
        from .cost_parts import UniPixelParts

        return UniPixelParts(self, pipe, arch, method_args)

    # -- the hooks of the parts -----------------------------------------------------------------------------------
    def prepare_image(self, pipe, image: Image.Image):
        """The pipeline's ``prepare_image`` (on ``meta``, the same statements with the tower's index tensors)."""
        return prepare_image(pipe, image)

    def vision_inputs(self, pipe, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """(pixels, grid) the vision tower reads for ``image`` (the protocol's 1-frame video)."""
        video = vision_inputs(pipe, image)
        return video["pixel_values_videos"], video["video_grid_thw"]

    def vision_forward(self, pipe, pixels: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """The merged tokens of ``prepare_image``'s vision forward on a real device."""
        return pipe.qwen.model.get_video_features(pixels, video_grid_thw=grid.to(pipe.device)).pooler_output[0]

    def question(self, sentence: str) -> str:
        """The question the paired CLIP's text forward reads (the protocol's)."""
        from .protocol import question

        return question(sentence)

    def with_sentence(self, pipe, arch: CostArch, base):
        return with_sentence(pipe, arch, base)

    def prepare(self, pipe, arch: CostArch, image: Image.Image | None = None):
        """The pipeline's per-image steps: :meth:`prepare_image`, then :meth:`with_sentence`."""
        return self.with_sentence(pipe, arch, self.prepare_image(pipe, synthetic_image() if image is None else image))


#: the efficiency study's cost description of this family
COST = UniPixelCost()
