"""ViTCoP (Luo et al., AAAI 2026): redundancy filtering at the vision encoder's output, then step-wise
co-pruning inside the LLM by the L2 norm of the key vectors (no attention weights).

Official source: chaser682/ViTCoP @ 627f632, folder ``LLaVA/llava/`` (LLaVA-1.5). The knobs for a budget K
and other grids and depths are this project's mapping and adaptation.

Details, the official statements with their lines and the deviations: docs/methods/vitcop.md
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import LiteLVLMError
from ..llm.attention_rows import projected, rotary_fn
from ..llm.context import LLMContext, run_layers
from ..method import Method, Option, no_layers
from ..pruning.scores import eager_cls_attention
from ..pruning.selection import Selection, SelectorInputs
from ..pruning.vic import token_filter_l2_norm_cluster, vic_labels

#: ``SHALLOW_PRUNED_LAYER``, ``DEEP_PRUNED_LAYER`` of the script, for the 32-layer Vicuna-7B
OFFICIAL_LAYERS, REFERENCE_LAYERS = (2, 22), 32
#: ``deep_token_num = round(shallow_token_num / 5)`` (L1296)
DEEP_SHARE = 5
#: VIC's ``dc`` and spatial ``k`` (clip_encoder.py L233-235)
DC, SPATIAL_K = 8, 0.6


@dataclass(frozen=True)
class Settings:
    """The official knobs: overall ratio p, vision keep ratio v, cluster percentage c, layers s < d."""

    ratio: float
    vision_ratio: float
    cluster_percentage: float
    shallow: int
    deep: int


def default_layers(num_layers: int) -> tuple[int, int]:
    """(2, 22) on 32 layers; the same relative depth elsewhere, 1 <= s < d <= L-1 (deviation 2)."""
    if num_layers == REFERENCE_LAYERS:
        return OFFICIAL_LAYERS
    s = max(1, round(OFFICIAL_LAYERS[0] * num_layers / REFERENCE_LAYERS))
    d = min(num_layers - 1, max(s + 1, round(OFFICIAL_LAYERS[1] * num_layers / REFERENCE_LAYERS)))
    return s, d


def settings(budget: int, num_visual: int, num_layers: int, *, vision_ratio: float | None = None,
             cluster_percentage: float | None = None, shallow_layer: int | None = None,
             deep_layer: int | None = None) -> Settings:
    """The official knobs for an average of K visual tokens over the layers (docs/methods/vitcop.md's
    mapping)."""
    s, d = default_layers(num_layers)
    s = s if shallow_layer is None else int(shallow_layer)
    d = d if deep_layer is None else int(deep_layer)
    if not 1 <= s < d < num_layers:
        raise LiteLVLMError(f"ViTCoP needs layers 1 <= shallow < deep < {num_layers}; got {s}, {d}")
    p = budget / num_visual
    if 9 * budget < num_visual:
        v, c = 27 * p / 10, 0.12
    elif 3 * budget <= num_visual:
        v, c = (2 + 9 * p) / 10, (9 + 27 * p) / 100
    else:
        v, c = min(1.0, 3 * p / 2), 0.18
    v = v if vision_ratio is None else float(vision_ratio)
    c = c if cluster_percentage is None else float(cluster_percentage)
    if not (0 < v <= 1 and int(v * num_visual) >= 1 and 0 < c <= 1):
        raise LiteLVLMError(f"ViTCoP needs 0 < vision_ratio <= 1 keeping a token and 0 < cluster_percentage "
                            f"<= 1; got {v}, {c}")
    return Settings(min(p, v * (d + (num_layers - d) / DEEP_SHARE) / num_layers), v, c, s, d)


def counts(st: Settings, num_visual: int, num_layers: int) -> tuple[int, int, int]:
    """(V, R, D): the tokens entering the LLM (clip_encoder.py L217), kept at layer s and at layer d
    (L1295-1296; R within 1..V, deviation 1)."""
    v = int(st.vision_ratio * num_visual)
    s, d, L = st.shallow, st.deep, num_layers
    r = round((L * st.ratio / st.vision_ratio - s) / (d - s + (L - d) / DEEP_SHARE) * v)
    r = min(max(r, 1), v)
    return v, r, round(r / DEEP_SHARE)


def grid_positions(rows: int, cols: int, device) -> torch.Tensor:
    """(N, 2) float32 (y, x) / (rows, cols) of the raster grid (``get_pos`` L170-185)."""
    yy, xx = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device),
                            indexing="ij")
    pos = torch.stack([yy, xx], dim=-1).reshape(-1, 2).float()
    return pos / torch.tensor([rows, cols], device=device, dtype=torch.float)


def vision_filter(inputs: SelectorInputs, keep: int, percentage: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept patch indices ascending, their VIC labels): the top ``keep`` by block -2's head-summed [CLS]
    attention, clustered on that block's keys (clip_encoder.py L194-244)."""
    vision = inputs.vision
    block = vision.layer_index(inputs.feature_layer) - 1  # attentions[-2] with LLaVA's feature layer -2
    cls_attention_sum = eager_cls_attention(inputs, block).sum(dim=0)[None]
    n = cls_attention_sum.shape[1]
    top = cls_attention_sum.topk(keep, dim=1).indices
    mask = torch.ones(1, n, dtype=torch.bool, device=top.device).scatter_(1, top, False)
    kept = torch.arange(n, device=top.device)[~mask[0]]
    _, k, _ = vision.qkv(block)
    metric = k[inputs.image_index, vision.num_prefix_tokens:][kept]
    pos = grid_positions(*vision.grid, metric.device)[kept.to(metric.device)]
    return kept, vic_labels(metric, pos, dc=DC, percentage=percentage, k=SPATIAL_K)


def key_norms(lm, layer: int, hidden: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
    """(S,) L2 norm of decoder ``layer``'s head-averaged keys after RoPE (the cached ``key_states``) for the
    hidden states entering it (L1307, L1367: ``k.mean(dim=1).norm(p=2, dim=-1)[0]``)."""
    block = lm.layers[layer]
    attn = block.self_attn
    x = block.input_layernorm(hidden)
    k = projected(attn, x, "k").view(*x.shape[:2], -1, attn.head_dim).transpose(1, 2)
    cos, sin = lm.rotary_emb(hidden, position_ids=position_ids)
    _, k = rotary_fn(attn)(k, k, cos, sin)
    return k.mean(dim=1).norm(p=2, dim=-1)[0]


@dataclass
class ViTCoPRun:
    """One ViTCoP forward: the final states, the [SEG] rows and which tokens each stage kept."""

    final: torch.Tensor
    seg_rows: torch.Tensor
    stage1: torch.Tensor     # CLIP grid indices entering the LLM, ascending
    labels: torch.Tensor     # their VIC labels
    shallow: torch.Tensor    # rows of stage1 each token after layer s stands at (selected or group median)
    deep: torch.Tensor       # rows of stage1 each token after layer d stands at


def _positions(rule: str | None, official: torch.Tensor) -> torch.Tensor:
    return official if rule is None else torch.arange(official.shape[-1], device=official.device)[None]


def group_means(rows: torch.Tensor, groups: list[torch.Tensor]) -> torch.Tensor:
    """(G, h) the mean of ``rows`` (n, h) over each group of row indices, bit for bit
    ``rows[g].mean(dim=0)`` (a float sum divided by the count, rounded to the rows' dtype) in one padded
    gather: the groups' rows zero-padded to the longest, whose trailing zeros leave the CPU's summation
    order of each group as it is (tested). ``index_add_`` and ``scatter_reduce`` sum in another order."""
    lengths = torch.tensor([len(g) for g in groups], device=rows.device)
    pad = torch.nn.utils.rnn.pad_sequence(groups, batch_first=True)
    gathered = rows[pad].masked_fill_((torch.arange(pad.shape[1], device=rows.device) >= lengths[:, None])
                                      [..., None], 0)
    acc = torch.float32 if rows.dtype in (torch.float16, torch.bfloat16) else rows.dtype
    return (gathered.sum(dim=1, dtype=acc) / lengths[:, None].to(acc)).to(rows.dtype)


def vitcop_run(ctx: LLMContext, st: Settings) -> ViTCoPRun:
    """Both stages over ``ctx``'s sequence with the official knobs ``st`` (see docs/methods/vitcop.md)."""
    v, r, dn = counts(st, ctx.num_visual, ctx.num_layers)
    stage1, labels = vision_filter(ctx.prepared.selector_inputs(), v, st.cluster_percentage)
    tokens = ctx.pipeline.clip_selection_tokens(ctx.prepared, Selection(indices=stage1), ctx.visual_embeds)
    run_ctx = LLMContext(ctx.pipeline, ctx.prepared, tokens, ctx.position_rule)
    vs, lm, s, d = run_ctx.image_start, ctx.lm, st.shallow, st.deep
    if int(run_ctx.seg_predictors.min()) < vs + v:
        raise LiteLVLMError("a [SEG]-predicting token lies before the end of the image")
    if run_ctx.position_ids.dim() != 2:
        raise LiteLVLMError("ViTCoP's official positions are 1-D (row indices); a family with multi-axis "
                            "positions needs its own rule")
    hidden, pos = run_ctx.hidden_before(s - 1), run_ctx.position_ids
    dev = hidden.device
    norms = key_norms(lm, s - 1, hidden, pos)[vs:vs + v]
    hidden = run_layers(lm, hidden, pos, s - 1, s)
    selected, groups, medians = token_filter_l2_norm_cluster(labels.to(dev), norms, r)
    order = torch.sort(torch.cat([selected, medians]))
    shallow = order.values
    # one gather of the selected and median rows; each group's mean added to its median's
    mid_tokens = hidden.index_select(1, vs + torch.cat([selected, medians]))
    mid_tokens[:, len(selected):] += group_means(hidden[0, vs:vs + v], groups)
    rows = torch.cat([torch.arange(vs, device=dev), vs + shallow, torch.arange(vs + v, hidden.shape[1],
                                                                               device=dev)])
    hidden = torch.cat([hidden[:, :vs], mid_tokens[:, order.indices], hidden[:, vs + v:]], dim=1)
    pos = _positions(ctx.position_rule, rows[None])  # the rows' indices (L1354)
    hidden = run_layers(lm, hidden, pos, s, d - 1)
    norms = key_norms(lm, d - 1, hidden, pos)[vs:vs + r]
    hidden = run_layers(lm, hidden, pos, d - 1, d)
    top = torch.topk(norms, dn, largest=False).indices
    all_keep = torch.cat([torch.arange(vs, device=dev), top + vs,
                          torch.arange(vs + r, hidden.shape[1], device=dev)]).unique(sorted=True)
    hidden = hidden.index_select(1, all_keep)
    pos = _positions(ctx.position_rule, all_keep[None])
    final = lm.norm(run_layers(lm, hidden, pos, d, ctx.num_layers))
    deep = shallow[all_keep[vs:vs + dn] - vs]
    return ViTCoPRun(final, run_ctx.seg_predictors.to(dev) - v + dn, stage1, labels, shallow, deep)


def vitcop_select(ctx: LLMContext, budget: int, *, vision_ratio: float | None = None,
                  cluster_percentage: float | None = None, shallow_layer: int | None = None,
                  deep_layer: int | None = None) -> Selection:
    """ViTCoP for an average of K visual tokens over the LLM's layers (docs/methods/vitcop.md); K = N prunes
    nothing. Returns the forward's final hidden states with the selection."""
    n = ctx.num_visual
    if budget == n:
        return Selection(indices=torch.arange(n))
    st = settings(budget, n, ctx.num_layers, vision_ratio=vision_ratio, cluster_percentage=cluster_percentage,
                  shallow_layer=shallow_layer, deep_layer=deep_layer)
    run = vitcop_run(ctx, st)
    stage1 = run.stage1.cpu()
    parts = {"stage1_kept": stage1, "clusters": run.labels.cpu(), "shallow_kept": stage1[run.shallow.cpu()],
             "stage_counts": torch.tensor([len(stage1), len(run.shallow), len(run.deep)])}
    return Selection(indices=stage1[run.deep.cpu()], parts=parts, prune_layer=st.shallow,
                     llm_output=(run.final, run.seg_rows))


def vitcop_output(ctx: LLMContext, sel: Selection) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(final normed hidden (1, S', h), rows predicting each [SEG]) of the forward that made ``sel``; None
    when it prunes nothing (K = N)."""
    return sel.llm_output


def vitcop_schedule(budget: int, num_visual: int, num_layers: int, **options) -> tuple[tuple[int, int], ...]:
    """Visual tokens per LLM stage: V from layer 0, R from layer s, round(R/5) from layer d (N: K = N)."""
    if budget >= num_visual:
        return ((0, num_visual),)
    st = settings(budget, num_visual, num_layers, **options)
    v, r, dn = counts(st, num_visual, num_layers)
    out = [(0, v)]
    for layer, count in ((st.shallow, r), (st.deep, dn)):
        if count != out[-1][1]:
            out.append((layer, count))
    return tuple(out)


#: its command-line options (``--vitcop-vision-ratio`` ...)
VITCOP_OPTIONS = (
    Option("vision_ratio", "vitcop_vision_ratio", value_type=float,
           help="ViTCoP: the share of CLIP's patches kept by [CLS] attention (VISION_PRUNE_RARIO; default: "
                "this project's line through the paper's 0.3/0.4/0.5 at K = N/9, 2N/9, N/3)"),
    Option("cluster_percentage", "vitcop_cluster_percentage", value_type=float,
           help="ViTCoP: VIC's share of cluster centres (CLUSTER_PERCENTAGE; default: the line through the "
                "paper's 0.12/0.15/0.18)"),
    Option("shallow_layer", "vitcop_shallow_layer", "1..L",
           help="ViTCoP: the LLM layer of the clustered co-pruning (default: 2 of 32, same relative depth)"),
    Option("deep_layer", "vitcop_deep_layer", "1..L",
           help="ViTCoP: the LLM layer of the deep key-norm pruning (default: 22 of 32, same relative "
                "depth)"),
)
VITCOP = Method("llm-stages", vitcop_select, forward=vitcop_output, schedule=vitcop_schedule,
                reads_vision_blocks=True, reads_clip=True, host_sync=True, positions="keep",
                original_positions=False, one_axis_positions=True, attention_weights=no_layers,
                tower_attention_weights=True,
                name="vitcop", options=VITCOP_OPTIONS,
                description=("ViTCoP: block -2's [CLS] attention keeps V patches, clustered by VIC on their "
                             "keys; at LLM layer 2 the key L2 norms keep R per cluster quota (the rest of "
                             "each cluster merged), at layer 22 the R/5 smallest; K = the average over "
                             "layers; no LLM attention weights"))
