"""VScan (Zhang et al., 2025): complementary global and local scans with token merging in the vision
encoder, then pruning in the middle of the LLM by the last token's attention.

Official source: Tencent/SelfEvolvingAgent @ a82450e, folder ``VScan/`` (LLaVA-1.5). Other towers than
24x24 and other depths are this project's adaptation (options; the official behaviour is the default).

Details, the official statements with their lines and the deviations: docs/methods/vscan.md
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import LiteLVLMError
from ..llm.context import LLMContext, run_layers
from ..method import Method
from ..pruning.scores import eager_cls_attention
from ..pruning.selection import Selection, SelectorInputs

#: LLaVA-1.5's grid and CLIP depth the official code is written for, its local block (``image_attentions[5]``)
#: and window (``window_size=6``); ``local_ratio = 1 - global_ratio = 0.5``.
OFFICIAL_SIDE, OFFICIAL_DEPTH, LOCAL_BLOCK, WINDOW, LOCAL_RATIO = 24, 24, 5, 6, 0.5
#: ``--layer_list '[16]'`` on the 32-layer Vicuna-7B.
LLM_LAYER, OFFICIAL_LLM_LAYERS = 16, 32


def stage_counts(budget: int, num_visual: int) -> tuple[int, int]:
    """(V, kept): tokens entering the LLM and tokens from the middle layer on for an average of K (96/32 at
    64)."""
    visual = min(num_visual, 3 * budget // 2)
    return visual, 2 * budget - visual


def default_window(rows: int, cols: int) -> int:
    """6 on LLaVA's 24x24 grid; ``side // 4`` elsewhere, at least 1 (deviation 3)."""
    return WINDOW if (rows, cols) == (OFFICIAL_SIDE, OFFICIAL_SIDE) else max(1, min(rows, cols) // 4)


def default_local_block(num_layers: int) -> int:
    """Block 5 of a 24-block tower; the same relative depth elsewhere (deviation 3)."""
    return (LOCAL_BLOCK if num_layers == OFFICIAL_DEPTH
            else max(0, round((LOCAL_BLOCK + 1) * num_layers / OFFICIAL_DEPTH) - 1))


def default_layer(num_layers: int) -> int:
    """Layer 16 of 32; ``round(16 * L / 32)`` on an L-layer LLM (deviation 3)."""
    return (LLM_LAYER if num_layers == OFFICIAL_LLM_LAYERS
            else max(1, round(LLM_LAYER * num_layers / OFFICIAL_LLM_LAYERS)))


def scan_counts(visual: int, windows: int, exact: bool = False) -> tuple[int, int]:
    """(local picks per window, global picks) for V tokens (L225, L279; ``exact``: deviation 2)."""
    local = int(visual * LOCAL_RATIO)
    per_window = local // windows
    return per_window, visual - (per_window * windows if exact else local)


def scanned_count(visual: int, num_visual: int, window: int | None = None, exact: bool = False) -> int:
    """Tokens entering the LLM for V on a square grid of N patches (no duplicate picks)."""
    if visual >= num_visual:
        return num_visual
    side = math.isqrt(num_visual)
    w = default_window(side, side) if window is None else window
    per_window, global_ = scan_counts(visual, (side // w) ** 2, exact)
    return per_window * (side // w) ** 2 + global_


def window_cls_selection(attention: torch.Tensor, rows: int, cols: int, per_window: int,
                         window: int) -> torch.Tensor:
    """The top ``per_window`` patches of each ``window`` x ``window`` window, windows row-major (L199-252)."""
    attn_map = attention.view(rows, cols)
    picks = []
    for i in range(rows // window):
        for j in range(cols // window):
            window_flat = attn_map[i * window:(i + 1) * window, j * window:(j + 1) * window].reshape(-1)
            top = torch.topk(window_flat, per_window).indices
            picks.append((i * window + top // window) * cols + j * window + top % window)
    if not picks:
        return torch.zeros(0, dtype=torch.long, device=attention.device)
    return torch.cat(picks)


def global_and_local_scan(inputs: SelectorInputs, visual: int, *, local_block: int | None = None,
                          global_block: int | None = None, window: int | None = None,
                          exact: bool = False) -> dict[str, torch.Tensor]:
    """``local`` and ``global`` picks (scan order) for V tokens, and the [CLS] attentions they ranked
    (L254-285)."""
    vision = inputs.vision
    rows, cols = vision.grid
    local_block = default_local_block(vision.num_layers) if local_block is None else int(local_block)
    # attentions[-2] with LLaVA's feature layer -2: the block whose output are the features
    if global_block is None:
        global_block = vision.layer_index(inputs.feature_layer) - 1
    window = default_window(rows, cols) if window is None else int(window)
    if not 1 <= window <= min(rows, cols):
        raise LiteLVLMError(f"VScan window must be in 1..{min(rows, cols)}; got {window}")
    shallow = eager_cls_attention(inputs, local_block).mean(dim=0)
    deep = eager_cls_attention(inputs, global_block).mean(dim=0)
    per_window, global_count = scan_counts(visual, (rows // window) * (cols // window), exact)
    local = window_cls_selection(shallow, rows, cols, per_window, window)
    deep[local] = 0
    global_ = torch.topk(deep[None], k=global_count, dim=1)[1][0]
    return {"local": local, "global": global_, "shallow": shallow, "deep": deep}


def raster_split(picks: torch.Tensor, num_patches: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, dropped) patch indices, each ascending, of the index mask the picks set (L284-285)."""
    mask = torch.zeros(num_patches, dtype=torch.bool, device=picks.device)
    mask.scatter_(0, picks, True)
    # a picked patch counts once; the meta device of the FLOPs count cannot read the mask (no duplicates
    # there)
    count = picks.numel() if mask.device.type == "meta" else int(mask.sum())
    order = torch.argsort((~mask).to(torch.uint8), stable=True)
    return order[:count], order[count:]


@contextlib.contextmanager
def _deterministic(on: bool):
    if not on:
        yield
        return
    before, warn = (torch.are_deterministic_algorithms_enabled(),
                    torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn)


def token_merging(features: torch.Tensor, kept: torch.Tensor, dropped: torch.Tensor,
                  deterministic: bool = False) -> torch.Tensor:
    """(T, D) kept rows of ``features`` (N, D), each averaged with the dropped rows most cosine-similar to it
    (L157-197, ``scaling=1``, B = 1)."""
    retained_tokens = features[kept][None]
    non_retained_tokens = features[dropped][None]
    if non_retained_tokens.shape[1] == 0:
        return retained_tokens[0]
    B, T, D = retained_tokens.shape
    cosine_sim = F.cosine_similarity(non_retained_tokens.unsqueeze(2), retained_tokens.unsqueeze(1), dim=3)
    nearest_token_indices = cosine_sim.argmax(dim=2)
    merge_count = torch.zeros(B, T, device=features.device, dtype=torch.int)
    merged_features = torch.zeros_like(retained_tokens)
    merged_features += retained_tokens * 1
    with _deterministic(deterministic):
        merged_features.scatter_add_(1, nearest_token_indices.unsqueeze(-1).expand(-1, -1, D),
                                     non_retained_tokens)
        merge_count.scatter_add_(1, nearest_token_indices,
                                 torch.ones_like(nearest_token_indices, dtype=merge_count.dtype))
    merged_features /= (1 + merge_count.unsqueeze(2))
    return merged_features[0]


def middle_scores(ctx: LLMContext, layer: int) -> torch.Tensor:
    """(V,) the last token's attention over the visual tokens in decoder ``layer``, from the hidden states
    entering it; heads averaged first, in the model dtype with the official numerics (L1351-1443)."""
    kernel = "llama-4.28" if ctx.score_dtype == "model" else "float32"
    return ctx.visual_attention(layer, "last", kernel)


def middle_keep(ctx: LLMContext, layer: int, keep: int) -> torch.Tensor:
    """The ``keep`` visual rows of highest :func:`middle_scores`, ascending (L1446-1451)."""
    return torch.topk(middle_scores(ctx, layer), keep).indices.sort().values


@dataclass
class VScanRun:
    """One VScan forward: the tokens entering the LLM and what the middle layer kept."""

    final: torch.Tensor | None       # (1, S', h) final normed hidden states (None: nothing pruned, K = N)
    seg_positions: torch.Tensor | None
    # (V', h) LLM input visual tokens (merged), raster order of ``stage1_kept``
    tokens: torch.Tensor
    stage1_kept: torch.Tensor        # CLIP grid indices entering the LLM, ascending
    stage2_rows: torch.Tensor        # rows of ``tokens`` kept from ``layer`` on, ascending
    layer: int
    scans: dict[str, torch.Tensor]


def _grid_tokens(ctx: LLMContext, num_patches: int) -> torch.Tensor:
    """(N, h) the family's LLM inputs of CLIP's whole grid, raster order (GLaMM: the projector outputs)."""
    grid = torch.arange(num_patches)
    tokens = ctx.pipeline.clip_selection_tokens(ctx.prepared, Selection(indices=grid), ctx.visual_embeds)
    if tokens.shape[0] != num_patches:
        raise LiteLVLMError(f"VScan merges the LLM inputs of CLIP's {num_patches} patches; the family gives "
                            f"{tokens.shape[0]} for the grid")
    return tokens


def vision_stage(ctx: LLMContext, visual: int, *, deterministic: bool = False,
                 **scan) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """(merged LLM inputs (V', h), their CLIP grid indices, the scans) for V tokens (L254-293)."""
    inputs = ctx.prepared.selector_inputs()
    n = inputs.vision.num_patches
    tokens = _grid_tokens(ctx, n)
    if visual >= n:  # every token, unmerged (L261-264)
        return tokens, torch.arange(n, device=tokens.device), {}
    scans = global_and_local_scan(inputs, visual, **scan)
    kept, dropped = raster_split(torch.cat([scans["local"], scans["global"]]), n)
    kept, dropped = kept.to(tokens.device), dropped.to(tokens.device)
    return token_merging(tokens, kept, dropped, deterministic), kept, scans


def vscan_forward(ctx: LLMContext, visual: int, keep: int, layer: int | None = None, *,
                  deterministic: bool = False, **scan) -> VScanRun:
    """Both stages over ``ctx``'s sequence: V tokens into the LLM, ``keep`` from decoder ``layer`` on."""
    layer = default_layer(ctx.num_layers) if layer is None else int(layer)
    if not 1 <= layer < ctx.num_layers:
        raise LiteLVLMError(f"VScan layer must be in 1..{ctx.num_layers - 1}; got {layer}")
    tokens, stage1, scans = vision_stage(ctx, visual, deterministic=deterministic, **scan)
    run_ctx = LLMContext(ctx.pipeline, ctx.prepared, tokens, ctx.position_rule)
    keep_positions = ctx.position_rule == "keep"  # official: renumbered (V tokens enter the LLM; L1490)
    if keep_positions:  # the V tokens at their patches' places in the unpruned sequence
        rows_v = ctx.pipeline.clip_selection_rows(ctx.prepared, Selection(indices=stage1.cpu()))
        run_ctx.position_ids = ctx.pipeline.kept_positions(ctx.prepared, rows_v).to(tokens.device)
    v = run_ctx.num_visual
    keep = min(int(keep), v)
    if keep == v:  # the middle layer keeps every token (the official topk of all, sorted)
        rows = torch.arange(v, device=tokens.device)
        final = run_ctx.lm.norm(run_ctx.hidden_before(ctx.num_layers))
        return VScanRun(final, run_ctx.seg_predictors, tokens, stage1, rows, layer, scans)
    s = run_ctx.image_start
    if int(run_ctx.seg_predictors.min()) < s + v:
        raise LiteLVLMError("a [SEG]-predicting token lies before the end of the image")
    if not keep_positions and run_ctx.position_ids.dim() != 2:  # renumbering 0..S'-1 (L1490): 1-D RoPE only
        raise LiteLVLMError("VScan renumbers the pruned sequence's positions 0..S'-1, as its official code "
                            "does for 1-D RoPE; a family with multi-axis positions needs its own rule")
    rows = middle_keep(run_ctx, layer, keep)
    hidden = run_ctx.hidden_before(layer)
    dev = hidden.device
    seq = torch.cat(
        [torch.arange(s, device=dev), s + rows.to(dev), torch.arange(s + v, run_ctx.seq_len, device=dev)])
    hidden = hidden[:, seq]
    pos = run_ctx.position_ids.to(dev)[..., seq] if keep_positions else torch.arange(
        hidden.shape[1], device=dev)[None]
    final = run_ctx.lm.norm(run_layers(run_ctx.lm, hidden, pos, layer, ctx.num_layers))
    return VScanRun(final, run_ctx.seg_predictors - v + keep, tokens, stage1, rows, layer, scans)


def vscan_select(ctx: LLMContext, budget: int, *, counts: tuple[int, int] | None = None,
                 layer: int | None = None,
                 local_block: int | None = None, global_block: int | None = None, window: int | None = None,
                 exact: bool = False, deterministic: bool = False) -> Selection:
    """VScan for an average of K visual tokens over the LLM's layers (see docs/methods/vscan.md); K = N prunes
    nothing. Returns the forward's final hidden states with the selection."""
    n = ctx.num_visual
    visual, keep = stage_counts(budget, n) if counts is None else (int(counts[0]), int(counts[1]))
    if not (1 <= visual <= n and keep >= 1):
        raise LiteLVLMError(f"VScan counts must be 1 <= V <= {n} and kept >= 1; got {(visual, keep)}")
    if budget == n and visual == n and keep >= n:  # the unpruned model, fed at the LLM input
        return Selection(indices=torch.arange(n))
    run_ = vscan_forward(ctx, visual, keep, layer, deterministic=deterministic, local_block=local_block,
                         global_block=global_block, window=window, exact=exact)
    stage1 = run_.stage1_kept
    pruned = len(run_.stage2_rows) < len(stage1)
    parts = {"stage1_kept": stage1,
             "stage_counts": torch.tensor([visual, keep]),
             "stage_visual": torch.tensor([len(stage1), len(run_.stage2_rows)])}
    parts.update({name: run_.scans[name] for name in ("local", "global") if name in run_.scans})
    return Selection(indices=stage1[run_.stage2_rows.to(stage1.device)], parts=parts,
                     prune_layer=run_.layer if pruned else 0, llm_output=(run_.final, run_.seg_positions))


def vscan_output(ctx: LLMContext, sel: Selection) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(final normed hidden (1, S', h), rows predicting each [SEG]) of the forward that made ``sel``; None
    when it prunes nothing (K = N: the LLM runs on all N tokens at its input)."""
    return sel.llm_output


def vscan_schedule(budget: int, num_visual: int, num_layers: int, *, counts: tuple[int, int] | None = None,
                   layer: int | None = None, window: int | None = None, exact: bool = False,
                   **_ignored) -> tuple[tuple[int, int], ...]:
    """Visual tokens per LLM stage: V' (the official scans' count) from layer 0, then ``min(kept, V')`` from
    the middle layer (a square grid of N patches; a patch picked twice would make both fewer)."""
    visual, keep = stage_counts(budget, num_visual) if counts is None else counts
    entering = scanned_count(int(visual), num_visual, window, exact)
    kept = min(int(keep), entering)
    if kept == entering:
        return ((0, entering),)
    return ((0, entering), (default_layer(num_layers) if layer is None else int(layer), kept))


def vscan_attention_weights(num_layers: int) -> tuple[int, ...]:
    """The middle layer whose last-token attention VScan reads (:func:`default_layer`)."""
    return (default_layer(num_layers),)


VSCAN = Method("llm-stages", vscan_select, forward=vscan_output, schedule=vscan_schedule,
               reads_vision_blocks=True, reads_clip=True, attention_weights=vscan_attention_weights,
               tower_attention_weights=True,
               name="vscan",
               description=("VScan: global ([CLS] attention, feature block) and local (block 5, per 6x6 "
                            "window) scans with token merging at the LLM input, then the last token's "
                            "attention keeps K/2 after LLM layer 16 (K = the average over layers: 3K/2 "
                            "tokens enter); positions renumbered"))
