"""VideoGLaMM's referring-video inputs: frame sampling, the two towers' pixels, the prompt and its ids.

mbzuai-oryx/VideoGLaMM @6b15b1e, ``VideoGLaMM/`` (the Ref-DAVIS-17 inference, ``eval_referdavis_infer.py``):

* the sentence (L196): ``"What is {phrase} in this video? Please respond with segmentation masks."`` with the
  expression lower-cased; clips of at most 64 frames (L184-187) are segmented one at a time;
* frames (``chat.py`` ``preprocess_vision`` L416-456): the LLM's frames are 16 indices of
  ``np.linspace(0, T - 1, 16, dtype=int)`` when the clip is longer (L421-427); a shorter clip repeats its last
  frame up to 16 (``utils/enc_preprocessors.py`` L144-149); SAM 2 sees every frame of the clip (L448);
* InternVideo2's pixels (``internvideo/utils.py`` L120-143, ``VideoTrainProcessor``): OpenCV's own
  ``cv2.resize(x, (224, 224))`` (its default ``INTER_LINEAR``) of the uint8 frame, then ``(x / 255 - mean) /
  std`` with ImageNet's mean and std (L16-21);
* CLIP's pixels (enc_preprocessors.py L152): ``CLIPImageProcessor`` of ``openai/clip-vit-large-patch14-336``
  (shortest side 336, bicubic, centre crop 336, OpenAI's mean and std) on each of the 16 frames, on the PIL
  backend as the official transformers 4.41 runs it;
* the prompt (``utils/conv_generator.py`` L86-111, ``ConvGenerator_VideoGPTPlus`` with the ``phi3_instruct``
  template, ``model/videogpt_plus/conversation.py`` L60-68 and L124-132): ``<video>`` becomes 16 ``<image>``
  (``NUM_FRAMES``; no start / end tokens), one user message and an empty assistant message::

      <|system|>\\nYou are a helpful AI
      assistant.<|end|>\\n<|user|>\\n<image>...<image>\\n{sentence}<|end|>\\n<|assistant|>\\n

* the ids (``model/videogpt_plus/mm_utils.py`` L17-37, ``tokenizer_image_token``): each ``<image>`` is the id
  ``IMAGE_TOKEN_INDEX`` (-200); the chunks between are tokenised on their own, a leading BOS kept once.

A teacher-forced answer (``answer=``) is appended as the template appends an assistant message
(``role + message + sep``); VideoGLaMM's referring answers are ``"It is [SEG]."`` / ``"Sure, [SEG]."``
(``utils/ordered_datasets/ordered_rvos.py`` L53-56).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from ..data.resize_cap import check_resize
from .config import IMAGE_TOKEN_INDEX, IMAGENET_MEAN, IMAGENET_STD, NUM_FRAMES

SYSTEM = "<|system|>\nYou are a helpful AI assistant."
ROLES = ("\n<|user|>\n", "\n<|assistant|>\n")
SEP = "<|end|>"
QUESTION = "What is {phrase} in this video? Please respond with segmentation masks."
ANSWER = "It is [SEG]."


def question(expression: str) -> str:
    """eval_referdavis_infer.py L196."""
    return QUESTION.format(phrase=expression.lower())


def prompt_text(sentence: str, answer: str | None = None, num_frames: int = NUM_FRAMES) -> str:
    """The ``phi3_instruct`` conversation of ``apply_for_chat(type='video')`` (module docstring)."""
    user = "<image>" * num_frames + "\n" + sentence
    text = SYSTEM + SEP + ROLES[0] + user + SEP + ROLES[1]
    return text + (answer + SEP if answer else "")


def tokenizer_image_token(prompt: str, tokenizer) -> list[int]:
    """mm_utils.py L17-37: ids of ``prompt`` with each ``<image>`` as ``IMAGE_TOKEN_INDEX``."""
    chunks = [tokenizer(c).input_ids for c in prompt.split("<image>")]
    bos = tokenizer.bos_token_id
    has_bos = bool(chunks[0]) and bos is not None and chunks[0][0] == bos
    ids = [bos] if has_bos else []
    for i, chunk in enumerate(chunks):
        if i:
            ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(chunk[1:] if has_bos else chunk)
    return ids


def input_ids(tokenizer, expression: str, answer: str | None = ANSWER) -> torch.Tensor:
    """(1, S) ids of the Ref-DAVIS question on ``expression``, with a teacher-forced ``answer`` (None:
    none)."""
    return torch.tensor([tokenizer_image_token(prompt_text(question(expression), answer), tokenizer)])


def sample_frames(num: int, frames: int = NUM_FRAMES) -> list[int]:
    """Indices of the LLM's frames of a clip of ``num`` frames (chat.py L421-427, enc_preprocessors.py
    L144-149)."""
    idx = np.linspace(0, num - 1, frames, dtype=int).tolist() if num > frames else list(range(num))
    return idx + [idx[-1]] * (frames - len(idx))


def internvideo_pixels(frames: list[np.ndarray], size: int = 224) -> torch.Tensor:
    """(T, 3, size, size) float32: ``VideoTrainProcessor.preprocess`` (utils.py L120-143) of uint8 (H, W, 3)
    frames: ``cv2.resize(x, (size, size))`` as the official L126, normalised in float64 (L20-21), cast as
    chat.py L434 does."""
    mean = np.array(IMAGENET_MEAN).reshape(1, 1, 3)
    std = np.array(IMAGENET_STD).reshape(1, 1, 3)
    out = [(cv2.resize(np.asarray(f), (size, size)) / 255.0 - mean) / std for f in frames]
    return torch.from_numpy(np.stack([o.transpose(2, 0, 1) for o in out])).float()


def clip_processor(size: int = 336):
    """``CLIPImageProcessor`` as ``openai/clip-vit-large-patch14-336`` configures it, on transformers' PIL
    backend (``CLIPImageProcessorPil``: the official stack's PIL processing; transformers 5's default backend
    is torchvision, see docs/fidelity.md, CLIP preprocessing)."""
    return CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                              do_center_crop=True, do_resize=True, resample=3, do_normalize=True,
                              do_convert_rgb=True)


def clip_pixels(frames: list[np.ndarray], processor=None) -> torch.Tensor:
    """(T, 3, 336, 336) float32 context images (enc_preprocessors.py L152)."""
    processor = processor or clip_processor()
    side = processor.size["shortest_edge"]
    for i, f in enumerate(frames):  # the shortest-edge resize keeps the aspect ratio: cap the long side first
        h, w = f.shape[:2]
        resized = (side, int(side * w / h)) if h <= w else (int(side * h / w), side)
        check_resize(None, (w, h), resized[::-1], f"CLIP's shortest-edge resize (frame {i})")
    return torch.stack([processor.preprocess(Image.fromarray(f), return_tensors="pt")["pixel_values"][0]
                        for f in frames])


__all__ = ["ANSWER", "QUESTION", "clip_pixels", "clip_processor", "input_ids",
           "internvideo_pixels", "prompt_text", "question", "sample_frames", "tokenizer_image_token"]
