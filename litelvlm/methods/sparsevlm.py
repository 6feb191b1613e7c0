"""SparseVLM (Zhang et al., ICML 2025) inside the GLaMM LLM: text raters score the visual tokens at
three LLM layers, the lowest-rated are dropped and a few of them are recycled as merged tokens.

A statement-level port of the official code, Gumpest/SparseVLMs at commit
26a5f48813c46cd1c7364160354e7fdd3febaa67, default mode ``USE_VERSION=1_0`` (SparseVLM v1.5):

* ``llava/model/language_model/modelling_sparse_llama.py`` L198-204 (text raters): once, on the
  LLM input embeddings, ``m_v_t = softmax(V @ T^T, over text).mean(over visual)`` for the visual
  embeddings V and every token after the image T; the raters are the text tokens with
  ``m_v_t > m_v_t.mean()``. Here T is everything after the image in GLaMM's teacher-forced
  prompt (questions and answers with their [SEG]), as the official statement takes what follows
  the image in the sequence it gets.
* L70 ``pruning_loc=[2, 6, 15]`` and ``score.py`` L9-21 (the schedule): decoder layer ``l`` of
  each stage runs on the whole current sequence, then its OUTPUT keeps
  ``min(count, v - 1)`` of its ``v`` visual tokens (``score.py`` L41), with the counts
  ``SPARSE_TOKEN_DICT[K]`` for ``RETAIN_TOKN=K`` (192: 300/200/110, 128: 303/110/36,
  96: 238/48/26, 64: 66/30/17).
* L239-261 with ``score.py`` L23-46 (scoring): the attention of layer ``l`` itself (its SDPA
  softmax, ``utils.py`` L95-116) averaged over heads, rows of the raters (at their current
  sequence positions), columns of the current visual tokens, averaged over raters; top-k.
  Only those rows are computed here (``attention_rows_at``), never a full attention matrix.
* L275-307 with ``utils.py`` L159-239 (recycling): of the ``p`` dropped tokens (layer-``l``
  outputs), the ``int(0.3 p) + 1`` best rated (``topk`` order) are clustered by DPC-KNN
  (``cluster_and_merge``, ``int(n / 10) + 1`` clusters, k-NN size = cluster count) and each
  cluster's mean (sum / (size + 1e-6)) is inserted right after the kept visual tokens
  (kept tokens in sequence order, then the clusters in centre order). Recycled tokens count as
  visual tokens from then on: later stages rate, drop and recycle them like the others.
* L302 / L314 (positions): ``position_ids[:, :L']``, i.e. the pruned sequence is RENUMBERED
  0..L'-1 (RoPE positions are not kept; only SparseVLM+ keeps them), with a plain causal
  mask over it (SDPA ``is_causal``). Text tokens are never dropped (L263-269), so the
  [SEG]-predicting tokens always survive. The rule is ``sparsevlm_forward``'s ``renumber`` argument (this one
  by default, for 1-D RoPE); the Qwen2.5-VL variant (:mod:`litelvlm.methods.sparsevlm_qwen`, this project's
  adaptation) passes its rule for M-RoPE's three axes.

So for K = 192 on LLaVA-1.5 / GLaMM-7B the visual tokens entering the 32 layers are 576 (layers
0-2), 309 (3-6), 204 (7-15) and 113 (16-31): the counts plus the recycled tokens, the same for
every image (``token_schedule``).

The selection carries this forward's final hidden states (``Selection.llm_output``, computed once, in
``sparsevlm_select``); the method's ``forward`` (``staged_forward``) returns them to the pipeline.
``indices`` are the original visual tokens that reach the last layer, in sequence order (the
recycled tokens, which follow them, are counted in ``parts["stage_recycled"]``).

Deviations from the official code:

1. DPC-KNN noise: the official density gets ``torch.rand(...) * 1e-6`` "to ensure no tokens have
   the same density" (``utils.py`` L190-192), which makes the clustering random (densities of
   real tokens can differ by less than 1e-6). It is left out: ties fall by the strict ``>``
   comparison and ``topk``, deterministically.
2. Budgets: the official code defines 192/128/96/64 only (``sparse_token_dict[RETAIN_TOKN]``
   raises a KeyError otherwise). K = N is the unpruned model here; any other K scales the
   schedule of the nearest defined budget (in ratio) by K / K_ref, rounded, at least 1
   (e.g. 32 -> 33/15/8). ``counts=`` gives a schedule explicitly.
3. Layers: (2, 6, 15) assume a 32-layer LLM (every LLaVA-1.5-7B/GLaMM-7B); an LLM with L
   layers uses ``round(l * L / 32)`` (the tiny 4-layer GLaMM: 0, 1, 2). ``layers=`` overrides.
4. Precision: with ``score_dtype="model"`` (``--protocol official``) the rater rows are computed
   as the official ``utils.py`` L95-116 does (logits, softmax, means over heads and raters and
   ``topk`` in the model dtype: bfloat16 for GLaMM), only for the rater rows; with ``float32`` (this
   project's earlier choice, ``--protocol per-expression``) the logits and softmax are float32.
5. No rater (all ``m_v_t`` equal, e.g. a single text token): the official mean over an empty
   set is NaN; here every text token rates.

Not ported: SparseVLM+ (``USE_VERSION=2_0``: other counts, a RoPE-bias correction, 14
selected heads, no recycling, kept positions). Batch size 1, as the official ``B == 1`` code.
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
    """SparseVLM's staged pruning with recycling; K = N is no pruning (see the module docstring);
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
