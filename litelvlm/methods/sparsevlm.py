"""SparseVLM (Zhang et al., ICML 2025) inside the GLaMM LLM: text raters score the visual tokens at
three LLM layers, the lowest-rated are dropped and a few of them are recycled as merged tokens.

Official source: Gumpest/SparseVLMs @ 26a5f48, default mode ``USE_VERSION=1_0`` (SparseVLM v1.5). Budgets
other than the official 192/128/96/64 are mapped (the deviations list); the Qwen2.5-VL variant
(``litelvlm.methods.sparsevlm_qwen``) is this project's adaptation.

Details, the official statements with their lines and the deviations: docs/methods/sparsevlm.md
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import LiteLVLMError
from ..llm.context import LLMContext, attention_rows_at, run_layers
from ..method import Method
from ..pruning.selection import Selection

#: ``LlamaDynamicvitModel(pruning_loc=[2, 6, 15])``: the decoder layers whose outputs are pruned.
PRUNING_LOC = (2, 6, 15)
#: The LLM depth ``PRUNING_LOC`` is written for (Vicuna-7B).
OFFICIAL_LAYERS = 32
#: ``score.py`` L11-21 (``USE_VERSION=1_0``): visual tokens kept at each pruning layer, per ``RETAIN_TOKN``.
SPARSE_TOKEN_DICT = {192: (300, 200, 110), 128: (303, 110, 36), 96: (238, 48, 26), 64: (66, 30, 17)}
#: Share of the dropped tokens that are recycled (L282) and tokens per cluster (L286).
RECYCLE_RATIO = 0.3
CLUSTER_SIZE = 10


def stage_counts(budget: int) -> tuple[int, ...]:
    """Visual tokens kept at each pruning layer for budget ``budget`` (official, or scaled: deviation 2)."""
    if budget in SPARSE_TOKEN_DICT:
        return SPARSE_TOKEN_DICT[budget]
    ref = min(SPARSE_TOKEN_DICT, key=lambda k: (abs(math.log(budget / k)), k))
    return tuple(max(1, round(c * budget / ref)) for c in SPARSE_TOKEN_DICT[ref])


def stage_layers(num_layers: int) -> tuple[int, ...]:
    """The pruning layers for an LLM of ``num_layers`` layers (official for 32; deviation 3)."""
    layers = tuple(round(layer * num_layers / OFFICIAL_LAYERS) for layer in PRUNING_LOC)
    if any(b <= a for a, b in zip(layers, layers[1:])) or layers[-1] >= num_layers:
        raise LiteLVLMError(f"no SparseVLM layer schedule for {num_layers} LLM layers; pass layers=")
    return layers


def recycled_count(dropped: int) -> int:
    """Clusters made from ``dropped`` tokens: ``int(int(0.3 p) + 1) / 10) + 1`` (L282, L286)."""
    return int((int(dropped * RECYCLE_RATIO) + 1) / CLUSTER_SIZE) + 1


def token_schedule(budget: int, num_visual: int = 576, num_layers: int = OFFICIAL_LAYERS,
                   layers: tuple[int, ...] | None = None, counts: tuple[int, ...] | None = None) -> list[int]:
    """Visual tokens (recycled included) entering each LLM layer; the same for every image (FLOPs)."""
    if budget >= num_visual:
        return [num_visual] * num_layers
    layers = stage_layers(num_layers) if layers is None else tuple(layers)
    counts = stage_counts(budget) if counts is None else tuple(counts)
    out, v, start = [], num_visual, 0
    for layer, count in zip(layers, counts):
        out += [v] * (layer + 1 - start)
        keep = min(count, v - 1)
        v, start = keep + recycled_count(v - keep), layer + 1
    return out + [v] * (num_layers - start)


def text_raters(embeds: torch.Tensor, v_start: int, v_num: int) -> torch.Tensor:
    """Rater positions relative to the first token after the image (L198-204), from the input embeddings."""
    v_t = embeds[:, v_start:v_start + v_num, :]
    t_t = embeds[:, v_start + v_num:, :]
    m_v_t = v_t @ t_t.transpose(1, 2)
    m_v_t = m_v_t.softmax(2).mean(1)
    t_token_idx = torch.where(m_v_t > m_v_t.mean())
    if t_token_idx[1].numel() == 0:  # deviation 5
        return torch.arange(t_t.shape[1], device=embeds.device)
    return t_token_idx[1]


def index_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``points[b, idx[b]]`` (``utils.py`` L159-176)."""
    b = points.shape[0]
    view_shape = [b] + [1] * (idx.dim() - 1)
    repeat_shape = [1] + list(idx.shape[1:])
    batch_indices = torch.arange(b, dtype=torch.long, device=points.device).view(view_shape).repeat(
        repeat_shape)
    return points[batch_indices, idx, :]


def cluster_and_merge(x: torch.Tensor, cluster_num: int) -> torch.Tensor:
    """DPC-KNN clustering of ``x`` (B, N, C) into ``cluster_num`` averaged tokens (``utils.py`` L179-239;
    without the density noise: deviation 1)."""
    B, N, C = x.shape
    dist_matrix = (x[:, :, None, :] - x[:, None, :, :]).norm(dim=-1, p=2) / (C ** 0.5)
    dist_nearest, _ = torch.topk(dist_matrix, k=cluster_num, dim=-1, largest=False)
    density = (-(dist_nearest ** 2).mean(dim=-1)).exp()
    mask = (density[:, None, :] > density[:, :, None]).type(x.dtype)
    dist_max = dist_matrix.flatten(1).max(dim=-1)[0][:, None, None]
    dist, _ = (dist_matrix * mask + dist_max * (1 - mask)).min(dim=-1)
    score = dist * density
    _, index_down = torch.topk(score, k=cluster_num, dim=-1)
    idx_cluster = index_points(dist_matrix, index_down).argmin(dim=1)
    idx_batch = torch.arange(B, device=x.device)[:, None].expand(B, cluster_num)
    idx_tmp = torch.arange(cluster_num, device=x.device)[None, :].expand(B, cluster_num)
    idx_cluster[idx_batch.reshape(-1), index_down.reshape(-1)] = idx_tmp.reshape(-1)
    token_weight = x.new_ones(B, N, 1)
    idx = idx_cluster + torch.arange(B, device=x.device)[:, None] * cluster_num
    all_weight = token_weight.new_zeros(B * cluster_num, 1)
    all_weight.index_add_(dim=0, index=idx.reshape(B * N), source=token_weight.reshape(B * N, 1))
    all_weight = all_weight + 1e-6
    norm_weight = token_weight / all_weight[idx]
    x_merged = x.new_zeros(B * cluster_num, C)
    source = x * norm_weight
    x_merged.index_add_(dim=0, index=idx.reshape(B * N), source=source.reshape(B * N, C).type(x.dtype))
    return x_merged.reshape(B, cluster_num, C)


def recycle(dropped: torch.Tensor, dropped_scores: torch.Tensor) -> torch.Tensor:
    """(c, h) recycled tokens from the dropped layer outputs (p, h) and their rater scores (p,) (L280-290)."""
    n = int(dropped.shape[0] * RECYCLE_RATIO) + 1
    chosen = dropped[dropped_scores.topk(n)[1]]
    cluster_num = int(chosen.shape[0] / CLUSTER_SIZE) + 1
    return cluster_and_merge(chosen[None], cluster_num)[0]


@dataclass
class SparseVLMRun:
    """One staged forward: final normed hidden states and what each stage kept."""

    final: torch.Tensor              # (1, S', h) after the final norm
    seg_positions: torch.Tensor      # rows of ``final`` predicting each [SEG]
    layers: tuple[int, ...]          # decoder layers whose outputs were pruned
    counts: tuple[int, ...]          # requested keep counts
    kept: list[torch.Tensor]         # per stage: original visual indices still present (sequence order)
    visual: list[int]                # per stage: visual tokens after it (recycled included)
    recycled: list[int]              # per stage: recycled tokens it inserted
    scores: torch.Tensor             # (N,) the first stage's rater scores
    raters: torch.Tensor             # rater positions relative to the first token after the image


def renumbered(ctx: LLMContext, length: int) -> torch.Tensor:
    """(1, L') the positions of the pruned sequence, 0..L'-1 (L302: ``position_ids[:, :L']``)."""
    return torch.arange(length, device=ctx.embeds.device)[None]


def sparsevlm_forward(ctx: LLMContext, layers: tuple[int, ...], counts: tuple[int, ...],
                      renumber: Callable[[LLMContext, int], torch.Tensor] | None = None) -> SparseVLMRun:
    """The staged SparseVLM forward over ``ctx``'s sequence (L186-322); ``renumber(ctx, L')``: the positions
    of the pruned sequence (None: :func:`renumbered`, the official rule, for 1-D RoPE only)."""
    lm, s, n = ctx.lm, ctx.image_start, ctx.num_visual
    if len(layers) != len(counts) or any(b <= a for a, b in zip(layers, layers[1:])) \
            or not 0 <= layers[0] or layers[-1] >= ctx.num_layers:
        raise LiteLVLMError(f"SparseVLM needs increasing layers in 0..{ctx.num_layers - 1}, one count each; "
                            f"got layers {layers}, counts {counts}")
    if int(ctx.seg_predictors.min()) < s + n:
        raise LiteLVLMError("a [SEG]-predicting token lies before the end of the image")
    if ctx.position_rule == "keep":
        raise LiteLVLMError("positions='keep' is not defined for SparseVLM: its recycled tokens (cluster "
                            "means of dropped ones) have no original position; it renumbers, as its official "
                            "code (L302)")
    if renumber is None:
        if ctx.position_ids.dim() != 2:  # renumbering 0..L'-1 (L302) is defined for 1-D RoPE only
            raise LiteLVLMError("SparseVLM renumbers the pruned sequence's positions 0..L'-1, as its "
                                "official code does for 1-D RoPE; a family with multi-axis positions needs "
                                "its own rule")
        renumber = renumbered
    dev = ctx.embeds.device
    raters = text_raters(ctx.embeds, s, n)
    kernel = "sparsevlm" if ctx.score_dtype == "model" else "float32"
    labels = torch.arange(n, device=dev)  # original visual index of each current visual row, -1: recycled
    hidden, pos, v_num, start = None, ctx.position_ids, n, 0
    kept, visual, recycled, first_scores = [], [], [], None
    for step, (layer, count) in enumerate(zip(layers, counts)):
        h_in = ctx.hidden_before(layer) if step == 0 else run_layers(lm, hidden, pos, start, layer)
        t_start = s + v_num
        rows = attention_rows_at(lm, layer, h_in, pos, raters.to(dev) + t_start, kernel)
        score = rows.mean(0)[:, s:t_start].mean(0)  # heads, then raters (score.py L27-32)
        first_scores = score if first_scores is None else first_scores
        keep_n = min(int(count), v_num - 1)
        mask = torch.zeros(v_num, dtype=torch.bool, device=dev)
        mask[torch.topk(score, keep_n).indices] = True
        out = ctx.hidden_before(layer + 1) if step == 0 else run_layers(lm, h_in, pos, layer, layer + 1)
        vis = out[0, s:t_start]
        merged = recycle(vis[~mask], score[~mask])
        hidden = torch.cat([out[:, :s], torch.cat([vis[mask], merged])[None], out[:, t_start:]], dim=1)
        labels = torch.cat([labels[mask], labels.new_full((merged.shape[0],), -1)])
        v_num, start = keep_n + merged.shape[0], layer + 1
        pos = renumber(ctx, hidden.shape[1])  # renumbered (L302)
        kept.append(labels[labels >= 0].clone())
        visual.append(v_num)
        recycled.append(int(merged.shape[0]))
    final = lm.norm(run_layers(lm, hidden, pos, start, ctx.num_layers))
    seg = ctx.seg_predictors.to(dev) - n + v_num
    return SparseVLMRun(final=final, seg_positions=seg, layers=tuple(layers), counts=tuple(counts), kept=kept,
                        visual=visual, recycled=recycled, scores=first_scores, raters=raters)


def sparsevlm_select(ctx: LLMContext, budget: int, *, layers: tuple[int, ...] | None = None,
                     counts: tuple[int, ...] | None = None,
                     renumber: Callable[[LLMContext, int], torch.Tensor] | None = None) -> Selection:
    """SparseVLM's staged pruning with recycling; K = N is no pruning (see docs/methods/sparsevlm.md);
    ``renumber``: the pruned sequence's positions (:func:`sparsevlm_forward`)."""
    if budget == ctx.num_visual:
        return Selection(indices=torch.arange(ctx.num_visual))
    layers = stage_layers(ctx.num_layers) if layers is None else tuple(int(x) for x in layers)
    counts = stage_counts(budget) if counts is None else tuple(int(x) for x in counts)
    run_ = sparsevlm_forward(ctx, layers, counts, renumber)
    parts = {"stage_layers": torch.tensor(layers),
             "stage_counts": torch.tensor(counts), "stage_visual": torch.tensor(run_.visual),
             "stage_recycled": torch.tensor(run_.recycled), "raters": run_.raters}
    parts.update({f"stage{i}_kept": k for i, k in enumerate(run_.kept)})
    return Selection(indices=run_.kept[-1], scores=run_.scores.float(), parts=parts,
                     prune_layer=layers[0] + 1, llm_output=(run_.final, run_.seg_positions))


def staged_forward(ctx: LLMContext, sel: Selection,
                   renumber: Callable[[LLMContext, int], torch.Tensor] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(final normed hidden (1, S', h), rows predicting each [SEG]) of the staged forward that made ``sel``
    (returned with it; recomputed from its schedule, deterministically, for a selection without it); None
    when ``sel`` prunes nothing inside the LLM (K = N: the LLM runs on all N tokens at its input)."""
    if sel.llm_output is not None:
        return sel.llm_output
    if "stage_layers" not in sel.parts:
        return None
    run_ = sparsevlm_forward(ctx, tuple(sel.parts["stage_layers"].tolist()),
                             tuple(sel.parts["stage_counts"].tolist()), renumber)
    return run_.final, run_.seg_positions


def stages(budget: int, num_visual: int, num_layers: int) -> tuple[tuple[int, int], ...]:
    """:func:`token_schedule` as ``((first_layer, visual_tokens), ...)``: a stage starts where the count
    changes."""
    per_layer = token_schedule(budget, num_visual, num_layers)
    return tuple((i, v) for i, v in enumerate(per_layer) if i == 0 or v != per_layer[i - 1])


#: the raters' rows are read at each pruning layer (:func:`stage_layers`)
SPARSEVLM = Method("llm-stages", sparsevlm_select, forward=staged_forward, schedule=stages,
                   host_sync=True, original_positions=False, one_axis_positions=True,
                   attention_weights=stage_layers,
                   name="sparsevlm",
                   description=("SparseVLM (v1.5): text raters' attention drops visual tokens after LLM "
                                "layers 2/6/15 with the official per-budget counts; 30% of the dropped "
                                "recycled as DPC-KNN cluster means; positions renumbered"))
