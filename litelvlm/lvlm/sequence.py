"""What a family's pipeline hands the shared layer and returns from ``ground``: where the visual tokens sit in
one prompt's LLM sequence (:class:`SequenceLayout`), the masks with what produced them
(:class:`GroundingOutput`) and, between the two, one prompt's run as its steps fill it in
(:class:`GroundingRun`, :mod:`litelvlm.lvlm.batched`)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..pruning import Selection

if TYPE_CHECKING:
    from ..method import Method


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


@dataclass
class GroundingRun:
    """One prepared input's run in ``GroundingPipeline.ground_many``: what its plan fixed (the input the
    family runs, K, the position rule), then what each step adds: the method's stage (the LLM inputs, the
    selection), the LLM's sequence, the states the mask head reads (:mod:`litelvlm.lvlm.batched`)."""

    prepared: Any                            # the input run (the family's ``run_input`` of the one given)
    method: str
    spec: Method                             # the method as it runs on this family (``pipe.spec``)
    budget: int                              # K, a ``Count`` against the input's full budget
    positions: str                           # ``ground(positions=...)`` resolved against the rules
    rule: str                                # what the kept tokens' positions are: keep, renumber or pad
    full: torch.Tensor | None = None         # (N, h) visual tokens given in place of the family's
    # -- the method's stage
    visual: torch.Tensor | None = None       # (K, h) the LLM inputs (None: the stage ran the LLM itself)
    selection: Selection | None = None
    kept: torch.Tensor | None = None         # the visual-token indices of the inputs, where they keep them
    # -- the LLM's sequence (a stage applied at the LLM input)
    layout: SequenceLayout | None = None
    embeds: torch.Tensor | None = None       # (1, S, h)
    position_ids: torch.Tensor | None = None
    # -- what the mask head reads
    seg_hidden: torch.Tensor | None = None   # (S, h) the states predicting each [SEG]
    rows: torch.Tensor | None = None         # their rows in the run sequence
    seq_len: int = 0                         # length of the run (pruned) sequence

    @property
    def generates(self) -> bool:
        """Whether the input's answer is generated (``answer="generate"``) rather than teacher-forced."""
        return self.prepared.answer == "generate"

    def output(self, prompts: torch.Tensor, low: torch.Tensor, logits: torch.Tensor,
               generated: torch.Tensor | None = None) -> GroundingOutput:
        """The run's :class:`GroundingOutput` from the mask head's prompts, low-resolution and full-size mask
        logits (``generated``: the generated ids)."""
        sel = self.selection
        return GroundingOutput(masks=logits > 0, mask_logits=logits, low_res_logits=low,
                               seg_hidden=self.seg_hidden, prompt_embeddings=prompts,
                               kept_indices=sel.indices, seg_positions=self.rows, method=self.method,
                               budget=self.budget, prune_layer=int(sel.prune_layer), seq_len=self.seq_len,
                               selection=sel, position_rule=self.rule, generated=generated)


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


__all__ = ["GroundingOutput", "GroundingRun", "SequenceLayout", "norm_input_states"]
