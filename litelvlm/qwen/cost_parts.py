"""One grounding call of a Qwen2.5-VL + SAM 2 pipeline as measurable parts, and its FLOPs rows; each family's
cost (:class:`litelvlm.qwen.cost.QwenSam2Cost`) gives the hooks: its image's view and vision forward.
The paired external CLIP is this project's adaptation of the CLIP-side methods.

Details: docs/efficiency.md (``litelvlm.qwen.cost_parts``).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from ..cost import CostArch, CountedRow
from ..cost.clip import SENTENCE, synthetic_image
from ..cost.meta import MetaScalars, llm_input_selection_flops, llm_prefills
from ..cost.parts import PrefillParts
from ..cost.tokens import count_flops, selects_on_llm_input
from ..models.random_weights import fast_fill, init_plan, skip_init
from ..qwen_vision.index import tower_index
from ..qwen_vision.tower import QwenTower
from ..qwen_vision.vision import QwenVision


class QwenSam2Parts(PrefillParts):
    """The parts of one grounding call of a Qwen2.5-VL + SAM 2 ``pipe`` (one synthetic image, one
    sentence)."""

    def __init__(self, cost, pipe, arch: CostArch, method_args=None, image: Image.Image | None = None):
        self.cost, self.pipe, self.arch, self.method_args = cost, pipe, arch, method_args
        self.image = synthetic_image() if image is None else image
        with torch.no_grad():
            self.base = cost.prepare_image(pipe, self.image)  # the image part, before any sentence
            self.prepared = cost.with_sentence(pipe, arch, self.base)
            pixels, self.grid = cost.vision_inputs(pipe, self.image)
            self.cpu_pixels = pixels
            self.pixels = pixels.to(pipe.device, pipe.dtype)
            self.index = tower_index(pipe.qwen.model.visual, self.grid) if pipe.device.type == "meta" else {}
            self.sam_pixels = pipe.sam2.preprocess(self.image)
            self.visual = pipe.visual_tokens(self.prepared)  # (N, d): what the LLM gets before pruning
        self.seg_hidden = torch.zeros(1, pipe.hidden_size, device=pipe.device, dtype=pipe.dtype)

    def lm_head(self, final: torch.Tensor) -> torch.Tensor:
        return self.pipe.qwen.lm_head(final)

    def fixed_parts(self) -> dict:
        return {"vision_ms": self.run_vision, "prompt_ms": self.run_prompt, "sam_ms": self.run_sam,
                "clip_ms": self.run_clip, "text_ms": self.run_text}

    def part_times(self, method: str, fixed: dict[str, float], selector_ms: float) -> dict[str, float]:
        spec = self.arch.spec(method)
        clip = fixed["clip_ms"] if spec.uses_clip else 0.0
        text = fixed["text_ms"] if spec.uses_clip and spec.needs_text else 0.0
        return {"vision_ms": fixed["vision_ms"], "prompt_ms": fixed["prompt_ms"], "clip_ms": clip,
                "text_ms": text, "selector_ms": selector_ms, "sam_ms": fixed["sam_ms"]}

    # -- parts ----------------------------------------------------------------------------------
    def run_vision(self) -> torch.Tensor:
        """The merged tokens of the image (``prepare_image``'s vision forward; on ``meta`` with its index
        tensors)."""
        if self.index:
            return self.pipe.qwen.model.visual(self.pixels, grid_thw=self.grid, **self.index).pooler_output
        return self.cost.vision_forward(self.pipe, self.pixels, self.grid)

    def run_prompt(self):
        """The prepared image with the sentence (``with_sentences``: the protocol's prompt)."""
        return self.cost.with_sentence(self.pipe, self.arch, self.base)

    def run_clip(self):
        """The paired CLIP's vision trace of the image padded to a square (``_mapped_inputs``' first step)."""
        clip = self.pipe.clip
        return clip.trace_image(clip.preprocess([self.image.convert("RGB")], pad_to_square=True))

    def run_text(self):
        """The paired CLIP's text forward on the protocol's question (``_mapped_inputs``' text)."""
        return self.pipe.clip.encode_text([self.pipe.clip_question(SENTENCE)], warn_truncation=False)

    def run_sam(self) -> torch.Tensor:
        """Mask logits at the image size: SAM 2's image encoder, then ``ground``'s mask decoding of one
        ``<|seg|>``."""
        pipe = self.pipe
        features = pipe.sam2.encode_image(self.sam_pixels)
        prepared = replace(self.prepared, sam_features=features)
        low = pipe.decode_masks(prepared, pipe.seg_prompts(self.seg_hidden))
        return pipe.upscale_masks(prepared, low)

    def run_forwards(self):
        """The image's forwards, as :meth:`run_e2e` makes them."""
        return self.cost.prepare_image(self.pipe, self.image)

    def run_e2e(self, method: str, budget: int) -> torch.Tensor:
        """The whole chain for one image and one sentence; returns the mask logits."""
        prepared = self.cost.prepare(self.pipe, self.arch, self.image)
        return self.pipe.ground(prepared, method, budget, **self.options(method)).mask_logits

    def vision_flops(self) -> dict[str, int]:
        """FLOPs of the vision tower by part (FlopCounterMode per module): ``vision`` (patch embedding and
        blocks), ``window`` and ``full`` (the blocks of each attention kind), ``projector`` (the merger)."""
        fc = FlopCounterMode(display=False)
        with torch.no_grad(), fc:
            self.run_vision()
        counts = {k: sum(v.values()) for k, v in fc.get_flop_counts().items()}
        root = type(self.pipe.qwen.model.visual).__name__
        full_blocks = set(self.pipe.qwen.config.vision_config.fullatt_block_indexes)
        depth = len(self.pipe.qwen.model.visual.blocks)
        blocks = {i: counts.get(f"{root}.blocks.{i}", 0) for i in range(depth)}
        merger = counts.get(f"{root}.merger", 0)
        return {"vision": counts[root] - merger,
                "window": sum(v for i, v in blocks.items() if i not in full_blocks),
                "full": sum(v for i, v in blocks.items() if i in full_blocks), "projector": merger}


class TowerBench:
    """A method's own run of the vision tower (IPCV and its compositions, ``Method.uses_vision_tower``)
    counted on real tensors of the arch's true shapes: the rule ranks and gathers the patches by value, which
    ``meta`` cannot. The tower is built again from ``visual``'s config on the CPU in float32 with random
    weights (the FLOPs do not depend on them; which patches are kept, and so each window's attention, does)
    and eager attention (its products counted as ``meta`` counts SDPA's; the CPU's fused SDPA kernel is not
    counted by ``FlopCounterMode``); the image's ``pixels`` and ``grid`` as the preparation reads them."""

    def __init__(self, visual: torch.nn.Module, pixels: torch.Tensor, grid: torch.Tensor, seed: int = 0):
        with skip_init(), torch.device("cpu"):
            tower = type(visual)._from_config(visual.config, dtype=torch.float32, attn_implementation="eager")
        fast_fill(init_plan(tower), seed, desc="vision tower weights")
        self.vision = QwenVision(tower.eval(), pixels.float().cpu(), grid.cpu())
        self._runs: dict[tuple, int] = {}

    def full(self) -> int:
        """FLOPs of one full run of the tower (``TowerContext.full_run``: patch embedding, blocks, merger):
        the preparation's vision forward counted on ``meta`` (tested), which the rows take in its place."""
        return self.run(None, 0, {})

    def run(self, spec, budget: int, options: dict) -> int:
        """FLOPs of ``spec``'s own run of the tower at ``budget`` with its ``options`` (None: the full run);
        the same rule at the same budget and options (IPCV alone and composed) counted once."""
        if spec is None:
            key, run = (None, 0, ()), lambda: QwenTower(self.vision).full_run()
        else:
            kw = spec.tower_options(options)
            key = (spec.tower_rule, budget, tuple(sorted(kw.items())))
            run = lambda: spec.tower_run(QwenTower(self.vision), budget, **kw)  # noqa: E731
        if key not in self._runs:
            with torch.no_grad():
                self._runs[key] = count_flops(run)[0]
        return self._runs[key]


def count_rows(cost, arch: CostArch, pairs: list[tuple[str, int]], attns: list[str], dtype: torch.dtype,
               method_args) -> list[CountedRow]:
    """The FLOPs rows of ``cost``'s family (``num_visual``, the parts in docs/efficiency.md, the end-to-end
    sum), counted on ``meta``, with the ``meta`` activation of every prefill; a method pruning inside the
    tower charged its own run (:class:`TowerBench`) in place of the preparation's full one."""
    with MetaScalars():
        pipe = cost.build(arch, "meta", dtype, attns[0])
        parts = QwenSam2Parts(cost, pipe, arch, method_args)
        vision = parts.vision_flops()
        sam, clip, text = (count_flops(fn)[0] for fn in (parts.run_sam, parts.run_clip, parts.run_text))
    plans = {p: cost.plan(arch, p, method_args) for p in pairs}
    llm = llm_prefills(parts, plans, attns, lambda attn: cost.set_attention(pipe, attn))
    bench = (TowerBench(pipe.qwen.model.visual, parts.cpu_pixels, parts.grid)
             if any(arch.spec(m).uses_vision_tower for m, _ in pairs) else None)
    rows = []
    for attn in attns:
        for (method, budget), plan in plans.items():
            flops, peak, kept = llm[attn, plan]
            spec = arch.spec(method)
            own_vision, projector = vision["vision"], vision["projector"]
            if spec.uses_vision_tower:
                # its own run (blocks and merger on the patches it keeps) in place of the preparation's
                # full one
                # (the full run is the preparation's vision forward, counted on meta: TowerBench.full)
                sel = bench.run(spec, budget, parts.options(method))
                own_vision, projector = 0, 0
            elif spec.reads_vision_blocks:  # a Qwen2.5-VL variant re-running the tower: its forward again
                sel = vision["vision"] + vision["projector"]
            elif selects_on_llm_input(spec):
                sel = llm_input_selection_flops(method, budget, arch.num_patches, arch.llm.llm_hidden,
                                                arch=arch)
            else:
                sel = 0
            own_clip = clip if spec.uses_clip else 0
            own_text = text if spec.uses_clip and spec.needs_text else 0
            own = {"num_visual": arch.num_patches,
                   "vision_tflops": own_vision / 1e12, "vision_window_tflops": vision["window"] / 1e12,
                   "vision_full_tflops": vision["full"] / 1e12, "selector_tflops": sel / 1e12,
                   "projector_tflops": projector / 1e12, "sam_tflops": sam / 1e12,
                   "clip_tflops": own_clip / 1e12, "text_tflops": own_text / 1e12}
            e2e = own_vision + sel + projector + flops + sam + own_clip + own_text
            rows.append(
                CountedRow(attn, method, budget, plan, flops, peak, kept, {**own, "e2e_tflops": e2e / 1e12}))
    return rows
