"""VideoGLaMM in the efficiency study: the FLOPs of one video prompt, unpruned and with per-frame CLIP-side
pruning (per-frame pruning is this project's adaptation; no official code prunes VideoGLaMM), counted on the
parts of :mod:`litelvlm.videoglamm.cost_parts` and timed by :mod:`litelvlm.videoglamm.cost_timing`.

Details: docs/videoglamm.md (``litelvlm.videoglamm.cost``).
"""

from __future__ import annotations

from ..budget import VIDEO_BUDGETS
from ..cost import CostArch, CostRunArgs, FamilyCost, counted
from ..cost.tokens import TokenPlan
from ..errors import LiteLVLMError
from ..methods import BASELINE, get_method
from ..switches import ARRANGEMENTS
from .card import CARD
from .cost_parts import count_rows, plan_rows, video_plan, videoglamm_arch
from .cost_timing import timing_rows
from .pruning import frame_method_error, per_frame_methods

#: the per-frame budgets of the paper's video table (196 = 14 x 14, 81 = 9 x 9): the one constant
DEFAULT_BUDGETS = VIDEO_BUDGETS


class VideoGLaMMCost(FamilyCost):
    """VideoGLaMM's cost: one video prompt per (method, per-frame budget, arrangement), its parts counted
    (:func:`count_rows`) and timed (:mod:`litelvlm.videoglamm.cost_timing`) by this module, the end-to-end
    time the sum of the parts."""

    family = "videoglamm"
    archs = CARD.cost_archs
    full_size = ("videoglamm",)
    default_budgets = DEFAULT_BUDGETS
    row_keys = ("attn", "method", "budget", "arrangement")
    cpu_dtype = "float32"  # not verified in bfloat16 on a CPU: kept in the float32 it was timed in
    sums_parts = True
    arrangements = ARRANGEMENTS

    def arch(self, name: str, text_tokens: int | None = None) -> CostArch:
        return videoglamm_arch(name, self.archs[name], text_tokens)

    def check(self, arch: CostArch, method_args: CostRunArgs) -> None:
        quantize, e2e = method_args.quantize, method_args.e2e
        if quantize != "none" or e2e == "chain":
            raise LiteLVLMError(f"--arch {arch.name} times its parts (no --quantize, no --e2e chain: the "
                                "end-to-end time is the sum of the parts)")

    def method_errors(self, named: list[str]) -> list[str]:
        """The family's reason (every study's words), else why its per-frame rows have no form of the
        method."""
        reasons = []
        for m in named:
            if family := super().method_errors([m]):
                reasons.append(family[0])
            elif why := frame_method_error(m):
                reasons.append(f"{why} (this count's rows prune frame by frame; eval-video runs {m})")
        return reasons

    def offered_methods(self, arch: CostArch, candidates: list[str]) -> list[str]:
        return [BASELINE, *per_frame_methods()]

    def rows(self, arch, runs, method_args: CostRunArgs):
        return plan_rows(counted(arch, runs), list(method_args.arrangements))

    def plan(self, arch: CostArch, row: tuple, method_args) -> TokenPlan:
        return video_plan(arch, *row)

    def count(self, arch, rows, attns, dtype, method_args):
        return count_rows(arch, rows, attns, dtype)

    def timing_rows(self, arch, rows, attns, device, dtype, warmup, repeats, device_label="", capture=None):
        return timing_rows(arch, rows, attns, device, dtype, warmup, repeats, device_label, capture)

    def figure_rows(self, df):
        """One line per method and arrangement (the baseline's label alone)."""
        label = df["method"] + " (" + df["arrangement"] + ")"
        return df.assign(
            method=label.where(~df["method"].map(lambda m: get_method(m).baseline), df["method"]))


#: the efficiency study's cost description of this family
COST = VideoGLaMMCost()
