"""VideoGLaMM's cost parts: one video prompt's parts on a ``meta`` model of the real size, its token plans and
its FLOPs rows (per-frame pruning is this project's adaptation; no official code prunes VideoGLaMM).

:mod:`litelvlm.videoglamm.cost` describes the family to the efficiency study from these and from
:mod:`litelvlm.videoglamm.cost_timing`; details: docs/videoglamm.md (``litelvlm.videoglamm.cost``).
"""

from __future__ import annotations

import math
import sys
from types import SimpleNamespace

import torch

from ..clip.random_init import ARCHS
from ..cost import CostArch, CountedRow
from ..cost.clip import SENTENCE, paired_clip
from ..cost.meta import MetaScalars, SelectorBench, llm_prefills
from ..cost.tokens import DecoderSizes, TokenPlan, count_flops
from ..errors import LiteLVLMError
from ..lvlm.numerics import set_attention
from ..methods import get_method
from ..models.random_weights import skip_init
from .config import CHUNK_SIZE, IMAGE_TOKEN_INDEX, NUM_FRAMES, get_preset
from .hf_config import phi3_config
from .model import VideoGLaMM
from .prompt import input_ids
from .pruning import context_part, pooled_side, video_part
from .tokenizer import build_phi3_tokenizer

#: the paired CLIP's sizes (``litelvlm.clip.random_init.ARCHS``; ``litelvlm.videoglamm.pruning.default_clip``)
PAIRED_CLIP = {"videoglamm": "vit-l-14-336", "tiny": "tiny-336"}
#: (text tokens, of which before the 16 ``<image>``) of the official prompt on :data:`SENTENCE` with the
#: answer ``It is [SEG].``, tokenized by Llama-2's SentencePiece with Phi-3's added tokens
#: (``tests/test_efficiency_videoglamm`` recomputes it from /work/shared/data/llama_tokenizer); 46 without the
#: answer
VIDEO_PROMPT_TOKENS = (52, 18)
#: frames SAM 2 decodes per prompt in the table (a 16-frame clip)
SAM_FRAMES = 16

_DESCRIPTIONS = {
    "videoglamm": "VideoGLaMM (litelvlm.videoglamm PRESETS['videoglamm']): CLIP ViT-L/14-336 on 16 frames, "
                  "InternVideo2-1B on 4 chunks of 4, Phi-3-mini, SAM 2 Hiera-L per frame",
    "tiny": "litelvlm.videoglamm PRESETS['tiny'] (the same structure at tiny widths), for tests",
}


def videoglamm_arch(name: str, preset: str, text_tokens: int | None = None) -> CostArch:
    """The ``--arch`` ``name`` of VideoGLaMM preset ``preset``; N (``num_patches``) is a frame's 576 CLIP
    tokens."""
    p = get_preset(preset)
    if text_tokens is not None:
        text, prefix, source = text_tokens, min(VIDEO_PROMPT_TOKENS[1], text_tokens - 1), "--text-tokens"
    elif preset == "videoglamm":
        text, prefix = VIDEO_PROMPT_TOKENS
        source = "the official prompt, Llama-2 SentencePiece + Phi-3's added tokens"
    else:
        text, prefix = stand_in_prompt_tokens(preset)
        source = "the official prompt, the preset's stand-in tokenizer"
    extra = (("frames", NUM_FRAMES), ("chunk_size", CHUNK_SIZE), ("clip_tokens_per_frame", p.clip_tokens),
             ("context_tokens_per_frame_unpruned", 144), ("video_tokens_per_frame", 64),
             ("visual_tokens_unpruned", p.visual_tokens), ("sam_frames", SAM_FRAMES),
             ("sam2_image_size", p.sam2_image_size), ("paired_clip", PAIRED_CLIP[preset]), ("prompt", source),
             ("sentence", SENTENCE), ("answer", "It is [SEG]. (teacher-forced, as eval-video runs it)"))
    llm = DecoderSizes.of(phi3_config(p))
    return CostArch(name, "videoglamm", preset, llm, p.clip_tokens, text, prefix, _DESCRIPTIONS[preset],
                    extra=extra)


def stand_in_prompt_tokens(preset: str) -> tuple[int, int]:
    """(text tokens, of which before the images) of the official prompt with the preset's stand-in
    tokenizer."""
    return prompt_tokens(build_phi3_tokenizer(preset))


def prompt_tokens(tokenizer, sentence: str = SENTENCE) -> tuple[int, int]:
    """(text tokens, of which before the 16 ``<image>`` ids) of ``eval-video``'s prompt for ``sentence``."""
    ids = input_ids(tokenizer, sentence)[0].tolist()
    return len(ids) - ids.count(IMAGE_TOKEN_INDEX), ids.index(IMAGE_TOKEN_INDEX)


def context_tokens(budget: int, arrangement: str) -> int:
    """LLM context tokens of one frame keeping ``budget`` of its 576 CLIP tokens (``none``: 576, 144)."""
    side = pooled_side(budget, arrangement)
    return budget if side is None else side * side


def pooling_flops(side_in: int, side_out: int, channels: int) -> int:
    """Operations of ``adaptive_avg_pool2d`` from side_in^2 to side_out^2 on ``channels`` maps: each output
    cell sums its window and divides once (window size operations), windows [floor(i In/Out), ceil((i+1)
    In/Out))."""
    widths = sum(math.ceil((i + 1) * side_in / side_out) - (i * side_in) // side_out for i in range(side_out))
    return channels * widths * widths


def plan_rows(pairs: list[tuple[str, int]], arrangements: list[str]) -> list[tuple[str, int, str]]:
    """(method, K, arrangement) rows of counted (method, K) pairs (per-frame K): the baseline once (official
    pooling), every other (method, K) with each arrangement; a pooling arrangement with a non-square K is
    skipped with a warning."""
    rows, skipped = [], []
    for method, k in pairs:
        if get_method(method).baseline:
            rows.append((method, k, "pool"))
            continue
        for arr in arrangements:
            if arr != "direct" and math.isqrt(k) ** 2 != k:
                skipped.append(f"{method} at {k} ({arr})")
                continue
            rows.append((method, k, arr))
    if skipped:
        print("efficiency: a pooling arrangement needs a square per-frame budget; skipped "
              f"{', '.join(skipped)}", file=sys.stderr)
    if not any(not get_method(m).baseline for m, _, _ in rows) and any(not get_method(m).baseline for m,
                                                                       _ in pairs):
        raise LiteLVLMError("--budgets: no per-frame budget is square, and only --arrangements direct takes "
                            "others")
    return rows


class VideoParts:
    """The parts of one video prompt on a ``meta`` VideoGLaMM of ``arch`` (no weights: the real size
    anywhere)."""

    def __init__(self, arch: CostArch, dtype: torch.dtype):
        self.arch, self.dtype = arch, dtype
        self.preset = p = get_preset(arch.preset)
        with torch.device("meta"), skip_init():
            self.model = VideoGLaMM(p).to(dtype).eval().requires_grad_(False)

    def _zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(*shape, device="meta", dtype=self.dtype)

    def run_clip(self):
        """CLIP on the 16 context frames, every hidden state (``trace_context``; layer -2 is the LLM's
        stream)."""
        size = self.preset.clip_image_size
        return self.model.clip_hidden_states(self._zeros(16, 3, size, size))

    def run_video(self):
        """InternVideo2 on 4 chunks of 4 frames at 224 px (``video_tokens``)."""
        return self.model.internvideo(self._zeros(4, 4, 3, 224, 224))

    def run_video_projector(self):
        """``mm_projector`` and the 8 x 8 pooling of the InternVideo2 half (``pruning.video_part``)."""
        return video_part(self.model, self._zeros(4, 4 * 256, self.preset.internvideo.embed_dim))

    def run_context_projector(self, rows: int, arrangement: str):
        """``image_mm_projector`` and the arrangement's pooling on 16 frames of ``rows`` kept CLIP rows."""
        return context_part(self.model, [self._zeros(rows, self.preset.clip_width)] * 16, arrangement)

    def run_sam_frame(self):
        """SAM 2 on one 1024-px frame: image encoder, the ``[SEG]`` head, the mask decoding to the frame's
        size."""
        size = self.preset.sam2_image_size
        features = self.model.sam2.encode(self._zeros(1, 3, size, size))
        prompt = self.model.text_hidden_fcs[0](self._zeros(1, self.preset.llm_hidden))
        return self.model.sam2.decode(features, prompt, (480, 854))

    def run_prefill(self, plan: TokenPlan):
        """Phi-3's prefill of ``plan.n_tokens`` embeddings, logits on every position."""
        embeds = self._zeros(1, plan.n_tokens, self.preset.llm_hidden)
        return self.model.llm(inputs_embeds=embeds, use_cache=False).logits

    def run_text(self):
        """The paired CLIP's text forward on the expression (the text-reading methods' CLIP text trace)."""
        clip = paired_clip(PAIRED_CLIP[self.arch.preset], "meta", self.dtype, "paired")
        return clip.encode_text([SENTENCE], warn_truncation=False)


def selector_bench(arch: CostArch):
    """A :class:`~litelvlm.cost.meta.SelectorBench` of the paired CLIP's sizes (one frame's trace)."""
    clip = ARCHS[PAIRED_CLIP[arch.preset]]
    return SelectorBench(SimpleNamespace(name=f"{arch.name}-paired-clip", llm=arch.llm, clip=clip))


def video_plan(arch: CostArch, method: str, budget: int, arrangement: str) -> TokenPlan:
    """The LLM's tokens: the prompt's text, 16 frames' context tokens and 16 x 64 video tokens, from layer
    0."""
    per_frame = 144 if get_method(method).baseline else context_tokens(budget, arrangement)
    return TokenPlan(arch.text_tokens, ((0, 16 * per_frame + 16 * 64),))


def count_rows(arch: CostArch, rows_spec: list[tuple[str, int, str]], attns: list[str], dtype: torch.dtype
               ) -> list[CountedRow]:
    """The FLOPs rows of one video prompt per attention and (method, per-frame budget, arrangement) of
    ``rows_spec`` (:func:`plan_rows`), counted on ``meta``."""
    parts = VideoParts(arch, dtype)
    with MetaScalars():
        fixed = {name: count_flops(fn)[0] for name, fn in (
            ("clip", parts.run_clip), ("video", parts.run_video),
            ("video_projector", parts.run_video_projector),
            ("sam", parts.run_sam_frame), ("text", parts.run_text))}
    plans = {r: video_plan(arch, *r) for r in rows_spec}
    llm = llm_prefills(parts, plans, attns, lambda attn: set_attention(attn, llm=parts.model.llm))
    bench, selections, proj = selector_bench(arch), {}, {}
    embed = parts.preset.llm_hidden
    rows = []
    for attn in attns:
        for (method, budget, arr), plan in plans.items():
            spec = get_method(method)
            if (method, budget) not in selections:
                selections[method, budget] = (0, None) if spec.baseline else bench.run(method, budget)
            sel, selection = selections[method, budget]
            kept = 576 if selection is None else (int(selection.features.shape[0])
                                                  if selection.features is not None
                                                  else len(selection))
            if (kept, arr) not in proj:
                with MetaScalars():
                    flops = count_flops(lambda k=kept, a=arr: parts.run_context_projector(k, a))[0]
                side = None if arr == "direct" else context_tokens(kept, arr)
                pool = 0 if side is None else 16 * pooling_flops(math.isqrt(kept), math.isqrt(side), embed)
                proj[kept, arr] = flops + pool
            projector = proj[kept, arr] + fixed["video_projector"] + 16 * pooling_flops(16, 8, embed)
            text = fixed["text"] if spec.needs_text else 0
            flops, peak, kept_bytes = llm[attn, plan]
            own = {"clip_tflops": fixed["clip"], "video_tflops": fixed["video"], "text_tflops": text,
                   "selector_tflops": 16 * sel, "projector_tflops": projector,
                   "sam_tflops": SAM_FRAMES * fixed["sam"]}
            columns = {"arrangement": arr, "kept_per_frame": kept,
                       "context_tokens_per_frame": plan.stages[0][1] // 16 - 64,
                       "visual_tokens": plan.stages[0][1],
                       **{k: v / 1e12 for k, v in own.items()}, "sam_tflops_per_frame": fixed["sam"] / 1e12,
                       "e2e_tflops": (sum(own.values()) + flops) / 1e12}
            rows.append(CountedRow(attn, method, budget, plan, flops, peak, kept_bytes, columns))
    return rows
