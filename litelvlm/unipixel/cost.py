"""UniPixel's cost description for the efficiency study (``COST``, its card's ``cost``): its architectures,
its random pipeline and its per-image steps, on the cost of every Qwen2.5-VL + SAM 2 family
(:class:`litelvlm.qwen.cost.QwenSam2Cost`; the parts and the FLOPs rows: :mod:`litelvlm.qwen.cost_parts`).

Details: docs/unipixel.md (``litelvlm.unipixel.cost``).
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoProcessor

from ..clip.random_init import ARCHS as CLIP_ARCHS
from ..cost import CostArch
from ..cost.clip import IMAGE_SIZE, SENTENCE, InMemoryHFClip, build_clip_sizes, synthetic_image
from ..cost.tokens import DecoderSizes
from ..errors import LiteLVLMError
from ..qwen.config import get_preset as qwen_preset
from ..qwen.config import preprocessor_config
from ..qwen.cost import PAIRED_CLIP, QwenSam2Cost, set_attention, with_study_llm
from ..qwen.hf_config import qwen_config
from ..qwen.tokenizer import CHAT_TEMPLATE, build_qwen_tokenizer
from ..qwen_vision.index import tower_index
from .card import CARD
from .checkpoint import build_unipixel
from .config import EXTRA_TOKENS, get_preset
from .pipeline import UniPixelInput, UniPixelPipeline
from .protocol import prepare_inputs, resize_frame, resized_size, video_frames

_DESCRIPTIONS = {
    "3b": "UniPixel-3B (litelvlm.unipixel PRESETS['3b']): Qwen2.5-VL-3B-Instruct (GQA 16/2 heads, tied "
          "embeddings), SAM 2.1 hiera b+ at 768 px",
    "7b": "UniPixel-7B (litelvlm.unipixel PRESETS['7b']): Qwen2.5-VL-7B-Instruct (GQA 28/4 heads), SAM 2.1 "
          "hiera b+ at 768 px",
    "tiny": "litelvlm.unipixel PRESETS['tiny'] (tiny Qwen2.5-VL and SAM 2 of the same structure) with a "
            "4-layer LLM, for tests",
}


def study_preset(preset: str):
    """The ``UniPixelPreset`` the study builds for ``preset`` (:func:`litelvlm.qwen.cost.with_study_llm`)."""
    return with_study_llm(get_preset(preset))


def merged_grid(image_size: tuple[int, int] = IMAGE_SIZE) -> dict:
    """The protocol's view of a (W, H) image: ``resized`` (h, w) px, ``video_grid_thw`` (1, h/14, w/14) and
    the merged grid (h/28, w/28), whose product is N."""
    w, h = image_size
    rh, rw = resized_size(h, w)
    q = qwen_preset("3b")  # patch 14 and merge 2 in every preset
    patch, merge = q.patch_size, q.spatial_merge_size
    return {"image_size": [w, h], "resized": [rh, rw], "video_grid_thw": [1, rh // patch, rw // patch],
            "merged_grid": [rh // (patch * merge), rw // (patch * merge)]}


def unipixel_arch(name: str, preset: str, text_tokens: int | None = None) -> CostArch:
    """The ``--arch`` ``name`` of UniPixel preset ``preset`` (optionally with another prompt length)."""
    p = study_preset(preset)
    grid = merged_grid()
    n = grid["merged_grid"][0] * grid["merged_grid"][1]
    text, prefix, source = (*protocol_prompt_tokens(preset), "the protocol's prompt (model tokenizer)")
    if text_tokens is not None:
        text, prefix, source = text_tokens, min(prefix, text_tokens - 1), "--text-tokens (synthetic prompt)"
    extra = (("qwen_preset", qwen_preset(p.qwen).name), ("sam2", p.sam2), ("sam2_image_size", p.image_size),
             *grid.items(), ("prompt", source), ("sentence", SENTENCE), ("paired_clip", PAIRED_CLIP[preset]))
    llm = DecoderSizes.of(qwen_config(p.qwen).text_config)
    return CostArch(name, CARD.name, preset, llm, n, text, prefix, _DESCRIPTIONS[preset], extra=extra)


@functools.cache
def random_processor(preset: str):
    """The ``Qwen2_5_VLProcessor`` of a random UniPixel folder of ``preset`` (the stand-in tokenizer with
    UniPixel's three tokens, Qwen2.5-VL's preprocessor config and chat template), loaded as the pipeline loads
    a folder's."""
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
    got = prepare_inputs(random_processor(preset), synthetic_image(), SENTENCE,
                         answer="teacher-forced").inputs
    types = got["mm_token_type_ids"][0]
    visual = torch.nonzero(types > 0).flatten()
    return int(types.numel() - visual.numel()), int(visual[0])


def build_pipeline(arch: CostArch, device: str | torch.device = "meta", dtype: torch.dtype = torch.float32,
                   attn: str = "sdpa", seed: int = 0, quantize: str = "none", **unused):
    """A ``UniPixelPipeline`` of ``arch`` with random weights on ``device`` in ``dtype``, attention ``attn``
    in the LLM, the vision tower, SAM 2 and the paired CLIP (:data:`PAIRED_CLIP`, built in memory as
    GLaMM's)."""
    if quantize != "none":  # UniPixelPipeline.from_model_string refuses it too
        raise LiteLVLMError(f"the {arch.family} family does not offer --quantize yet")
    qwen, head, sam2, _ = build_unipixel(study_preset(arch.preset), seed=seed, dtype=dtype, device=device)
    clip_sizes = PAIRED_CLIP[arch.preset]
    clip = InMemoryHFClip(build_clip_sizes(CLIP_ARCHS[clip_sizes], device, dtype),
                          f"{clip_sizes}-random-clip")
    pipe = UniPixelPipeline(qwen, random_processor(arch.preset), head, sam2,
                            name=f"{arch.name}-random:{seed}", clip=clip)
    set_attention(pipe, attn)
    return pipe


def vision_inputs(pipe, image: Image.Image) -> dict:
    """The protocol's 1-frame video of ``image`` through the processor (``pixel_values_videos``,
    ``video_grid_thw`` on the CPU), as ``UniPixelPipeline.prepare_image`` makes it."""
    return pipe.processor.video_processor(videos=[video_frames(resize_frame(image))], do_resize=False,
                                          return_tensors="pt")


def prepare_image(pipe, image: Image.Image):
    """``UniPixelPipeline.prepare_image`` on a real device; on ``meta`` the same statements with the vision
    tower's index tensors given (:func:`~litelvlm.qwen_vision.index.tower_index`)."""
    if pipe.device.type != "meta":
        return pipe.prepare_image(image)

    video = vision_inputs(pipe, image)
    grid = video["video_grid_thw"]
    with torch.no_grad():
        tower = pipe.qwen.model.visual
        visual = tower(video["pixel_values_videos"].to(pipe.device, pipe.dtype), grid_thw=grid,
                       **tower_index(tower, grid)).pooler_output
        sam = pipe.sam2.encode_image(pipe.sam2.preprocess(image))
    return UniPixelInput(image=image, image_size=(image.height, image.width), sentences=[],
                         input_ids=torch.empty(0, dtype=torch.long),
                         mm_token_type_ids=torch.empty(0, dtype=torch.long),
                         grid_thw=grid.cpu(), second_per_grid_ts=torch.ones(1), visual=visual.to(pipe.dtype),
                         sam_features=sam)


class UniPixelCost(QwenSam2Cost):
    """UniPixel's cost: its presets on the protocol's view of the study's photo (a 1-frame video), its random
    model."""

    family = CARD.name
    archs = CARD.cost_archs
    full_size = ("unipixel-3b", "unipixel-7b")

    def arch(self, name: str, text_tokens: int | None = None) -> CostArch:
        return unipixel_arch(name, self.archs[name], text_tokens)

    def build(self, arch, device, dtype, attn="sdpa", quantize=("none", "bitsandbytes")):
        return build_pipeline(arch, device, dtype, attn, quantize=quantize[0])

    def prepare_image(self, pipe, image: Image.Image):
        """The pipeline's ``prepare_image`` (on ``meta``, the same statements with the tower's index
        tensors)."""
        return prepare_image(pipe, image)

    def vision_inputs(self, pipe, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """(pixels, grid) the vision tower reads for ``image`` (the protocol's 1-frame video)."""
        video = vision_inputs(pipe, image)
        return video["pixel_values_videos"], video["video_grid_thw"]

    def vision_forward(self, pipe, pixels: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """The merged tokens of ``prepare_image``'s vision forward on a real device."""
        return pipe.qwen.model.get_video_features(pixels,
                                                  video_grid_thw=grid.to(pipe.device)).pooler_output[0]


#: the efficiency study's cost description of this family
COST = UniPixelCost()
