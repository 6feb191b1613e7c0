"""The contract of a visual-token pruning method: one small module declares one :class:`Method`.

A method says where it acts (its stage: :mod:`litelvlm.method_stage`), whether it reads text, which options
it takes and which command-line flags feed them, how it selects, and, when it acts inside the LLM, how the LLM
runs on what it kept, and its name, one-line description and options. The pipeline, the studies and the
commands ask the method; none of them names one. The registry (:mod:`litelvlm.methods`) reads those
declarations.

This module imports nothing heavy: the registry and the command-line layer read it before torch loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .budget import Budget
from .method_stage import Stage, stage_of


def at_input(budget: int, num_visual: int, num_layers: int, **options) -> tuple[tuple[int, int], ...]:
    """The token schedule of a method that prunes before the LLM: K visual tokens from layer 0."""
    return ((0, budget),)


#: What a method's official code does with the RoPE positions of the tokens it keeps: ``renumber`` (the pruned
#: sequence is numbered afresh: every method that prunes before the LLM, SparseVLM), ``keep`` (kept tokens
#: keep their original positions: FastV, DART) or ``pad`` (FocusUI's PosPad: original positions, and each run
#: of dropped tokens replaced by one marker token: :mod:`litelvlm.llm.positions_pad`; no registered method's
#: official rule yet). ``GroundingPipeline.ground(positions=...)`` switches it.
POSITION_RULES = ("renumber", "keep", "pad")


def position_error(method: str, spec: Method, positions: str) -> str | None:
    """Why ``ground(positions=...)`` cannot apply ``positions`` to ``method`` (its :class:`Method`), None
    where it can: ``keep`` and ``pad`` need tokens with an original position each, ``pad`` a method whose
    dropped tokens leave at the LLM input (its markers are LLM inputs: :mod:`litelvlm.llm.positions_pad`)."""
    if positions in ("keep", "pad") and not spec.original_positions:
        return (f"positions={positions!r}: {method} passes tokens that are no single visual token ([CLS], "
                "merged or recycled tokens), which have no original position")
    if positions == "pad" and spec.prunes_inside_llm:
        return (f"positions='pad': {method} prunes inside the LLM; PosPad replaces each run of dropped "
                "tokens by one marker at the LLM input (FocusUI), and a marker's hidden state inside the LLM "
                "has no definition here")
    return None

#: the decoder-layer ranges an :class:`Option` may declare (L: the model's decoder layers)
LAYER_RANGES = ("1..L", "0..L-1")


def no_layers(num_layers: int) -> tuple[int, ...]:
    """The ``attention_weights`` of a method that reads no LLM layer's attention weights."""
    return ()


@dataclass(frozen=True)
class Option:
    """A method option fed by a command-line argument: ``select(..., <name>=args.<dest>)``;
    ``None`` values are not passed (the method's own default applies). ``layers``: the value is a decoder
    layer in this range (:data:`LAYER_RANGES`; ``1..L`` for FastV's K), which the studies check against the
    model before they write anything. ``value_type``, ``default``, ``choices`` and ``help`` make its flag
    ``--<dest>`` (:func:`litelvlm.cli_args.method_flags`); ``default`` is the ``select`` keyword's own
    default."""

    name: str
    dest: str
    layers: str = ""
    value_type: type = int
    default: Any = None
    choices: tuple = ()
    help: str = ""

    @property
    def flag(self) -> str:
        """Its command-line flag, ``--<dest>`` with dashes."""
        return "--" + self.dest.replace("_", "-")

    def __post_init__(self) -> None:
        if self.layers and self.layers not in LAYER_RANGES:
            raise ValueError(f"layers must be one of {', '.join(LAYER_RANGES)}; got {self.layers!r}")

    def layer_error(self, value: int, num_layers: int) -> str | None:
        """Why ``value`` is no layer of this option's range in a model of ``num_layers`` layers (None: it
        is)."""
        lo, hi = (1, num_layers) if self.layers == "1..L" else (0, num_layers - 1)
        if not self.layers or lo <= value <= hi:
            return None
        return f"must be in {lo}..{hi} for this model ({num_layers} decoder layers)"


@dataclass(frozen=True)
class Method:
    """A pruning method. ``select`` picks the kept tokens (its K counted once by ``ground`` or
    :func:`litelvlm.methods.select.select`: :meth:`litelvlm.budget.Budget.count`); the pipeline runs it
    through its :class:`Stage` (``stage``, declared by name); ``forward`` (methods inside the LLM) returns the
    final normed hidden states (1, S', h) and the rows predicting each [SEG] for a selection, or None when the
    selection prunes nothing inside the LLM (the pipeline then feeds it at the LLM input, e.g. SparseVLM at K
    = N); ``extra_tokens``: tokens it may add to the N patches (PruMerge's merged token), so K may reach N +
    extra_tokens. ``schedule(K, N, num_layers, **options)`` gives the visual tokens the LLM's layers see,
    ``((first_layer, visual_tokens), ...)``, for the FLOPs and activation counts. ``baseline``: the method
    keeps every token (one run at K = N, whatever the budgets). ``oracle``: an analysis oracle that reads the
    unpruned model's internals (its extra passes are no pruning cost to measure). ``host_sync``: the selection
    reads tensor values in Python (greedy picks, sets, clustering), so it cannot run on the ``meta`` device of
    the FLOPs count and waits for the device on a GPU. ``ranks``: ``Selection.scores`` is one score per visual
    token that the method keeps by (compared with the model's internals by ``importance --method-signals``).
    ``reads_vision_blocks``: the selection needs the weights of CLIP's vision blocks, not only the trace (ToMe
    re-runs them, HiPrune reads a middle block's attention). ``name``, ``description`` and ``options``:
    declared here by the method's module, and read from its source by the registry
    (:mod:`litelvlm.methods.declarations`). ``positions``: what the official code does with the kept tokens'
    RoPE positions (:data:`POSITION_RULES`); ``original_positions``: every token it keeps has one (False where
    it passes tokens that stand for no single visual token: [CLS], merged or recycled ones), so
    ``positions="keep"`` applies. ``reads_clip``: an LLM-side method that also reads the CLIP traces
    (``prepared.selector_inputs()``: CDPruner's relevance, VScan's scans), so it runs only on a family paired
    with CLIP. ``one_axis_positions``: its official rule reads or sets one position per token (1-D RoPE), so a
    family with multi-axis positions (M-RoPE) needs a rule of its own first. ``scores_only``: a CLIP-side
    method that reads only per-patch scores (:mod:`litelvlm.pruning.scores`' similarity and context) and the
    patch count, so it runs on a family that maps an external CLIP's scores onto its own tokens
    (:class:`litelvlm.pruning.MappedInputs`). ``attention_weights(L)``: the 0-based LLM decoder layers whose
    attention weights (softmax rows of the layer's own queries and keys) it reads, at its default options and
    a budget that prunes, on an LLM of L layers (:meth:`attention_layers`); ``tower_attention_weights``: it
    reads attention weights of the vision tower or CLIP (the [CLS] row, a block's softmax), recomputed from
    their queries and keys. ``restores_tokens``: a vision-tower method whose tower gives the LLM every visual
    token back (IPCV: its selection holds all N, their LLM inputs as ``features``, in the family's order; K
    counts what the tower's later blocks run on).
    ``tower_tokens``: an LLM-side method composed with such a tower rule (IPCV + FastV): ``tower_tokens(
    TowerContext, K, **options)`` gives the (N, h) visual tokens its ``select`` and ``forward`` then prune
    (:func:`litelvlm.lvlm.prune.llm_stage`). ``backbone``: declared by a backbone's variant
    (:data:`litelvlm.methods.VARIANTS`; "" for the method itself)."""

    stage: Stage
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
    attention_weights: Callable[[int], tuple[int, ...]] = no_layers
    tower_attention_weights: bool = False
    restores_tokens: bool = False
    tower_tokens: Callable[..., Any] | None = None
    name: str = ""
    description: str = ""
    backbone: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", stage_of(self.stage))  # declared by its name, held as its object
        if self.positions not in POSITION_RULES:
            raise ValueError(f"positions must be one of {', '.join(POSITION_RULES)}; got {self.positions!r}")
        if self.positions == "pad" and (not self.original_positions or self.stage.prunes_inside_llm):
            raise ValueError("positions 'pad' needs single visual tokens (original_positions) dropped at "
                             "the LLM input")
        if (self.forward is None) == self.stage.prunes_inside_llm:
            raise ValueError(f"stage {self.stage.name!r}: a forward is "
                             f"{'needed' if self.forward is None else 'not used'}")

    # -- what the pipeline and the studies ask (the stage's typed answers) -----------------------------------
    @property
    def acts_on_clip(self) -> bool:
        """Whether it selects on CLIP's visual tokens before the LLM (:attr:`Stage.acts_on_clip`)."""
        return self.stage.acts_on_clip

    @property
    def acts_with_llm(self) -> bool:
        """Whether it needs the grounding model's LLM (every method not acting on CLIP)."""
        return self.stage.acts_with_llm

    @property
    def selects_at_llm_input(self) -> bool:
        """Whether it is chosen with the LLM's input embeddings and applied at the LLM input (DivPrune,
        CDPruner)."""
        return self.stage.selects_at_llm_input

    @property
    def prunes_inside_llm(self) -> bool:
        """Whether it prunes inside the LLM with a ``forward`` of its own (FastV, DART, SparseVLM, VScan)."""
        return self.stage.prunes_inside_llm

    @property
    def prunes_at_one_layer(self) -> bool:
        """Whether it prunes once, from one decoder layer on (FastV, DART)."""
        return self.stage.prunes_at_one_layer

    @property
    def prunes_in_vision_tower(self) -> bool:
        """Whether it prunes between the blocks of the family's vision tower (FlowCut;
        :data:`~litelvlm.method_stage.TOWER_STAGE`)."""
        return self.stage.prunes_in_vision_tower

    @property
    def uses_vision_tower(self) -> bool:
        """Whether it runs the family's vision tower block by block: a vision-tower method, or an LLM-side one
        composed with a tower rule (``tower_tokens``)."""
        return self.stage.prunes_in_vision_tower or self.tower_tokens is not None

    @property
    def uses_clip(self) -> bool:
        """Whether the method reads the CLIP traces: every CLIP-side method, and the LLM-side ones with
        ``reads_clip``."""
        return self.stage.acts_on_clip or self.reads_clip

    @property
    def kind(self) -> str:
        """``clip`` (runs on CLIP traces before the LLM) or ``llm`` (needs the grounding model): kept for
        readers of earlier tables; ask :attr:`acts_on_clip` instead."""
        return self.stage.kind

    def attention_layers(self, num_layers: int) -> list[int]:
        """The sorted 0-based LLM decoder layers whose attention weights the method reads on an LLM of
        ``num_layers`` layers (:attr:`attention_weights`; empty: none)."""
        return sorted({int(layer) for layer in self.attention_weights(int(num_layers))})

    @property
    def flash_compatible(self) -> bool:
        """Whether the method runs with any attention kernel of the LLM (``--attn sdpa`` or ``flash``):
        always, here, since every attention weight it reads is recomputed from the layer's own modules
        outside the layer's kernel (:func:`litelvlm.llm.context.attention_rows_at`), never returned by it."""
        return True

    def token_schedule(self, budget: Budget | int | None, num_visual: int, num_layers: int,
                       options: dict | None = None) -> tuple[tuple[int, int], ...]:
        """:attr:`schedule` at ``budget`` (counted against N = ``num_visual``; the baseline keeps all N) with
        this method's own keys of ``options`` (``options_from`` / ``litelvlm.methods.method_options``): the
        FLOPs and activation counts' token plan without a study naming an option."""
        k = num_visual if self.baseline else Budget.of(budget).count(num_visual, self.extra_tokens)
        own = {o.name for o in self.options}
        return tuple(
            self
            .schedule(k, num_visual, num_layers, **{n: v for n, v in (options or {}).items() if n in own}))

    def settings(self, args: Any) -> dict:
        """Every option of this method with its value in ``args`` or, where it holds none, the option's
        default (what a run records of the method's options)."""
        return {opt.name: (v if (v := getattr(args, opt.dest, None)) is not None else opt.default)
                for opt in self.options}

    def layer_errors(self, args: Any, num_layers: int) -> list[str]:
        """``--flag value: why`` for each of this method's layer options in ``args`` out of the model's
        range."""
        out = []
        for opt in self.options:
            value = getattr(args, opt.dest, None)
            if value is not None and (why := opt.layer_error(value, num_layers)):
                out.append(f"--{opt.dest.replace('_', '-')} {value}: {self.name or 'this method'}'s "
                           f"{opt.name} {why}")
        return out

    def options_from(self, args: Any) -> dict:
        """This method's keyword options from a study's arguments (fields named by each :class:`Option`)."""
        out = {}
        for opt in self.options:
            value = getattr(args, opt.dest, None)
            if value is not None:
                out[opt.name] = value
        return out
