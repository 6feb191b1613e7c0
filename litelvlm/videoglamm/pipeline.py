"""``VideoGLaMMPipeline``: the ``videoglamm`` family, VideoGLaMM on the family contract (a video, not an
image). Its budgets (K of each frame's CLIP patches) are this project's (labelled wherever a user meets them).

Details: docs/videoglamm.md (``litelvlm.videoglamm.pipeline``).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import replace

import numpy as np
import torch

from ..budget import Budget, Count
from ..clip import load_clip
from ..clip.traces import VisionTrace
from ..errors import LiteLVLMError
from ..lvlm.abilities import Abilities
from ..lvlm.family import GroundingOutput, GroundingPipeline, SequenceLayout
from ..lvlm.numerics import Numerics, set_attention
from ..lvlm.prune import llm_stage
from ..pruning import Selection
from ..registry.families import family_model
from ..switches import ANSWERS, ARRANGEMENTS, CLIP_TEXTS, check_one_of
from ..video.runner import FRAME_PATCHES
from .card import CARD
from .checkpoint import load_videoglamm
from .config import IMAGE_TOKEN_INDEX, NUM_FRAMES
from .frames import frame_stage
from .inference import prepare_clip
from .prompt import ANSWER, input_ids
from .pruning import (
    clip_text_trace,
    default_clip,
    pair_clip,
    prune_clip,
    trace_context,
)
from .referdavis import CLIP_LENGTH
from .sam2_video import video_branch_low
from .stages import encoder_parts, stage_parts
from .video_input import VideoGLaMMInput

#: the answers a prompt offers (:data:`~litelvlm.switches.ANSWERS`): this project's teacher-forced one
#: (default) or the official greedy generation
#: one expression per prompt, 1-D RoPE, the final states, per-frame budgets; the LLM-side methods reading one
#: image's CLIP trace refused (no map onto a video's pooled and InternVideo2 tokens)
ABILITIES = Abilities(sentences_per_prompt=1, answers=ANSWERS, budget_unit="frame", refuses={
    "reads_clip": "{method} reads one image's CLIP trace beside the LLM's tokens; VideoGLaMM's visual tokens "
                  "are 16 frames' pooled CLIP and InternVideo2 tokens, onto which no CLIP patch map is "
                  "defined: use a per-frame CLIP-side method or an LLM-side method that reads the LLM alone",
    "downsample": "{method} pools one 2-D grid; VideoGLaMM's are 16 frames' pooled CLIP, InternVideo2's"})


class VideoGLaMMPipeline(GroundingPipeline):
    """VideoGLaMM (Phi-3 + CLIP + InternVideo2 + SAM 2) + tokenizer + a paired CLIP text side."""

    family = "videoglamm"
    abilities = ABILITIES
    prepared_type = VideoGLaMMInput
    #: the time by stage's parts (:mod:`litelvlm.cost.stages`) and the encoders ``--encoders`` captures
    stage_modules = stage_parts
    encoder_modules = encoder_parts

    def __init__(self, model, tokenizer, name: str = "videoglamm", clip=None, clip_text: str = "expression",
                 arrangement: str = "pool", numerics=None, sam2_video_branch: bool = False) -> None:
        check_one_of("clip_text", clip_text, CLIP_TEXTS)
        check_one_of("arrangement", arrangement, ARRANGEMENTS)
        self.model = model
        self.tokenizer = tokenizer
        self.name = str(name)   # the model string as written (a resolved model travels apart)
        #: the CLIP paired with VideoGLaMM's tower for the text side (a model string loaded on first use)
        self._clip = clip
        self.clip_text = clip_text
        #: how a frame's K kept CLIP tokens meet the square-only pooling (``litelvlm.videoglamm.pruning``)
        self.arrangement = arrangement
        self.numerics = Numerics.official() if numerics is None else numerics
        #: masks by SAM 2's memory from frame 0 (the official ``--use_sam2_video_branch``), else frame-wise
        self.sam2_video_branch = bool(sam2_video_branch)
        self.quantization = None
        self.layer_hooks = []
        self.seg_token_id = int(tokenizer.convert_tokens_to_ids("[SEG]"))
        #: ``answer="generate"``: ``generate(max_new_tokens=512)`` (``inference_framewise`` L616-626)
        self.max_new_tokens = 512
        paired = self.loaded_clip_modules()   # numerics.attn at load (InternVideo2: its own)
        set_attention(self.numerics.attn, model.clip, model.sam2.model, paired, llm=self.language_model,
                      clip_softmax=self.numerics.clip_softmax)

    @classmethod
    def from_model_string(cls, model: str, device: str | torch.device = "cpu",
                          dtype: torch.dtype | None = None,
                          numerics=None, quantize: str = "none", layer_dtype: str = "model",
                          **options) -> VideoGLaMMPipeline:
        """``videoglamm[-tiny]-random[:SEED]`` or a VideoGLaMM checkpoint folder (:mod:`.checkpoint`);
        ``clip`` (default: :func:`litelvlm.videoglamm.pruning.default_clip`), ``clip_text``,
        ``arrangement``."""
        model = family_model(model, CARD)  # resolved once, at this edge (a hub id downloaded)
        if quantize != "none" or layer_dtype not in ("model", "auto"):  # auto: the weights' arithmetic here
            raise LiteLVLMError("the videoglamm family does not offer --quantize or --layer-dtype yet")
        for key in ("sam", "tokenizer"):
            if options.get(key):
                raise LiteLVLMError(f"model {model.text!r}: --{key} is for a family whose folder lacks it; a "
                                    "VideoGLaMM folder brings its own")
        for key in ("clip_context", "clip_similarity"):
            if options.get(key) not in (None, "clip"):
                raise LiteLVLMError(f"model {model.text!r}: --{key.replace('_', '-')} is for a family that "
                                    "maps an external CLIP onto its own tokens; VideoGLaMM's tokens are its "
                                    "CLIP's")
        net, tokenizer, cfg = load_videoglamm(model, device=device, dtype=dtype)
        return cls(net, tokenizer, name=model, clip=options.get("clip") or default_clip(model, cfg),
                   clip_text=options.get("clip_text") or "expression",
                   arrangement=options.get("arrangement") or "pool", numerics=numerics,
                   sam2_video_branch=bool(options.get("sam2_video_branch")))

    @property
    def clip(self):
        """The paired CLIP backend reading VideoGLaMM's own vision tower (loaded on first use)."""
        if isinstance(self._clip, str):
            self._clip = pair_clip(self.model,
                                   load_clip(self._clip, "hf", device=self.device, dtype=self.dtype))
            self.clip_loaded(self._clip)
        return self._clip

    def loaded_clip_modules(self):
        """The paired CLIP's modules once it is loaded (None before: asking does not load it)."""
        return None if self._clip is None or isinstance(self._clip, str) else self._clip.modules()

    # -- properties -------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def language_model(self):
        return self.model.llm.model

    @property
    def lm_head(self):
        """Phi-3's output projection (``answer="generate"``)."""
        return self.model.llm.lm_head

    @property
    def stop_ids(self) -> set[int]:
        """The tokenizer's EOS, as :func:`litelvlm.videoglamm.inference.greedy_answer` stops."""
        return {int(self.tokenizer.eos_token_id)}

    @property
    def hidden_size(self) -> int:
        return int(self.model.preset.llm_hidden)

    @property
    def num_visual_tokens(self) -> int:
        """N for every video: 16 x 144 context + 16 x 64 video tokens."""
        return int(self.model.preset.visual_tokens)

    def num_visual(self, prepared: VideoGLaMMInput) -> int:
        return int(prepared.clip.tokens.visual.shape[0])

    def full_budget(self, prepared) -> int:
        """One frame's CLIP patches (576): the per-frame budget that keeps everything."""
        return FRAME_PATCHES

    def llm_budget(self, budget: int, prepared=None) -> int:
        """The LLM's visual tokens an LLM-side method keeps for a per-frame budget K: the same fraction of the
        whole visual sequence, ``round(N * K / 576)`` (this project's reading), at least 1; for K <= 576 a
        :class:`~litelvlm.budget.Count` of those N, within them by construction (``ground`` does not check it
        again)."""
        n = self.num_visual_tokens if prepared is None else self.num_visual(prepared)
        k = max(1, int(np.floor(n * int(budget) / FRAME_PATCHES + 0.5)))
        return Count(k, n) if k <= n else k

    def mask_shape(self, prepared: VideoGLaMMInput) -> tuple[int, ...]:
        """(T, H, W): one mask per frame of the clip."""
        return (prepared.num_frames, *prepared.image_size)

    def describe(self) -> dict:
        clip = self._clip if self._clip is None or isinstance(self._clip, str) else self._clip.name
        return {"model": self.name, "family": self.family, "dtype": str(self.dtype).replace("torch.", ""),
                "seg_token_id": self.seg_token_id, **self.numerics.record(self.language_model),
                "budget": "K of each frame's 576 CLIP patches; LLM-side methods keep round(3328 K / 576) of "
                          "the LLM's visual tokens (this project's reading)",
                "clip": {"model": clip, "text": self.clip_text, "arrangement": self.arrangement},
                **({"sam2_video_branch": True} if self.sam2_video_branch else {})}

    # -- per video ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def prepare_image(self, image, seed: int = 0) -> VideoGLaMMInput:
        """``image`` is a VIDEO: one clip, a list of (H, W, 3) uint8 frames (at most 64, as
        ``eval_referdavis_infer.py`` L184-187 cuts a video); both towers on its 16 sampled frames, SAM 2 on
        all."""
        if hasattr(image, "convert") or (isinstance(image, np.ndarray) and image.ndim == 3):
            raise LiteLVLMError("VideoGLaMM's input is a video, a list of (H, W, 3) uint8 frames, not one "
                                "image: image studies (eval-grounding, importance, ...) do not run on the "
                                "videoglamm family")
        frames = [np.asarray(f.convert("RGB") if hasattr(f, "convert") else f, dtype=np.uint8) for f in image]
        if not frames or len(frames) > CLIP_LENGTH:
            raise LiteLVLMError(f"a VideoGLaMM input is one clip of 1..{CLIP_LENGTH} frames; got "
                                f"{len(frames)}")
        return VideoGLaMMInput(clip=prepare_clip(self.model, frames), sentences=[],
                               input_ids=torch.empty(0, dtype=torch.long), seed=seed)

    @torch.no_grad()
    def with_sentences(self, prepared: VideoGLaMMInput, sentences: list[str], turns=None,
                       clip_text: str | None = None, answer: str = "teacher-forced",
                       **unused) -> VideoGLaMMInput:
        """``prepared`` with the Ref-DAVIS prompt for one expression and the teacher-forced ``It is [SEG].``,
        or (``answer="generate"``) the official prompt alone; ``clip_text``: what the paired CLIP embeds."""
        check_one_of("answer", answer, ANSWERS)
        if len(sentences) != 1 or turns is not None:
            raise LiteLVLMError("VideoGLaMM's protocol asks one expression per prompt (no turns); got "
                                f"{len(sentences)}")
        clip_text = self.clip_text if clip_text is None else clip_text
        check_one_of("clip_text", clip_text, CLIP_TEXTS)
        ids = input_ids(self.tokenizer, sentences[0], ANSWER if answer == "teacher-forced" else None)[0]
        if int((ids == self.seg_token_id).sum()) != (answer == "teacher-forced"):
            raise LiteLVLMError(f"the prompt must hold {'one' if answer == 'teacher-forced' else 'no'} [SEG]")
        bare = input_ids(self.tokenizer, sentences[0], None)[0]
        out = replace(prepared, sentences=list(sentences), input_ids=ids, answer=answer,
                      prompt_len=len(bare) if answer == "teacher-forced" else None)
        out.text = functools.cache(lambda: clip_text_trace(self.clip, sentences[0], clip_text))
        out.trace = functools.partial(self._trace, out)
        return out

    def _trace(self, prepared: VideoGLaMMInput) -> VisionTrace:
        """The paired CLIP's trace of the clip's context frames on VideoGLaMM's tower (once per clip)."""
        if "trace" not in prepared.clip_cache:
            prepared.clip_cache["trace"] = trace_context(self.model, self.clip, prepared.clip)
        return prepared.clip_cache["trace"]

    def prune_frames(self, prepared: VideoGLaMMInput, method: str, budget: int, allocation=None, **options):
        """The LLM's visual input of CLIP-side ``method`` keeping ``budget`` (or ``allocation``: one per
        frame) of each frame's CLIP patches (:func:`litelvlm.videoglamm.pruning.prune_clip`, the pipeline's
        arrangement)."""
        if prepared.text is None or prepared.trace is None:
            raise LiteLVLMError("no sentence yet: call with_sentences before a CLIP-side method")
        return prune_clip(self.model, prepared.clip, prepared.trace(), prepared.text(), method, budget,
                          allocation=allocation, arrangement=self.arrangement, seed=prepared.seed, **options)

    def forward_context(self) -> contextlib.AbstractContextManager:
        """Phi-3's eager attention in reused scratch memory (``VideoGLaMM.scratch``: the same values)."""
        return self.model.scratch()

    def visual_tokens(self, prepared: VideoGLaMMInput) -> torch.Tensor:
        """(3328, h): the 16 x 144 pooled CLIP context tokens, then the 16 x 64 InternVideo2 tokens."""
        return prepared.clip.tokens.visual

    def visual_grid(self, prepared) -> tuple[int, int]:
        """A video's tokens are no single grid (16 frames of 12 x 12, then 16 of 8 x 8)."""
        raise LiteLVLMError("VideoGLaMM's visual tokens are 16 frames' 12 x 12 context and 16 x 8 x 8 video "
                            "tokens, no single grid")

    def visual_window(self, image) -> np.ndarray:
        """The first frame of the video (each frame is seen whole)."""
        return np.asarray(image[0])

    # -- the sequence ---------------------------------------------------------------------------------------
    def _image_span(self, prepared: VideoGLaMMInput) -> tuple[int, int]:
        where = torch.nonzero(prepared.input_ids == IMAGE_TOKEN_INDEX).flatten()
        if where.numel() != NUM_FRAMES:
            raise LiteLVLMError("the prompt holds no video placeholders: call with_sentences first")
        return int(where[0]), int(where[-1]) + 1

    def layout(self, prepared: VideoGLaMMInput, num_visual: int) -> SequenceLayout:
        """The 16 ``<image>`` ids replaced by ``num_visual`` tokens; positions 0..S-1 (1-D RoPE)."""
        start, end = self._image_span(prepared)
        ids = prepared.input_ids
        seq_len = len(ids) - (end - start) + num_visual
        return SequenceLayout(image_start=start, num_visual=num_visual, seq_len=seq_len,
                              position_ids=torch.arange(seq_len, device=self.device)[None],
                              find_seg_predictors=lambda: self.model.seg_rows(ids[None], num_visual,
                                                                              self.seg_token_id),
                              positions_are_indices=True)

    def sequence_embeds(self, prepared: VideoGLaMMInput, visual: torch.Tensor) -> torch.Tensor:
        """(B, S, h): the text embeddings with ``visual`` ((K, h) or (B, K, h)) at the ``<image>`` ids
        (arch.py L281-371)."""
        start, end = self._image_span(prepared)
        ids = prepared.input_ids.to(self.device)
        embed = self.language_model.embed_tokens
        before, after = embed(ids[:start]), embed(ids[end:])
        if visual.dim() == 2:
            return torch.cat([before, visual.to(before.dtype), after])[None]
        b = visual.shape[0]
        return torch.cat(
            [before[None].expand(b, -1, -1), visual.to(before.dtype), after[None].expand(b, -1, -1)], 1)

    def clip_selection_tokens(self, prepared, sel: Selection, full=None) -> torch.Tensor:
        """Not used: a video's CLIP-side selections are per frame (:meth:`run_clip_stage` runs
        ``prune_clip``)."""
        raise LiteLVLMError("VideoGLaMM's CLIP-side methods select per frame: ground() runs them through "
                            "prune_clip")

    def clip_selection_rows(self, prepared, sel: Selection) -> torch.Tensor:
        """Not used (see :meth:`clip_selection_tokens`)."""
        raise LiteLVLMError("VideoGLaMM's CLIP-side methods select per frame: ground() runs them through "
                            "prune_clip")

    # -- the mask head ---------------------------------------------------------------------------------------
    def seg_prompts(self, seg_hidden: torch.Tensor) -> torch.Tensor:
        """``text_hidden_fcs[0]`` of the final hidden states predicting each [SEG] (L636-643)."""
        return self.model.text_hidden_fcs[0](seg_hidden)

    def decode_masks(self, prepared: VideoGLaMMInput, prompts: torch.Tensor) -> torch.Tensor:
        """(S, T, h, w) SAM 2's low-resolution logits of every frame (``inference_framewise``; with
        ``sam2_video_branch``, ``inference_video_branch``'s memory propagation from frame 0)."""
        if self.sam2_video_branch and len(prompts):
            return video_branch_low(self.model, prepared.clip, prompts).transpose(0, 1)
        low = [self.model.sam2.decode_low(f, prompts) for f in prepared.clip.sam_features]
        return torch.cat(low, dim=1)

    def upscale_masks(self, prepared: VideoGLaMMInput, low: torch.Tensor) -> torch.Tensor:
        """(S, T, H, W) float32 logits at the frames' size (bilinear per frame, L757-763)."""
        s, t = low.shape[:2]
        return self.model.sam2.upscale(low.reshape(s * t, 1, *low.shape[2:]),
                                       prepared.image_size).reshape(s, t, *prepared.image_size)

    # -- ground's steps with per-frame budgets ---------------------------------------------------------------
    def run_clip_stage(self, prepared, method: str, budget: int, full, *, spec=None, rule: str = "renumber",
                       given: bool = False, positions: str = "official", allocation=None, **options) -> tuple:
        """A CLIP-side method keeps ``budget`` of each frame's CLIP patches (``allocation``: one budget per
        frame) (:func:`litelvlm.videoglamm.frames.frame_stage`)."""
        return frame_stage(self, prepared, method, budget, given, positions, allocation, **options)

    def run_llm_stage(self, prepared, method: str, budget: int, full, **kw) -> tuple:
        """An LLM-side method keeps :meth:`llm_budget` of the LLM's 3328 visual tokens for the per-frame
        ``budget`` (:func:`litelvlm.lvlm.prune.llm_stage`)."""
        k = Budget.of(self.llm_budget(budget, prepared)).count(self.num_visual(prepared),
                                                               kw["spec"].extra_tokens)
        return llm_stage(self, prepared, method, k, full, **kw)

    def keeps_everything(self, prepared, out: GroundingOutput) -> bool:
        """All N of the LLM's tokens in order (an LLM-side run), or every frame's 576 patches in raster order,
        pooled as the official ``project`` (``arrangement="pool"``: a CLIP-side run; no LLM-side run keeps 16
        x 576)."""
        every_patch = torch.arange(NUM_FRAMES * FRAME_PATCHES)
        return super().keeps_everything(prepared, out) or (
            self.arrangement == "pool" and bool(torch.equal(out.kept_indices.cpu(), every_patch)))


__all__ = ["ABILITIES", "ANSWERS", "VideoGLaMMInput", "VideoGLaMMPipeline"]
