"""UniPixel's referring-video protocol: which frames the LLM sees, how they are resized, the prompt, and the
Qwen2.5-VL video inputs (``pixel_values_videos``, ``video_grid_thw``, ``second_per_grid_ts``).

Source: PolyU-ChenLab/UniPixel @5c8e941, ``unipixel/eval/infer_seg.py`` (the script ``scripts/auto_eval.sh``
runs on Ref-DAVIS-17, Refer-YouTube-VOS, MeViS, ReVOS, Ref-SAV and GroundMoRe):

1. frames (L90, ``unipixel/utils/io.py`` L49-76 with ``sample_for_llm_only=True``): the LLM sees
   ``--sample_frames`` (16) frames sampled uniformly, ``np.arange(0, n, (n - 1) / (16 - 1))[:16].round()``
   (all frames when the video has at most 16); SAM 2 sees every frame of the video, at its original size
   (:func:`sample_indices`);
2. resizing (L115-127, ``dataset/utils.py`` L311-327 and L99-147): each sampled frame goes through
   ``fetch_image`` with ``min_pixels`` 128 x 28 x 28 and ``max_pixels`` 256 x 28 x 28 x ``int(16 / frames
   sampled)`` (UniPixel's ``smart_resize``, PIL's bicubic resize), then the list is padded with copies of its
   last frame to an even length (``FRAME_FACTOR`` 2); ``fps`` 2.0, so ``second_per_grid_ts`` = 2 / 2.0 = 1
   (:func:`llm_frames`);
3. the question (L96-103): ``"Please segment the {query} in this video."`` (``image`` for a one-frame "video",
   whose ``data_type`` is ``seg_image``: ``dataset/sub_classes/segmentation.py`` L546), the query cleaned as
   for RefCOCO (:func:`litelvlm.unipixel.protocol.clean_query`); the chat template with
   ``add_generation_prompt``;
4. the masks (``model/qwen2_5_vl.py`` L361-366 with ``sam2_batch_mode`` False): the seg head's prompt is added
   on frame 0 of the WHOLE video (``init_state(frames[0], frame_size[0])``, ``add_new_hidden_state(state, 0,
   0, seg)``) and ``propagate_in_video`` gives a mask for every frame, written for every frame
   (``infer_seg.py`` L225-234);
5. the score (``eval/eval_seg.py`` L167-199, L257-265 for ``ref_davis17``, ``mevis``, ``ref_sav``): per
   expression, J and F are frame means over every frame, and the dataset's J and F are means over expressions
   (:func:`litelvlm.video.metrics.mevis_scores`, :func:`litelvlm.video.metrics.mevis_summary`).

A one-frame video is the image protocol exactly (:mod:`litelvlm.unipixel.protocol`): the same frames, pixel
bounds and question. This project's, as on images: ``answer="teacher-forced"`` appends a training answer with
``<|seg|>`` (random weights never generate one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import LiteLVLMError
from .protocol import (
    ANSWERS,
    FRAME_FACTOR,
    IMAGE_FACTOR,
    MIN_PIXELS,
    SAMPLE_FRAMES,
    VIDEO_FPS,
    chat_messages,
    max_pixels,
    question,
    smart_resize,
    teacher_forced_answer,
    to_rgb,
)


def sample_indices(num_frames: int, sample_frames: int = SAMPLE_FRAMES) -> list[int]:
    """The indices of the frames the LLM sees: ``utils/io.py`` L59-68 (``uniform``), every frame when there
    are at most ``sample_frames``."""
    if num_frames < 1:
        raise LiteLVLMError("a video needs at least one frame")
    if sample_frames > 0 and num_frames > sample_frames:
        if sample_frames < 2:  # the official step (n - 1) / (sample_frames - 1) divides by zero
            raise LiteLVLMError(f"sample_frames must be at least 2; got {sample_frames}")
        step = (num_frames - 1) / (sample_frames - 1)
        inds = np.arange(0, num_frames, step)[:sample_frames].round().astype(int).tolist()
        if len(inds) != sample_frames:
            raise AssertionError(f"sampled {len(inds)} frames, not {sample_frames}")
        return inds
    return list(range(num_frames))


def video_question(expression: str, num_frames: int) -> str:
    """``"Please segment the {query} in this video."`` (``image`` when the video has one frame)."""
    return question(expression, media="video" if num_frames > 1 else "image")


def llm_frames(frames: Sequence[Image.Image], sample_frames: int = SAMPLE_FRAMES) -> list[Image.Image]:
    """The sampled frames as ``fetch_video`` makes them: each ``to_rgb`` and resized (bicubic) to UniPixel's
    ``smart_resize`` within the per-frame pixel bounds, the list padded with its last frame to an even
    length."""
    bound = max_pixels(len(frames), sample_frames)
    out = []
    for frame in frames:
        frame = to_rgb(frame)
        h, w = smart_resize(frame.height, frame.width, IMAGE_FACTOR, MIN_PIXELS, bound)
        out.append(frame.resize((w, h), Image.Resampling.BICUBIC))
    padded = math.ceil(len(out) / FRAME_FACTOR) * FRAME_FACTOR
    return out + [out[-1]] * (padded - len(out))


@dataclass
class VideoInputs:
    """One (video, expression)'s model inputs and how they were made."""

    question: str
    text: str                     # the prompt, plus the answer when teacher-forced
    answer: str                   # "generate" or "teacher-forced"
    response: str | None          # the teacher-forced answer text
    frame_size: tuple[int, int]   # (H, W) of the original frames (the masks' size)
    sampled: list[int]            # indices of the frames the LLM sees
    frames: list[Image.Image]     # the LLM's frames, resized and padded
    # the processor's BatchFeature (input_ids, pixel_values_videos, video_grid_thw, ...)
    inputs: Any


def prepare_video_inputs(processor, frames: Sequence[Image.Image], expression: str, answer: str = "generate",
                         response: int | None = 0, seed: int = 0, key: int | str = 0,
                         sample_frames: int = SAMPLE_FRAMES) -> VideoInputs:
    """The official inputs of one (video, expression) through a Qwen2.5-VL ``processor`` (transformers 5);
    ``frames`` are ALL the video's frames; ``answer="teacher-forced"`` appends this project's training
    answer."""
    if answer not in ANSWERS:
        raise LiteLVLMError(f"answer {answer!r} not one of {ANSWERS}")
    frames = list(frames)
    sampled = sample_indices(len(frames), sample_frames)
    chosen = [frames[i] for i in sampled]
    made = llm_frames(chosen, sample_frames)
    q = video_question(expression, len(frames))
    messages = chat_messages(q, chosen, num_frames=len(chosen))
    messages[0]["content"][0]["max_pixels"] = max_pixels(len(chosen), sample_frames)
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    said = teacher_forced_answer(response, seed, key) if answer == "teacher-forced" else None
    text = text + (said or "")
    inputs = processor(text=[text], videos=[made], do_resize=False, return_tensors="pt")
    temporal = int(getattr(processor.video_processor, "temporal_patch_size", FRAME_FACTOR))
    inputs["second_per_grid_ts"] = torch.tensor([temporal / VIDEO_FPS])
    return VideoInputs(question=q, text=text, answer=answer, response=said,
                       frame_size=(frames[0].height, frames[0].width), sampled=sampled, frames=made,
                       inputs=inputs)


__all__ = ["VideoInputs", "llm_frames", "prepare_video_inputs", "sample_indices", "video_question"]
