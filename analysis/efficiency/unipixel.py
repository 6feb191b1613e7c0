"""The unipixel family in the efficiency study: its architectures, its random pipeline and its per-image steps.

``--arch unipixel-3b`` / ``unipixel-7b`` / ``unipixel-tiny`` are the presets ``3b``, ``7b``, ``tiny`` of
``litelvlm.unipixel.config.PRESETS`` (Qwen2.5-VL-3B/7B-Instruct's released sizes, ``litelvlm.qwen.config``, and
SAM 2.1 hiera b+ at 768 px; the tiny one for tests, whose LLM this study runs at 4 layers instead of 2, as GLaMM's
tiny, so that FastV at its default layer 2 and DART, which prunes after layer 1, run on it: this project's test
size, :func:`study_preset`). What the study reads comes from the family:

* the decoder's sizes: ``DecoderSizes.of`` the preset's transformers ``Qwen2_5_VLConfig.text_config`` (with its
  grouped-query key/value width);
* N: the study's synthetic photo (``analysis.efficiency.build.IMAGE_SIZE``, 640 x 480) through UniPixel's protocol
  resize (``litelvlm.unipixel.protocol.resized_size``: 476 x 644 px, a 34 x 46 patch grid, 17 x 23 = 391 merged
  tokens, for every preset: the protocol's resize does not depend on the model's size);
* the prompt around them: the protocol's prompt for :data:`~analysis.efficiency.build.SENTENCE` as the pipeline's
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

from analysis.common.flops import DecoderSizes
from analysis.efficiency.arch import EffArch
from analysis.efficiency.build import IMAGE_SIZE, SENTENCE, synthetic_image
from litelvlm.errors import LiteLVLMError

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
    from litelvlm.qwen.config import get_preset as qwen_preset
    from litelvlm.unipixel.config import get_preset

    p = get_preset(preset)
    if p.name != "tiny":
        return p
    q = qwen_preset(p.qwen)
    return replace(p, qwen=replace(q, name=f"{q.name}-{TINY_LLM_LAYERS}-layers", layers=TINY_LLM_LAYERS))


def merged_grid(image_size: tuple[int, int] = IMAGE_SIZE) -> dict:
    """The protocol's view of a (W, H) image: ``resized`` (h, w) px, ``video_grid_thw`` (1, h/14, w/14) and the
    merged grid (h/28, w/28), whose product is N."""
    from litelvlm.qwen.config import get_preset as qwen_preset
    from litelvlm.unipixel.protocol import resized_size

    w, h = image_size
    rh, rw = resized_size(h, w)
    q = qwen_preset("3b")  # patch 14 and merge 2 in every preset
    patch, merge = q.patch_size, q.spatial_merge_size
    return {"image_size": [w, h], "resized": [rh, rw], "video_grid_thw": [1, rh // patch, rw // patch],
            "merged_grid": [rh // (patch * merge), rw // (patch * merge)]}


def unipixel_arch(name: str, preset: str, text_tokens: int | None = None) -> EffArch:
    """The ``--arch`` ``name`` of UniPixel preset ``preset`` (optionally with another prompt length)."""
    from litelvlm.qwen.config import get_preset as qwen_preset
    from litelvlm.qwen.config import qwen_config

    p = study_preset(preset)
    grid = merged_grid()
    n = grid["merged_grid"][0] * grid["merged_grid"][1]
    text, prefix, source = (*protocol_prompt_tokens(preset), "the protocol's prompt (model tokenizer)")
    if text_tokens is not None:
        text, prefix, source = text_tokens, min(prefix, text_tokens - 1), "--text-tokens (synthetic prompt)"
    extra = (("qwen_preset", qwen_preset(p.qwen).name), ("sam2", p.sam2), ("sam2_image_size", p.image_size), *grid.items(),
             ("prompt", source), ("sentence", SENTENCE), ("paired_clip", PAIRED_CLIP[preset]))
    llm = DecoderSizes.of(qwen_config(p.qwen).text_config)
    return EffArch(name, "unipixel", preset, llm, n, text, prefix, _DESCRIPTIONS[preset], extra=extra)


@functools.cache
def random_processor(preset: str):
    """The ``Qwen2_5_VLProcessor`` of a random UniPixel folder of ``preset`` (the stand-in tokenizer with UniPixel's
    three tokens, Qwen2.5-VL's preprocessor config and chat template), loaded as the pipeline loads a folder's."""
    from transformers import AutoProcessor

    from litelvlm.qwen.config import preprocessor_config
    from litelvlm.qwen.tokenizer import CHAT_TEMPLATE, build_qwen_tokenizer
    from litelvlm.unipixel.config import EXTRA_TOKENS

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
    from litelvlm.unipixel.protocol import prepare_inputs

    got = prepare_inputs(random_processor(preset), synthetic_image(), SENTENCE, answer="teacher-forced").inputs
    types = got["mm_token_type_ids"][0]
    visual = torch.nonzero(types > 0).flatten()
    return int(types.numel() - visual.numel()), int(visual[0])


#: the external CLIP a preset's random model pairs (``litelvlm.unipixel.pipeline.default_clip``): its
#: ``litelvlm.clip.random_init.ARCHS`` sizes (a real checkpoint pairs ViT-L/14-336, the 3B/7B's)
PAIRED_CLIP = {"3b": "vit-l-14-336", "7b": "vit-l-14-336", "tiny": "tiny-336"}


def build_pipeline(arch: EffArch, device: str | torch.device = "meta", dtype: torch.dtype = torch.float32,
                   attn: str = "sdpa", seed: int = 0, quantize: str = "none", **unused):
    """A ``UniPixelPipeline`` of ``arch`` with random weights on ``device`` in ``dtype``, attention ``attn`` in the
    LLM, the vision tower, SAM 2 and the paired CLIP (:data:`PAIRED_CLIP`, built in memory as GLaMM's)."""
    from analysis.efficiency.build import InMemoryHFClip, build_clip_sizes
    from litelvlm.clip.random_init import ARCHS as CLIP_ARCHS
    from litelvlm.unipixel.checkpoint import build_unipixel
    from litelvlm.unipixel.pipeline import UniPixelPipeline

    if quantize != "none":  # UniPixelPipeline.from_model_string refuses it too
        raise LiteLVLMError("the unipixel family does not offer --quantize yet")
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
    from litelvlm.unipixel.protocol import resize_frame, video_frames

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
    from litelvlm.unipixel.pipeline import UniPixelInput

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


def synthetic_prompt(prepared, arch: EffArch, seg_token_id: int):
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


def with_sentence(pipe, arch: EffArch, base):
    """``with_sentences`` of the pipeline for :data:`SENTENCE` (the protocol's prompt); with ``--text-tokens``, the
    :func:`synthetic_prompt` of that length in its place."""
    prepared = pipe.with_sentences(base, [SENTENCE])
    n = pipe.num_visual(prepared)
    if n != arch.num_patches:
        raise AssertionError(f"the image gives {n} visual tokens, the arch says {arch.num_patches}")
    if prepared.input_ids.numel() - n == arch.text_tokens:
        return prepared
    return synthetic_prompt(prepared, arch, pipe.seg_token_id)


def prepare(pipe, arch: EffArch, image: Image.Image | None = None):
    """The pipeline's per-image steps: :func:`prepare_image`, then :func:`with_sentence`."""
    return with_sentence(pipe, arch, prepare_image(pipe, synthetic_image() if image is None else image))
