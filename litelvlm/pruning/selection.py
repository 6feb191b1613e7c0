"""What a selector reads and returns (:class:`SelectorInputs`, :class:`Selection`) and the budget rule; a
CLIP-side method's selection runs in :mod:`litelvlm.pruning.run` (by name:
:func:`litelvlm.methods.select.select`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..budget import Budget, BudgetError, Count, range_error
from ..clip.traces import TextTrace, VisionTrace


@dataclass
class SelectorInputs:
    """What a CLIP-side selector may read: one image's vision trace and its texts' trace."""

    vision: VisionTrace
    text: TextTrace | None = None
    image_index: int = 0
    feature_layer: int = -2
    seed: int = 0

    @property
    def num_patches(self) -> int:
        """N: the patches a budget counts."""
        return int(self.vision.num_patches)

    @property
    def device(self) -> torch.device:
        return self.vision.hidden_states[0].device

    def patches(self, layer: int | None = None) -> torch.Tensor:
        """(N, W) patch tokens of this image at ``layer`` (default: the LLM's feature layer)."""
        return self.vision.patches(self.feature_layer if layer is None else layer)[self.image_index]


@dataclass
class Selection:
    """A selector's output: patch indices in the order the LLM receives them.

    ``features`` is set by methods that merge tokens (VisionZip, whose ``indices`` start with -1 for
    the CLS token it passes on; PruMerge, whose last index -2 is its token merging all pruned ones:
    negative indices are no patch); otherwise the LLM gets
    the feature-layer patch tokens at ``indices``. ``scores`` is the per-patch score the
    method ranked by (N,), where it has one; ``parts`` names index subsets (e.g. the
    similarity-aware and context-aware sets of LiteLVLM). ``prune_layer`` is the first LLM decoder layer
    whose input lacks the dropped tokens (0: pruned before the LLM; FastV's K). ``llm_output`` is the (final
    normed hidden states, rows predicting each [SEG]) of the LLM forward that made the selection, for a method
    that runs the LLM to select (SparseVLM): its ``forward`` returns them instead of running the LLM again.
    ``short``: the method's official code keeps fewer tokens than the budget here (HiPrune's Qwen2.5-VL
    registers), and so does this.
    """

    indices: torch.Tensor
    features: torch.Tensor | None = None
    scores: torch.Tensor | None = None
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    prune_layer: int = 0
    llm_output: tuple[torch.Tensor, torch.Tensor] | None = None
    short: bool = False

    def __len__(self) -> int:
        return int(self.indices.numel())

    def keeps_all(self, n: int) -> bool:
        """Whether it keeps all ``n`` tokens in raster order (the LLM input is then the visual tokens as they
        are)."""
        return len(self) == n and bool(torch.equal(self.indices.cpu(), torch.arange(n)))


def check_budget(budget: int, num_patches: int, extra_tokens: int = 0) -> int:
    """K = ``budget`` (an int) checked against N = ``num_patches`` (+ ``extra_tokens``, for a method that adds
    tokens to the patches) by the one rule, :meth:`Budget.count <litelvlm.budget.Budget.count>`: for a
    selection kernel called directly (the pipeline counts a budget once, in ``ground`` or :func:`select`: a
    :class:`~litelvlm.budget.Count` counted against at most this input is not checked again)."""
    if isinstance(budget, Count) and budget.limit <= int(num_patches) + extra_tokens:
        return budget
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise BudgetError(range_error(budget, num_patches, extra_tokens))
    return Budget(budget).count(num_patches, extra_tokens)
