"""VideoGLaMM's parts for the time by stage (:mod:`litelvlm.cost.stages`), which
``VideoGLaMMPipeline.stage_modules`` declares: the two towers (CLIP and InternVideo2) with their frames'
the paired CLIP once loaded (``vision``); SAM 2's parts (``mask``); the frames' preprocessing for each
(``prepare``);
the two projectors, counted outside the stages even inside a selection (``other``)."""

from __future__ import annotations

from . import inference


def stage_parts(pipe) -> dict[str, list]:
    """{stage: modules and (owner, attribute) steps} of the VideoGLaMM pipeline ``pipe``."""
    m = pipe.model
    clip = pipe.loaded_clip_modules()  # the paired CLIP, once loaded
    prepare = [(inference, "clip_pixels"), (inference, "internvideo_pixels"), (m.sam2, "preprocess")]
    return {"prepare": prepare,
            "vision": [m.clip, m.internvideo, *(clip.children() if clip else ())],
            "mask": [*m.sam2.model.children(), (m.sam2, "encode")],
            "other": [m.mm_projector, m.image_mm_projector]}


def encoder_parts(pipe) -> list:
    """The image encoders of ``pipe`` captured under ``--encoders``: CLIP, InternVideo2, SAM 2's image encoder
    and the paired CLIP's vision tower once loaded."""
    m = pipe.model
    clip = pipe.loaded_clip_modules()
    return [m.clip, m.internvideo, m.sam2.model.vision_encoder, *([clip.vision_model] if clip else [])]


__all__ = ["encoder_parts", "stage_parts"]
