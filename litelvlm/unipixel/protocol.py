"""UniPixel's RefCOCO referring-segmentation protocol, as data and pure functions.

Official code: PolyU-ChenLab/UniPixel @ 5c8e941 (``unipixel/eval/infer_seg.py``, ``eval_refcoco.py``); the
teacher-forced answer is this project's (not in the official evaluation).

Details: docs/unipixel.md (``litelvlm.unipixel.protocol``).
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from ..data.resize_cap import check_resize, image_label
from ..errors import LiteLVLMError
from ..qwen.prompt import grid_prompt
from ..qwen.vision_info import smart_resize as qwen_smart_resize
from ..qwen.vision_info import to_rgb  # noqa: F401 (fetch_image's RGB, UniPixel's too)
from ..switches import ANSWERS

#: UniPixel's added tokens in the order ``train/train.py`` L173-174 adds them (ids 151665, 151666, 151667).
REF_TOKEN, SEG_TOKEN, MEM_TOKEN = "<|ref|>", "<|seg|>", "<|mem|>"
ADDED_TOKENS = (REF_TOKEN, SEG_TOKEN, MEM_TOKEN)
#: ``dataset/utils.py`` L26 and L33, L73: resize factor (patch 14 x merge 2), frames per temporal patch, max
#: aspect ratio.
IMAGE_FACTOR, FRAME_FACTOR, MAX_RATIO = 28, 2, 200
#: ``infer_seg.py`` L121-122 and L153: per-frame pixel bounds and ``--sample_frames``.
MIN_PIXELS, FRAME_PIXELS, SAMPLE_FRAMES = 128 * 28 * 28, 256 * 28 * 28, 16
#: ``fetch_video``'s fps for a list of frames (``dataset/utils.py`` L326), turned into ``second_per_grid_ts``.
VIDEO_FPS = 2.0
#: ``infer_seg.py`` L100: leading articles dropped from the query, in this order.
ARTICLES = ("the ", "an ", "a ")
#: ``infer_seg.py`` L103 (the ``query`` sample type).
QUESTION = "Please segment the {query} in this {media}."
#: ``segmentation.py`` L76-82: the answers UniPixel was trained with (``random.choice`` per turn).
SEG_RESPONSES = (f"The target is {SEG_TOKEN}.", f"The segmentation result is {SEG_TOKEN}.",
                 f"Sure, the segmentation mask is {SEG_TOKEN}.", f"Sure, it is {SEG_TOKEN}.", f"{SEG_TOKEN}.")
#: ``infer_seg.py`` L190-197: greedy, the checkpoint's sampling settings switched off.
GENERATE_KWARGS = {"do_sample": False, "temperature": None, "top_k": None, "top_p": None,
                   "repetition_penalty": None, "max_new_tokens": 512}
#: UniPixel opens images with ``PIL.Image.open`` (``dataset/utils.py`` L123, ``utils/io.py`` L16).
EXIF_TRANSPOSE = False
#: ``infer_seg.py`` L24: connected components smaller than this are ignored by the box of a prediction.
MIN_BOX_AREA = 10


# -- 1. the question ---------------------------------------------------------------------------------
def clean_query(expression: str) -> str:
    """The expression as UniPixel's question holds it: dots stripped, first letter lowered, one leading
    ``the``/``an``/``a`` of each kind removed in that order (``infer_seg.py`` L98-102)."""
    query = expression.strip(".")
    if not query:
        raise LiteLVLMError(f"expression {expression!r} is empty once its dots are stripped")
    query = query[0].lower() + query[1:]
    for article in ARTICLES:
        if query.startswith(article):
            query = query[len(article):]
    return query


def question(expression: str, media: str = "image") -> str:
    """``"Please segment the {query} in this image."`` for a RefCOCO expression."""
    return QUESTION.format(query=clean_query(expression), media=media)


# -- 2. the visual input -----------------------------------------------------------------------------
def max_pixels(num_frames: int = 1, sample_frames: int = SAMPLE_FRAMES) -> int:
    """``256 * 28 * 28 * int(sample_frames / num_frames)``: 3,211,264 for one image (``infer_seg.py``
    L122)."""
    return FRAME_PIXELS * int(sample_frames / num_frames)


def smart_resize(height: int, width: int, factor: int = IMAGE_FACTOR, min_pixels: int = MIN_PIXELS,
                 max_pixels: int = FRAME_PIXELS * SAMPLE_FRAMES) -> tuple[int, int]:
    """UniPixel's (qwen-vl-utils') resize target (``dataset/utils.py`` L59-87) with UniPixel's bounds
    (:func:`litelvlm.qwen.vision_info.smart_resize`)."""
    return qwen_smart_resize(height, width, factor, min_pixels, max_pixels)


def resized_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) of the frame the vision tower sees for a (height, width) RefCOCO image."""
    return smart_resize(height, width, IMAGE_FACTOR, MIN_PIXELS, max_pixels(1))


def resize_frame(image: Image.Image) -> Image.Image:
    """The frame UniPixel feeds Qwen2.5-VL: :func:`to_rgb`, then PIL's bicubic resize to
    :func:`resized_size`."""
    try:
        height, width = resized_size(image.height, image.width)
    except LiteLVLMError as e:  # past MAX_RATIO: name the file
        raise LiteLVLMError(f"{image_label(image)}: {e}") from None
    check_resize(image, image.size, (width, height), "UniPixel's smart_resize")
    return to_rgb(image).resize((width, height), Image.Resampling.BICUBIC)


def video_frames(frame: Image.Image) -> list[Image.Image]:
    """The one frame padded with copies of itself to a multiple of 2 frames: ``[frame, frame]``
    (``dataset/utils.py`` L322-324), one temporal patch for the vision tower."""
    return [frame] * (math.ceil(1 / FRAME_FACTOR) * FRAME_FACTOR)


# -- 3. messages, prompt and answer ------------------------------------------------------------------
def chat_messages(text: str, frames: Sequence[Any], num_frames: int = 1) -> list[dict]:
    """The official message: one user turn, a ``video`` of the frames with UniPixel's pixel bounds, then the
    text."""
    video = {"type": "video", "video": list(frames), "min_pixels": MIN_PIXELS,
             "max_pixels": max_pixels(num_frames)}
    return [{"role": "user", "content": [video, {"type": "text", "text": text}]}]


def sample_seed(seed: int, key: int | str) -> int:
    """This project's per-sample seed ``crc32(f"{seed}:{key}")`` (key: the sentence id)."""
    return zlib.crc32(f"{seed}:{key}".encode())


def teacher_forced_answer(response: int | None = 0, seed: int = 0, key: int | str = 0) -> str:
    """This project's teacher-forced answer: ``SEG_RESPONSES[response]``, or (``response=None``) the one
    ``random.choice`` draws, as training does, from ``random.Random(sample_seed(seed, key))``."""
    if response is None:
        return random.Random(sample_seed(seed, key)).choice(SEG_RESPONSES)
    if not 0 <= response < len(SEG_RESPONSES):
        raise LiteLVLMError(f"response {response} not in 0..{len(SEG_RESPONSES) - 1} (SEG_RESPONSES)")
    return SEG_RESPONSES[response]


def seg_token_id(tokenizer) -> int:
    """The id of ``<|seg|>`` in ``tokenizer`` (an error if it is not one added token there)."""
    ids = tokenizer.encode(SEG_TOKEN, add_special_tokens=False)
    if len(ids) != 1 or tokenizer.convert_ids_to_tokens(ids[0]) != SEG_TOKEN:
        raise LiteLVLMError(f"the tokenizer has no {SEG_TOKEN} token (UniPixel adds "
                            f"{', '.join(ADDED_TOKENS)})")
    return int(ids[0])


def seg_rows(input_ids: torch.Tensor, seg_id: int) -> torch.Tensor:
    """Rows whose hidden state makes a mask: those predicting a ``<|seg|>`` of the input, i.e. ``i`` where
    ``input_ids[i + 1] == seg_id`` (``model/qwen2_5_vl.py`` L344-346); ``input_ids`` is 1-D."""
    if input_ids.dim() != 1:
        raise ValueError(f"seg_rows expects one sequence of ids, got shape {tuple(input_ids.shape)}")
    return torch.nonzero(input_ids[1:] == seg_id).flatten()


@dataclass
class ProtocolInputs:
    """One sample's model inputs (an image's or a video's) and how they were made."""

    question: str
    text: str                     # the prompt, plus the answer when teacher-forced
    answer: str                   # "generate" or "teacher-forced"
    response: str | None          # the teacher-forced answer text
    frame_size: tuple[int, int]   # (H, W) of the original image or frames (the prediction's size)
    frames: list[Image.Image]     # the frames the vision tower sees
    # the processor's BatchFeature (input_ids, pixel_values_videos, video_grid_thw, ...)
    inputs: Any


@dataclass
class UniPixelInputs(ProtocolInputs):
    """One image's model inputs (the image as a two-frame video)."""

    resized: tuple[int, int]      # (h, w) of the frame the vision tower sees


def prepare_inputs(processor, image: Image.Image, expression: str, answer: str = "generate",
                   response: int | None = 0, seed: int = 0, key: int | str = 0) -> UniPixelInputs:
    """The official inputs of one (image, expression) through a Qwen2.5-VL ``processor`` (transformers 5);
    ``answer="teacher-forced"`` appends :func:`teacher_forced_answer` (this project's)."""
    if answer not in ANSWERS:
        raise LiteLVLMError(f"answer {answer!r} not one of {ANSWERS}")
    frames = video_frames(resize_frame(image))
    q = question(expression)
    text = processor.apply_chat_template(chat_messages(q, frames), add_generation_prompt=True, tokenize=False)
    said = teacher_forced_answer(response, seed, key) if answer == "teacher-forced" else None
    text = text + (said or "")
    inputs = processor(text=[text], videos=[frames], do_resize=False, return_tensors="pt")
    temporal = int(getattr(processor.video_processor, "temporal_patch_size", FRAME_FACTOR))
    inputs["second_per_grid_ts"] = torch.tensor([temporal / VIDEO_FPS])
    return UniPixelInputs(question=q, text=text, answer=answer, response=said,
                          frame_size=(image.height, image.width),
                          resized=(frames[0].height, frames[0].width), frames=frames, inputs=inputs)


def prompt_inputs(processor, video_grid_thw: torch.Tensor, frame_size: tuple[int, int], expression: str,
                  answer: str = "generate", response: int | None = 0, seed: int = 0,
                  key: int | str = 0) -> UniPixelInputs:
    """:func:`prepare_inputs`' ids and types for an image whose frames the processor already made into
    ``video_grid_thw``: the same chat text, the processor's own expansion and tokenizer
    (:func:`litelvlm.qwen.prompt.grid_prompt`); no frame is resized or processed again. ``frames`` is empty;
    ``inputs`` holds the ids, types, the grid and ``second_per_grid_ts``."""
    if answer not in ANSWERS:
        raise LiteLVLMError(f"answer {answer!r} not one of {ANSWERS}")
    q = question(expression)
    text = processor.apply_chat_template(chat_messages(q, [None] * FRAME_FACTOR), add_generation_prompt=True,
                                         tokenize=False)
    said = teacher_forced_answer(response, seed, key) if answer == "teacher-forced" else None
    text = text + (said or "")
    ids, types = grid_prompt(processor, text, video_grid_thw=video_grid_thw)
    temporal = int(getattr(processor.video_processor, "temporal_patch_size", FRAME_FACTOR))
    inputs = {"input_ids": ids, "mm_token_type_ids": types, "video_grid_thw": video_grid_thw,
              "second_per_grid_ts": torch.tensor([temporal / VIDEO_FPS])}
    return UniPixelInputs(question=q, text=text, answer=answer, response=said, frame_size=tuple(frame_size),
                          resized=resized_size(*frame_size), frames=[], inputs=inputs)


# -- 4. scoring -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleScore:
    """One sample's intersection and union (pixels), IoU, and whether its box hits (None: no box given)."""

    inter: int
    union: int
    iou: float
    hit: bool | None = None


def _bool(mask) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    return np.asarray(mask).astype(bool)


def min_box(pred) -> tuple[int, int, int, int] | None:
    """(x_min, y_min, x_max, y_max), inclusive, of the pixels in 8-connected components of at least
    :data:`MIN_BOX_AREA` pixels, found by OpenCV's ``connectedComponentsWithStats`` as ``infer_seg.py`` L24-43
    does; None when there are none."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(_bool(pred).astype(np.uint8) * 255, connectivity=8)
    kept = np.isin(labels, 1 + np.flatnonzero(stats[1:n, cv2.CC_STAT_AREA] >= MIN_BOX_AREA))
    ys, xs = np.nonzero(kept)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two (x1, y1, x2, y2) boxes in float32, areas without the +1 (nncore ``bbox_iou``); NaN when
    both boxes have no area."""
    t = torch.tensor([list(a), list(b)], dtype=torch.float32)
    area = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    wh = (torch.minimum(t[0, 2:], t[1, 2:]) - torch.maximum(t[0, :2], t[1, :2])).clamp(min=0)
    inter = wh[0] * wh[1]
    return float(inter / (area[0] + area[1] - inter))


def coco_box(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    """A COCO (x, y, w, h) box as UniPixel stores it: (x, y, x + w, y + h) (``segmentation.py`` L1112)."""
    x, y, w, h = (float(v) for v in bbox)
    return x, y, x + w, y + h


def score_sample(pred, gt, box: Sequence[float] | None = None, ignore=None) -> SampleScore:
    """(``inter``, ``union``, IoU, hit) of a boolean (H, W) prediction against the ground truth, as
    ``infer_seg.py`` L239-250 counts them: IoU 1 when the union is empty (no epsilon); ``ignore`` pixels
    (a -1 label) count in neither; ``pred=None`` is a failed sample's all-zero mask (L219); ``box``
    (x1, y1, x2, y2) gives ``hit``: IoU of the prediction's :func:`min_box` with it >= 0.5."""
    gt = _bool(gt)
    pred = np.zeros_like(gt) if pred is None else _bool(pred)
    if pred.shape != gt.shape:
        raise LiteLVLMError(f"prediction of shape {pred.shape} against a ground truth of shape {gt.shape}")
    keep = np.ones_like(gt) if ignore is None else ~_bool(ignore)
    inter = int((pred & gt & keep).sum())
    union = int(((pred | gt) & keep).sum())
    iou = 1.0 if union == 0 else inter / union
    hit = None
    if box is not None:
        found = min_box(pred)
        hit = found is not None and box_iou(found, box) >= 0.5
    return SampleScore(inter, union, iou, hit)


def summarize(scores: Iterable[SampleScore]) -> dict[str, float]:
    """``eval_refcoco.py`` L29-34: cIoU = sum(inter) / sum(union), gIoU = mean IoU, box accuracy = hits /
    samples (a sample without a box counts as a miss); also the sums and the number of samples."""
    scores = list(scores)
    if not scores:
        raise LiteLVLMError("no samples to summarize")
    cum_inter = sum(s.inter for s in scores)
    cum_union = sum(s.union for s in scores)
    if cum_union == 0:
        raise LiteLVLMError("cIoU is undefined: every sample's union is empty")
    return {"ciou": cum_inter / cum_union, "giou": sum(s.iou for s in scores) / len(scores),
            "box_acc": sum(1 if s.hit else 0 for s in scores) / len(scores),
            "cum_inter": cum_inter, "cum_union": cum_union, "n": len(scores)}


__all__ = ["ADDED_TOKENS", "ARTICLES", "EXIF_TRANSPOSE", "FRAME_FACTOR", "FRAME_PIXELS",
           "GENERATE_KWARGS", "IMAGE_FACTOR", "MAX_RATIO", "MEM_TOKEN", "MIN_BOX_AREA", "MIN_PIXELS",
           "QUESTION", "REF_TOKEN", "SAMPLE_FRAMES", "SEG_RESPONSES", "SEG_TOKEN", "VIDEO_FPS", "SampleScore",
           "ProtocolInputs", "UniPixelInputs",
           "box_iou", "chat_messages", "clean_query", "coco_box", "max_pixels", "min_box", "prepare_inputs",
           "prompt_inputs", "question", "resize_frame", "resized_size", "sample_seed", "score_sample",
           "seg_rows", "seg_token_id", "smart_resize", "summarize", "teacher_forced_answer", "to_rgb",
           "video_frames"]
