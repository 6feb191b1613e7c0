"""Sa2VA-Qwen2.5-VL's referring-segmentation protocol: the question, the image the LLM sees, the ``[SEG]``
rows.

Official source: bytedance/Sa2VA @ 9832e1a; the teacher-forced answer is this project's (labelled where a
user meets it).

Details: docs/sa2va.md (`litelvlm.sa2va.protocol`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

from ..errors import LiteLVLMError
from ..qwen.prompt import grid_prompt
from ..qwen.vision_info import processor_resize, to_rgb
from ..qwen.vision_info import smart_resize as qwen_vl_utils_smart_resize
from .config import SEG_TOKEN

#: ``RES.py`` L186 and ``refVOS.py`` L13-14
IMAGE_QUESTION = "<image>\n Please segment {} in this image."
VIDEO_QUESTION = "<image>\nPlease segment {}."
VIDEO_QUESTION_ASKED = "<image>\n {} Please respond with a segmentation mask."
#: ``projects/sa2va/datasets/common.py`` L36-42: the answers of the referring-segmentation training data
ANSWERS_LIST = ("It is [SEG].", "Sure, [SEG].", "Sure, it is [SEG].", "Sure, the segmentation result is "
                "[SEG].", "[SEG].")
#: qwen_vl_utils' ``fetch_image`` defaults (IMAGE_FACTOR, MIN_PIXELS, MAX_PIXELS)
FETCH_FACTOR, FETCH_MIN_PIXELS, FETCH_MAX_PIXELS = 28, 4 * 28 * 28, 16384 * 28 * 28
#: the processor's resize factor on Qwen2.5-VL (patch 14, merge 2)
PROCESSOR_FACTOR = 28
#: ``predict_forward``'s generation (L218-224)
MAX_NEW_TOKENS = 2048
#: frames of a video the LLM sees: the first five (``modeling_sa2va_qwen.py`` L121-122, L141)
LLM_FRAMES = 5


def image_question(sentence: str) -> str:
    """The RefCOCO question of one sentence (``RES.py`` L186)."""
    return IMAGE_QUESTION.format(sentence)


def video_question(expression: str) -> str:
    """The Ref-VOS question of one expression (``refVOS.py`` L99)."""
    return (VIDEO_QUESTION_ASKED if "?" in expression else VIDEO_QUESTION).format(expression)


def llm_size(height: int, width: int, min_pixels: int, max_pixels: int,
             factor: int = PROCESSOR_FACTOR) -> tuple[tuple[int, int], tuple[int, int]]:
    """((h1, w1), (h2, w2)): qwen-vl-utils' resize target, then the processor's (transformers'
    ``smart_resize`` at ``factor``: the tower's patch times its merge, 28 on Qwen2.5-VL, 32 on Qwen3-VL)."""
    first = qwen_vl_utils_smart_resize(height, width, FETCH_FACTOR, FETCH_MIN_PIXELS, FETCH_MAX_PIXELS)
    second = smart_resize(first[0], first[1], factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return first, (int(second[0]), int(second[1]))


def processor_factor(processor) -> int:
    """The resize factor of a Qwen processor's image processor: its ``patch_size`` times its
    ``merge_size``."""
    ip = processor.image_processor
    return int(ip.patch_size) * int(ip.merge_size)


def llm_image(image: Image.Image, min_pixels: int, max_pixels: int, resize: str = "torchvision",
              factor: int = PROCESSOR_FACTOR) -> Image.Image:
    """The image the vision tower sees: ``fetch_image``'s RGB + PIL bicubic resize, then the processor's
    resize (``resize``: ``"torchvision"``, the fast processor's, official; ``"pil"``, the slow one's) at
    ``factor``."""
    (h1, w1), (h2, w2) = llm_size(image.height, image.width, min_pixels, max_pixels, factor)
    out = to_rgb(image).resize((w1, h1), Image.Resampling.BICUBIC)
    return processor_resize(out, w2, h2, resize)


def seg_rows(input_ids: torch.Tensor, seg_id: int) -> torch.Tensor:
    """Rows whose hidden state makes a mask: the rows whose input is ``[SEG]`` (``get_seg_hidden_states``)."""
    if input_ids.dim() != 1:
        raise ValueError(f"seg_rows expects one sequence of ids, got shape {tuple(input_ids.shape)}")
    return torch.nonzero(input_ids == seg_id).flatten()


def seg_token_id(tokenizer) -> int:
    """The id of ``[SEG]`` in ``tokenizer`` (an error if it is not one added token there)."""
    ids = tokenizer.encode(SEG_TOKEN, add_special_tokens=False)
    if len(ids) != 1:
        raise LiteLVLMError(f"the tokenizer has no {SEG_TOKEN} token (Sa2VA adds it)")
    return int(ids[0])


def chat_messages(question: str, images: list) -> list[dict]:
    """``predict_forward``'s message: the images, then the question without ``<image>`` (L87, L121-127,
    L190-200)."""
    content = [{"type": "image", "image": im} for im in images]
    return [
        {"role": "user", "content": content + [{"type": "text", "text": question.replace("<image>", "")}]}]


@dataclass
class Sa2VAInputs:
    """One sample's model inputs and how they were made."""

    question: str
    text: str
    response: str | None
    images: list[Image.Image]           # what the vision tower sees
    # the processor's BatchFeature (input_ids, pixel_values, image_grid_thw, ...)
    inputs: Any


def prepare_inputs(processor, images: list[Image.Image], question: str, min_pixels: int, max_pixels: int,
                   response: int | None = 0, resize: str = "torchvision") -> Sa2VAInputs:
    """The prompt of ``question`` over ``images`` (one image, or a video's first frames) with this project's
    teacher-forced answer ``ANSWERS_LIST[response]`` after it (None: the official prompt alone, which ends
    where the generated answer starts); ``resize``: the processor's resize (:func:`llm_image`)."""
    if response is not None and not 0 <= response < len(ANSWERS_LIST):
        raise LiteLVLMError(f"response {response} not in 0..{len(ANSWERS_LIST) - 1} (ANSWERS_LIST)")
    seen = [llm_image(im, min_pixels, max_pixels, resize, processor_factor(processor)) for im in images]
    text = processor.apply_chat_template(chat_messages(question, seen), add_generation_prompt=True,
                                         tokenize=False)
    said = None if response is None else ANSWERS_LIST[response]
    inputs = processor(text=[text + (said or "")], images=seen, do_resize=False, return_tensors="pt")
    return Sa2VAInputs(question=question, text=text + (said or ""), response=said, images=seen, inputs=inputs)


def prompt_inputs(processor, grid_thw: torch.Tensor, question: str, response: int | None = 0) -> Sa2VAInputs:
    """:func:`prepare_inputs`' ``input_ids`` and ``mm_token_type_ids`` for images the processor already made
    into ``grid_thw`` (a row per image): the same chat text, the processor's own expansion and tokenizer
    (:func:`litelvlm.qwen.prompt.grid_prompt`); no image is resized or processed again (a sentence of a
    prepared image costs its tokens only). ``images`` is empty; ``inputs`` holds the ids, types and
    ``grid_thw``."""
    if response is not None and not 0 <= response < len(ANSWERS_LIST):
        raise LiteLVLMError(f"response {response} not in 0..{len(ANSWERS_LIST) - 1} (ANSWERS_LIST)")
    n = len(grid_thw)
    text = processor.apply_chat_template(chat_messages(question, [None] * n), add_generation_prompt=True,
                                         tokenize=False)
    said = None if response is None else ANSWERS_LIST[response]
    ids, types = grid_prompt(processor, text + (said or ""), image_grid_thw=grid_thw)
    inputs = {"input_ids": ids, "mm_token_type_ids": types, "image_grid_thw": grid_thw}
    return Sa2VAInputs(question=question, text=text + (said or ""), response=said, images=[], inputs=inputs)


__all__ = ["ANSWERS_LIST", "IMAGE_QUESTION", "LLM_FRAMES", "Sa2VAInputs",
           "chat_messages", "image_question", "llm_image", "llm_size", "prepare_inputs", "processor_factor",
           "prompt_inputs", "seg_rows", "seg_token_id", "video_question"]
