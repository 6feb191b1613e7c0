"""The contract of a visual-token pruning method: one small module declares one :class:`Method`.

A method says where it acts (:data:`STAGES`), whether it reads text, which options it takes and which
command-line flags feed them, how it selects, and, when it acts inside the LLM, how the LLM runs on
what it kept. The pipeline, the studies and the commands ask the method; none of them names one. The
registry (:mod:`litelvlm.methods`) gives each method its name and one-line description.

This module imports nothing heavy: the registry and the command-line layer read it before torch loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Where a method acts, and what its ``select`` receives.
STAGES = {
    "clip": "on CLIP's visual tokens, before the LLM: select(SelectorInputs, K) -> Selection",
    "llm-input": "chosen with the LLM (or its input embeddings), applied at the LLM input: "
                 "select(LLMContext, K) -> Selection",
    "llm-layer": "inside the LLM, from one decoder layer on: select(LLMContext, K) -> Selection, then "
                 "forward(LLMContext, Selection)",
    "llm-stages": "inside the LLM, over several stages: select(LLMContext, K) -> Selection, then "
                  "forward(LLMContext, Selection)",
}


def at_input(budget: int, num_visual: int, num_layers: int, **options) -> tuple[tuple[int, int], ...]:
    """The token schedule of a method that prunes before the LLM: K visual tokens from layer 0."""
    return ((0, budget),)


#: What a method's official code does with the RoPE positions of the tokens it keeps: ``renumber`` (the pruned
#: sequence is numbered afresh: every method that prunes before the LLM, SparseVLM) or ``keep`` (kept tokens keep
#: their original positions: FastV, DART). ``GroundingPipeline.ground(positions=...)`` switches it.
POSITION_RULES = ("renumber", "keep")

#: the decoder-layer ranges an :class:`Option` may declare (L: the model's decoder layers)
LAYER_RANGES = ("1..L", "0..L-1")


@dataclass(frozen=True)
class Option:
    """A method option fed by a study's command-line argument: ``select(..., <name>=args.<dest>)``;
    ``None`` values are not passed (the method's own default applies). ``layers``: the value is a decoder
    layer in this range (:data:`LAYER_RANGES`; ``1..L`` for FastV's K), which the studies check against the
    model before they write anything."""

    name: str
    dest: str
    layers: str = ""

    def __post_init__(self) -> None:
        if self.layers and self.layers not in LAYER_RANGES:
            raise ValueError(f"layers must be one of {', '.join(LAYER_RANGES)}; got {self.layers!r}")

    def layer_error(self, value: int, num_layers: int) -> str | None:
        """Why ``value`` is no layer of this option's range in a model of ``num_layers`` layers (None: it is)."""
        lo, hi = (1, num_layers) if self.layers == "1..L" else (0, num_layers - 1)
        if not self.layers or lo <= value <= hi:
            return None
        return f"must be in {lo}..{hi} for this model ({num_layers} decoder layers)"


@dataclass(frozen=True)
class Method:
    """A pruning method. ``select`` picks the kept tokens; ``forward`` (methods inside the LLM) returns the
    final normed hidden states (1, S', h) and the rows predicting each [SEG] for a selection, or None when
    the selection prunes nothing inside the LLM (the pipeline then feeds it at the LLM input, e.g.
    SparseVLM at K = N); ``extra_tokens``: tokens it may add to the N patches (PruMerge's merged token), so K may reach
    N + extra_tokens. ``schedule(K, N, num_layers, **options)`` gives the visual tokens the LLM's layers
    see, ``((first_layer, visual_tokens), ...)``, for the FLOPs and activation counts. ``baseline``: the
    method keeps every token (one run at K = N, whatever the budgets). ``oracle``: an analysis oracle
    that reads the unpruned model's internals (its extra passes are no pruning cost to measure). ``host_sync``:
    the selection reads tensor values in Python (greedy picks, sets, clustering), so it cannot run on the
    ``meta`` device of the FLOPs count and waits for the device on a GPU. ``ranks``: ``Selection.scores`` is one
    score per visual token that the method keeps by (compared with the model's internals by ``importance
    --method-signals``). ``reads_vision_blocks``: the
    selection needs the weights of CLIP's vision blocks, not only the trace (ToMe re-runs them, HiPrune reads a
    middle block's attention). ``name`` and ``description`` come from the
    registry's table. ``positions``: what the official code does with the kept tokens' RoPE positions
    (:data:`POSITION_RULES`); ``original_positions``: every token it keeps has one (False where it passes tokens
    that stand for no single visual token: [CLS], merged or recycled ones), so ``positions="keep"`` applies.
    ``reads_clip``: an LLM-side method that also reads the CLIP traces (``prepared.selector_inputs()``: CDPruner's
    relevance, VScan's scans), so it runs only on a family paired with CLIP. ``one_axis_positions``: its official rule reads or sets one position per token (1-D RoPE), so a family with
    multi-axis positions (M-RoPE) needs a rule of its own first. ``scores_only``: a CLIP-side method that reads
    only per-patch scores (:mod:`litelvlm.pruning.scores`' similarity and context) and the patch count, so it runs
    on a family that maps an external CLIP's scores onto its own tokens (:class:`litelvlm.pruning.MappedInputs`).
    ``backbone``: set by the registry on a backbone's variant (:data:`litelvlm.methods.VARIANTS`; "" for the method as
    its table row describes it)."""

    stage: str
    select: Callable[..., Any]
    forward: Callable[..., tuple] | None = None
    needs_text: bool = False
    extra_tokens: int = 0
    options: tuple[Option, ...] = ()
    schedule: Callable[..., tuple[tuple[int, int], ...]] = at_input
    baseline: bool = False
    oracle: bool = False
    host_sync: bool = False
    reads_vision_blocks: bool = False
    ranks: bool = False
    positions: str = "renumber"
    original_positions: bool = True
    reads_clip: bool = False
    one_axis_positions: bool = False
    scores_only: bool = False
    name: str = ""
    description: str = ""
    backbone: str = ""

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {self.stage!r}")
        if self.positions not in POSITION_RULES:
            raise ValueError(f"positions must be one of {', '.join(POSITION_RULES)}; got {self.positions!r}")
        if (self.forward is None) != (self.stage in ("clip", "llm-input")):
            raise ValueError(f"stage {self.stage!r}: a forward is {'needed' if self.forward is None else 'not used'}")

    @property
    def uses_clip(self) -> bool:
        """Whether the method reads the CLIP traces: every CLIP-side method, and the LLM-side ones with ``reads_clip``."""
        return self.stage == "clip" or self.reads_clip

    @property
    def kind(self) -> str:
        """``clip`` (runs on CLIP traces before the LLM) or ``llm`` (needs the grounding model)."""
        return "clip" if self.stage == "clip" else "llm"

    def layer_errors(self, args: Any, num_layers: int) -> list[str]:
        """``--flag value: why`` for each of this method's layer options in ``args`` out of the model's range."""
        out = []
        for opt in self.options:
            value = getattr(args, opt.dest, None)
            if value is not None and (why := opt.layer_error(value, num_layers)):
                out.append(f"--{opt.dest.replace('_', '-')} {value}: {self.name or 'this method'}'s {opt.name} {why}")
        return out

    def options_from(self, args: Any) -> dict:
        """This method's keyword options from a study's arguments (fields named by each :class:`Option`)."""
        out = {}
        for opt in self.options:
            value = getattr(args, opt.dest, None)
            if value is not None:
                out[opt.name] = value
        return out
