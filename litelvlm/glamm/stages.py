"""GLaMM's parts for the time by stage (:mod:`litelvlm.cost.stages`) and for the captured encoders
(:mod:`litelvlm.lvlm.encoders`), which ``GlammPipeline.stage_modules`` and ``encoder_modules`` declare: CLIP's
preprocessing and SAM's input resizing and normalising (``prepare``: the pipeline's ``pixels`` and
``_on_device``); CLIP's towers, the text tower embedding the questions (``vision``); SAM's parts (``mask``);
the projector, outside the stages (``other``)."""

from __future__ import annotations


def stage_parts(pipe) -> dict[str, list]:
    """{stage: modules and (owner, attribute) steps} of the GLaMM pipeline ``pipe``."""
    towers, sam = pipe.clip.modules(), pipe.model.sam
    return {"prepare": [(pipe, "pixels"), (pipe, "_on_device")],
            "vision": [towers.vision_model, towers.text_model,
                       *((pipe.clip, n) for n in ("trace_image", "encode_text"))],
            "mask": [*sam.children(), (sam, "get_image_embeddings")],
            "other": [pipe.model.projector]}


def encoder_parts(pipe) -> list:
    """CLIP's vision and text towers and SAM's image encoder of ``pipe`` (captured under ``--encoders``; the
    text tower once per batch shape of the questions)."""
    towers = pipe.clip.modules()
    return [towers.vision_model, towers.text_model, pipe.model.sam.vision_encoder]


__all__ = ["encoder_parts", "stage_parts"]
