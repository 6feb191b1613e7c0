"""UniPixel's referring-video protocol: which frames the LLM sees, how they are resized, the prompt, and the
Qwen2.5-VL video inputs (``pixel_values_videos``, ``video_grid_thw``, ``second_per_grid_ts``).

Source: PolyU-ChenLab/UniPixel @ 5c8e941, ``unipixel/eval/infer_seg.py``; the teacher-forced answer is this
project's, as on images.

Details: docs/unipixel.md (``litelvlm.unipixel.video``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import LiteLVLMError
from ..switches import ANSWERS
from .protocol import (
    FRAME_FACTOR,
    IMAGE_FACTOR,
    MIN_PIXELS,
    SAMPLE_FRAMES,
    VIDEO_FPS,
    ProtocolInputs,
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
class VideoInputs(ProtocolInputs):
    """One (video, expression)'s model inputs (``frames``: the LLM's, resized and padded)."""

    sampled: list[int]            # indices of the frames the LLM sees


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
