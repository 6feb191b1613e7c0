"""Sa2VA's cost description for the efficiency study (``COST``, its card's ``cost``): the cost of every
Qwen2.5-VL + SAM 2 family. Pruning Sa2VA is this project's adaptation (no official code prunes it).

Details: docs/sa2va.md (`litelvlm.sa2va.cost`).
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import torch
from PIL import Image
from transformers import Qwen2_5_VLProcessor

from ..cost import CostArch
from ..cost.clip import IMAGE_SIZE, SENTENCE, paired_clip, synthetic_image
from ..cost.tokens import DecoderSizes
from ..errors import LiteLVLMError
from ..qwen.config import get_preset as qwen_preset
from ..qwen.config import preprocessor_config
from ..qwen.cost import PAIRED_CLIP, QwenSam2Cost, set_attention, with_study_llm
from ..qwen.hf_config import qwen_config
from ..qwen.tokenizer import CHAT_TEMPLATE, build_qwen_tokenizer
from ..qwen_vision.index import tower_index
from .card import CARD
from .checkpoint import build_sa2va
from .config import EXTRA_TOKENS, get_preset
from .pipeline import Sa2VAInput, Sa2VAPipeline
from .protocol import image_question, llm_size, prepare_inputs

_DESCRIPTIONS = {
    "3b": "Sa2VA-Qwen2.5-VL-3B (litelvlm.sa2va PRESETS['3b']): Qwen2.5-VL-3B-Instruct, SAM 2 Hiera-L at 1024 "
    "px",
    "7b": "Sa2VA-Qwen2.5-VL-7B (litelvlm.sa2va PRESETS['7b']): Qwen2.5-VL-7B-Instruct, SAM 2 Hiera-L at 1024 "
    "px",
    "tiny": "litelvlm.sa2va PRESETS['tiny'] (tiny Qwen2.5-VL and SAM 2 of the same structure) with a 4-layer "
            "LLM, for tests",
}


def study_preset(preset: str):
    """The ``Sa2VAPreset`` the study builds for ``preset`` (:func:`litelvlm.qwen.cost.with_study_llm`)."""
    return with_study_llm(get_preset(preset))


def merged_grid(preset: str, image_size: tuple[int, int] = IMAGE_SIZE) -> dict:
    """The view of a (W, H) image the LLM sees: ``resized`` (h, w) px within the preset's pixel bounds,
    ``image_grid_thw`` (1, h/14, w/14) and the merged grid (h/28, w/28), whose product is N."""
    p = study_preset(preset)
    w, h = image_size
    _, (rh, rw) = llm_size(h, w, p.min_pixels, p.max_pixels)
    q = qwen_preset(p.qwen)
    patch, merge = q.patch_size, q.spatial_merge_size
    return {"image_size": [w, h], "resized": [rh, rw], "image_grid_thw": [1, rh // patch, rw // patch],
            "merged_grid": [rh // (patch * merge), rw // (patch * merge)]}


@functools.cache
def random_processor(preset: str):
    """The ``Qwen2_5_VLProcessor`` of a random Sa2VA folder of ``preset`` (the stand-in tokenizer with Sa2VA's
    five added tokens, Qwen2.5-VL's preprocessor config and chat template), loaded as a folder's is
    (``do_resize=False``)."""
    name = get_preset(preset).qwen
    tok = build_qwen_tokenizer(name)
    tok.add_tokens(list(EXTRA_TOKENS), special_tokens=True)
    with tempfile.TemporaryDirectory() as folder:
        tok.save_pretrained(folder)
        Path(folder, "preprocessor_config.json").write_text(json.dumps(preprocessor_config(name)))
        Path(folder, "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}))
        return Qwen2_5_VLProcessor.from_pretrained(folder, do_resize=False)


@functools.cache
def prompt_tokens(preset: str) -> tuple[int, int]:
    """(text tokens, of which before the visual tokens) of Sa2VA's RefCOCO prompt for the study's sentence on
    the study's photo, tokenized by ``preset``'s processor (what ``Sa2VAPipeline.with_sentences`` builds)."""
    p = study_preset(preset)
    got = prepare_inputs(random_processor(preset), [synthetic_image()], image_question(SENTENCE),
                         p.min_pixels, p.max_pixels).inputs
    types = got["mm_token_type_ids"][0]
    visual = torch.nonzero(types > 0).flatten()
    return int(types.numel() - visual.numel()), int(visual[0])


class Sa2VACost(QwenSam2Cost):
    """Sa2VA's cost: the Qwen2.5-VL + SAM 2 parts and rows with Sa2VA's image view, prompt and model (module
    docstring)."""

    family = CARD.name
    archs = CARD.cost_archs
    full_size = ("sa2va-3b", "sa2va-7b")
    #: the Qwen3-VL and InternVL3 backbones: no cost parts yet (their towers and DeepStack / tiles are not
    #: described here); `validate` times and counts them on a loaded model instead
    uncounted = {p: "the efficiency study describes Sa2VA-Qwen2.5-VL's parts only; validate times and counts "
                    "this backbone on the loaded model"
                 for p in ("qwen3-vl-tiny", "qwen3-vl-4b", "internvl3-tiny", "internvl3-2b")}

    def arch(self, name: str, text_tokens: int | None = None) -> CostArch:
        preset = self.archs[name]
        p = study_preset(preset)
        grid = merged_grid(preset)
        n = grid["merged_grid"][0] * grid["merged_grid"][1]
        text, prefix, source = (*prompt_tokens(preset), "Sa2VA's RefCOCO prompt (model tokenizer)")
        if text_tokens is not None:
            text, prefix, source = text_tokens, min(prefix,
                                                    text_tokens - 1), "--text-tokens (synthetic prompt)"
        extra = (("qwen_preset", qwen_preset(p.qwen).name), ("sam2", p.sam2),
                 ("sam2_image_size", p.image_size),
                 ("min_pixels", p.min_pixels), ("max_pixels", p.max_pixels), *grid.items(),
                 ("prompt", source), ("sentence", SENTENCE), ("paired_clip", PAIRED_CLIP[preset]))
        llm = DecoderSizes.of(qwen_config(p.qwen_preset()).text_config)
        return CostArch(name, self.family, preset, llm, n, text, prefix, _DESCRIPTIONS[preset], extra=extra)

    def build(self, arch, device, dtype, attn="sdpa", quantize=("none", "bitsandbytes"), seed: int = 0):
        if quantize[0] != "none":  # Sa2VAPipeline.from_model_string refuses it too
            raise LiteLVLMError(f"the {arch.family} family does not offer --quantize yet")
        p = study_preset(arch.preset)
        qwen, fcs, sam2, _ = build_sa2va(p, seed=seed, dtype=dtype, device=device)
        sizes = PAIRED_CLIP[arch.preset]
        pipe = Sa2VAPipeline(qwen, random_processor(arch.preset), fcs, sam2,
                             name=f"{arch.name}-random:{seed}",
                             clip=paired_clip(sizes, device, dtype, f"{sizes}-random-clip"),
                             min_pixels=p.min_pixels, max_pixels=p.max_pixels)
        set_attention(pipe, attn)
        return pipe

    def prepare_image(self, pipe, image: Image.Image):
        """``Sa2VAPipeline.prepare_image`` on a real device; on ``meta`` the same statements with the vision
        tower's index tensors given (:func:`litelvlm.qwen_vision.index.tower_index`)."""
        if pipe.device.type != "meta":
            return pipe.prepare_image(image)

        seen, px = pipe._image(image)
        grid = px["image_grid_thw"]
        with torch.no_grad():
            visual = pipe.qwen.model.visual(px["pixel_values"].to(pipe.device, pipe.dtype), grid_thw=grid,
                                            **tower_index(pipe.qwen.model.visual, grid)).pooler_output
            sam = pipe.sam2.encode_image(pipe.sam2.preprocess(image))
        return Sa2VAInput(image=image, image_size=(image.height, image.width), sentences=[],
                          input_ids=torch.empty(0, dtype=torch.long),
                          mm_token_type_ids=torch.empty(0, dtype=torch.long),
                          grid_thw=grid.cpu(), second_per_grid_ts=torch.ones(1), visual=visual.to(pipe.dtype),
                          sam_features=sam, llm_images=[seen])

    def vision_inputs(self, pipe, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        _, px = pipe._image(image)
        return px["pixel_values"], px["image_grid_thw"]

    def vision_forward(self, pipe, pixels: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        return pipe.qwen.model.get_image_features(pixels,
                                                  image_grid_thw=grid.to(pipe.device)).pooler_output[0]


#: the efficiency study's cost description of this family
COST = Sa2VACost()
