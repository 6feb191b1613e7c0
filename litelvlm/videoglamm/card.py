"""VideoGLaMM's card: what the suite knows of the family before its code loads
(:class:`litelvlm.models.family_card.FamilyCard`). Imports nothing heavy."""

from __future__ import annotations

from ..models.family_card import FamilyCard, Lazy

CARD = FamilyCard(
    name="videoglamm",
    display_name="VideoGLaMM",
    description="VideoGLaMM (Phi-3 + CLIP + InternVideo2 + SAM 2 frame by frame): a video of 16 sampled "
                "frames, per-frame budgets",
    pipeline=Lazy("litelvlm.videoglamm.pipeline", "VideoGLaMMPipeline"),
    cost=Lazy("litelvlm.videoglamm.cost", "COST"),
    cost_archs={"videoglamm": "videoglamm", "videoglamm-tiny": "tiny"},
    presets={"videoglamm-random": "videoglamm", "videoglamm-tiny-random": "tiny"},
    architectures=("VideoGLaMMForCausalLM",),
    default_model="videoglamm-tiny-random:0",
    paper_model="VideoGLaMM with its RVOS fine-tuned weights, which are not public",
    input="video",
    exif_transpose=False,  # frames: PIL.Image.open (eval_referdavis_infer.py L187)
    video_eval=Lazy("litelvlm.videoglamm.video_eval", "VIDEO_EVAL"),
    num_visual={"videoglamm": 576, "tiny": 576},  # per frame: a 24 x 24 CLIP grid (FRAME_PATCHES)
)
