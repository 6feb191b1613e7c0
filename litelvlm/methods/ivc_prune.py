"""IVC-Prune (Sun et al., ICLR 2026) inside the LLM: at one decoder layer, keep the visual tokens whose RoPE
rotations are closest to the identity and to the 90-degree rotation (implicit visual coordinates), a few
prompt-relevant seed tokens and the foreground tokens whose values resemble the question's and the seeds'.

Official source: FireRedTeam/IVC-Prune @ 03afd9c,
``transformers/src/transformers/models/llama/modeling_llama.py``. The budget K is this project's, for budgets
the official code does not define (``official_budget`` runs the official method).

Details, the official statements with their lines and the deviations: docs/methods/ivc_prune.md
"""

from __future__ import annotations

import math

import torch

from ..errors import LiteLVLMError
from ..llm.attention_rows import projected
from ..llm.context import LLMContext
from ..llm.pruned_forward import pruned_at_layer, pruned_forward
from ..method import Method
from ..pruning.selection import Selection

#: ``ivcp_k`` of ``llava_v1.5_7b_IVCP`` (config.py L514): the first decoder layer that sees the kept tokens.
DEFAULT_LAYER = 16
#: The LLM depth ``DEFAULT_LAYER`` is written for (Vicuna-7B).
OFFICIAL_LAYERS = 32
#: Shares of the N visual tokens (L907, L921, L934-935): seeds, foreground, IVC tokens per RoPE axis.
SEED_RATIO, FOREGROUND_RATIO, IVC_RATIO = 0.01, 0.2, 0.05
#: The question rows start this many tokens after the image (L900, L913).
QUESTION_OFFSET = 2


def default_layer(num_layers: int) -> int:
    """The pruning layer for an LLM of ``num_layers`` layers: 16 on 32 layers, the same depth elsewhere."""
    return max(1, round(DEFAULT_LAYER * num_layers / OFFICIAL_LAYERS))


def part_counts(num_visual: int) -> tuple[int, int, int]:
    """(seeds, foreground, IVC tokens per axis) of the official code for N visual tokens."""
    n = num_visual
    return max(1, round(n * SEED_RATIO)), round(n * FOREGROUND_RATIO), round(n * IVC_RATIO)


def value_similarity(ctx: LLMContext, layer: int) -> torch.Tensor:
    """(S, S) head-mean ``softmax(V V^T / sqrt(d))`` of decoder layer ``layer``'s values, in the model dtype
    (``compute_attention_weights`` L752-766 and L896)."""
    block = ctx.lm.layers[layer]
    attn = block.self_attn
    hidden_states = block.input_layernorm(ctx.hidden_before(layer).detach())
    bsz, q_len, _ = hidden_states.size()
    value_states = projected(attn, hidden_states, "v")
    num_key_value_heads = value_states.shape[-1] // attn.head_dim
    value_states = value_states.view(bsz, q_len, num_key_value_heads, attn.head_dim).transpose(1, 2)
    value_weights = torch.matmul(value_states, value_states.transpose(2, 3)) / math.sqrt(attn.head_dim)
    value_weights = torch.softmax(value_weights, dim=-1, dtype=torch.float32).to(value_states.dtype)
    return torch.mean(value_weights, dim=1)[0]


def rope_means(ctx: LLMContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) means over the head dimension of the visual tokens' RoPE cos and sin (L926-932), in the model
    dtype."""
    if ctx.position_ids.dim() != 2:
        raise LiteLVLMError("IVC-Prune picks its IVC tokens by one position's RoPE angles, as its official "
                            "LLaVA-1.5 code does for 1-D RoPE; a family with multi-axis positions needs its "
                            "own rule")
    cos, sin = ctx.lm.rotary_emb(ctx.embeds, position_ids=ctx.position_ids)
    sl = ctx.visual_slice()
    return cos[0, sl].mean(dim=1), sin[0, sl].mean(dim=1)


def ivc_scores(ctx: LLMContext, layer: int) -> dict[str, torch.Tensor]:
    """The official lists (local visual indices, ``topk`` order) and the foreground score (N,) of the
    selection before decoder layer ``layer`` (L896-936): ``seeds``, ``foreground``, ``cos``, ``sin``,
    ``score``."""
    s, n, seq = ctx.image_start, ctx.num_visual, ctx.seq_len
    if seq <= s + n + QUESTION_OFFSET:
        raise LiteLVLMError(f"IVC-Prune reads the question rows from {QUESTION_OFFSET} tokens after the "
                            "image on; this prompt has none")
    n_seed, n_fg, n_ivc = part_counts(n)
    sim = value_similarity(ctx, layer - 1)
    question = torch.arange(s + n + QUESTION_OFFSET, seq, device=sim.device)
    value_attn_img = torch.mean(sim[question], dim=0)[s:s + n]
    seeds = value_attn_img.topk(n_seed).indices
    anchor = torch.cat((seeds + s, question))
    score = torch.mean(sim[anchor], dim=0)[s:s + n]
    cos_mean, sin_mean = rope_means(ctx)
    return {"seeds": seeds, "foreground": score.topk(n_fg).indices, "cos": cos_mean.topk(n_ivc).indices,
            "sin": sin_mean.topk(n_ivc).indices, "score": score}


def foreground_ranking(score: torch.Tensor, foreground: torch.Tensor) -> torch.Tensor:
    """Every visual token: the official foreground list first (its ``topk`` order), then the others by
    ``score`` (descending, ties by index; deviation 1)."""
    rest = torch.ones(score.shape[0], dtype=torch.bool, device=score.device)
    rest[foreground] = False
    rest = rest.nonzero().flatten()
    order = torch.sort(score[rest], descending=True, stable=True).indices
    return torch.cat((foreground, rest[order]))


def keep_for_budget(lists: dict[str, torch.Tensor], budget: int) -> dict[str, torch.Tensor]:
    """The ``budget`` kept visual tokens (sorted) from :func:`ivc_scores`'s lists: the priority (IVC tokens
    and seeds), then the foreground ranking (the Qwen2.5-VL variant's fill, L1526-1542; deviation 1 below the
    priority's size). Returns ``kept``, ``ivc``, ``seeds`` and ``fill`` (sorted local indices)."""
    cos, sin, seeds = lists["cos"], lists["sin"], lists["seeds"]
    priority = torch.unique(torch.cat((cos, sin, seeds)))
    if budget < priority.numel():  # deviation 1: the IVC and seed counts shrink in proportion
        total = 2 * cos.numel() + seeds.numel()
        c, k = cos.numel() * budget // total, seeds.numel() * budget // total
        cos, sin, seeds = cos[:c], sin[:c], seeds[:k]
        priority = torch.unique(torch.cat((cos, sin, seeds)))
    ranking = foreground_ranking(lists["score"], lists["foreground"])
    fill = ranking[~torch.isin(ranking, priority)][:budget - priority.numel()]
    return {"kept": torch.sort(torch.cat((priority, fill))).values,
            "ivc": torch.unique(torch.cat((cos, sin))),
            "seeds": torch.sort(seeds).values, "fill": torch.sort(fill).values}


def official_count(lists: dict[str, torch.Tensor]) -> int:
    """How many visual tokens the official code keeps: the union of its four lists (L938-945)."""
    return int(torch.unique(torch.cat([lists[k] for k in ("foreground", "seeds", "cos", "sin")])).numel())


def checked_layer(ctx: LLMContext, layer: int | None, default=default_layer) -> int:
    """IVC-Prune's pruning layer K: ``layer``, or ``default(num_layers)``; an error outside 1..L."""
    layer = default(ctx.num_layers) if layer is None else int(layer)
    if not 1 <= layer <= ctx.num_layers:
        raise LiteLVLMError(f"IVC-Prune layer K must be in 1..{ctx.num_layers}; got {layer}")
    return layer


def kept_selection(lists: dict[str, torch.Tensor], out: dict[str, torch.Tensor], layer: int,
                   official: int) -> Selection:
    """The Selection of ``keep_for_budget``'s ``out``: its parts, the official count, the score it ranks
    by."""
    parts = {"ivc": out["ivc"], "seeds": out["seeds"], "foreground": out["fill"],
             "official_budget": torch.tensor(official)}
    return Selection(indices=out["kept"], scores=lists["score"].float(), parts=parts, prune_layer=layer)


def official_budget(ctx: LLMContext, layer: int | None = None) -> int:
    """K of the official LLaVA-1.5 selection for this prompt (image-dependent; at most 179 of 576)."""
    with torch.no_grad():
        return official_count(ivc_scores(ctx, checked_layer(ctx, layer)))


def ivc_prune_select(ctx: LLMContext, budget: int, *, layer: int | None = None) -> Selection:
    """The ``budget`` visual tokens IVC-Prune keeps from decoder layer ``layer`` on (default 16 of 32): IVC
    tokens and seeds, then foreground tokens; raster order (see docs/methods/ivc_prune.md)."""
    layer = checked_layer(ctx, layer)
    with torch.no_grad():
        lists = ivc_scores(ctx, layer)
        out = keep_for_budget(lists, budget)
    return kept_selection(lists, out, layer, official_count(lists))


def ivc_schedule(budget: int, num_visual: int, num_layers: int, *, layer: int | None = None):
    """N visual tokens up to layer K-1, K from IVC-Prune's layer on (default: 16 of 32 layers)."""
    return pruned_at_layer(budget, num_visual, num_layers,
                           layer=default_layer(num_layers) if layer is None else layer)


IVC_PRUNE = Method("llm-layer", ivc_prune_select, forward=pruned_forward, schedule=ivc_schedule,
                   host_sync=True, ranks=True, positions="keep", one_axis_positions=True,
                   name="ivc-prune",
                   description=("IVC-Prune: from LLM layer 16 of 32, the implicit visual coordinate "
                                "tokens (largest mean RoPE cos / sin), then seeds and foreground by "
                                "value similarity to the question (kept tokens keep their RoPE "
                                "positions; official K: official_budget)"))
