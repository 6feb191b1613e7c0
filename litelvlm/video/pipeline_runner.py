"""What an ``eval-video`` runner over a family pipeline's video path shares (:class:`PipelineVideoRunner`):
the pipeline loaded from the run's options, its paired CLIP named, one prepared video reused by every
expression of that video, and the masks checked against the video's frames. A family's runner adds its prompt,
its budget rule, its row and its record.

``eval-video --batch-size B`` (this project's addition): :meth:`PipelineVideoRunner.ground`, the study's one
entry point at every B, runs B expressions of one video through the LLM in one right-padded, masked forward
(``GroundingPipeline.ground_many``: the shared frames prepared once, each expression pruned by its own
selection), then each expression's masks come from SAM 2 as at batch 1; a chunk of one expression, and a
method that cannot share a forward, ``ground_many`` runs one by one (:meth:`PipelineVideoRunner.batch_error`
names those methods, for the study's notes). :meth:`PipelineVideoRunner.expression` is its one-expression
case."""

from __future__ import annotations

import torch

from ..budget import Budget, Count
from ..errors import LiteLVLMError
from ..image_resize import image_resize_kwargs
from ..lvlm.batched import batch_error
from ..lvlm.numerics import Numerics
from .decoded import DecodedVideo, frames_of
from .runner import VideoRunArgs


class PipelineVideoRunner:
    """One loaded pipeline (``pipeline_class.from_model_string`` of the run's options) and the video being
    scored."""

    extra_columns: list[str] = []

    def __init__(self, a: VideoRunArgs, pipeline_class: type) -> None:
        dtype = None if a.dtype == "auto" else getattr(torch, a.dtype)
        self.pipe = pipeline_class.from_model_string(a.model, device=a.device, dtype=dtype, clip=a.clip,
                                                     clip_text=a.clip_text, numerics=None if a.attn is None
                                                     else Numerics.for_protocol("official", attn=a.attn),
                                                     **image_resize_kwargs(a.image_resize))
        self.model = self.pipe
        #: the paired CLIP (the CLIP-side methods' scores, mapped onto the family's merged grid)
        self.clip_name = self.pipe.describe()["clip"]["model"]
        self.args = a
        #: ``ground``'s position rule (``eval-video --positions``; official: each method's own)
        self.positions = a.positions
        self.prepared = None
        self.video: str | None = None
        #: the video's frames decoded ahead (:meth:`new_video`)
        self.decoded: DecodedVideo | None = None

    def new_video(self, decoded: DecodedVideo | None = None) -> None:
        """Drop the previous video's work; ``decoded``: the next video's frames, decoded ahead."""
        self.prepared = self.video = None
        self.decoded = decoded

    def prepared_for(self, rec):
        """The prepared video of ``rec`` (prepared once per video, then reused by each of its expressions)."""
        if self.prepared is None or self.video != rec.video:
            source = frames_of(rec, self.decoded)
            self.prepared = self.pipe.prepare_video([source.frame(i) for i in range(len(rec.frames))],
                                                    seed=self.args.seed)
            self.video = rec.video
        return self.prepared

    def prompt(self, rec):
        """The prepared prompt of ``rec``'s expression on its video (the family's)."""
        raise NotImplementedError

    def count(self, prep, method: str, budget: Budget) -> Count:
        """K of ``prep``'s visual tokens that ``method`` keeps at the per-frame ``budget`` (the family's
        rule)."""
        raise NotImplementedError

    def result(self, rec, prep, k: Count, out) -> tuple[torch.Tensor, int, dict]:
        """:meth:`expression`'s result of ``rec`` from its prompt, K and ``ground``'s output (the
        family's)."""
        raise NotImplementedError

    @torch.no_grad()
    def expression(self, rec, method: str, budget: Budget) -> tuple[torch.Tensor, int, dict]:
        """((frames, H, W) masks, kept tokens per frame, the row's extra columns) of one expression at the
        per-frame ``budget``: K of the video's N visual tokens, grounded as a budget of those tokens
        (:meth:`ground` of this one expression)."""
        [(prep, k, out)] = self.ground([rec], method, budget)
        return self.result(rec, prep, k, out)

    def batch_error(self, method: str) -> str | None:
        """Why ``method`` cannot share one LLM forward across a video's expressions (None: it can)."""
        return batch_error(self.pipe, method)

    @torch.no_grad()
    def ground(self, recs: list, method: str, budget: Budget, batched: bool = True) -> list[tuple]:
        """[(prompt, K, ``ground``'s output)] of expressions ``recs`` of one video through ``ground_many``:
        all at once (``batched``; K is the same for all: they share the video) or one at a time; one
        expression, or a method that cannot share a forward (:meth:`batch_error`), ``ground_many`` runs alone,
        as ``ground``."""
        preps = [self.prompt(rec) for rec in recs]
        ks = [self.count(p, method, budget) for p in preps]
        size = len(preps) if batched and len({int(k) for k in ks}) == 1 else 1
        outs = [out for i in range(0, len(preps), size)
                for out in self.pipe.ground_many(preps[i:i + size], method, Budget.of(ks[i]),
                                                 positions=self.positions)]
        return list(zip(preps, ks, outs, strict=True))

    def frame_masks(self, rec, masks: torch.Tensor) -> torch.Tensor:
        """``masks`` (one per frame of ``rec``'s video) as float on the CPU; another count is an error naming
        it."""
        if masks.shape[0] != len(rec.frames):
            raise LiteLVLMError(f"{rec.video}: {masks.shape[0]} masks for {len(rec.frames)} frames")
        return masks.float().cpu()


__all__ = ["PipelineVideoRunner"]
