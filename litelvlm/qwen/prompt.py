"""A Qwen processor's prompt for images and videos it has already made: the tokens without the pixels.

``processor(text=..., images=...)`` resizes and normalises every image again to learn how many placeholder
tokens each one takes. A family that prepared the image once (its grid known) and asks several sentences
about it needs only the text half: :func:`grid_prompt` expands each placeholder by the processor's own rule
(``replace_image_token`` / ``replace_video_token`` on the grid, ``get_text_with_replacements``), tokenizes
with its tokenizer and types the tokens with ``create_mm_token_type_ids``, as the processor's call does.
"""

from __future__ import annotations

import torch


def grid_prompt(processor, text: str, image_grid_thw: torch.Tensor | None = None,
                video_grid_thw: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(``input_ids``, ``mm_token_type_ids``), each (1, S), of ``text`` whose image and video placeholders
    stand for grids the processor already made (a row per image or video, in the text's order)."""
    images = [processor.replace_image_token({"image_grid_thw": image_grid_thw}, i)
              for i in range(0 if image_grid_thw is None else len(image_grid_thw))]
    videos = [processor.replace_video_token({"video_grid_thw": video_grid_thw}, i)
              for i in range(0 if video_grid_thw is None else len(video_grid_thw))]
    expanded, _ = processor.get_text_with_replacements([text], images_replacements=images,
                                                       videos_replacements=videos)
    ids = processor.tokenizer(expanded, return_tensors="pt")["input_ids"]
    return ids, torch.tensor(processor.create_mm_token_type_ids(ids), dtype=ids.dtype)


__all__ = ["grid_prompt"]
