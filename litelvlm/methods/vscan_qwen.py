"""VScan's official Qwen2.5-VL variant: global and local scans of the vision tower's attention with token
merging at the LLM input, then pruning in the middle of the LLM by the last token's attention (no RoPE).

Official source: Tencent/SelfEvolvingAgent @ a82450e, folder ``VScan/qwen/``. The mapping of a budget K
onto the kept count and the layer on other depths are this project's adaptations.

Details, the official statements with their lines and the deviations: docs/methods/vscan_qwen.md
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import repeat_kv

from ..errors import LiteLVLMError
from ..llm.context import LLMContext, run_layers
from ..method import Method
from ..pruning.selection import Selection, check_budget
from ..qwen_vision.vit_attention import received_attentions

#: ``test_refcoco.py`` L147-149: ``layer_list = '[14]'``, ``image_token_ratio_list = '[0.67]'``,
#: ``image_token_ratio = 0.6``; Qwen2.5-VL-7B's 28 decoder layers; ``window_selection(..., window_size=4)``
#: (L150)
LLM_LAYER, OFFICIAL_LLM_LAYERS, STAGE_RATIO, VISION_RATIO, WINDOW = 14, 28, 0.67, 0.6, 4


def default_layer(num_layers: int) -> int:
    """Layer 14 of 28; ``round(14 * L / 28)`` in 1..L-1 on an L-layer LLM (deviation 2)."""
    if num_layers == OFFICIAL_LLM_LAYERS:
        return LLM_LAYER
    return min(max(1, round(LLM_LAYER * num_layers / OFFICIAL_LLM_LAYERS)), max(1, num_layers - 1))


def stage_counts(budget: int, num_visual: int, num_layers: int, layer: int | None = None,
                 stage_ratio: float = STAGE_RATIO,
                 ratios: tuple[float, float] | None = None) -> tuple[int, int]:
    """(V, kept): tokens entering the LLM and tokens from the middle layer on (docs/methods/vscan_qwen.md)."""
    n = num_visual
    if ratios is not None:  # the official ratios (L145-147, L635)
        visual = n if ratios[0] == 1 else int(ratios[0] * n)
        return visual, int(ratios[1] * visual)
    if budget >= n:
        return n, n
    layer = default_layer(num_layers) if layer is None else int(layer)
    total = num_layers * budget
    visual = 1
    for v in range(1, n + 1):  # the average over the layers grows with V
        if layer * v + (num_layers - layer) * int(stage_ratio * v) <= total:
            visual = v
    return visual, int(stage_ratio * visual)


def window_selection(scores: torch.Tensor, count: int, rows: int, cols: int, window: int = WINDOW,
                     fit_windows: bool = False) -> torch.Tensor:
    """``count`` token indices in descending score, at most ``ceil(count / windows)`` per window, in pick
    order (``qwen2_5_vl_utils.py`` L136-193, the greedy walk done at once)."""
    if rows * cols != scores.shape[0]:
        raise LiteLVLMError(f"VScan's window scan needs {rows}x{cols} scores; got {scores.shape[0]}")
    if count <= 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    wins_h, wins_w = rows // window, cols // window
    if fit_windows:
        wins_h, wins_w = max(1, wins_h), max(1, wins_w)
    if wins_h * wins_w == 0:
        raise LiteLVLMError(f"VScan's window scan: a {rows}x{cols} merged grid has no whole "
                            f"{window}x{window} window (the official code fails here); pass fit_windows=True")
    # ``(num_keep_tokens / num_windows).ceil()`` with an int32 tensor of windows: torch computes ``int /
    # tensor`` as ``tensor.reciprocal() * int`` in float32, so the limit can exceed ceil(count / windows) (21
    # / 7 -> 4)
    limit = int((torch.tensor(wins_h * wins_w, dtype=torch.int32).reciprocal() * count).ceil())
    order = torch.argsort(scores, dim=0, descending=True)
    # the rows past the last window belong to it (L176-179)
    x = ((order // cols) // window).clamp(max=wins_h - 1)
    y = ((order % cols) // window).clamp(max=wins_w - 1)
    onehot = F.one_hot(x * wins_w + y, wins_h * wins_w)
    # the token's place in its window's walk
    rank = onehot.cumsum(0).gather(1, (x * wins_w + y)[:, None])[:, 0] - 1
    picks = order[rank < limit][:count]
    if picks.numel() < count:
        raise LiteLVLMError(f"VScan's window scan placed {picks.numel()} of {count} tokens (the official "
                            "assert)")
    return picks


def token_merging(image_embeds: torch.Tensor, keep_indices: torch.Tensor) -> torch.Tensor:
    """(T, D) the kept rows, each averaged with the dropped rows most cosine-similar to it (L97-134, scaling
    1)."""
    N, D = image_embeds.shape
    keep_index_mask = torch.zeros(N, dtype=torch.bool, device=image_embeds.device)
    keep_index_mask[keep_indices] = True
    retained_tokens = image_embeds[keep_index_mask, :]
    non_retained_tokens = image_embeds[~keep_index_mask, :]
    T = retained_tokens.shape[0]
    cosine_sim = F.cosine_similarity(non_retained_tokens.unsqueeze(1), retained_tokens.unsqueeze(0), dim=2)
    nearest_token_indices = cosine_sim.argmax(dim=1)
    merged_features = torch.zeros_like(retained_tokens)
    merged_features += retained_tokens * 1
    merged_features.scatter_add_(0, nearest_token_indices.unsqueeze(-1).expand(-1, D), non_retained_tokens)
    merge_count = torch.zeros(T, device=image_embeds.device, dtype=torch.int)
    merge_count.scatter_add_(0, nearest_token_indices,
                             torch.ones_like(nearest_token_indices, dtype=merge_count.dtype))
    merged_features /= (1 + merge_count.unsqueeze(1))
    return merged_features


def vision_scores(ctx: LLMContext, local_block: int | None = None,
                  global_block: int | None = None) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """(local, global) scores of the merged tokens (LLM order) and the merged grid (rows, cols) (L338-392)."""
    vision = ctx.pipeline.vision(ctx.prepared)
    tower = vision.visual
    local_block = int(tower.fullatt_block_indexes[0]) if local_block is None else int(local_block)
    global_block = len(tower.blocks) - 1 if global_block is None else int(global_block)
    depth = len(tower.blocks)
    scores = received_attentions(vision, [local_block, global_block])
    t, h, w = (int(v) for v in vision.grid_thw[0])
    merge = int(tower.spatial_merge_size)
    return scores[local_block % depth], scores[global_block % depth], (h // merge, w // merge)


def scan(local: torch.Tensor, global_: torch.Tensor, visual: int, grid: tuple[int, int], window: int = WINDOW,
         fit_windows: bool = False) -> dict[str, torch.Tensor]:
    """``local`` and ``global`` picks (scan order) and ``keep`` (sorted) for V tokens (L150-156)."""
    local_picks = window_selection(local, visual // 2, *grid, window=window, fit_windows=fit_windows)
    deep = global_.clone()
    deep[local_picks] = 0  # avoid repetition
    global_picks = torch.topk(deep, visual - visual // 2).indices
    keep = torch.sort(torch.cat((local_picks, global_picks), dim=0), dim=0)[0]
    return {"local": local_picks, "global": global_picks, "keep": keep}


def middle_scores(lm, layer: int, hidden: torch.Tensor, start: int, count: int) -> torch.Tensor:
    """(count,) the last token's attention over the visual columns ``start..start+count-1`` in decoder
    ``layer`` from the hidden states entering it: no RoPE, heads averaged in the model dtype (L705-758)."""
    block = lm.layers[layer]
    self_attn = block.self_attn
    hidden_states = block.input_layernorm(hidden)
    head_dim = self_attn.head_dim
    bsz, q_len, _ = hidden_states.size()
    query_states = self_attn.q_proj(hidden_states).view(bsz, q_len, -1, head_dim).transpose(1, 2)
    key_states = self_attn.k_proj(hidden_states).view(bsz, q_len, -1, head_dim).transpose(1, 2)
    key_states = repeat_kv(key_states, self_attn.num_key_value_groups)
    text_query_states = query_states[0][:, q_len - 1, :].unsqueeze(1)
    attn_weights = torch.matmul(text_query_states, key_states[0].transpose(1, 2)) / math.sqrt(head_dim)
    if text_query_states.dtype == torch.float16:
        attn_weights = torch.where(torch.isinf(attn_weights), torch.zeros_like(attn_weights), attn_weights)
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query_states.dtype)
    attention_avg_head = torch.mean(attn_weights, dim=0)[:, start:start + count]
    return torch.mean(attention_avg_head, dim=0)


def vision_stage(ctx: LLMContext, visual: int, *, window: int = WINDOW, fit_windows: bool = False,
                 local_block: int | None = None, global_block: int | None = None,
                 ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """(merged LLM inputs (V', h), the merged-token indices they stand at (ascending), the scans) for V
    tokens."""
    n = ctx.num_visual
    tokens = ctx.visual_embeds
    if visual >= n:  # every token, unmerged (``visual_token_ratio == 1``, L146)
        return tokens, torch.arange(n, device=tokens.device), {}
    local, global_, grid = vision_scores(ctx, local_block, global_block)
    scans = scan(local, global_, visual, grid, window, fit_windows)
    keep = scans["keep"].to(tokens.device)
    merged = token_merging(tokens, keep)
    kept = torch.unique(keep)  # the rows token_merging kept (a pick made twice counts once)
    return merged, kept, scans


def _stage_positions(ctx: LLMContext, kept: torch.Tensor) -> torch.Tensor:
    """Positions of the sequence with the tokens ``kept`` at the image: their own 3-D ids (official, L174) or,
    under ``renumber``, the family's positions of a sequence of that length."""
    if ctx.position_rule == "renumber":
        return ctx.pipeline.layout(ctx.prepared, int(kept.numel())).position_ids
    return ctx.pipeline.kept_positions(ctx.prepared, kept.cpu())


@dataclass
class VScanQwenRun:
    """One forward: the tokens entering the LLM and what the middle layer kept."""

    final: torch.Tensor              # (1, S', h) final normed hidden states
    seg_positions: torch.Tensor
    tokens: torch.Tensor             # (V', h) merged LLM input tokens, raster order of ``stage1_kept``
    stage1_kept: torch.Tensor        # merged-token indices entering the LLM, ascending
    stage2_rows: torch.Tensor        # rows of ``tokens`` kept from ``layer`` on, ascending
    layer: int
    scans: dict[str, torch.Tensor]


def vscan_qwen_forward(ctx: LLMContext, visual: int, stage_ratio: float = STAGE_RATIO,
                       layer: int | None = None, **scan_options) -> VScanQwenRun:
    """Both stages: V tokens into the LLM, ``int(stage_ratio * V')`` of the V' that entered from decoder
    ``layer`` on (L585-670, L635)."""
    layer = default_layer(ctx.num_layers) if layer is None else int(layer)
    if not 1 <= layer < ctx.num_layers:
        raise LiteLVLMError(f"VScan layer must be in 1..{ctx.num_layers - 1}; got {layer}")
    tokens, stage1, scans = vision_stage(ctx, visual, **scan_options)
    run_ctx = LLMContext(ctx.pipeline, ctx.prepared, tokens, ctx.position_rule)
    run_ctx.position_ids = _stage_positions(ctx, stage1).to(tokens.device)
    v, s = run_ctx.num_visual, run_ctx.image_start
    keep = min(int(stage_ratio * v), v)
    if keep == v:  # the middle layer keeps every token (the official topk of all, sorted)
        final = run_ctx.lm.norm(run_ctx.hidden_before(ctx.num_layers))
        return VScanQwenRun(final, run_ctx.seg_predictors, tokens, stage1, torch.arange(v), layer, scans)
    if int(run_ctx.seg_predictors.min()) < s + v:
        raise LiteLVLMError("a [SEG]-predicting token lies before the end of the image")
    hidden = run_ctx.hidden_before(layer)
    scores = middle_scores(run_ctx.lm, layer, hidden, s, v)
    rows = scores.topk(keep).indices.sort().values
    dev = hidden.device
    seq = torch.cat(
        [torch.arange(s, device=dev), s + rows.to(dev), torch.arange(s + v, run_ctx.seq_len, device=dev)])
    if ctx.position_rule == "renumber":
        pos = ctx.pipeline.layout(ctx.prepared, keep).position_ids.to(dev)
    else:
        pos = run_ctx.position_ids.to(dev)[..., seq]  # the kept tokens keep their ids (L775)
    final = run_ctx.lm.norm(run_layers(run_ctx.lm, hidden[:, seq], pos, layer, ctx.num_layers))
    return VScanQwenRun(final, run_ctx.seg_predictors - v + keep, tokens, stage1, rows.cpu(), layer, scans)


def vscan_qwen_select(ctx: LLMContext, budget: int, *, ratios: tuple[float, float] | None = None,
                      stage_ratio: float = STAGE_RATIO, layer: int | None = None, window: int = WINDOW,
                      local_block: int | None = None, global_block: int | None = None,
                      fit_windows: bool = False) -> Selection:
    """VScan on Qwen2.5-VL for an average of K visual tokens over the LLM's layers
    (docs/methods/vscan_qwen.md); K = N prunes nothing. Returns the forward's final hidden states with the
    selection."""
    n = ctx.num_visual
    check_budget(budget, n)
    visual, keep = stage_counts(budget, n, ctx.num_layers, layer, stage_ratio, ratios)
    if visual == n and keep >= n:  # the unpruned model, fed at the LLM input
        return Selection(indices=torch.arange(n))
    if visual < 1:
        raise LiteLVLMError(f"VScan keeps no visual token at the LLM input (V = {visual}); raise the ratio")
    run_ = vscan_qwen_forward(ctx, visual, stage_ratio if ratios is None else ratios[1], layer, window=window,
                              fit_windows=fit_windows, local_block=local_block, global_block=global_block)
    stage1 = run_.stage1_kept.cpu()
    pruned = len(run_.stage2_rows) < len(stage1)
    parts = {"stage1_kept": stage1, "stage_counts": torch.tensor([visual, keep]),
             "stage_visual": torch.tensor([len(stage1), len(run_.stage2_rows)])}
    parts.update({name: run_.scans[name].cpu() for name in ("local", "global") if name in run_.scans})
    return Selection(indices=stage1[run_.stage2_rows], parts=parts, prune_layer=run_.layer if pruned else 0,
                     llm_output=(run_.final, run_.seg_positions))


def vscan_qwen_output(ctx: LLMContext, sel: Selection) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(final normed hidden (1, S', h), rows predicting each [SEG]) of the forward that made ``sel``; None
    when it prunes nothing (K = N)."""
    return sel.llm_output


def vscan_qwen_schedule(budget: int, num_visual: int, num_layers: int, *,
                        ratios: tuple[float, float] | None = None,
                        stage_ratio: float = STAGE_RATIO, layer: int | None = None,
                        **_ignored) -> tuple[tuple[int, int], ...]:
    """Visual tokens per LLM stage: V from layer 0, then the official ``int(0.67 * V)`` from the middle
    layer."""
    visual, keep = stage_counts(budget, num_visual, num_layers, layer, stage_ratio, ratios)
    keep = min(keep, visual)
    if keep == visual:
        return ((0, visual),)
    return ((0, visual), (default_layer(num_layers) if layer is None else int(layer), keep))


def vscan_qwen_attention_weights(num_layers: int) -> tuple[int, ...]:
    """The middle layer whose last-token attention (no RoPE) :func:`middle_scores` reads
    (:func:`default_layer`)."""
    return (default_layer(num_layers),)


VSCAN_QWEN = Method("llm-stages", vscan_qwen_select, forward=vscan_qwen_output, schedule=vscan_qwen_schedule,
                    positions="keep", host_sync=True, reads_vision_blocks=True,
                    attention_weights=vscan_qwen_attention_weights, tower_attention_weights=True,
                    name="vscan", backbone="qwen2.5-vl",
                    description=("VScan's official Qwen2.5-VL code: local (first full-attention block, "
                                 "<= ceil per 4x4 window) and global (last block) scans of the tower's "
                                 "attention with token merging at the LLM input, then the last token's "
                                 "attention (no RoPE) keeps int(0.67 V) after LLM layer 14 of 28; kept "
                                 "tokens keep their M-RoPE ids (K = the average over layers)"))
