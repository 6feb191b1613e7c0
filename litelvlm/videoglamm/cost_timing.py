"""Timing rows of one VideoGLaMM video prompt (``efficiency --arch videoglamm-tiny`` on a CPU; the real size
on ``--device cuda``): wall time per part and the LLM prefill's activation memory, on a random-weight model.

The parts are those of :mod:`litelvlm.videoglamm.cost_parts` on real tensors of the true shapes (random
pixels: the time of these forwards does not depend on pixel values): ``clip_ms`` (CLIP on the 16 context
frames, every hidden state), ``video_ms`` (InternVideo2 on 4 chunks of 4), ``text_ms`` (the paired CLIP's text
forward, for the text-reading methods), ``selector_ms`` (the method's selection on each of the 16 frames'
traces, as ``litelvlm.videoglamm.pruning.prune_clip`` runs it), ``projector_ms`` (both projectors and
poolings), ``prefill_ms`` (Phi-3-mini's prefill with its LM head, every token plan timed round-robin:
``interleaved_wall_ms``; its median), ``paper_prefill_ms`` (the decoder-layer loop only, timed in the same
calls: ``LayerLoopTimer``), ``llm_act_mb`` (the prefill's peak activation bytes), ``sam_ms`` (SAM 2 on one
frame, encoder, ``[SEG]`` head and decoding, times the :data:`~litelvlm.videoglamm.cost_parts.SAM_FRAMES`
frames) and ``e2e_ms``, the sum of the parts' medians (``e2e_mode`` "sum of parts"; no chained run).
"""

from __future__ import annotations

import functools
import statistics

import pandas as pd
import torch

from ..clip.traces import VisionTrace
from ..cost import CostArch
from ..cost.clip import SENTENCE, paired_clip
from ..cost.meta import MB
from ..cost.timing import LayerLoopTimer, interleaved_wall_ms, wall_time_ms
from ..llm.captured import install, merge_eager_runs, runner_of
from ..lvlm.numerics import set_attention
from ..machine.memory import peak_activation_bytes
from ..methods import get_method
from ..methods.select import select
from . import pruning as vp
from .checkpoint import build_videoglamm
from .cost_parts import PAIRED_CLIP, SAM_FRAMES, video_plan
from .pruning import context_part, frame_inputs, video_part


class TimedParts:
    """A random VideoGLaMM of ``arch`` on ``device`` with its paired CLIP and one clip's inputs."""

    def __init__(self, arch: CostArch, device: str | torch.device, dtype: torch.dtype, seed: int = 0):
        self.model, _ = build_videoglamm(arch.preset, seed=seed, dtype=dtype, device=device)
        p = self.preset = self.model.preset
        self.device, self.dtype = torch.device(device), dtype
        clip = paired_clip(PAIRED_CLIP[arch.preset], device, dtype, "paired-clip")
        self.clip = vp.pair_clip(self.model, clip)
        g = torch.Generator().manual_seed(seed)
        size = p.clip_image_size
        self.clip_pixels = torch.randn(16, 3, size, size, generator=g).to(device, dtype)
        self.video_pixels = torch.randn(4, 4, 3, 224, 224, generator=g).to(device, dtype)
        self.sam_pixels = torch.randn(1, 3, p.sam2_image_size, p.sam2_image_size,
                                      generator=g).to(device, dtype)
        with torch.no_grad():
            self.trace = self.run_clip()
            self.video = self.run_video()[:, 1:]
            self.text = self.run_text()

        side = size // p.clip_patch_size
        self.trace = VisionTrace(hidden_states=self.trace, grid=(side, side), num_prefix_tokens=1,
                                 backend=self.clip)

    def run_clip(self):
        return self.model.clip_hidden_states(self.clip_pixels)

    def run_video(self):
        return self.model.internvideo(self.video_pixels)

    def run_text(self):
        return self.clip.encode_text([SENTENCE], warn_truncation=False)

    def run_select(self, method: str, budget: int) -> list:
        """The selection of each of the 16 frames (``prune_clip``'s loop)."""
        return [select(method, frame_inputs(self.trace, self.text, f), budget) for f in range(16)]

    def run_projector(self, kept: int, arrangement: str):
        feats = self.trace.hidden_states[-2][:, 1:kept + 1]
        return context_part(self.model, list(feats), arrangement), video_part(self.model, self.video)

    def run_sam_frame(self):
        features = self.model.sam2.encode(self.sam_pixels)
        prompt = self.model.text_hidden_fcs[0](torch.zeros(1, self.preset.llm_hidden, device=self.device,
                                                           dtype=self.dtype))
        return self.model.sam2.decode(features, prompt, (480, 854))

    def run_prefill(self, n: int):
        """Logits of every position of an ``n``-token prefill (``--prefill captured``: the captured decoder
        stack)."""
        embeds = torch.randn(1, n, self.preset.llm_hidden, generator=torch.Generator().manual_seed(n))
        embeds = embeds.to(self.device, self.dtype)
        if runner_of(self.model.llm.model) is not None:
            return self.model.llm.lm_head(self.model.final_hidden(embeds))
        return self.model.llm(inputs_embeds=embeds, use_cache=False).logits


def timing_rows(arch: CostArch, rows_spec: list[tuple[str, int, str]], attns: list[str], device: str,
                dtype: torch.dtype, warmup: int, repeats: int, device_label: str = "",
                # > 60 lines: one timing pass, its parts in table order
                capture: str | None = None) -> pd.DataFrame:
    """Timing rows per (attention, method, per-frame budget, arrangement) (module docstring);
    ``device_label``: the device in words, for the table; ``capture``: ``--prefill captured``'s ``--capture``
    (``auto``, ``graph``, ``compile``, ``compile-eager``), the prefill captured afresh per attention; None:
    the eager prefill."""
    parts = TimedParts(arch, device, dtype)

    def wall(fn) -> float:
        return wall_time_ms(fn, device, warmup=warmup, repeats=repeats)["median"]

    fixed = {"clip_ms": wall(parts.run_clip), "video_ms": wall(parts.run_video),
             "text_ms": wall(parts.run_text), "sam_ms": SAM_FRAMES * wall(parts.run_sam_frame)}
    plans = {r: video_plan(arch, *r).n_tokens for r in rows_spec}
    selectors = {(m, b): 0.0 if get_method(m).baseline else wall(functools.partial(parts.run_select, m, b))
                 for m, b, _ in rows_spec}
    kept = {(m, b): 576 if get_method(m).baseline else _kept(parts.run_select(m, b)) for m, b, _ in rows_spec}
    projector = {(k, a): wall(functools.partial(parts.run_projector, k, a))
                 for (m, b, a) in rows_spec for k in [kept[m, b]]}
    rows, eager = [], []
    labels = {n: [f"{m}@{b}" + ("" if get_method(m).baseline else f" ({a})") for (m, b, a), k in plans.items()
                  if k == n] for n in plans.values()}
    for attn in attns:
        set_attention(attn, llm=parts.model.llm)
        runner = _install(parts, capture)  # a capture is specialised to the attention it recorded
        eager.append({} if runner is None else runner.eager_runs)
        loops: dict[int, list[float]] = {n: [] for n in set(plans.values())}

        def prefill_of(n, runner=runner):
            try:
                return parts.run_prefill(n)
            finally:  # --prefill captured: what ran eagerly, on the account of the rows of this length
                if runner is not None:
                    runner.account(*labels[n])

        def looped(n, loops=loops, prefill_of=prefill_of):
            with LayerLoopTimer(parts.model.llm.model.layers, device) as t:
                out = prefill_of(n)
            loops[n].append(t.ms)
            return out

        walls = interleaved_wall_ms({n: functools.partial(looped, n) for n in loops}, device, warmup=warmup,
                                    repeats=repeats)
        act = {n: peak_activation_bytes(functools.partial(prefill_of, n), device)[0] for n in loops}
        for (method, budget, arr), n in plans.items():
            spec = get_method(method)
            own = {"clip_ms": fixed["clip_ms"], "video_ms": fixed["video_ms"],
                   "text_ms": fixed["text_ms"] if spec.needs_text else 0.0,
                   "selector_ms": selectors[method, budget],
                   "projector_ms": projector[kept[method, budget], arr], "sam_ms": fixed["sam_ms"]}
            prefill = walls[n]["median"]
            rows.append({"attn": attn, "method": method, "budget": budget, "arrangement": arr,
                         "device": device_label, "dtype": str(dtype)[6:], "prefill_ms": prefill,
                         "prefill_min_ms": walls[n]["min"], "llm_act_mb": act[n] / MB,
                         "paper_prefill_ms": statistics.median(loops[n][warmup:]), **own,
                         "e2e_ms": sum(own.values()) + prefill, "e2e_mode": "sum of parts",
                         "cuda_time_reading_ms": sum(own.values()) + prefill})

    df = pd.DataFrame(rows)
    # {reason: runs} of eager layer calls (captured prefill)
    df.attrs["prefill_eager"] = merge_eager_runs(*eager)
    return df


def _install(parts: TimedParts, capture: str | None):
    """A fresh captured prefill on the timed Phi-3 (``capture``: ``--capture``), None for the eager
    prefill."""
    if capture is None:
        return None

    return install(parts.model.llm.model, None if capture == "auto" else capture)


def _kept(selections: list) -> int:
    """The CLIP rows one frame's selection gives the projector (its merged features, or its kept patches)."""
    sel = selections[0]
    return int(sel.features.shape[0]) if sel.features is not None else len(sel)
