"""UniPixel's SAM 2.1 video path on transformers' ``Sam2VideoModel``: the seg head's prompt on frame 0, SAM
2's memory carrying it to every later frame (PolyU-ChenLab/UniPixel @ 5c8e941).

Details: docs/unipixel.md (``litelvlm.unipixel.sam2_video``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial

import torch

from ..sam2.video import build_video_model, cached_video_model, memory_encoder
from ..sam2.video import sam2_video_config as _video_config
from ..video.sam2_propagation import propagate_prompts, vision_features
from .config import Sam2Size

#: UniPixel's SAM 2.1 video config (docs/unipixel.md's settings)
sam2_video_config = partial(_video_config, version="2.1")


def build_sam2_video(size: Sam2Size, image_size: int, image_state: dict, tracking: dict[str, torch.Tensor]):
    """A ``Sam2VideoModel`` (eval) of ``image_state`` (``Sam2Model``'s names) and ``tracking`` (UniPixel's
    names)."""
    return build_video_model(size, image_size, image_state, tracking, version="2.1")


@contextlib.contextmanager
def unipixel_memory(net) -> Iterator[None]:
    """Within: ``net``'s memory encoding as UniPixel's SAM 2 does it; restored on exit: a mask from point
    inputs not binarised (``sam2_video_predictor.py`` L1246-1255) and the features stored in the frame
    features' dtype (UniPixel's ``_run_memory_encoder``, L906) --
    :func:`litelvlm.sam2.video.memory_encoder`."""
    with memory_encoder(net, store_dtype=None):
        yield


def video_model(sam2):
    """The ``Sam2VideoModel`` of a loaded :class:`~litelvlm.sam2.prompt.Sam2Prompt` (built from its image
    weights and the tracking tensors the checkpoint carries, ``sam2.tracking``; kept on ``sam2`` and rebuilt
    when ``sam2`` moved to another device or dtype; weights edited in place later are not seen: delete
    ``sam2._video_model``)."""
    def build():
        tracking = getattr(sam2, "tracking", None)
        if tracking is None:
            raise ValueError("this SAM 2 carries no tracking tensors: load it with load_unipixel")
        return build_sam2_video(sam2.sam2_size, sam2.image_size, sam2.model.state_dict(), tracking)

    return cached_video_model(sam2, build, sam2.model.no_memory_embedding)


def propagated_logits(sam2, frames: list, prompt: torch.Tensor, cache: dict) -> torch.Tensor:
    """``(T, 1, h, w)`` float32 low-resolution logits of one ``(tokens, C)`` prompt given on frame 0 of
    ``frames`` (PIL images), carried by SAM 2's memory; ``cache`` keeps the frames' pixels and features
    between calls."""
    net = video_model(sam2)
    if "pixels" not in cache:
        cache["pixels"] = torch.cat([sam2.preprocess(f) for f in frames])
        cache["features"] = vision_features(net, cache["pixels"])
    size = (frames[0].height, frames[0].width)
    with unipixel_memory(net):
        out = propagate_prompts(net, cache["pixels"], size, prompt[None], append=True,
                                features=cache["features"])
    return out.logits


__all__ = ["build_sam2_video", "propagated_logits", "sam2_video_config", "unipixel_memory", "video_model"]
