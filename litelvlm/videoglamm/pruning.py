"""Per-frame visual-token pruning on VideoGLaMM's CLIP context stream (this project's adaptation).

No official code prunes VideoGLaMM: a CLIP-side method keeps K of each context frame's 576 patch tokens
before the official projection and pooling.

Details: docs/video.md (``litelvlm.videoglamm.pruning``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..budget import Budget, BudgetError
from ..clip import DEFAULT_HF_MODEL
from ..clip.traces import TextTrace, VisionTrace
from ..errors import LiteLVLMError
from ..methods import get_method, method_names
from ..methods.select import select
from ..models.model_spec import ModelSpec
from ..pruning import Selection, SelectorInputs
from ..registry.resolved_model import ResolvedModel
from ..switches import ARRANGEMENTS, CLIP_TEXTS, check_one_of
from .card import CARD
from .config import CHUNK_SIZE, NUM_FRAMES
from .inference import PreparedClip
from .model import VideoGLaMM, apply_adaptive_avg_pooling
from .prompt import clip_pixels, question

#: the official per-frame pooled grid (arch.py L186)
POOLED = 12
#: the per-frame method the paper reports on video (listed first by :func:`per_frame_methods`)
PAPER_VIDEO_BASELINE = "vispruner"
#: CLIP's feature layer for VideoGLaMM (``hidden_states[-2]``, clip_encoder.py L34-72)
FEATURE_LAYER = -2


def frame_method_error(name: str) -> str | None:
    """Why method ``name`` cannot prune VideoGLaMM's CLIP tokens frame by frame (None: it can)."""
    spec = get_method(name)
    if spec.baseline or spec.acts_on_clip:
        return None
    if spec.uses_vision_tower:
        return (f"method {name!r} acts {spec.where}, not on one frame's CLIP tokens after it: it has no "
                "per-frame form here")
    return (f"method {name!r} acts on the LLM's visual tokens (stage {spec.stage.name!r}), the whole video's "
            "sequence, not on one frame's CLIP tokens: it has no per-frame form here")


def per_frame_methods() -> list[str]:
    """Every method that prunes frame by frame, VisPruner (the paper's video baseline) first, no baseline."""
    names = [m for m in method_names() if frame_method_error(m) is None and not get_method(m).baseline]
    return sorted(names, key=lambda m: m != PAPER_VIDEO_BASELINE)


def default_clip(model: str, config: dict | None = None) -> str:
    """The CLIP paired with a VideoGLaMM model string: a random CLIP of the preset's vision size for the
    random presets (seeded alike; its text tower is random) and for a folder of random weights (the preset and
    seed its ``config`` records), ``openai/clip-vit-large-patch14-336`` for a checkpoint."""
    spec = ModelSpec.of(model)
    if config is None and isinstance(model, ResolvedModel):
        config = model.config   # the config.json its resolution read
    preset, seed = CARD.preset(spec), None
    rnd = (config or {}).get("litelvlm_random")
    if preset is None and isinstance(rnd, dict) and "preset" in rnd:
        preset, seed = str(rnd["preset"]), int(rnd.get("seed", 0))
    if preset is None:
        return DEFAULT_HF_MODEL
    seed = CARD.seed(spec) if seed is None else seed
    return f"tiny336-random:{seed}" if preset == "tiny" else f"vit-l-14-336-random:{seed}"


def pair_clip(model: VideoGLaMM, clip):
    """``clip`` (a transformers CLIP backend) reading VideoGLaMM's own vision tower: the module is shared, so
    its traces are those of VideoGLaMM's tower; its text tower and ``visual_projection`` stay its own."""
    if clip.backend != "hf":
        raise LiteLVLMError(f"per-frame pruning pairs a transformers CLIP model (hf backend) with "
                            f"VideoGLaMM's tower; CLIP {clip.name!r} is {clip.backend}'s")
    inner = clip.model
    ours, theirs = model.clip.config, inner.vision_model.config
    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "image_size", "patch_size",
            "intermediate_size")
    if diff := [k for k in keys if getattr(ours, k) != getattr(theirs, k)]:
        raise LiteLVLMError(f"CLIP {clip.name!r} differs from VideoGLaMM's image tower in {', '.join(diff)}")
    inner.vision_model = model.clip
    clip._weights_hash = None
    return clip


@torch.no_grad()
def trace_context(model: VideoGLaMM, clip, prepared: PreparedClip) -> VisionTrace:
    """The CLIP trace of the clip's 16 context frames on VideoGLaMM's tower (every layer, CLS first)."""
    pixels = clip_pixels([prepared.frames[i] for i in prepared.llm_frames]).to(model.dtype)
    states = model.clip_hidden_states(pixels)
    side = model.preset.clip_image_size // model.preset.clip_patch_size
    return VisionTrace(hidden_states=states, grid=(side, side), num_prefix_tokens=1, backend=clip)


def clip_text_trace(clip, expression: str, clip_text: str = "expression") -> TextTrace:
    """The CLIP text trace the text-reading methods read: the expression, or VideoGLaMM's question."""
    check_one_of("clip_text", clip_text, CLIP_TEXTS)
    return clip.encode_text([expression if clip_text == "expression" else question(expression)],
                            warn_truncation=False)


def frame_inputs(trace: VisionTrace, text: TextTrace | None, frame: int, seed: int = 0) -> SelectorInputs:
    """Frame ``frame``'s selector inputs: its slice of the trace, the text, seed ``seed + frame``."""
    one = VisionTrace(hidden_states=tuple(h[frame:frame + 1] for h in trace.hidden_states), grid=trace.grid,
                      num_prefix_tokens=trace.num_prefix_tokens, backend=trace.backend)
    return SelectorInputs(vision=one, text=text, image_index=0, feature_layer=FEATURE_LAYER,
                          seed=seed + frame)


def pooled_side(budget: int, arrangement: str) -> int | None:
    """The pooled grid side of a frame of K kept tokens (None: ``direct``, no pooling); a non-square K is
    refused."""
    check_one_of("arrangement", arrangement, ARRANGEMENTS)
    if arrangement == "direct":
        return None
    side = math.isqrt(budget)
    if side * side != budget:
        raise LiteLVLMError(f"arrangement {arrangement!r} pools a square grid (arch.py L88-96 asserts it): a "
                            f"per-frame budget must be a square (196, 81, ...), got {budget}; use 'direct'")
    return POOLED if arrangement == "pool" else min(side, POOLED)


def frame_budgets(budget: Budget | int | None, allocation: Sequence[int] | None = None,
                  frames: int = NUM_FRAMES, num_patches: int = 576) -> list[int]:
    """The budget of each frame: ``budget`` on all (uniform: counted once) or ``allocation``, one per frame,
    each counted against a frame's N (:meth:`Budget.count <litelvlm.budget.Budget.count>`: 1 <= K_f <= N), as
    :class:`~litelvlm.budget.Count` values that ``select`` does not check again."""
    if allocation is not None and len(allocation) != frames:
        raise LiteLVLMError(f"a per-frame allocation needs {frames} budgets, got {len(allocation)}")
    try:
        if allocation is None:
            return [Budget.of(budget).count(num_patches)] * frames
        return [Budget(int(k)).count(num_patches) for k in allocation]
    except BudgetError:
        given = [budget] * frames if allocation is None else [int(k) for k in allocation]
        raise LiteLVLMError(f"per-frame budgets must be in 1..{num_patches}; got {given}") from None


def kept_features(inputs: SelectorInputs, sel: Selection) -> torch.Tensor:
    """(K, W) CLIP features the LLM side receives for a selection: merged features, or the kept patches."""
    if sel.features is not None:
        return sel.features
    patches = inputs.patches()
    return patches[sel.indices.to(patches.device)]


@dataclass
class PrunedVisual:
    """The LLM's visual input of a pruned clip and how it was made."""

    visual: torch.Tensor                       # (sum of the frames' context tokens + 16 x 64, h)
    budgets: list[int]                         # K per frame
    context_tokens: list[int]                  # LLM context tokens per frame (144 with ``pool``)
    selections: list[Selection] = field(default_factory=list, repr=False)


def video_part(model: VideoGLaMM, video: torch.Tensor) -> torch.Tensor:
    """(T * 64, h): the InternVideo2 half of ``project`` (arch.py L170-180), untouched by pruning."""
    v = model.mm_projector(video.to(model.dtype))
    v = v.reshape(v.shape[0] * CHUNK_SIZE, -1, v.shape[-1])
    v = apply_adaptive_avg_pooling(v, shape=(8, 8))
    return v.reshape(-1, v.shape[-1])


def context_part(model: VideoGLaMM, kept: list[torch.Tensor] | torch.Tensor,
                 arrangement: str) -> list[torch.Tensor]:
    """Each frame's LLM context tokens of its kept CLIP features: ``image_mm_projector``, then the
    arrangement's pooling (batched over frames when they keep the same count, as ``project`` runs the unpruned
    stream); ``kept`` a (T, K, W) tensor: every frame's features at once, used as given (no stacked copy)."""
    sides = [pooled_side(k.shape[0], arrangement) for k in kept]
    if len({k.shape[0] for k in kept}) == 1:
        stacked = kept if torch.is_tensor(kept) else torch.stack(kept)
        proj = model.image_mm_projector(stacked.to(model.dtype))
        if sides[0] is not None:
            proj = apply_adaptive_avg_pooling(proj, shape=(sides[0], sides[0]))
        return list(proj)
    out = []
    for k, side in zip(kept, sides, strict=True):
        proj = model.image_mm_projector(k[None].to(model.dtype))
        out.append((proj if side is None else apply_adaptive_avg_pooling(proj, shape=(side, side)))[0])
    return out


@torch.no_grad()
def prune_clip(model: VideoGLaMM, prepared: PreparedClip, trace: VisionTrace, text: TextTrace | None,
               method: str, budget: int | None = None, *, allocation: Sequence[int] | None = None,
               arrangement: str = "pool", seed: int = 0, **options) -> PrunedVisual:
    """The LLM's visual input with ``method`` keeping K_f of frame f's CLIP tokens (``none``: all of them)."""
    if why := frame_method_error(method):
        raise LiteLVLMError(why)
    n = trace.num_patches
    frames = trace.hidden_states[0].shape[0]
    baseline = get_method(method).baseline
    budgets = [n] * frames if baseline else frame_budgets(budget, allocation, frames, n)
    for k in set(budgets):
        pooled_side(k, arrangement)   # refused before any selection runs
    kept, sels = [], []
    for f, k in enumerate(budgets):
        inputs = frame_inputs(trace, text, f, seed)
        sel = Selection(indices=torch.arange(n)) if baseline else select(method, inputs, k, **options)
        sels.append(sel)
        kept.append(kept_features(inputs, sel))
    if all(sel.features is None and sel.keeps_all(n) for sel in sels):
        # every frame keeps all its patches in raster order: the projector reads the trace's own layer -2
        # slice, as ``project`` reads ``hidden_states[-2][:, 1:]`` (a gathered copy changes a bfloat16 GEMM's
        # rounding)
        kept = trace.hidden_states[FEATURE_LAYER][:, trace.num_prefix_tokens:]
    context = context_part(model, kept, arrangement)
    visual = torch.cat([*context, video_part(model, prepared.tokens.video)], dim=0)
    return PrunedVisual(visual, budgets, [c.shape[0] for c in context], sels)


__all__ = ["FEATURE_LAYER", "POOLED", "PrunedVisual", "clip_text_trace",
           "context_part", "default_clip", "frame_budgets", "frame_inputs", "frame_method_error",
           "kept_features",
           "pair_clip", "per_frame_methods", "pooled_side", "prune_clip", "trace_context", "video_part"]
