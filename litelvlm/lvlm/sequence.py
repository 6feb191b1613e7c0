"""What a family's pipeline hands the shared layer and returns from ``ground``: where the visual tokens sit in
one prompt's LLM sequence (:class:`SequenceLayout`) and the masks with what produced them
(:class:`GroundingOutput`)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from ..pruning import Selection


@dataclass(frozen=True)
class SequenceLayout:
    """Where the visual tokens sit in one prompt's LLM sequence, and its RoPE positions."""

    image_start: int                 # sequence index of the first visual token
    num_visual: int                  # visual tokens in the sequence
    seq_len: int                     # length of the whole sequence
    # (1, S) for 1-D RoPE, (3, 1, S) for M-RoPE; the last axis is the sequence
    position_ids: torch.Tensor
    find_seg_predictors: Callable[[], torch.Tensor] = field(repr=False, compare=False)
    #: the positions are the sequence indices 0..S-1 (1-D RoPE, nothing skipped): a kept row's position is its
    #: index
    positions_are_indices: bool = False

    @functools.cached_property
    def seg_predictors(self) -> torch.Tensor:
        """Sequence indices of the tokens predicting each [SEG] (found on first use: a forward run with this
        layout holds no extra tensor)."""
        return self.find_seg_predictors()

    def positions(self, keep: torch.Tensor) -> torch.Tensor:
        """The original positions of the sequence rows ``keep`` (what pruned tokens keep: FastV, DART)."""
        if self.positions_are_indices:
            return keep[None]
        return self.position_ids[..., keep.to(self.position_ids.device)]


@dataclass
class GroundingOutput:
    """Masks for every [SEG] of the prompt, and what produced them."""

    masks: torch.Tensor                      # (S, H, W) bool at the original size
    mask_logits: torch.Tensor                # (S, H, W) float at the original size
    low_res_logits: torch.Tensor             # (S, 1, h, w) mask-decoder output
    seg_hidden: torch.Tensor                 # (S, h) final hidden states predicting each [SEG]
    prompt_embeddings: torch.Tensor          # (S, prompt_dim) the mask decoder's prompts
    # visual-token indices the pruned LLM layers saw (-1: CLS, -2: PruMerge extra)
    kept_indices: torch.Tensor
    seg_positions: torch.Tensor              # positions of the [SEG]-predicting tokens in the run sequence
    method: str
    budget: int
    prune_layer: int                         # 0: pruned at the LLM input
    seq_len: int                             # length of the (pruned) sequence
    selection: Selection | None = field(default=None, repr=False)
    position_rule: str = "renumber"          # what the kept tokens' RoPE positions were: "keep" or "renumber"
    generated: torch.Tensor | None = None    # answer="generate": the generated ids (litelvlm.lvlm.generate)

    def short_kept(self) -> dict:
        """``{"kept": n}`` when the method kept fewer visual tokens than its budget, as its official code does
        (``Selection.short``: HiPrune's Qwen2.5-VL registers); ``{}`` otherwise (a table's ``kept``
        column)."""
        return {"kept": len(self.selection)} if self.selection is not None and self.selection.short else {}


@contextlib.contextmanager
def norm_input_states(norm) -> Iterator[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """Within: ``states(final, rows)``, (B, R, h) at sequence ``rows`` of the last input of the LLM's final
    ``norm`` (hooked; the hook removed on exit), or of ``final`` itself when ``norm`` is None
    (``seg_reads="final"``)."""
    if norm is None:
        yield lambda final, rows: final[:, rows]
        return
    seen: list[torch.Tensor] = []

    def keep_input(module, args) -> None:  # the last call of the norm is the final one
        seen[:] = [args[0]]

    handle = norm.register_forward_pre_hook(keep_input)
    try:
        yield lambda final, rows: seen[-1][:, rows.to(seen[-1].device)]
    finally:
        handle.remove()


__all__ = ["GroundingOutput", "SequenceLayout", "norm_input_states"]
