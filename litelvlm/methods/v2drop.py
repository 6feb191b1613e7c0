"""V2Drop (Chen, Liu et al., CVPR 2026) inside the LLM: at a few decoder layers the visual tokens whose hidden
state changed least through the previous layer ("lazy" tokens) are dropped; the kept tokens keep their
original RoPE positions (no attention weights read).

Official source: xuyang-liu16/V2Drop @ 219e03e, ``llava/model/language_model/V2Drop.py``. The budget floor K
and the layers on other depths are this project's mapping and adaptation.

Details, the official statements with their lines and the deviations: docs/methods/v2drop.md
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..errors import LiteLVLMError
from ..llm.context import LLMContext, run_layers
from ..method import Method, Option, no_layers
from ..pruning.selection import Selection

#: ``target_layer_indices = {3, 17, 22}`` (V2Drop.py L129): the decoder layers before which tokens are dropped
OFFICIAL_LAYERS = (3, 17, 22)
#: ``keep_ratio`` at those layers (L139-144), of the visual tokens present
OFFICIAL_RATIOS = (0.5, 0.5, 0.0)
#: the LLM depth ``OFFICIAL_LAYERS`` is written for (LLaVA-1.5-7B's Vicuna)
REFERENCE_LAYERS = 32


@dataclass(frozen=True)
class Defaults:
    """A variant's official schedule: its layers, keep ratios and the depth the layers are written for."""

    layers: tuple[int, ...] = OFFICIAL_LAYERS
    ratios: tuple[float, ...] = OFFICIAL_RATIOS
    reference_layers: int = REFERENCE_LAYERS


LLAVA = Defaults()


def parsed(value: str | Sequence | None, kind: type) -> tuple | None:
    """``value`` as a tuple of ``kind`` (a comma-separated string from the command line, or a sequence)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        return tuple(kind(x) for x in items if str(x).strip() != "")
    except ValueError as e:
        raise LiteLVLMError(f"V2Drop: cannot read {value!r} as a list of {kind.__name__} ({e})") from e


def mapped_layers(num_layers: int, defaults: Defaults = LLAVA) -> tuple[int, ...]:
    """The official layers at the same relative depth of a ``num_layers``-layer LLM, rounded half up, within
    1..L-1 (the official ones where L is the reference depth)."""
    ref, top = defaults.reference_layers, max(1, num_layers - 1)
    return tuple(min(top, max(1, (2 * layer * num_layers + ref) // (2 * ref))) for layer in defaults.layers)


def stage_plan(budget: int, num_visual: int, num_layers: int, layers=None, ratios=None,
               defaults: Defaults = LLAVA) -> tuple[tuple[int, int], ...]:
    """``((layer, visual tokens it keeps), ...)``, one per distinct layer: each drop keeps ``max(K, int(v *
    ratio))`` of the ``v`` present; drops on one layer merged (the last count); () when K = N."""
    if not 1 <= budget <= num_visual:
        raise LiteLVLMError(f"V2Drop's budget must be in 1..{num_visual}; got {budget}")
    layers = mapped_layers(num_layers, defaults) if layers is None else parsed(layers, int)
    ratios = defaults.ratios if ratios is None else parsed(ratios, float)
    if not layers or len(layers) != len(ratios) or any(b < a for a, b in zip(layers, layers[1:])) \
            or not all(1 <= x <= num_layers for x in layers) or not all(0 <= r <= 1 for r in ratios):
        raise LiteLVLMError(f"V2Drop needs non-decreasing layers in 1..{num_layers} and one keep ratio in "
                            f"[0, 1] each; got layers {layers}, ratios {ratios}")
    if budget == num_visual:
        return ()
    plan: list[tuple[int, int]] = []
    v = num_visual
    for layer, ratio in zip(layers, ratios):
        v = max(budget, int(v * ratio))  # the official max(1, int(v * keep_ratio)), its floor K here
        if plan and plan[-1][0] == layer:
            plan[-1] = (layer, v)
        else:
            plan.append((layer, v))
    if v != budget:
        raise LiteLVLMError(f"V2Drop's last drop keeps {v} of {num_visual} visual tokens with ratios "
                            f"{ratios}, not K = {budget}: K is the tokens left after the last drop "
                            "(official last ratio: 0)")
    return tuple(plan)


@dataclass
class V2DropRun:
    """One forward with V2Drop's drops: the final normed hidden states and what each drop kept."""

    final: torch.Tensor            # (1, S', h) after the final norm
    rows: torch.Tensor             # the original sequence rows of ``final`` (sorted)
    kept: list[torch.Tensor]       # per drop: original visual indices still present (sorted)
    scores: torch.Tensor | None    # (N,) the first drop's variation (None: it dropped nothing)


def v2drop_run(lm, hidden: torch.Tensor, position_ids: torch.Tensor, image_start: int, num_visual: int,
               plan: Sequence[tuple[int, int]], *, start: int = 0,
               positions: Callable[[torch.Tensor], torch.Tensor] | None = None) -> V2DropRun:
    """V2Drop's forward (V2Drop.py L107-183) over ``hidden`` (1, S, h) entering decoder layer ``start`` (at
    most the first drop's layer - 1), with the drops of ``plan`` (:func:`stage_plan`, not empty);
    ``positions(rows)``: the positions of the original sequence rows kept (default: theirs)."""
    dev = hidden.device
    rows = torch.arange(hidden.shape[1], device=dev)  # original sequence row of each present row
    labels = torch.arange(num_visual, device=dev)     # original visual index of each present visual row
    pos, at, v, kept, first = position_ids, start, num_visual, [], None
    for layer, count in plan:
        if count == v:  # keeps every visual token present: the official topk and sort change nothing
            kept.append(labels.clone())
            continue
        prev = run_layers(lm, hidden, pos, at, layer - 1)  # ``prev_hidden_states``: entering layer l-1 (L173)
        current = run_layers(lm, prev, pos, layer - 1, layer)
        candidate = torch.arange(image_start, image_start + v, device=dev)
        variation = torch.norm(current[:, candidate, :] - prev[:, candidate, :], p=2, dim=-1)[0]
        first = variation if first is None else first
        top = torch.topk(variation, k=count, largest=True).indices
        keep = torch.cat((torch.arange(image_start, device=dev), candidate[top],
                          torch.arange(image_start + v, current.shape[1], device=dev))).sort().values
        hidden, rows = current[:, keep, :], rows[keep]
        labels = labels[keep[image_start:image_start + count] - image_start]
        pos = position_ids[..., rows] if positions is None else positions(rows)
        at, v = layer, count
        kept.append(labels.clone())
    final = lm.norm(run_layers(lm, hidden, pos, at, len(lm.layers)))
    return V2DropRun(final=final, rows=rows, kept=kept, scores=first)


def staged(ctx: LLMContext, plan: Sequence[tuple[int, int]]) -> V2DropRun:
    """:func:`v2drop_run` over ``ctx``'s sequence: the unpruned layers before the first drop from ``ctx``'s
    cache, the kept rows' positions by ``ctx``'s rule (official: their own)."""
    if int(ctx.seg_predictors.min()) < ctx.image_start + ctx.num_visual:
        raise LiteLVLMError("a [SEG]-predicting token lies before the end of the image")
    start = plan[0][0] - 1
    return v2drop_run(ctx.lm, ctx.hidden_before(start), ctx.position_ids, ctx.image_start, ctx.num_visual,
                      plan, start=start, positions=lambda rows: ctx.pruned_positions(rows, official="keep"))


def select_with(ctx: LLMContext, budget: int, layers, ratios, defaults: Defaults) -> Selection:
    """V2Drop's selection with ``defaults`` (a variant's official schedule) where ``layers``/``ratios`` are
    None; the forward that made it comes with it (``Selection.llm_output``)."""
    plan = stage_plan(budget, ctx.num_visual, ctx.num_layers, layers, ratios, defaults)
    if not plan:  # K = N: the unpruned forward, at the LLM input
        return Selection(indices=torch.arange(ctx.num_visual))
    run = staged(ctx, plan)
    seg = ctx.seg_predictors.to(run.rows.device) - ctx.num_visual + budget  # text is never dropped
    parts = {"stage_layers": torch.tensor([p[0] for p in plan]),
             "stage_counts": torch.tensor([p[1] for p in plan])}
    parts.update({f"stage{i}_kept": k for i, k in enumerate(run.kept)})
    scores = None if run.scores is None else run.scores.float()
    return Selection(indices=run.kept[-1], scores=scores, parts=parts, prune_layer=plan[0][0],
                     llm_output=(run.final, seg))


def v2drop_select(ctx: LLMContext, budget: int, *, layers: str | Sequence[int] | None = None,
                  ratios: str | Sequence[float] | None = None) -> Selection:
    """The K visual tokens left after V2Drop's last drop (official LLaVA layers 3/17/22 and ratios
    0.5/0.5/0 by default, mapped to the LLM's depth); see docs/methods/v2drop.md."""
    return select_with(ctx, budget, layers, ratios, LLAVA)


def v2drop_forward(ctx: LLMContext, sel: Selection) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(final normed hidden (1, S', h), rows predicting each [SEG]) of the forward that made ``sel``
    (recomputed from its plan for a selection without it); None when it prunes nothing (K = N)."""
    if sel.llm_output is not None:
        return sel.llm_output
    if "stage_layers" not in sel.parts:
        return None
    plan = list(zip(sel.parts["stage_layers"].tolist(), sel.parts["stage_counts"].tolist()))
    run = staged(ctx, plan)
    return run.final, ctx.seg_predictors.to(run.rows.device) - ctx.num_visual + plan[-1][1]


def schedule_with(budget: int, num_visual: int, num_layers: int, layers, ratios,
                  defaults: Defaults) -> tuple[tuple[int, int], ...]:
    """``((first_layer, visual tokens), ...)`` of :func:`stage_plan`: N from layer 0, each drop's count from
    its layer (a drop keeping every token present starts no stage)."""
    out = [(0, num_visual)]
    for layer, count in stage_plan(budget, num_visual, num_layers, layers, ratios, defaults):
        if count != out[-1][1]:
            out.append((layer, count))
    return tuple(out)


def v2drop_schedule(budget: int, num_visual: int, num_layers: int, *, layers=None, ratios=None):
    """The visual tokens the LLM's layers see at budget K (official LLaVA schedule, mapped)."""
    return schedule_with(budget, num_visual, num_layers, layers, ratios, LLAVA)


#: its command-line options (``--v2drop-layers``, ``--v2drop-ratios``; its Qwen2.5-VL variant's too)
V2DROP_OPTIONS = (
    Option("layers", "v2drop_layers", value_type=str,
           help="V2Drop: the LLM layers before which it drops visual tokens, comma-separated (default: the "
                "official 3,17,22 of 32 layers on a LLaMA LLM, 3,16,22 of 28 on Qwen2.5-VL; other depths: "
                "the same relative depth, this project's adaptation)"),
    Option("ratios", "v2drop_ratios", value_type=str,
           help="V2Drop: the keep ratio of each drop, of the visual tokens present, comma-separated "
                "(default: the official 0.5,0.5,0 on a LLaMA LLM, 0.25,0.05,0 on Qwen2.5-VL); each drop "
                "keeps at least K, the last one K (this project's mapping of the budget)"),
)
V2DROP = Method("llm-stages", v2drop_select, forward=v2drop_forward, schedule=v2drop_schedule,
                positions="keep", attention_weights=no_layers,
                name="v2drop", options=V2DROP_OPTIONS,
                description=("V2Drop: before LLM layers 3/17/22 drop the visual tokens whose hidden "
                             "state changed least through the previous layer (L2 norm), keeping the "
                             "official shares (0.5/0.5/0) but at least K, K after the last drop; no "
                             "attention weights; kept tokens keep their RoPE positions"))
