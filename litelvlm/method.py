"""The contract of a visual-token pruning method: one small module declares one :class:`Method`.

A method says where it acts (its stage: :mod:`litelvlm.method_stage`), whether it reads text, which options
it takes and which command-line flags feed them, how it selects, and, when it acts inside the LLM, how the LLM
runs on what it kept, and its name, one-line description and options. The pipeline, the studies and the
commands ask the method; none of them names one. The registry (:mod:`litelvlm.methods`) reads those
declarations.

This module imports nothing heavy: the registry and the command-line layer read it before torch loads.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .budget import Budget
from .method_stage import TOWER_STAGE, Stage, stage_of


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
    """A pruning method: ``select`` picks the kept tokens, ``forward`` (methods inside the LLM) runs the LLM
    on them; the class attributes declare its stage, what it reads (attention weights, CLIP traces, vision
    blocks), what it does with positions and how its cost is counted.

    Each attribute, what it means and who reads it: docs/library.md (``litelvlm.method.Method``).
    """

    stage: Stage
    select: Callable[..., Any]
    forward: Callable[..., tuple] | None = None
    needs_text: bool = False
    extra_tokens: int = 0
    options: tuple[Option, ...] = ()
    schedule: Callable[..., tuple[tuple[int, int], ...]] = at_input
    baseline: bool = False
    oracle: bool = False
    needs_mask_gradient: bool = False
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
    def where(self) -> str:
        """Where it acts, in words (:attr:`Stage.where`): "inside the vision tower and inside the LLM" for an
        LLM-side method composed with a tower rule."""
        if self.tower_tokens is not None and not self.prunes_in_vision_tower:
            return f"{TOWER_STAGE.where} and {self.stage.where}"
        return self.stage.where

    @property
    def tower_rule(self) -> Callable[..., Any]:
        """The function of its own run of the vision tower: its composed tower rule (``tower_tokens``) or, for
        a vision-tower method, its ``select``."""
        return self.tower_tokens if self.tower_tokens is not None else self.select

    def tower_options(self, options: dict) -> dict:
        """Those of ``options`` (the method's, ``options_from``) that its :attr:`tower_rule` takes."""
        own = inspect.signature(self.tower_rule).parameters
        return {k: v for k, v in options.items() if k in own}

    def tower_run(self, tower: Any, budget: int, **options) -> Any:
        """Its own run of the vision tower (``tower``: the family's ``TowerContext``) at ``budget`` (a method
        with :attr:`uses_vision_tower`): the composed rule's (N, h) tokens, or the vision-tower method's
        selection. ``eval-grounding`` runs it inside ``ground``; every cost count and timing runs it here."""
        return self.tower_rule(tower, budget, **self.tower_options(options))

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
        """``--flag value: why`` for each of this method's layer options out of the model's range: its value
        in ``args``, or its default where ``args`` holds none (``eval-video`` gives no method option)."""
        out = []
        for opt in self.options:
            value = getattr(args, opt.dest, None)
            value = opt.default if value is None else value
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
