"""IVC-Prune's Qwen2.5-VL variant (``ivc-prune`` on ``qwen2.5-vl``, UniPixel): at one decoder layer, keep the
visual tokens whose M-RoPE rotations are closest to the identity and to the 90-degree rotation, a few
prompt-relevant seed tokens, then the tokens whose values resemble the question's and the seeds' up to K.

Official source: FireRedTeam/IVC-Prune @ 03afd9c,
``transformers/src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py``. What the official code does not
define (K below the priority set, other depths) is this project's (the deviations list).

Details, the official statements with their lines and the deviations: docs/methods/ivc_prune_qwen.md
"""

from __future__ import annotations

import math

import torch

from ..errors import LiteLVLMError
from ..llm.context import LLMContext
from ..llm.pruned_forward import pruned_at_layer, pruned_forward
from ..method import Method
from ..pruning.selection import Selection
from .ivc_prune import checked_layer, keep_for_budget, kept_selection

#: ``ivcp_k`` of the Qwen2.5-VL configs (config.py L1089-1134): decoder layers -> the first layer that sees
#: the kept tokens (Qwen2.5-VL-7B: 28 layers, 16; Qwen2.5-VL-3B: 36 layers, 22)
OFFICIAL_LAYERS = {28: 16, 36: 22}
#: the depth and layer other depths scale from (Qwen2.5-VL-7B's; deviation 2)
REFERENCE_DEPTH, REFERENCE_LAYER = 28, 16
#: Shares of the N visual tokens (L1502, L1522-1523, L1529): seeds, IVC tokens per table (cos, sin), target.
SEED_RATIO, IVC_RATIO, TARGET_RATIO = 0.01, 0.1, 0.5
#: The question rows start this many tokens after the image (L1488).
QUESTION_OFFSET = 2


def default_layer(num_layers: int) -> int:
    """The pruning layer for an LLM of ``num_layers`` layers: the official ``ivcp_k`` (16 of 28, 22 of 36),
    else the depth of 16 of 28 (at least 1)."""
    if num_layers in OFFICIAL_LAYERS:
        return OFFICIAL_LAYERS[num_layers]
    return max(1, round(REFERENCE_LAYER * num_layers / REFERENCE_DEPTH))


def part_counts(num_visual: int) -> tuple[int, int, int]:
    """(seeds, IVC tokens per table, target) of the official code for N visual tokens (its float
    expressions)."""
    n = num_visual
    return max(1, round(n * SEED_RATIO)), round(n * IVC_RATIO), round(n * TARGET_RATIO)


def value_states(ctx: LLMContext, layer: int) -> torch.Tensor:
    """(1, S, H, d) value states of decoder layer ``layer`` as its flash attention holds them: ``v_proj`` of
    the ``input_layernorm`` output, each key-value head repeated to the attention heads (L866-873, L887-889,
    L916-918)."""
    block = ctx.lm.layers[layer]
    attn = block.self_attn
    hidden_states = block.input_layernorm(ctx.hidden_before(layer).detach())
    bsz, q_len, _ = hidden_states.size()
    values = attn.v_proj(hidden_states).view(bsz, q_len, -1, attn.head_dim).transpose(1, 2)
    n_rep = attn.num_key_value_groups
    if n_rep != 1:  # repeat_kv L697-706
        b, kv, slen, d = values.shape
        values = values[:, :, None, :, :].expand(b, kv, n_rep, slen, d).reshape(b, kv * n_rep, slen, d)
    return values.transpose(1, 2)  # L918: flash attention's layout


def subset_similarity(values: torch.Tensor, query_rows: torch.Tensor, head_dim: int, img_start: int,
                      img_len: int) -> torch.Tensor:
    """(Q, N) softmax over the image columns of the query rows' value similarity, averaged over batch and
    heads (``calculate_avg_similarity_for_subset_einsum`` L1379-1390); ``values``: (1, S, H, d)."""
    values = values.transpose(1, 2)
    values_query = values[:, :, query_rows, :]
    values_t = values[:, :, img_start:img_start + img_len, :].transpose(2, 3)
    sim = torch.einsum('bhqd,bhdk->bhqk', values_query, values_t) / math.sqrt(head_dim)
    weights = torch.softmax(sim, dim=-1, dtype=torch.float32).to(values.dtype)
    return torch.mean(weights, dim=(0, 1))


def axis_tables(ctx: LLMContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, 1, S, d) cos and sin of each M-RoPE axis over the whole head dimension, in the model's dtype: the
    official rotary embedding's output (``Qwen2_5_VLRotaryEmbedding.forward`` L587-600), before any
    ``mrope_section`` pick."""
    rotary = ctx.lm.rotary_emb
    if getattr(rotary, "rope_type", "default") != "default":
        raise LiteLVLMError("IVC-Prune's Qwen2.5-VL rule reads the default M-RoPE tables; got "
                            f"{rotary.rope_type!r}")
    pos = ctx.position_ids.to(ctx.embeds.device)
    if pos.dim() != 3 or pos.shape[0] != 3:
        raise LiteLVLMError("IVC-Prune's Qwen2.5-VL rule reads 3-D M-RoPE positions (3, 1, S)")
    inv_freq = rotary.inv_freq[None, None, :, None].float().expand(3, pos.shape[1], -1, 1)
    freqs = (inv_freq.float() @ pos[:, :, None, :].float()).transpose(2, 3)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = emb.cos() * rotary.attention_scaling
    sin = emb.sin() * rotary.attention_scaling
    return cos.to(dtype=ctx.embeds.dtype), sin.to(dtype=ctx.embeds.dtype)


def ivc_scores(ctx: LLMContext, layer: int) -> dict[str, torch.Tensor]:
    """The official lists (local visual indices, ``topk`` order) and score (N,) of the selection before
    decoder layer ``layer`` (L1487-1534): ``seeds``, ``cos``, ``sin``, ``ranking`` (``score.topk(N)``) and
    ``score``."""
    s, n, seq = ctx.image_start, ctx.num_visual, ctx.seq_len
    if seq <= s + n + QUESTION_OFFSET:
        raise LiteLVLMError(f"IVC-Prune reads the question rows from {QUESTION_OFFSET} tokens after the "
                            "image on; this prompt has none")
    n_seed, n_ivc, _ = part_counts(n)
    values = value_states(ctx, layer - 1)
    head_dim = ctx.lm.layers[layer - 1].self_attn.head_dim
    question = torch.arange(s + n + QUESTION_OFFSET, seq, device=values.device)
    text_to_img = subset_similarity(values, question, head_dim, s, n)
    seeds = torch.mean(text_to_img, dim=0).topk(n_seed).indices
    seeds_to_img = subset_similarity(values, seeds + s, head_dim, s, n)
    score = torch.mean(torch.cat((text_to_img, seeds_to_img), dim=0), dim=0)
    cos, sin = axis_tables(ctx)
    cos_mean = cos[:, 0, s:s + n].mean(dim=(0, 2))
    sin_mean = sin[:, 0, s:s + n].mean(dim=(0, 2))
    return {"seeds": seeds, "cos": cos_mean.topk(n_ivc).indices, "sin": sin_mean.topk(n_ivc).indices,
            "ranking": score.topk(n).indices, "score": score}


def official_count(lists: dict[str, torch.Tensor]) -> int:
    """How many visual tokens the official code keeps: the target ``round(n * 0.5)``, or the whole priority
    when that is larger (L1526-1542)."""
    priority = torch.unique(torch.cat((lists["cos"], lists["sin"], lists["seeds"])))
    return max(part_counts(int(lists["score"].numel()))[2], int(priority.numel()))


def official_budget(ctx: LLMContext, layer: int | None = None) -> int:
    """K of the official Qwen2.5-VL selection for this prompt: ``max(round(N / 2), |priority|)``."""
    with torch.no_grad():
        return official_count(ivc_scores(ctx, checked_layer(ctx, layer, default_layer)))


def ivc_prune_qwen_select(ctx: LLMContext, budget: int, *, layer: int | None = None) -> Selection:
    """The ``budget`` visual tokens IVC-Prune's Qwen2.5-VL code keeps from decoder layer ``layer`` on
    (default: its ``ivcp_k``): IVC tokens and seeds, then the value-similarity ranking; raster order (see the
    docs/methods/ivc_prune_qwen.md)."""
    layer = checked_layer(ctx, layer, default_layer)
    with torch.no_grad():
        lists = ivc_scores(ctx, layer)
        # the whole ranking stands for the foreground list: keep_for_budget's fill then follows score.topk(N)
        out = keep_for_budget({**lists, "foreground": lists["ranking"]}, budget)
    return kept_selection(lists, out, layer, official_count(lists))


def ivc_qwen_schedule(budget: int, num_visual: int, num_layers: int, *, layer: int | None = None):
    """N visual tokens up to layer K-1, K from the pruning layer on (default: 16 of 28 layers, 22 of 36)."""
    return pruned_at_layer(budget, num_visual, num_layers,
                           layer=default_layer(num_layers) if layer is None else layer)


IVC_PRUNE_QWEN = Method("llm-layer", ivc_prune_qwen_select, forward=pruned_forward,
                        schedule=ivc_qwen_schedule, host_sync=True, ranks=True, positions="keep",
                        name="ivc-prune", backbone="qwen2.5-vl",
                        description=("IVC-Prune, its official Qwen2.5-VL code: from LLM layer 16 of 28 "
                                     "(22 of 36), the implicit visual coordinate tokens (largest mean "
                                     "M-RoPE cos / sin over the 3 axes), seeds, then value similarity to "
                                     "the question and seeds up to K (kept tokens keep their 3-D "
                                     "positions; official K: N/2)"))
