"""What a selector reads and returns (:class:`SelectorInputs`, :class:`Selection`), the budget rule, and
``run_selector``: a CLIP-side method's selection (by name: :func:`litelvlm.methods.select.select`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..budget import Budget, BudgetError, Count, range_error
from ..clip.traces import TextTrace, VisionTrace
from ..errors import LiteLVLMError

if TYPE_CHECKING:
    from ..method import Method
    from .mapped import MappedInputs


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


def run_selector(spec: Method, inputs: SelectorInputs | MappedInputs, k: int, **options: Any) -> Selection:
    """``spec``'s selection of ``k`` tokens, K already counted (:func:`select`), after the contract's checks
    (:func:`check_selector`, :func:`checked`; the pipeline's ``ground`` makes the same two around its kernel
    call)."""
    check_selector(spec, inputs)
    return checked(spec, spec.select(inputs, k, **options), k)


def check_selector(spec: Method, inputs: SelectorInputs | MappedInputs) -> None:
    """The contract's checks before a CLIP-side selection: a CLIP-side method, on inputs it can read, with the
    text it needs."""
    method = spec.name or "this method"
    if not spec.acts_on_clip:
        raise LiteLVLMError(f"method {method!r} acts {spec.where}; use the grounding pipeline "
                            "(litelvlm.lvlm) to apply it")
    if not isinstance(inputs, SelectorInputs) and not spec.scores_only:
        raise LiteLVLMError(f"method {method!r} reads CLIP's features or attention on CLIP's own grid, so it "
                            "cannot select among another family's tokens (only methods reading per-token "
                            "scores can)")
    if spec.needs_text and (inputs.text is None or len(inputs.text.texts) == 0):
        raise LiteLVLMError(f"method {method!r} needs at least one text")


def checked(spec: Method, sel: Selection, k: int) -> Selection:
    """``sel``, the selection ``spec`` made for K = ``k``, checked to hold K tokens."""
    if sel.indices.numel() != k:
        raise AssertionError(f"{spec.name or 'this method'} returned {sel.indices.numel()} tokens for budget "
                             f"{k}")
    return sel
