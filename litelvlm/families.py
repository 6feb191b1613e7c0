"""Every model family by name: a table ``name -> ("module:attribute", description, random presets,
checkpoint architectures)`` that imports nothing until a family is asked for.

``load_pipeline(model, ...)`` reads the model string once (:class:`~litelvlm.model_spec.ModelSpec`), finds
its family (a random preset's name, or the ``architectures`` of a checkpoint folder's ``config.json``)
and returns that family's pipeline (a :class:`~litelvlm.lvlm.family.GroundingPipeline`). A new family is
one package whose pipeline implements that contract and one line here (CONTRIBUTING.md).
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LiteLVLMError
from .model_folder import read_config
from .model_spec import (
    COMMAND_VIDEOGLAMM_MODEL,
    RANDOM_GLAMMS,
    RANDOM_UNIPIXELS,
    RANDOM_VIDEOGLAMMS,
    ModelSpec,
)
from .sa2va.config import RANDOM_SA2VAS
from .video.runner import VideoEval


@dataclass(frozen=True)
class FamilyEntry:
    """One family: where its pipeline class is, what it is, the random presets it builds (model-string
    names), the ``architectures`` its checkpoints' ``config.json`` declares, and what its ``prepare_image`` takes
    (``image``: a PIL image; ``video``: a list of frames)."""

    target: str
    description: str
    random_names: tuple[str, ...]
    architectures: tuple[str, ...]
    input: str = "image"
    #: whether the family's official evaluation turns an image by its EXIF orientation tag when it reads it
    exif_transpose: bool = True
    #: its video path for ``eval-video`` ("module:attribute", a :class:`litelvlm.video.runner.VideoEval`); None: none
    video_eval: str | None = None


#: name -> its entry
TABLE: dict[str, FamilyEntry] = {
    "glamm": FamilyEntry("litelvlm.glamm.pipeline:GlammPipeline",
                         "GLaMM (LLaVA-1.5 7B + CLIP ViT-L/14-336 + SAM ViT-H), the paper's model",
                         tuple(RANDOM_GLAMMS), ("GLaMMForCausalLM",)),
    "unipixel": FamilyEntry("litelvlm.unipixel.pipeline:UniPixelPipeline",
                            "UniPixel (Qwen2.5-VL 3B/7B + SAM 2.1 prompted by the <|seg|> hidden state), the paper's "
                            "LVLM beyond LLaVA", tuple(RANDOM_UNIPIXELS), ("PixelQwen2_5_VLForConditionalGeneration",),
                            exif_transpose=False,  # PIL.Image.open (litelvlm.unipixel.protocol.EXIF_TRANSPOSE)
                            video_eval="litelvlm.unipixel.video_eval:VIDEO_EVAL"),
    "videoglamm": FamilyEntry("litelvlm.videoglamm.family:VideoGLaMMPipeline",
                              "VideoGLaMM (Phi-3 + CLIP + InternVideo2 + SAM 2 frame by frame): a video of 16 sampled "
                              "frames, per-frame budgets", tuple(RANDOM_VIDEOGLAMMS), ("VideoGLaMMForCausalLM",),
                              input="video", exif_transpose=False,
                              video_eval="litelvlm.videoglamm.video_eval:VIDEO_EVAL"),  # frames: PIL.Image.open (eval_referdavis_infer.py L187)
    "sa2va": FamilyEntry("litelvlm.sa2va.pipeline:Sa2VAPipeline",
                         "Sa2VA-Qwen2.5-VL (Qwen2.5-VL 3B/7B + SAM 2 prompted by the [SEG] hidden state); pruning it "
                         "is this project's adaptation", tuple(RANDOM_SA2VAS), ("Sa2VAChatModelQwen",),
                         exif_transpose=False,  # Image.open(...).convert('RGB') (RES.py L206)
                         video_eval="litelvlm.sa2va.video_eval:VIDEO_EVAL"),
}


#: ``eval-video``'s default model (random weights that run offline)
DEFAULT_VIDEO_MODEL = COMMAND_VIDEOGLAMM_MODEL


def family_names() -> list[str]:
    """Every registered family, sorted (imports nothing)."""
    return sorted(TABLE)


def _known(name: str) -> FamilyEntry:
    if name not in TABLE:
        close = difflib.get_close_matches(name, TABLE, n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise LiteLVLMError(f"unknown model family {name!r}{hint}; known families: {', '.join(family_names())}")
    return TABLE[name]


def get_family(name: str) -> type:
    """The pipeline class of family ``name`` (its package imported on first use)."""
    module, attr = _known(name).target.split(":")
    cls = getattr(importlib.import_module(module), attr)
    from .lvlm.family import GroundingPipeline

    if not (isinstance(cls, type) and issubclass(cls, GroundingPipeline)):
        raise TypeError(f"{_known(name).target} is not a litelvlm.lvlm.family.GroundingPipeline")
    return cls


def family_of(model: str) -> str:
    """The family a model string names: a random preset by its name, a folder by its ``config.json``'s
    ``architectures`` (imports nothing)."""
    spec = ModelSpec.parse(model)
    for name, entry in TABLE.items():
        if spec.name in entry.random_names:
            return name
    config = Path(spec.folder) / "config.json"
    if not config.is_file():
        presets = sorted(n for e in TABLE.values() for n in e.random_names)
        raise LiteLVLMError(f"model {model!r}: not a folder with config.json, nor a random preset "
                            f"({', '.join(p + '[:SEED]' for p in presets)})")
    declared = read_config(spec.folder).get("architectures") or []
    if not isinstance(declared, list) or not all(isinstance(a, str) for a in declared):
        raise LiteLVLMError(f"model {model!r}: {config}'s 'architectures' must be a list of strings, got {declared!r}")
    for name, entry in TABLE.items():
        if set(declared) & set(entry.architectures):
            return name
    known = sorted(a for e in TABLE.values() for a in e.architectures)
    raise LiteLVLMError(f"model {model!r}: {config} declares architectures {declared}; no family reads them "
                        f"(known: {', '.join(known)})")


def family_input(model: str) -> str:
    """What the family of ``model`` prepares: ``image`` or ``video`` (imports nothing)."""
    return TABLE[family_of(model)].input


def exif_transpose(model: Any) -> bool:
    """Whether images are decoded turned by their EXIF orientation tag for ``model`` (a model string or a pipeline),
    as its family's official evaluation reads them: GLaMM's ``cv2.imread`` turns them, UniPixel's and VideoGLaMM's
    ``PIL.Image.open`` does not. Anything that names no family (a CLIP) follows GLaMM, whose CLIP it is."""
    family = model if isinstance(model, str) and model in TABLE else getattr(model, "family", None)
    if family not in TABLE and isinstance(model, str) and names_family(model):
        family = family_of(model)
    return TABLE[family].exif_transpose if family in TABLE else True


def names_family(model: str) -> bool:
    """Whether ``model`` names a registered family's model (a random preset, or a folder whose ``config.json``
    declares a family's architectures), not e.g. a CLIP: imports nothing and raises nothing."""
    try:
        family_of(model)
    except LiteLVLMError:
        return False
    return True


def load_pipeline(model: str, **options: Any):
    """The pipeline of ``model`` (any model string of a registered family), loaded with the family's
    ``from_model_string(model, **options)``."""
    return get_family(family_of(model)).from_model_string(model, **options)


def video_eval(model: str) -> VideoEval:
    """The video path of ``model``'s family (its registry entry's ``video_eval``); a family without one is
    refused with a line naming the model and the families that have one."""
    family = family_of(model)
    target = TABLE[family].video_eval
    if target is None:
        offered = sorted(name for name, entry in TABLE.items() if entry.video_eval)
        raise LiteLVLMError(f"model {model!r}: the {family} family has no video path; eval-video runs the families "
                            f"{', '.join(offered)}")
    module, attr = target.split(":")
    out = getattr(importlib.import_module(module), attr)
    if not isinstance(out, VideoEval):
        raise TypeError(f"{target} is not a litelvlm.video.runner.VideoEval")
    return out
