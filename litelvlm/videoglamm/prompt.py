"""VideoGLaMM's referring-video inputs: frame sampling, the two towers' pixels, the prompt and its ids.

Official source: mbzuai-oryx/VideoGLaMM @ 6b15b1e, ``VideoGLaMM/`` (``eval_referdavis_infer.py``).

Details: docs/videoglamm.md (``litelvlm.videoglamm.prompt``).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from ..data.resize_cap import check_resize

# ImageNet's mean / std: InternVideo2's ``VideoTrainProcessor`` (``internvideo/utils.py`` L16-21)
from ..models.channel_stats import IMAGENET_MEAN, IMAGENET_STD
from .config import IMAGE_TOKEN_INDEX, NUM_FRAMES

SYSTEM = "<|system|>\nYou are a helpful AI assistant."
ROLES = ("\n<|user|>\n", "\n<|assistant|>\n")
SEP = "<|end|>"
QUESTION = "What is {phrase} in this video? Please respond with segmentation masks."
ANSWER = "It is [SEG]."


def question(expression: str) -> str:
    """eval_referdavis_infer.py L196."""
    return QUESTION.format(phrase=expression.lower())


def prompt_text(sentence: str, answer: str | None = None, num_frames: int = NUM_FRAMES) -> str:
    """The ``phi3_instruct`` conversation of ``apply_for_chat(type='video')`` (docs/videoglamm.md)."""
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
