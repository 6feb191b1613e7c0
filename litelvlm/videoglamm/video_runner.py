"""VideoGLaMM loaded on its video path for ``litelvlm eval-video``
(:class:`litelvlm.video.runner.VideoRunner`).

Per video, each clip's towers and SAM 2 features and its CLIP trace are computed once.
:meth:`VideoGLaMMRunner.ground`, the study's one entry point at every ``eval-video --batch-size``, segments
expressions of a video clip by clip through the family's ``ground_many``, every method alike (the unpruned
baseline, a per-frame CLIP-side method with ``--allocation``'s budgets, an LLM-side method): several
expressions that can share a forward go through each clip's LLM forward together, each with its own pruned
visual input, their masks SAM 2's as at batch 1; one expression, or a method that cannot share a forward
(:meth:`VideoGLaMMRunner.batch_error`), runs alone. :meth:`VideoGLaMMRunner.expression` is its
one-expression case.
"""

from __future__ import annotations

import types

import numpy as np
import torch

from ..budget import Budget
from ..clip import load_clip
from ..errors import LiteLVLMError
from ..lvlm.batched import batch_error
from ..lvlm.method_plan import layer_refusals, planned_methods
from ..lvlm.numerics import Numerics
from ..method import position_error
from ..methods import available_methods
from ..video.decoded import DecodedVideo, frames_of
from ..video.runner import FRAME_PATCHES, VideoRunArgs
from . import allocation as va
from . import pruning as vp
from .checkpoint import load_videoglamm
from .config import NUM_FRAMES
from .frames import FrameSelection
from .inference import prepare_clip
from .pipeline import VideoGLaMMPipeline
from .referdavis import clip_ranges
from .video_eval import ALLOCATION_COLUMNS, allocation_weights
from .video_input import VideoGLaMMInput


class VideoGLaMMRunner:
    """One loaded VideoGLaMM with its paired CLIP, and the per-clip caches of the video being scored."""

    def __init__(self, a: VideoRunArgs) -> None:
        dtype = None if a.dtype == "auto" else getattr(torch, a.dtype)
        self.model, self.tokenizer, cfg = load_videoglamm(a.model, device=a.device, dtype=dtype)
        self.clip_name = a.clip or vp.default_clip(a.model, cfg)
        self.clip = vp.pair_clip(self.model,
                                 load_clip(self.clip_name, "hf", device=a.device, dtype=self.model.dtype))
        #: the same model on the family contract: the LLM-side methods run through its ``ground``
        self.pipe = VideoGLaMMPipeline(self.model, self.tokenizer, name=a.model, clip=self.clip,
                                       clip_text=a.clip_text, arrangement=a.arrangement,
                                       sam2_video_branch=a.sam2_video_branch,
                                       numerics=Numerics.for_protocol("official",
                                                                      attn=a.attn))
        self.args = a
        #: ``ground``'s position rule for the LLM-side methods (``eval-video --positions``)
        self.positions = a.positions
        #: the prepared clips of the video being scored: {(video, first frame): VideoGLaMMInput}
        self.prepared: dict = {}
        #: the video's frames decoded ahead (:meth:`new_video`)
        self.decoded: DecodedVideo | None = None
        self.extra_columns = ALLOCATION_COLUMNS if a.allocation != "uniform" else []

    def allocation(self, prepared: VideoGLaMMInput, method: str, k: int) -> list[int] | None:
        """The 16 frames' budgets of ``--allocation`` sharing 16 ``k`` for ``prepared``'s expression on its
        clip (None: ``uniform``, ``k`` on every frame; the baseline keeps all): ``frame_stage``'s rule."""
        rule = allocation_weights(self.args.allocation)
        if rule == "uniform" or self.pipe.spec(method).baseline:
            return None
        weights = va.relevance_weights(prepared.trace(), prepared.text(),
                                       va.clip_logit_scale(self.clip)) if rule == "relevance" else rule
        return va.frame_allocation(weights, k, self.args.arrangement)

    def new_video(self, decoded: DecodedVideo | None = None) -> None:
        """Drop the previous video's clips; ``decoded``: the next video's frames, decoded ahead."""
        self.prepared.clear()
        self.decoded = decoded

    def expression(self, rec, method: str, budget: Budget) -> tuple[torch.Tensor, int | None, dict]:
        """((frames, H, W) masks, CLIP context tokens per frame (None: an LLM-side method), the row's extra
        columns) of one expression at the per-frame ``budget`` (:meth:`ground` of this one expression)."""
        [(prep, k, out)] = self.ground([rec], method, budget)
        return self.result(rec, prep, k, out)

    def extra(self, tokens: list[int], budgets: list[list[int]]) -> dict:
        """A CLIP-side or unpruned row's extra columns from its clips' context tokens and frames' budgets."""
        extra = {"llm_visual_tokens": tokens[0] + self.pipe.num_visual_tokens - NUM_FRAMES * vp.POOLED ** 2}
        if self.args.allocation != "uniform":  # what the allocation gave each frame (first clip)
            extra.update(frame_budgets=",".join(map(str, budgets[0])), kept_tokens=sum(budgets[0]),
                         llm_context_tokens=tokens[0])
        return extra

    def batch_error(self, method: str) -> str | None:
        """Why ``method`` cannot share one LLM forward across a video's expressions (None: it can)."""
        return batch_error(self.pipe, method)

    def clip_input(self, rec, frames: range) -> VideoGLaMMInput:
        """The prepared clip ``frames`` of ``rec``'s video (towers, SAM 2 features; the paired CLIP's trace
        made on first use), once per clip and shared by its expressions and methods."""
        key = (rec.video, frames.start)
        if key not in self.prepared:
            source = frames_of(rec, self.decoded)
            clip = prepare_clip(self.model, [np.asarray(source.frame(i)) for i in frames])
            self.prepared[key] = VideoGLaMMInput(clip=clip, sentences=[],
                                                 input_ids=torch.empty(0, dtype=torch.long),
                                                 seed=self.args.seed)
        return self.prepared[key]

    @torch.no_grad()
    def ground(self, recs: list, method: str, budget: Budget, batched: bool = True) -> list[tuple]:
        """[(what the row needs, the per-frame K, the masks and mask logits over the video)] of expressions
        ``recs`` of one video, clip by clip through the family's ``ground_many``: all at once (``batched``) or
        one at a time; one expression, or a method that cannot share a forward (:meth:`batch_error`),
        ``ground_many`` runs alone. A CLIP-side method's per-frame budgets follow ``--allocation``."""
        spec = self.pipe.spec(method)
        k = budget.count(FRAME_PATCHES)
        size = len(recs) if batched else 1
        options = {} if spec.baseline or spec.acts_with_llm else {"allocation": self.allocation}
        preps = [{"llm_side": not spec.baseline and spec.acts_with_llm, "tokens": [], "budgets": []}
                 for _ in recs]
        logits: list[list[torch.Tensor]] = [[] for _ in recs]
        for frames in clip_ranges(len(recs[0].frames)):
            given = self.clip_input(recs[0], frames)
            inputs = [self.pipe.with_sentences(given, [rec.sentence]) for rec in recs]
            outs = [out for i in range(0, len(inputs), size)
                    for out in self.pipe.ground_many(inputs[i:i + size], method, budget,
                                                     positions=self.positions, **options)]
            for prep, per, out in zip(preps, logits, outs, strict=True):
                per.append(out.mask_logits[0])
                tokens, budgets = _frames_of(out.selection)
                prep["tokens"].append(tokens)
                prep["budgets"].append(budgets)
        outs = [types.SimpleNamespace(mask_logits=torch.cat(per).float().cpu()) for per in logits]
        for out in outs:
            out.masks = out.mask_logits > 0
        return [(prep, k, out) for prep, out in zip(preps, outs, strict=True)]

    def result(self, rec, prep: dict, k: int, out) -> tuple[torch.Tensor, int | None, dict]:
        """:meth:`expression`'s result of ``rec`` from :meth:`ground`'s."""
        if prep["llm_side"]:
            return out.masks.float(), None, {"llm_visual_tokens": self.pipe.llm_budget(k)}
        return out.masks.float(), prep["tokens"][0] // NUM_FRAMES, self.extra(prep["tokens"], prep["budgets"])

    def plan_methods(self, given: list[str], budgets: list[Budget]) -> list[str]:
        """The methods to run: ``given``, or every per-frame CLIP-side method (VisPruner first) then every
        LLM-side one the family runs (oracles aside); an LLM-side method with no token schedule for this
        model's decoder (e.g. SparseVLM's three stages in a 2-layer model), or one ``--positions`` cannot
        apply to (:meth:`position_error`), is refused when given and left out, with a warning, by default."""
        pipe = self.pipe
        llm = [m for m in available_methods() if pipe.method_error(m) is None and pipe.spec(m).acts_with_llm
               and not pipe.spec(m).baseline and not pipe.spec(m).oracle]
        methods = given or vp.per_frame_methods() + llm
        layers, n = len(pipe.language_model.layers), pipe.num_visual_tokens
        bad = {}
        for m in methods:
            spec = pipe.spec(m)
            if why := self.position_error(m):
                bad[m] = f"{m}: {why}"
                continue
            try:
                if spec.acts_with_llm:
                    [spec.schedule(pipe.llm_budget(b.count(FRAME_PATCHES)), n, layers) for b in budgets]
            except LiteLVLMError as e:
                bad[m] = f"{m}: {e}"
        return planned_methods(given, methods, {**bad, **layer_refusals(pipe, [m for m in methods
                                                                             if m not in bad])})

    def position_error(self, method: str) -> str | None:
        """Why ``--positions`` cannot apply to ``method`` here (None: it can): a per-frame CLIP-side method
        passes each frame's kept patches projected and pooled, which have no original position in the LLM's
        sequence, so it takes ``official`` or ``renumber`` only (:func:`litelvlm.method.position_error`
        otherwise)."""
        spec = self.pipe.spec(method)
        if self.positions in ("keep", "pad") and not spec.acts_with_llm and not spec.baseline:
            return (f"--positions {self.positions}: {method} passes projected and pooled tokens of each "
                    "frame's kept CLIP patches, which have no original position in the LLM's sequence")
        return position_error(method, spec, self.positions)

    def config(self) -> dict:
        """Nothing beyond the options (folders written before the contract stay resumable)."""
        return {}

    def summary(self, summary, expr):
        """``summary`` as it is: VideoGLaMM's own score is the DAVIS table."""
        return summary


def _frames_of(selection) -> tuple[int, list[int]]:
    """(the LLM context tokens of all frames, each frame's budget) of a run's selection: a CLIP-side
    method's :class:`~litelvlm.videoglamm.frames.FrameSelection`; the unpruned run (no selection) feeds
    the official projection, 144 pooled tokens of all 576 patches a frame."""
    if isinstance(selection, FrameSelection):
        return sum(selection.context_tokens), list(selection.budgets)
    return NUM_FRAMES * vp.POOLED ** 2, [FRAME_PATCHES] * NUM_FRAMES


__all__ = ["VideoGLaMMRunner"]
