"""VideoGLaMM's parts for the time by stage (:mod:`litelvlm.cost.stages`), which
``VideoGLaMMPipeline.stage_modules`` declares: the two towers (CLIP and InternVideo2) with their frames'
preprocessing and the paired CLIP once loaded (``vision``); SAM 2's parts with its preprocessing (``mask``);
the two projectors, counted outside the stages even inside a selection (``other``)."""

from __future__ import annotations

from . import inference


def stage_parts(pipe) -> dict[str, list]:
    """{stage: modules and (owner, attribute) steps} of the VideoGLaMM pipeline ``pipe``."""
    m = pipe.model
    clip = getattr(pipe._clip, "modules", lambda: None)()  # the paired CLIP, once loaded
    return {"vision": [m.clip, m.internvideo, *(clip.children() if clip else ()),
                       (inference, "clip_pixels"), (inference, "internvideo_pixels")],
            "mask": [*m.sam2.model.children(), (m.sam2, "preprocess"), (m.sam2, "encode")],
            "other": [m.mm_projector, m.image_mm_projector]}


__all__ = ["stage_parts"]
